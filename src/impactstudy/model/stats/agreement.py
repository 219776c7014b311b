"""Agreement between coders of free text: Krippendorff's alpha per theme and over all themes, Cohen's
kappa for each pair of coders, with bootstrap intervals that resample the double-coded answers.

Input: one row per answer x coder x theme with ``answer_id, coder, theme, coded`` (0/1), the rows of
``codes.parquet`` for one question (docs/data-contracts.md). Each theme is a nominal 0/1 judgement:

- **Krippendorff's alpha** (nominal), ``1 - D_o / D_e``, from the coincidence matrix of every answer
  coded by two or more coders (any number of coders, missing judgements allowed). The point estimate is
  the ``krippendorff`` package's ``alpha(level_of_measurement="nominal")``; the bootstrap uses the same
  formula written over per-answer sums (for 0/1 codes the coincidence matrix is fixed by each answer's
  pairable values ``m_u``, ones ``n_u1`` and off-diagonal pairs ``2 n_u0 n_u1 / (m_u - 1)``), so each
  draw is a weighted sum and thousands of draws take milliseconds. ``tests/model/test_agreement.py``
  checks both against the package and against R (``tests/reference/agreement_reference.R``).
- **Over all themes** (``theme = "all"``): every (answer, theme) judgement is a unit, pooled, so a
  coding frame's overall alpha weighs each theme by how often it could be applied; the bootstrap still
  resamples whole answers, so the themes of one answer stay together.
- **Cohen's kappa**, for each pair of coders, over the answers both coded: ``(p_o - p_e) / (1 - p_e)``
  with each coder's own marginal shares. With two coders in a study this is *the* kappa; with more,
  one row per pair that shared answers.
- **Bootstrap**: :data:`DRAWS` draws (seeded: the same data give the same interval) of the double-coded
  answers with replacement; percentile 95% intervals over the draws where the statistic is defined
  (a draw in which no coder used the theme has no alpha); ``draws_defined`` says how many. ``below``:
  the share of draws below the threshold (Krippendorff's *q*, the chance that agreement is below it).

A theme no coder used (or that every coder applied to every double-coded answer) has no variation to
agree on: alpha and kappa are undefined (NaN) and ``warning`` says so; its percentage agreement is
still given. A theme whose alpha is below the threshold is flagged ``alpha below <threshold>``; one whose
interval reaches below it, ``interval reaches below <threshold>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

DRAWS = 2000
SEED = 20191
ALL = "all"
ALPHA = "krippendorff_alpha"
KAPPA = "cohen_kappa"
COLUMNS = ["question", "theme", "statistic", "coders", "estimate", "ci_low", "ci_high", "draws", "draws_defined",
           "below", "agreement", "n_answers", "n_coders", "threshold", "flag", "warning"]
MIN_USES = 10  # answers ticked with a theme by some coder, below which no interval is given (docs/coding.md: coverage)
FEW_USES = "too few uses to judge"
NO_VARIATION = "no variation: no coder used this theme on the double-coded answers, or every coder used it on all of them"


def _matrix(codes: pd.DataFrame) -> tuple[np.ndarray, list[str], list[object], list[str]]:
    """``codes`` as an array (answer x theme x coder) of 0/1 with NaN where the coder did not code the answer,
    restricted to answers coded by two or more coders; and the answers, themes and coders."""
    d = codes[codes["coded"].notna()]
    answers, a = np.unique(d["answer_id"].astype(str).to_numpy(), return_inverse=True)
    themes, t = np.unique(d["theme"].astype(str).to_numpy(), return_inverse=True)
    coders, c = np.unique(d["coder"].astype(str).to_numpy(), return_inverse=True)
    x = np.full((len(answers), len(themes), len(coders)), np.nan)
    x[a, t, c] = d["coded"].to_numpy(float)
    coded_by = (~np.isnan(x)).any(axis=1).sum(axis=1)
    keep = coded_by >= 2
    return x[keep], list(answers[keep]), list(themes), list(coders)


def _alpha_parts(x: np.ndarray) -> np.ndarray:
    """Per answer x theme: pairable values ``m``, ones ``n1`` and off-diagonal coincidences ``d`` (shape ... x 3)."""
    m = (~np.isnan(x)).sum(axis=-1).astype(float)
    n1 = np.nansum(x, axis=-1)
    pairable = m >= 2
    d = np.where(pairable, 2 * n1 * (m - n1) / np.where(pairable, m - 1, 1), 0.0)
    return np.stack([np.where(pairable, m, 0.0), np.where(pairable, n1, 0.0), d], axis=-1)


def _alpha_from(sums: np.ndarray) -> np.ndarray:
    """Nominal alpha from summed ``(m, n1, d)``: ``1 - (n - 1) * D / (2 n0 n1)``; NaN without variation."""
    n, n1, d = sums[..., 0], sums[..., 1], sums[..., 2]
    n0 = n - n1
    expected = 2 * n0 * n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * d / np.where(expected > 0, expected, 1), np.nan)


def _kappa_parts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per unit: counted, agreed, coder a's ones, coder b's ones (0 where either is missing)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    a0, b0 = np.where(both, a, 0.0), np.where(both, b, 0.0)
    return np.stack([both.astype(float), (both & (a0 == b0)).astype(float), a0, b0], axis=-1)


def _kappa_from(sums: np.ndarray) -> np.ndarray:
    """Cohen's kappa from summed ``(n, agreed, ones_a, ones_b)``; NaN when chance agreement is 1."""
    n, agreed, pa, pb = (sums[..., i] for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        po, pa, pb = agreed / n, pa / n, pb / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        return np.where((n > 0) & (pe < 1), (po - pe) / np.where(pe < 1, 1 - pe, 1), np.nan)


def krippendorff_alpha(x: np.ndarray) -> float:
    """Nominal alpha of a coder x unit array (NaN: not coded), from the ``krippendorff`` package."""
    import krippendorff

    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0:
        return float("nan")
    pairable = (~np.isnan(x)).sum(axis=0) >= 2
    values = np.unique(x[:, pairable][~np.isnan(x[:, pairable])])
    if len(values) < 2:
        return float("nan")  # the package raises when there is one value only: no variation, no alpha
    return float(krippendorff.alpha(reliability_data=x[:, pairable], level_of_measurement="nominal"))


def _interval(point: float, draws: np.ndarray, threshold: float) -> dict[str, float | int]:
    ok = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(ok) < 2:
        return {"ci_low": np.nan, "ci_high": np.nan, "draws_defined": int(len(ok)), "below": np.nan}
    low, high = np.quantile(ok, [0.025, 0.975])
    return {"ci_low": float(low), "ci_high": float(high), "draws_defined": int(len(ok)),
            "below": float(np.mean(ok < threshold))}


def too_few(uses: int) -> str:
    """The warning of an agreement resting on fewer than :data:`MIN_USES` answers ticked with the theme."""
    return (f"the theme was ticked on only {uses} double-coded answer{'s' if uses != 1 else ''} (fewer than {MIN_USES}): "
            "too few for an interval that covers")


def _flag(estimate: float, ci_low: float, threshold: float, few: bool = False) -> str:
    if not np.isfinite(estimate):
        return ""
    if estimate < threshold:
        return f"alpha below {threshold:g}"
    if few:
        return FEW_USES
    if np.isfinite(ci_low) and ci_low < threshold:
        return f"interval reaches below {threshold:g}"
    return ""


def agreement_rows(codes: pd.DataFrame, question: str, threshold: float = 0.67, draws: int = DRAWS,
                   seed: int = SEED, themes: Sequence[str] | None = None) -> pd.DataFrame:
    """Alpha per theme and over all themes, and Cohen's kappa per coder pair, for one question's codes
    (:data:`COLUMNS`; see the module docstring). ``themes`` lists the coding frame's themes, so a theme
    nobody used still gets its (undefined) row."""
    x, answers, found, coders = _matrix(codes)
    order = list(dict.fromkeys([*(themes or []), *found]))
    if themes is not None:
        full = np.full((len(answers), len(order), len(coders)), np.nan)
        coded = (~np.isnan(x)).any(axis=1)  # (answer, coder): the coder coded this answer
        for j, theme in enumerate(order):
            full[:, j, :] = x[:, found.index(theme), :] if theme in found else np.where(coded, 0.0, np.nan)
        x = full
    else:
        order = found
    n_answers = len(answers)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_answers, np.full(n_answers, 1 / n_answers), size=draws).astype(float) if n_answers else None
    rows: list[dict[str, object]] = []

    def add(theme: str, statistic: str, pair: str, estimate: float, boot: np.ndarray | None, agreement: float,
            n: int, n_coders: int, uses: int) -> None:
        few = np.isfinite(estimate) and uses < MIN_USES
        ci = _interval(estimate, boot if boot is not None and not few else np.array([]), threshold)
        warning = NO_VARIATION if not np.isfinite(estimate) and n else too_few(uses) if few else ""
        rows.append({"question": question, "theme": theme, "statistic": statistic, "coders": pair,
                     "estimate": estimate, **ci, "draws": draws if boot is not None else 0, "agreement": agreement,
                     "n_answers": n, "n_coders": n_coders, "threshold": threshold,
                     "flag": _flag(estimate, ci["ci_low"], threshold, few) if statistic == ALPHA else "",
                     "warning": warning})

    parts = _alpha_parts(x) if n_answers else np.zeros((0, len(order), 3))
    ticked = (np.nan_to_num(x, nan=0.0) > 0).any(axis=2)  # answer x theme: some coder ticked it
    uses = [*ticked.sum(axis=0), ticked.sum()]  # per theme, then pooled
    observed = (~np.isnan(x)).any(axis=(0, 1)).sum() if n_answers else 0
    for j, theme in enumerate([*order, ALL]):
        units = parts[:, j, :] if theme != ALL else parts.sum(axis=1)
        cube = x[:, j, :] if theme != ALL else x.reshape(-1, x.shape[2])
        estimate = krippendorff_alpha(cube.T) if n_answers else float("nan")
        boot = _alpha_from(weights @ units) if weights is not None else None
        add(theme, ALPHA, ALL, estimate, boot, _percent_agreement(cube), n_answers, int(observed), int(uses[j]))
    coded_by = (~np.isnan(x)).any(axis=1)  # answer x coder
    for i, k in combinations(range(len(coders)), 2):
        shared = coded_by[:, i] & coded_by[:, k]
        if not shared.any():
            continue
        kp = _kappa_parts(x[shared][:, :, i], x[shared][:, :, k])  # answer x theme x 4
        w = weights[:, shared] if weights is not None else None
        pair = f"{coders[i]} & {coders[k]}"
        for j, theme in enumerate([*order, ALL]):
            units = kp[:, j, :] if theme != ALL else kp.sum(axis=1)
            estimate = float(_kappa_from(units.sum(axis=0)))
            boot = _kappa_from(w @ units) if w is not None else None
            agreed = units[:, 1].sum() / units[:, 0].sum() if units[:, 0].sum() else np.nan
            either = (units[:, 2] + units[:, 3] > 0).sum() if theme != ALL else ((kp[:, :, 2] + kp[:, :, 3]) > 0).sum()
            add(theme, KAPPA, pair, estimate, boot, float(agreed), int(shared.sum()), 2, int(either))
    return pd.DataFrame(rows, columns=COLUMNS)


def _percent_agreement(x: np.ndarray) -> float:
    """Share of coder pairs on the same unit that gave the same code (units x coders, NaN: not coded)."""
    m = (~np.isnan(x)).sum(axis=1)
    n1 = np.nansum(x, axis=1)
    pairs = m * (m - 1) / 2
    same = n1 * (n1 - 1) / 2 + (m - n1) * (m - n1 - 1) / 2
    return float(same.sum() / pairs.sum()) if pairs.sum() else float("nan")


__all__ = ["ALL", "ALPHA", "COLUMNS", "DRAWS", "FEW_USES", "KAPPA", "MIN_USES", "SEED", "agreement_rows", "krippendorff_alpha",
           "too_few"]
