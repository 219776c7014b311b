"""Triangulation: each treated council's own difference-in-differences beside its survey change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from impact_panels import make_panel
from scipy import stats

from impactstudy.impact.randomisation import overall_att
from impactstudy.impact.triangulation import council_effects, survey_change, triangulate


@pytest.mark.parametrize(("comparison", "anticipation"), [("not_yet_treated", 0), ("not_yet_treated", 1),
                                                          ("never_treated", 1)])
def test_council_effects_average_to_the_overall_att(comparison: str, anticipation: int) -> None:
    panel = make_panel(seed=3)
    effects = council_effects(panel, comparison, anticipation)
    Y, cohort, _ = panel.matrix()
    assert len(effects) == (cohort > 0).sum() and set(effects["cohort"]) == set(cohort[cohort > 0])
    # councils weighted equally: each cohort's mean is its effect, cohorts weighted by size (aggte "group")
    assert effects["estimate"].mean() == pytest.approx(
        overall_att(Y, cohort, np.asarray(panel.years), comparison, anticipation), abs=1e-10)
    assert (effects["n_years"] == [len([t for t in panel.years if t >= g]) for g in effects["cohort"]]).all()


def test_one_councils_effect_by_hand() -> None:
    years = (2010, 2011, 2012, 2013)
    frame = pd.DataFrame({"council_code": np.repeat(["A", "B", "C"], 4), "year": list(years) * 3,
                          "y": [1, 2, 5, 7, 1, 1, 2, 2, 0, 2, 2, 6], "cohort": np.repeat([2012, 0, 2013], 4)})
    from impactstudy.impact.panel import Panel

    effects = council_effects(Panel("y", frame, years)).set_index("council_code")
    # A (2012, base 2011): 2012: (5-2) - mean(B 1, C 0) = 2.5; 2013: (7-2) - B's 1 (C treated) = 4
    assert effects.loc["A", "estimate"] == pytest.approx((2.5 + 4) / 2)
    # C (2013, base 2012): (6-2) - B's (2-2) = 4; A is already treated, never a comparison
    assert effects.loc["C", "estimate"] == pytest.approx(4.0)
    assert "B" not in effects.index


def test_a_councils_interval_is_its_estimate_less_the_placebo_councils_noise() -> None:
    """By hand: one treated council, never-treated placebo councils, two treated years."""
    from impactstudy.impact.panel import Panel

    rng = np.random.default_rng(5)
    years = (2010, 2011, 2012, 2013)
    Y = rng.normal(0, 1, (80, 4)) + np.arange(4)

    def by_hand(n: int) -> tuple[pd.Series, float, np.ndarray]:
        cohort = np.r_[2012, np.zeros(n - 1, dtype=int)]
        frame = pd.DataFrame({"council_code": np.repeat([f"C{i:02d}" for i in range(n)], 4),
                              "year": list(years) * n, "y": Y[:n].reshape(-1), "cohort": np.repeat(cohort, 4)})
        change = Y[:n, 2:] - Y[:n, [1]]  # 2012 and 2013 against the base year 2011
        estimate = np.mean(change[0] - change[1:].mean(axis=0))
        # each placebo council against the other comparison councils, averaged over the same two years
        placebo = [np.mean(change[j] - np.delete(change[1:], j - 1, axis=0).mean(axis=0)) for j in range(1, n)]
        return council_effects(Panel("y", frame, years)).iloc[0], estimate, np.sort(placebo)

    row, estimate, placebo = by_hand(80)
    assert row["estimate"] == pytest.approx(estimate) and row["n_placebo"] == 79
    # k = floor(80 * 0.025) = 2: the second largest and second smallest placebo effects
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((estimate - placebo[-2], estimate - placebo[1]))
    row, estimate, placebo = by_hand(40)  # 39 placebo councils: k = 1, the extremes
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((estimate - placebo[-1], estimate - placebo[0]))
    row, _, _ = by_hand(39)  # 38: k = 0, no order statistic leaves 2.5% outside: no interval
    assert row["n_placebo"] == 38 and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])


def test_a_councils_interval_covers_its_own_effect_when_its_noise_is_like_the_comparison_councils() -> None:
    """Council and year effects, independent noise of one size, each treated council its own effect:
    over 300 panels the 95% intervals cover at least 95%: with 54 placebo councils k = 1 (the extremes),
    whose coverage is 1 - 2/55 = 96.4% (binomial SE 0.4 points over 1,800 intervals)."""
    from impactstudy.impact.panel import Panel

    rng = np.random.default_rng(11)
    years = tuple(range(2010, 2018))
    n, treated = 60, 6
    covered = []
    for _ in range(300):
        cohort = np.r_[np.repeat([2013, 2015], treated // 2), np.zeros(n - treated, dtype=int)]
        effect = np.r_[rng.normal(2, 1, treated), np.zeros(n - treated)]  # heterogeneous, constant over years
        post = (cohort[:, None] > 0) & (np.asarray(years)[None, :] >= cohort[:, None])
        Y = rng.normal(0, 3, (n, 1)) + np.linspace(0, 2, len(years)) + rng.normal(0, 1, (n, len(years))) + post * effect[:, None]
        frame = pd.DataFrame({"council_code": np.repeat([f"C{i:02d}" for i in range(n)], len(years)),
                              "year": list(years) * n, "y": Y.reshape(-1), "cohort": np.repeat(cohort, len(years))})
        rows = council_effects(Panel("y", frame, years)).sort_values("council_code")
        truth = effect[:treated]
        covered += list((rows["ci_low"].to_numpy() <= truth) & (truth <= rows["ci_high"].to_numpy()))
    assert np.mean(covered) == pytest.approx(1 - 2 / 55, abs=0.012)


def test_survey_change_is_the_later_council_mean_minus_the_earlier() -> None:
    long = pd.DataFrame({
        "council_code": ["A", "A", "A", "B", "B", "C"], "wave": ["w1", "w2", "w2", "w1", "w2", "w1"],
        "measure": "m", "value": [2.0, 3.0, 5.0, 4.0, np.nan, 1.0]})
    change = survey_change(long, "m", ("w1", "w2")).set_index("council_code")["change"]
    assert change.to_dict() == {"A": 2.0}  # B has no answer at w2, C none at w2
    level = survey_change(long, "m", ("w1",)).set_index("council_code")["change"]
    assert level.to_dict() == {"A": 2.0, "B": 4.0, "C": 1.0}
    assert survey_change(long, "m", ("w1", "w3")).empty


def test_triangulate_signs_improvement_and_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    effects = pd.DataFrame({"council_code": [f"c{i}" for i in range(40)], "estimate": -(0.8 * x + rng.normal(size=40))})
    survey = pd.DataFrame({"council_code": [f"c{i}" for i in range(45)], "change": np.r_[x, np.zeros(5)]})
    out = triangulate(effects, survey, better="lower")
    assert out["n_councils"] == 40
    y = -effects["estimate"].to_numpy()
    r = stats.pearsonr(x, y)
    assert out["correlation"] == pytest.approx(r.statistic) and out["correlation"] > 0.4
    assert (out["correlation_ci_low"], out["correlation_ci_high"]) == pytest.approx(tuple(r.confidence_interval()))
    assert out["slope"] == pytest.approx(stats.linregress(x, y).slope)
    assert out["slope_ci_low"] < 0.8 < out["slope_ci_high"]
    assert out["admin_improvement"] == pytest.approx(y.mean()) and out["warning"] == ""
    assert triangulate(effects, survey, better="higher")["correlation"] == pytest.approx(-r.statistic)
    few = triangulate(effects.head(4), survey, "lower")
    assert np.isnan(few["correlation"]) and "only 4 council(s)" in few["warning"]
    assert "very wide" in triangulate(effects.head(8), survey, "lower")["warning"]
