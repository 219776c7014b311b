"""Does the proportional-odds model fit? A check of its one assumption, and the model without it.

The ``ordinal`` rows summarise a wave's change by one log odds ratio, which assumes the change shifts
the odds of answering above *every* cut-point of the scale by the same factor (proportional odds).
When it does not (say answers moved from "neither" to "effective" but not into "very effective"), the
single odds ratio averages unlike things. Two checks, per measure:

- :func:`nominal_lrt`: the likelihood-ratio test of the proportional-odds model ``y ~ wave`` against
  the model that lets every wave have its own thresholds (R ``ordinal::nominal_test(clm(y ~ wave))``,
  the test on ``wave``). With only waves in the model, that alternative reproduces each wave's answer
  distribution exactly, so its log-likelihood is closed-form. It treats answers as independent, so
  with clustered answers it flags departures too readily; it is reported for reference.
- :func:`cut_rows` and :func:`brant_wald`: the Brant-type check that respects clustering. For each
  cut-point ``c`` of the scale and each wave, the share answering at or above ``c``; for a contrast,
  the log odds ratio of answering at or above ``c`` at the later against the earlier wave (the
  partial-proportional-odds estimates: one per cut, model ``ordinal_cut`` rows); their joint
  council-clustered (CR1) covariance, and the Wald test that all cuts share one log odds ratio
  (chi-square on ``cuts - 1`` df, or F with ``G - 1`` denominator df below ``few_councils``). A cut at
  which a wave's answers are all on one side is not estimable there and left out (its row says so).

The cut-specific log odds ratios are the sensitivity fit: if they agree with each other and with the
``ordinal`` estimate, the single odds ratio is a fair summary; if they differ, read them instead.
Each is the coefficient of a logistic GEE with independence working correlation and a saturated wave
design, whose sandwich (with the CR1 factor) R's ``glm`` + ``sandwich::vcovCL(type = "HC1")``
reproduces (tests/reference/po_check_reference.R).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from impactstudy.model.stats import tidy
from impactstudy.model.stats.ordinal import LogitOrderedModel
from impactstudy.model.stats.wave_design import Contrast, contrast_label

CUT_MODEL = "ordinal_cut"
SPARSE = 5  # answers: a category with fewer than this many at some wave is flagged as sparse
CHECK_COLUMNS = ["measure", "kind", "contrast", "cut", "cut_label", "estimate", "std_error", "ci_low", "ci_high",
                 "statistic", "df", "den_df", "p_value", "n_obs", "n_councils", "correction", "warning"]


def nominal_lrt(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str]) -> dict[str, float | str]:
    """``statistic, df, p_value`` of the proportional-odds LRT on waves (R ``nominal_test``), and a
    ``warning`` naming sparse categories."""
    d = tidy.sample(data, wave_order).frame
    categories, codes = np.unique(d["value"].to_numpy(), return_inverse=True)
    waves = d["wave"].cat.codes.to_numpy()
    present = np.unique(waves)
    J, C = len(categories), len(present)
    out: dict[str, float | str] = {"statistic": np.nan, "df": np.nan, "p_value": np.nan, "warning": ""}
    if J < 3 or C < 2:
        out["warning"] = "needs three or more answer categories and two waves"
        return out
    counts = np.zeros((C, J))
    np.add.at(counts, (np.searchsorted(present, waves), codes), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        saturated = float(np.nansum(counts * np.log(counts / counts.sum(axis=1, keepdims=True))))
    X = np.eye(C)[:, 1:]
    cell, answer = np.nonzero(counts)
    with tidy.captured_warnings() as caught:
        model = LogitOrderedModel(answer, X[cell], freq_weights=counts[cell, answer])
        try:
            fit = model.fit(method="newton", tol=1e-12, maxiter=200, disp=False)
        except np.linalg.LinAlgError:  # e.g. every answer in one category at some wave: no finite fit
            out["warning"] = "the proportional-odds fit is singular (not estimable with these answers)"
            return out
    statistic = max(2.0 * (saturated - float(fit.llf)), 0.0)
    df = (J - 2) * (C - 1)
    sparse = [f"{categories[j]:g}" for j in range(J) if counts[:, j].min() < SPARSE]
    notes = [f"sparse categories (fewer than {SPARSE} answers at some wave): {', '.join(sparse)}"] if sparse else []
    if not fit.mle_retvals.get("converged", False):
        notes.append("the proportional-odds fit did not converge")
    out.update(statistic=statistic, df=float(df), p_value=float(stats.chi2.sf(statistic, df)),
               warning=tidy.join_warnings(*notes, *caught))
    return out


def _cut_shares(d: pd.DataFrame, cuts: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, int]:
    """Per wave and cut: the share at or above the cut, the joint CR1 covariance of those shares (waves
    x cuts flattened wave-major), answers per wave, and the council count."""
    wave_names = [str(w) for w in d["wave"].cat.categories]
    wave = d["wave"].cat.codes.to_numpy()
    council = pd.factorize(d["council_code"])[0]
    y = d["value"].to_numpy(float)[:, None] >= cuts[None, :]
    W, K, G, n = len(wave_names), len(cuts), int(council.max(initial=-1)) + 1, len(d)
    n_wave = np.bincount(wave, minlength=W).astype(float)
    share = np.zeros((W, K))
    np.add.at(share, wave, y.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        share /= n_wave[:, None]
    resid = y - share[wave]
    scores = np.zeros((G, W, K))
    np.add.at(scores, (council, wave), resid)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores /= n_wave[None, :, None]
    flat = np.nan_to_num(scores.reshape(G, W * K))
    observed_cells = int((n_wave > 0).sum())
    factor = G / (G - 1) * (n - 1) / (n - observed_cells) if G > 1 and n > observed_cells else np.nan
    return wave_names, share, factor * flat.T @ flat, n_wave, G


def cut_rows(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str], contrasts: Sequence[Contrast],
             levels: Sequence[float], labels: dict[float, str] | None = None, few_councils: int = 40,
             conf_level: float = 0.95) -> pd.DataFrame:
    """Per contrast and cut-point: the log odds ratio of answering at or above the cut (later against
    earlier wave), and per contrast the Brant-type clustered Wald test that they are equal
    (:data:`CHECK_COLUMNS` without ``measure``; ``kind`` is ``cut`` or ``brant``)."""
    labels = labels or {}
    d = tidy.sample(data, wave_order).frame
    cuts = np.asarray(sorted(levels)[1:], dtype=float)
    if d.empty or len(cuts) == 0:
        return pd.DataFrame(columns=CHECK_COLUMNS[1:])
    waves, share, cov, n_wave, G = _cut_shares(d, cuts)
    few = G < few_councils
    ref_df = float(G - 1) if few else None
    correction = "cluster-robust CR1, " + ("t reference df=G-1" if few else "normal reference")
    K = len(cuts)
    rows = []
    for later, earlier in contrasts:
        a, b = waves.index(later), waves.index(earlier)
        base = {"contrast": contrast_label(later, earlier), "n_obs": int(n_wave[a] + n_wave[b]),
                "n_councils": int(d.loc[d["wave"].isin([later, earlier]), "council_code"].nunique()),
                "correction": correction}
        ok = (share[[a, b]] > 0).all(axis=0) & (share[[a, b]] < 1).all(axis=0)
        # logit(p) and its gradient: d logit / dp = 1 / (p (1 - p))
        grad = np.zeros((K, share.size))
        for k in range(K):
            if ok[k]:
                grad[k, a * K + k] = 1.0 / (share[a, k] * (1 - share[a, k]))
                grad[k, b * K + k] = -1.0 / (share[b, k] * (1 - share[b, k]))
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = special.logit(share[a]) - special.logit(share[b])
        V = grad @ cov @ grad.T
        for k, cut in enumerate(cuts):
            row = {**base, "kind": "cut", "cut": float(cut), "cut_label": labels.get(cut, f"{cut:g}") + " or above",
                   "estimate": np.nan, "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan, "statistic": np.nan,
                   "df": np.nan, "den_df": np.nan, "p_value": np.nan, "warning": ""}
            if not ok[k]:
                row["warning"] = "not estimable: every answer at one of the waves is on one side of this cut"
            elif not V[k, k] > 0:
                row["warning"] = "not estimable: the answers do not vary between the waves at this cut"
            else:
                se = float(np.sqrt(V[k, k]))
                lo, hi, p = tidy.interval(float(theta[k]), se, ref_df, conf_level)
                row.update(estimate=float(theta[k]), std_error=se, ci_low=lo, ci_high=hi, p_value=p,
                           statistic=float(theta[k]) / se, df=np.nan if ref_df is None else ref_df)
            rows.append(row)
        rows.append({**base, "kind": "brant", "cut": np.nan, "cut_label": "",
                     "estimate": np.nan, "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                     **brant_wald(theta[ok], V[np.ix_(ok, ok)], ref_df)})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS[1:])


def brant_wald(theta: np.ndarray, V: np.ndarray, den_df: float | None) -> dict[str, float | str]:
    """Wald test that every entry of ``theta`` is equal: ``statistic`` (chi-square, or F with ``den_df``),
    ``df``, ``den_df``, ``p_value``, ``warning``."""
    q = len(theta) - 1
    if q < 1:
        return {"statistic": np.nan, "df": np.nan, "den_df": np.nan, "p_value": np.nan,
                "warning": "fewer than two estimable cut-points; nothing to compare"}
    D = np.column_stack([-np.ones(q), np.eye(q)])
    diff = D @ theta
    try:
        chi2 = float(diff @ np.linalg.solve(D @ V @ D.T, diff))
    except np.linalg.LinAlgError:
        return {"statistic": np.nan, "df": float(q), "den_df": np.nan, "p_value": np.nan,
                "warning": "the covariance of the cut-point estimates is singular"}
    if den_df is None:
        return {"statistic": chi2, "df": float(q), "den_df": np.nan, "p_value": float(stats.chi2.sf(chi2, q)), "warning": ""}
    F = chi2 / q
    return {"statistic": F, "df": float(q), "den_df": float(den_df), "p_value": float(stats.f.sf(F, q, den_df)),
            "warning": ""}


def check_rows(measure: str, data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
               contrasts: Sequence[Contrast], levels: Sequence[float], labels: dict[float, str] | None = None,
               few_councils: int = 40) -> pd.DataFrame:
    """Every row of ``tables/ordinal_check.csv`` for one measure: the nominal LRT (``kind`` ``nominal``),
    then per contrast the cut-specific log odds ratios and their Brant-type test."""
    present = [w for w in wave_order if w in {str(v) for v in tidy.sample(data, wave_order).frame["wave"].unique()}]
    lrt = nominal_lrt(data, present)
    d = tidy.sample(data, present).frame
    first = {"kind": "nominal", "contrast": "", "cut": np.nan, "cut_label": "", "estimate": np.nan,
             "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan, "den_df": np.nan, "n_obs": len(d),
             "n_councils": int(d["council_code"].nunique()), "correction": "likelihood ratio, answers independent",
             **lrt}
    cuts = cut_rows(d, present, contrasts, levels, labels, few_councils)
    out = pd.concat([pd.DataFrame([first]), cuts], ignore_index=True).assign(measure=measure)
    return out.reindex(columns=CHECK_COLUMNS)


__all__ = ["CHECK_COLUMNS", "CUT_MODEL", "brant_wald", "check_rows", "cut_rows", "nominal_lrt"]
