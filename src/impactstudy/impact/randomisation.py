"""Randomisation inference for the overall ATT when few councils are treated.

With six treated councils, asymptotic standard errors lean on a normal approximation that the data
cannot check. Randomisation inference asks instead how unusual the estimated effect is among effects
computed with the intervention dates *reassigned*:

* **placebo in space** — the observed set of intervention years is dealt at random to councils of the
  panel (keeping how many councils start in each year); p is the share of reassignments whose
  overall ATT is at least as far from zero as the observed one (counting the observed assignment, so
  the smallest reachable p is ``1 / (permutations + 1)``; with few councils the exact number of
  distinct assignments is smaller still and said so);
* **placebo in time** — every treated council's intervention moved ``k`` years earlier
  (:func:`placebo_in_time`), using only each council's own years before its real treatment (and its
  anticipation window) and comparisons untreated in those years; the placebo effects should be near
  zero, and p is the share of shifts with a placebo effect at least as far from zero as the observed one,
  counting the observed (so the smallest reachable p is ``1 / (shifts + 1)``). A cohort needs
  ``2 × (1 + anticipation)`` outcome years before its cohort year (a base year, then a placebo year
  before the anticipation window); :func:`placebo_in_time_note` says why none could be run.

Each reassignment needs only point estimates, so :func:`overall_att` computes the unconditional
Callaway & Sant'Anna overall ATT in closed form (2x2 differences of means, cohort-size weights); the
tests check it equals ``csdid`` to 1e-10 and R's ``lm`` 2x2 regressions (tests/reference/).

When the fit adjusts for covariates, the reassignments respect them: intervention years are dealt only
among councils of the same stratum of the declared covariates (a category's levels, a number split at
its median), so every reassignment has the treated councils' covariate mix, as the identifying
assumption (parallel trends given the covariates) treats councils alike on them as exchangeable. The
statistic stays the unconditional overall ATT: any statistic gives a valid test of the sharp null under
the stratified assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd

from impactstudy.impact.panel import Panel


def comparison_mask(cohorts: np.ndarray, t: int, base: int, treated: np.ndarray, comparison: str,
                    anticipation: int) -> np.ndarray:
    """Comparison councils of ATT(g, t) with base year ``base``: never treated, or (not yet treated)
    first treated after ``max(t, base) + anticipation`` and not in the treated cohort. ``cohorts`` and
    ``treated`` may be councils or assignments x councils."""
    never = cohorts == 0
    if comparison == "never_treated":
        return never
    return never | ((cohorts > max(t, base) + anticipation) & ~treated)


def att_gt(Y: np.ndarray, cohort: np.ndarray, years: np.ndarray, comparison: str = "not_yet_treated",
           anticipation: int = 0) -> dict[tuple[int, int], float]:
    """Unconditional ATT(g, t) for a balanced panel ``Y`` (councils x ``years``), R ``did``'s conventions.

    Post periods (``t >= g - anticipation``) compare with the base year ``g - 1 - anticipation``;
    pre periods with the year before ``t`` (varying base). Comparison councils: never treated, or also
    those not yet treated by ``max(t, base) + anticipation``. Cells without a comparison are omitted.
    """
    pos = {int(y): i for i, y in enumerate(years)}
    out: dict[tuple[int, int], float] = {}
    for g in np.unique(cohort[cohort > 0]):
        treated = cohort == g
        for t in years[1:]:
            base = g - 1 - anticipation if t >= g - anticipation else t - 1
            if base not in pos:
                continue
            control = comparison_mask(cohort, t, base, treated, comparison, anticipation)
            if not control.any():
                continue
            change = Y[:, pos[int(t)]] - Y[:, pos[int(base)]]
            out[(int(g), int(t))] = float(change[treated].mean() - change[control].mean())
    return out


def overall_att(Y: np.ndarray, cohort: np.ndarray, years: np.ndarray, comparison: str = "not_yet_treated",
                anticipation: int = 0) -> float:
    """R ``did``'s ``aggte(type = "group")`` overall ATT: cohort averages of post ATT(g, t), by cohort size."""
    return float(overall_att_many(Y, cohort[None, :], years, comparison, anticipation)[0])


