"""Placebo in time: interventions moved earlier, from each council's pre-treatment years only."""

from __future__ import annotations

import numpy as np
import pytest
from impact_panels import make_panel

from impactstudy.demo.panels import OutcomeModel
from impactstudy.impact.randomisation import att_gt, placebo_in_time, placebo_in_time_note, randomisation_inference

YEARS = np.arange(2010, 2022)
FLAT = OutcomeModel("rate", "r", 50, 5, 0.3, 1.5, gain=6.0, dip=0.0)


def _matrix(seed: int = 7, cohorts=(2014, 2015, 2016), model: OutcomeModel = FLAT):
    panel = make_panel(seed=seed, n=80, n_treated=24, cohorts=cohorts, model=model)
    Y, cohort, _ = panel.matrix()
    return panel, Y, cohort


@pytest.mark.parametrize("comparison, anticipation", [("not_yet_treated", 0), ("not_yet_treated", 1),
                                                      ("never_treated", 1)])
def test_each_placebo_is_the_cohort_weighted_att_of_the_moved_dates(comparison: str, anticipation: int) -> None:
    """Every placebo effect is the overall ATT of the moved dates over each cohort's pre-treatment years,
    from the closed-form ATT(g, t) (itself checked against csdid and R)."""
    _, Y, cohort = _matrix()
    shifts, estimates = placebo_in_time(Y, cohort, YEARS, comparison, anticipation)
    assert shifts and shifts[0] == 1 + anticipation
    for k, estimate in zip(shifts, estimates, strict=True):
        fake = np.where(cohort > 0, cohort - k, 0)
        cells = att_gt(Y, fake, YEARS, comparison, anticipation)
        total = weight = 0
        for g in np.unique(cohort[cohort > 0]):
            mine = [cells[(g - k, t)] for t in range(g - k, g - anticipation) if (g - k, t) in cells]
            if mine and g - k - 1 - anticipation >= YEARS[0]:
                total += (cohort == g).sum() * np.mean(mine)
                weight += (cohort == g).sum()
        assert estimate == pytest.approx(total / weight, abs=1e-10), k


@pytest.mark.parametrize("anticipation", [0, 1, 2])
def test_no_year_from_a_real_treatment_on_enters(anticipation: int) -> None:
    """Overwriting every council-year from its real treatment (and anticipation window) on changes nothing."""
    _, Y, cohort = _matrix()
    before = placebo_in_time(Y, cohort, YEARS, "not_yet_treated", anticipation)
    spoiled = Y.copy()
    for i, g in enumerate(cohort):
        if g:
            spoiled[i, YEARS >= g - anticipation] = 1e6 * (i + 1)
    after = placebo_in_time(spoiled, cohort, YEARS, "not_yet_treated", anticipation)
    assert after[0] == before[0]
    np.testing.assert_allclose(after[1], before[1], atol=1e-8)


def test_placebo_effects_are_small_under_parallel_trends_and_large_under_a_pre_trend() -> None:
    panel, Y, cohort = _matrix()
    _, parallel = placebo_in_time(Y, cohort, YEARS, "never_treated")
    trend = Y + np.where(cohort > 0, 2.0, 0.0)[:, None] * (YEARS - YEARS[0])[None, :]  # treated drift 2 a year
    _, drifting = placebo_in_time(trend, cohort, YEARS, "never_treated")
    assert max(abs(e) for e in parallel) < 1.2
    assert min(drifting) > 1.5  # at least one year of drift in every placebo effect
    ri = randomisation_inference(panel, permutations=99, seed=1)
    assert len(ri.placebo_shifts) >= 4 and ri.time_note == ""
    # a real effect of 6 is larger than every placebo: p is the smallest the shifts allow
    assert ri.p_time == pytest.approx(1 / (1 + len(ri.placebo_shifts)))


def test_which_shifts_the_years_allow_and_why_none() -> None:
    _, Y, _ = _matrix()
    two_cohorts = np.where(np.arange(len(Y)) < 10, 2013, np.where(np.arange(len(Y)) < 20, 2014, 0))
    # anticipation 1: only the 2014 cohort has 4 years before it (2010 base, 2012 placebo, 2013 anticipation)
    assert placebo_in_time(Y, two_cohorts, YEARS, anticipation=1)[0] == [2]
    assert placebo_in_time(Y, two_cohorts, YEARS, anticipation=0)[0] == [1, 2, 3]
    early = np.where(np.arange(len(Y)) < 10, 2012, 0)
    assert placebo_in_time(Y, early, YEARS, anticipation=1) == ([], [])
    note = placebo_in_time_note(early, YEARS, 1)
    assert note == ("placebo dates in time need 4 years of outcomes before a cohort's first treated year (a base "
                    "year, then a placebo year before the 1-year anticipation window); the outcome starts in 2010 "
                    "and the latest cohort's first treated year is 2012, 2 year(s) later")


def test_p_time_is_missing_not_one_when_no_placebo_can_be_run() -> None:
    panel = make_panel(seed=8, n=60, n_treated=12, cohorts=(2011,), model=FLAT)
    ri = randomisation_inference(panel, anticipation=1, permutations=49, seed=1)
    assert ri.placebo_shifts == () and np.isnan(ri.p_time)
    assert ri.time_note.startswith("placebo dates in time need 4 years")
