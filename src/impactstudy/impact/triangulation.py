"""Triangulation: do councils whose respondents reported more change also show more administrative change?

Two kinds of evidence about the same treated councils sit side by side here:

* **each treated council's administrative change** (:func:`council_effects`): its own
  difference-in-differences, the change in its outcome from its base year (the year before treatment,
  or before the anticipation window) to each year from its treatment on, minus the mean change of the
  comparison councils over the same years (the comparison councils of R ``did``'s ATT(g, t), without
  covariates), averaged over those years. Within a cohort the councils' effects average to the
  cohort's effect, and their cohort-size-weighted mean is the unconditional overall ATT;
* **each council's change in a survey measure** (:func:`survey_change`): the mean of its respondents'
  answers at the later wave minus the mean at the earlier one (councils with answers at both), or,
  for a measure asked at one wave only (e.g. how much the programme contributed), the mean answer.

:func:`triangulate` sets them beside each other: the survey's mean change and the administrative mean
improvement in the same councils, and their association across councils (Pearson's r with its Fisher
interval, and the least-squares slope of administrative improvement on survey change with its t
interval; both from scipy). Administrative change is signed as *improvement* (by the outcome's
``better``), so a positive association reads "councils that reported more also improved more".

The report words it with the caution it deserves: one council's difference-in-differences is noisy
(its own year-to-year noise is not averaged away), which attenuates any association towards zero; the survey measures perceptions of the same staff who led the change; and
an association across councils says nothing about what caused either change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from impactstudy.impact.panel import Panel
from impactstudy.impact.randomisation import comparison_mask

COUNCIL_COLUMNS = ["outcome", "council_code", "cohort", "estimate", "ci_low", "ci_high", "n_years", "n_placebo"]
TRIANGULATION_COLUMNS = [
    "outcome", "measure", "earlier_wave", "later_wave", "n_councils", "survey_change", "survey_ci_low",
    "survey_ci_high", "admin_improvement", "admin_ci_low", "admin_ci_high", "correlation", "correlation_ci_low",
    "correlation_ci_high", "correlation_p", "slope", "slope_ci_low", "slope_ci_high", "warning"]
#: Below this many councils with both kinds of evidence no association is estimated.
MIN_COUNCILS = 5
#: Below this many the row carries a warning that the interval is very wide.
FEW_COUNCILS = 15


def council_effects(panel: Panel, comparison: str = "not_yet_treated", anticipation: int = 0,
                    alpha: float = 0.05) -> pd.DataFrame:
    """Each treated council's own difference-in-differences, averaged over its treated years, with an
    interval (:data:`COUNCIL_COLUMNS`).

    ``n_years`` counts the treated years with a comparison group; councils without any are left out.

    The interval is a placebo (Conley & Taber 2011) interval: one council's estimate is its effect plus
    its own noise, which no standard error from one council can measure, so the noise's distribution is
    taken from the *placebo councils* — those in the comparison group in every one of the cohort's
    years — each given the same statistic against the other comparison councils. The interval is the
    estimate minus the placebo effects' order statistics ``k`` from the top and from the bottom,
    ``k = floor((n_placebo + 1) * alpha / 2)``: a new draw of the same noise falls between them with
    probability ``1 - 2k / (n_placebo + 1) >= 1 - alpha`` (interpolated quantiles cover less: 92.6%
    for 54 placebo councils in the test's simulation). It assumes the council's noise is like a
    typical comparison council's (for a council much smaller than most, whose figures vary more from
    year to year, it is too narrow). With ``k = 0`` (fewer than ``2 / alpha - 1`` placebo councils, 39
    at 95%) there is no interval (NaN); ``n_placebo`` says how many there were.
    """
    Y, cohort, councils = panel.matrix()
    years = np.asarray(panel.years)
    pos = {int(y): i for i, y in enumerate(years)}
    rows = []
    for g in np.unique(cohort[cohort > 0]):
        base = int(g) - 1 - anticipation
        if base not in pos:
            continue
        treated = cohort == g
        cells, placebo_cells = [], []
        always = np.ones(len(cohort), dtype=bool)  # in the comparison group in every year used
        masks = []
        for t in years[years >= g]:
            control = comparison_mask(cohort, int(t), base, treated, comparison, anticipation)
            if not control.any():
                continue
            masks.append((int(t), control))
            always &= control
        for t, control in masks:
            change = Y[:, pos[t]] - Y[:, pos[base]]
            cells.append(change[treated] - change[control].mean())
            n_c = control.sum()
            with np.errstate(invalid="ignore", divide="ignore"):  # one comparison council: no placebo
                placebo_cells.append(change[always] - (change[control].sum() - change[always]) / (n_c - 1))
        if not cells:
            continue
        effects = np.mean(cells, axis=0)
        placebo = np.mean(placebo_cells, axis=0)
        placebo = np.sort(placebo[np.isfinite(placebo)])
        k = int(np.floor((len(placebo) + 1) * alpha / 2 + 1e-9))
        lower_noise, upper_noise = (placebo[k - 1], placebo[-k]) if k >= 1 else (np.nan, np.nan)
        for code, value in zip(np.asarray(councils)[treated], effects, strict=True):
            rows.append((panel.outcome, code, int(g), float(value), float(value - upper_noise),
                         float(value - lower_noise), len(cells), len(placebo)))
    return pd.DataFrame(rows, columns=COUNCIL_COLUMNS)


def survey_change(long: pd.DataFrame, measure: str, waves: Sequence[str]) -> pd.DataFrame:
    """``council_code, change``: each council's mean answer at ``waves[-1]`` minus its mean at ``waves[0]``.

    ``long`` is the linked panel (``council_code, wave, measure, value``). With one wave, the mean
    answer at that wave. Councils without an answer at every wave named are left out.
    """
    rows = long[(long["measure"] == measure) & long["wave"].isin(list(waves)) & long["value"].notna()]
    means = rows.groupby(["council_code", "wave"], observed=True)["value"].mean().unstack("wave")
    if any(w not in means.columns for w in waves):
        return pd.DataFrame({"council_code": pd.Series(dtype=str), "change": pd.Series(dtype=float)})
    means = means[list(dict.fromkeys(waves))].dropna()
    change = means[waves[-1]] - means[waves[0]] if len(waves) > 1 else means[waves[0]]
    return pd.DataFrame({"council_code": means.index.astype(str), "change": change.to_numpy(dtype=float)})


def _mean_ci(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    mean = float(np.mean(values)) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(1 - alpha / 2, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def triangulate(effects: pd.DataFrame, survey: pd.DataFrame, better: str, alpha: float = 0.05) -> dict:
    """The survey's change and the administrative improvement in the councils with both, and their association.

    ``effects`` has ``council_code, estimate`` (:func:`council_effects`), ``survey`` has
    ``council_code, change`` (:func:`survey_change`). Returns the numeric fields of
    :data:`TRIANGULATION_COLUMNS` and a ``warning`` (empty when none).
    """
    both = effects.merge(survey, on="council_code", how="inner")
    sign = 1.0 if better == "higher" else -1.0
    x = both["change"].to_numpy(dtype=float)
    y = sign * both["estimate"].to_numpy(dtype=float)
    n = len(both)
    out = {"n_councils": n}
    out["survey_change"], out["survey_ci_low"], out["survey_ci_high"] = _mean_ci(x, alpha)
    out["admin_improvement"], out["admin_ci_low"], out["admin_ci_high"] = _mean_ci(y, alpha)
    nan = float("nan")
    out.update(correlation=nan, correlation_ci_low=nan, correlation_ci_high=nan, correlation_p=nan, slope=nan,
               slope_ci_low=nan, slope_ci_high=nan, warning="")
    if n < MIN_COUNCILS:
        out["warning"] = (f"only {n} council(s) with both survey answers and administrative data: "
                          "no association estimated")
        return out
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        out["warning"] = "no variation across councils in one of the two changes: no association estimated"
        return out
    r = stats.pearsonr(x, y)
    low, high = r.confidence_interval(1 - alpha)
    fit = stats.linregress(x, y)
    half = stats.t.ppf(1 - alpha / 2, n - 2) * fit.stderr
    out.update(correlation=float(r.statistic), correlation_ci_low=float(low), correlation_ci_high=float(high),
               correlation_p=float(r.pvalue), slope=float(fit.slope), slope_ci_low=float(fit.slope - half),
               slope_ci_high=float(fit.slope + half))
    if n < FEW_COUNCILS:
        out["warning"] = f"{n} councils: the interval of the correlation is very wide"
    return out