def overall_att_many(Y: np.ndarray, cohorts: np.ndarray, years: np.ndarray, comparison: str = "not_yet_treated",
                     anticipation: int = 0) -> np.ndarray:
    """:func:`overall_att` for each row of ``cohorts`` (assignments x councils), vectorised over rows.

    Every row must deal the same multiset of cohort years (as a permutation does), so the cohorts and
    their sizes are those of the first row.
    """
    pos = {int(y): i for i, y in enumerate(years)}
    first = cohorts[0]
    total = np.zeros(len(cohorts))
    weight = 0
    for g in np.unique(first[first > 0]):
        base = g - 1 - anticipation
        if base not in pos:
            continue
        treated = cohorts == g
        n_g = treated[0].sum()
        cells = []
        for t in years[years >= g]:
            change = Y[:, pos[int(t)]] - Y[:, pos[int(base)]]
            control = comparison_mask(cohorts, t, base, treated, comparison, anticipation)
            n_c = control.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                cells.append(treated @ change / n_g - (control @ change) / np.where(n_c > 0, n_c, np.nan))
        cells = np.array(cells)
        if cells.size == 0:
            continue
        total += n_g * np.nanmean(cells, axis=0)
        weight += n_g
    return total / weight if weight else np.full(len(cohorts), np.nan)


@dataclass(frozen=True)
class Randomisation:
    """Randomisation-inference results for one outcome's overall ATT."""

    observed: float
    p_space: float
    permutations: int
    distinct_assignments: int
    p_time: float  # nan when no placebo date in time could be used
    placebo_shifts: tuple[int, ...]
    placebo_estimates: tuple[float, ...]
    strata: str = ""  # how reassignments were restricted, in words ("" when among all councils)
    time_note: str = ""  # why no placebo date in time could be used ("" when some could)


def placebo_in_time(Y: np.ndarray, cohort: np.ndarray, years: np.ndarray, comparison: str = "not_yet_treated",
                    anticipation: int = 0) -> tuple[list[int], list[float]]:
    """Placebo overall ATTs with every intervention moved ``k`` years earlier, from pre-treatment years only.

    For shift ``k`` each treated cohort ``g`` gets the placebo date ``g − k`` and, as the real estimate
    does, the base year ``g − k − 1 − anticipation``; its placebo ATT(g − k, t) are computed for the
    years ``t`` from ``g − k`` up to ``g − 1 − anticipation`` only (before its real treatment and
    anticipation window), against never-treated councils or (``not_yet_treated``) councils whose
    placebo date is after ``max(t, base) + anticipation`` — so no real post-treatment year of any
    council enters. Each cohort's placebo ATTs are averaged and the cohorts weighted by size, as the
    overall ATT is. Returns the shifts with at least one cohort's placebo effect, and those effects.
    """
    pos = {int(y): i for i, y in enumerate(years)}
    shifts, estimates = [], []
    groups = np.unique(cohort[cohort > 0])
    for k in range(1 + anticipation, len(years)):
        fake = np.where(cohort > 0, cohort - k, 0)
        total, weight = 0.0, 0
        for g in groups:
            treated = cohort == g
            base = int(g) - k - 1 - anticipation
            if base not in pos:
                continue
            cells = []
            for t in range(int(g) - k, int(g) - anticipation):
                if t not in pos:
                    continue
                control = comparison_mask(fake, t, base, treated, comparison, anticipation)
                if not control.any():
                    continue
                change = Y[:, pos[t]] - Y[:, pos[base]]
                cells.append(change[treated].mean() - change[control].mean())
            if cells:
                total += treated.sum() * np.mean(cells)
                weight += treated.sum()
        if weight:
            shifts.append(k)
            estimates.append(float(total / weight))
    return shifts, estimates


