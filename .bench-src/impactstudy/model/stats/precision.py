"""How alike are answers within a council, how big is a change in plain units, and how big a change
could this study have detected?

- :func:`icc_rows`: the intraclass correlation (ICC) of each wave's answers: the share of their
  variance that lies between councils. From the one-way random-effects ANOVA of answers on councils,
  ``ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW)`` with ``n0 = (N - sum n_i^2 / N) / (K - 1)`` (the
  average council size adjusted for unequal sizes), and the F-based interval of Searle (1971):
  ``F = MSB / MSW``, ``F_L = F / F(1 - a/2; K-1, N-K)``, ``F_U = F * F(1 - a/2; N-K, K-1)``, bounds
  ``(F_x - 1) / (F_x + n0 - 1)`` truncated to [0, 1]. Exact with equal council sizes, approximate
  otherwise. A negative point estimate (less variation between councils than chance gives) is
  reported as 0 with a note.
- :func:`effect_size_rows`: standardised effect sizes: a change divided by the standard deviation of
  individual answers at the measure's first wave (``sd``, n - 1 denominator), interval likewise (the
  SD is treated as known). 0.2 is conventionally "small", 0.5 "medium", 0.8 "large" (Cohen).
- :func:`minimum_detectable_effect`: the smallest standardised change between two waves that a study
  with ``councils`` councils of ``per_council`` respondents a wave and intraclass correlation ``icc``
  detects with 80% power at the 5% level (two-sided), when different respondents answer each wave and
  councils' levels do not persist between waves (the conservative case):
  ``MDE = (t(0.975; K-1) + t(0.80; K-1)) * sqrt(2 * DEFF / (K m))`` with the design effect ``DEFF =
  1 + (m - 1) ICC``. The t quantiles on K - 1 df make it honest for few councils.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ICC_COLUMNS = ["measure", "wave", "icc", "ci_low", "ci_high", "n_obs", "n_councils", "mean_per_council", "warning"]
EFFECT_COLUMNS = ["measure", "model", "contrast", "group", "sd", "estimate", "ci_low", "ci_high"]


def _icc_bound(f: float, n0: float) -> float:
    return float(np.clip((f - 1) / (f + n0 - 1), 0.0, 1.0))


def icc_anova(values: np.ndarray, council: np.ndarray, conf_level: float = 0.95) -> dict[str, float | str]:
    """One-way ANOVA ICC of ``values`` grouped by ``council`` with Searle's interval (see module)."""
    values = np.asarray(values, dtype=float)
    codes, _ = pd.factorize(np.asarray(council))
    K, N = int(codes.max(initial=-1)) + 1, len(values)
    out: dict[str, float | str] = {"icc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_obs": N,
                                   "n_councils": K, "mean_per_council": N / K if K else np.nan, "warning": ""}
    sizes = np.bincount(codes, minlength=K).astype(float)
    if K < 2 or N - K < 1:
        out["warning"] = "needs at least two councils and a council with two or more answers"
        return out
    means = np.bincount(codes, weights=values, minlength=K) / sizes
    grand = values.mean()
    msb = float(np.sum(sizes * (means - grand) ** 2) / (K - 1))
    msw = float(np.sum((values - means[codes]) ** 2) / (N - K))
    n0 = (N - np.sum(sizes ** 2) / N) / (K - 1)
    if msw == 0:
        out["warning"] = "answers do not vary within councils"
        return out
    F = msb / msw
    a = 1 - conf_level
    f_low = F / stats.f.ppf(1 - a / 2, K - 1, N - K)
    f_high = F * stats.f.ppf(1 - a / 2, N - K, K - 1)
    icc = (msb - msw) / (msb + (n0 - 1) * msw)
    out.update(icc=float(max(icc, 0.0)), ci_low=_icc_bound(f_low, n0), ci_high=_icc_bound(f_high, n0), n0=float(n0))
    if icc < 0:
        out["warning"] = "estimated as below zero (no more variation between councils than chance gives); shown as 0"
    return out


def icc_rows(measure: str, data: pd.DataFrame, wave_order: Sequence[str], conf_level: float = 0.95) -> pd.DataFrame:
    """:data:`ICC_COLUMNS` rows, one per wave the measure was answered in."""
    rows = []
    for wave in wave_order:
        at = data[data["wave"].astype(str) == wave]
        if at.empty:
            continue
        result = icc_anova(at["value"].to_numpy(float), at["council_code"].astype(str).to_numpy(), conf_level)
        rows.append({"measure": measure, "wave": wave, **{k: result[k] for k in ICC_COLUMNS[2:]}})
    return pd.DataFrame(rows, columns=ICC_COLUMNS)


def baseline_sd(data: pd.DataFrame, wave_order: Sequence[str]) -> float:
    """SD (n - 1) of the answers at the first wave of ``wave_order`` with any answer."""
    for wave in wave_order:
        at = data.loc[data["wave"].astype(str) == wave, "value"].to_numpy(float)
        if len(at):
            return float(np.std(at, ddof=1)) if len(at) > 1 else np.nan
    return np.nan


def effect_size_rows(contrasts: pd.DataFrame, sds: dict[str, float], models: Sequence[str] = ("lmm", "gee")) -> pd.DataFrame:
    """:data:`EFFECT_COLUMNS`: the ``models``' contrasts of each measure divided by its baseline SD."""
    rows = contrasts[contrasts["model"].isin(list(models)) & contrasts["measure"].isin(list(sds))]
    sd = rows["measure"].map(sds).astype(float)
    ok = sd > 0
    out = pd.DataFrame({"measure": rows["measure"], "model": rows["model"], "contrast": rows["contrast"],
                        "group": rows["group"], "sd": sd,
                        "estimate": (rows["estimate"] / sd).where(ok), "ci_low": (rows["ci_low"] / sd).where(ok),
                        "ci_high": (rows["ci_high"] / sd).where(ok)})
    return out.reset_index(drop=True)[EFFECT_COLUMNS]


def minimum_detectable_effect(councils: int, per_council: float, icc: float, power: float = 0.8,
                              alpha: float = 0.05) -> float:
    """Smallest standardised change between two waves detectable with ``power`` (see module)."""
    if councils < 2 or not per_council > 0 or not np.isfinite(icc):
        return float("nan")
    df = councils - 1
    multiplier = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
    deff = 1 + (per_council - 1) * icc
    return float(multiplier * np.sqrt(2 * deff / (councils * per_council)))


__all__ = ["EFFECT_COLUMNS", "ICC_COLUMNS", "baseline_sd", "effect_size_rows", "icc_anova", "icc_rows",
           "minimum_detectable_effect"]