def placebo_in_time_note(cohort: np.ndarray, years: np.ndarray, anticipation: int) -> str:
    """Why no placebo date in time could be used, in words for the report (see :func:`placebo_in_time`)."""
    if not (cohort > 0).any():
        return "no council is treated within the outcome's years"
    need = 2 * (1 + anticipation)
    latest = int(cohort[cohort > 0].max())
    return (f"placebo dates in time need {need} years of outcomes before a cohort's first treated year (a base "
            f"year, then a placebo year before the {anticipation}-year anticipation window)" if anticipation else
            f"placebo dates in time need {need} years of outcomes before a cohort's first treated year (a base "
            "year and a placebo year)") + (
        f"; the outcome starts in {int(years[0])} and the latest cohort's first treated year is {latest}, "
        f"{latest - int(years[0])} year(s) later")


def _assignments(cohort: np.ndarray, strata: np.ndarray) -> int:
    """How many distinct ways to deal the observed intervention years to the councils within their strata."""
    total = 1
    for stratum in np.unique(strata):
        within = cohort[strata == stratum]
        n = len(within)
        for g in np.unique(within[within > 0]):
            k = int((within == g).sum())
            total *= comb(n, k)
            n -= k
    return total


def strata_of(panel: Panel, covariates: Sequence[str]) -> tuple[np.ndarray, str]:
    """Each council's stratum for the reassignments (councils in :meth:`Panel.matrix` order), and in words.

    Councils are exchanged only with councils alike on the declared ``covariates`` (those the
    doubly-robust estimate adjusts for): a category covariate's levels, a number covariate split at
    its median. Without covariates, one stratum.
    """
    _, _, councils = panel.matrix()
    if not covariates:
        return np.zeros(len(councils), dtype=int), ""
    frame = panel.frame.drop_duplicates("council_code").set_index("council_code").reindex(councils)
    keys, words = [], []
    for name in covariates:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            median = float(column.median())
            keys.append(np.where(column.to_numpy(dtype=float) <= median, f"{name} <= {median:g}", f"{name} > {median:g}"))
            words.append(f"{name} (split at its median, {median:g})")
        else:
            keys.append(column.astype(str).to_numpy())
            words.append(name)
    labels = pd.Series(["|".join(parts) for parts in zip(*keys, strict=True)])
    codes = pd.factorize(labels)[0]
    return codes, f"within {len(np.unique(codes))} strata of {', '.join(words)}"


def _deal(cohort: np.ndarray, strata: np.ndarray, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """``permutations`` reassignments (rows) of ``cohort``, each a random permutation within every stratum."""
    dealt = np.tile(cohort, (permutations, 1))
    for stratum in np.unique(strata):
        idx = np.flatnonzero(strata == stratum)
        if len(idx) > 1:
            dealt[:, idx] = rng.permuted(dealt[:, idx], axis=1)
    return dealt


def randomisation_inference(panel: Panel, comparison: str = "not_yet_treated", anticipation: int = 0,
                            permutations: int = 999, seed: int = 0, covariates: Sequence[str] = (),
                            ) -> Randomisation:
    """Placebo-in-space and placebo-in-time p-values for the overall ATT of ``panel``.

    With ``covariates`` the intervention years are reassigned only among councils of the same stratum
    (:func:`strata_of`), so each reassignment keeps the treated councils' mix of covariates.
    """
    Y, cohort, _ = panel.matrix()
    years = np.asarray(panel.years)
    observed = overall_att(Y, cohort, years, comparison, anticipation)
    rng = np.random.default_rng(seed)
    strata, stratified = strata_of(panel, covariates)
    dealt = _deal(cohort, strata, permutations, rng)
    draws = overall_att_many(Y, dealt, years, comparison, anticipation) if permutations else np.array([])
    draws = draws[np.isfinite(draws)]
    p_space = float((1 + np.sum(np.abs(draws) >= abs(observed) - 1e-12)) / (1 + len(draws)))

    shifts, placebo = placebo_in_time(Y, cohort, years, comparison, anticipation)
    finite = [e for e in placebo if np.isfinite(e)]
    p_time = float((1 + sum(abs(e) >= abs(observed) - 1e-12 for e in finite)) / (1 + len(finite))) if finite \
        else float("nan")
    note = "" if finite else placebo_in_time_note(cohort, years, anticipation)
    return Randomisation(observed, p_space, len(draws), _assignments(cohort, strata), p_time, tuple(shifts),
                         tuple(placebo), stratified, note)
