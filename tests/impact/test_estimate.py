"""The estimators agree with each other and with closed forms; panels are built honestly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impactstudy.errors import DataError
from impactstudy.impact import estimate as E
from impactstudy.impact.panel import build_panel
from impactstudy.impact.randomisation import att_gt, overall_att, randomisation_inference
from impactstudy.demo.panels import OutcomeModel

from impact_panels import MODEL, make_panel, panel  # noqa: F401 (fixture)


@pytest.mark.parametrize("comparison", E.COMPARISONS)
def test_csdid_equals_the_closed_form_and_differences(panel, comparison: str) -> None:
    options = E.DidOptions(comparison=comparison, bootstrap=99)
    fit = E.callaway_santanna(panel, options)
    Y, cohort, _ = panel.matrix()
    closed = att_gt(Y, cohort, np.asarray(panel.years), comparison)
    ours = fit.att_gt.set_index(["cohort", "year"])["estimate"]
    assert len(ours) == len(closed)
    for key, value in closed.items():
        assert ours[key] == pytest.approx(value, abs=1e-10)
    other = E.differences_att_gt(panel, options).set_index(["cohort", "year"])
    joined = other.join(ours.rename("csdid"), how="inner")
    assert len(joined) == len(ours)
    np.testing.assert_allclose(joined["estimate"], joined["csdid"], atol=1e-8)
    # differences' analytic standard errors against csdid's multiplier-bootstrap ones (99 draws)
    np.testing.assert_allclose(joined["std_error"], fit.att_gt.set_index(["cohort", "year"])["std_error"]
                               .reindex(joined.index), rtol=0.35)
    overall = fit.rows.query("aggregation == 'overall'")["estimate"].iloc[0]
    assert overall == pytest.approx(overall_att(Y, cohort, np.asarray(panel.years), comparison), abs=1e-10)


def test_cs_rows_are_tidy_with_bands_wider_than_pointwise(panel) -> None:
    fit = E.callaway_santanna(panel, E.DidOptions(window=(-4, 5), bootstrap=199))
    rows = fit.rows
    assert list(rows.columns) == E.RESULT_COLUMNS
    assert set(rows["aggregation"]) == {"group_time", "event", "cohort", "overall"}
    event = rows[rows["aggregation"] == "event"]
    assert event["event_time"].tolist() == list(range(-4, 6))
    assert (event["band_high"] - event["band_low"] >= event["ci_high"] - event["ci_low"] - 1e-12).all()
    assert rows["n_treated"].max() == panel.n_treated
    overall = rows[rows["aggregation"] == "overall"].iloc[0]
    # truth: cohort-size-weighted average of each cohort's mean post effect (ramp of 3 years)
    assert overall["ci_low"] < overall["estimate"] < overall["ci_high"]
    assert 0 <= fit.pretrend_p <= 1 and fit.pretrend_df == 3  # universal base: -4, -3, -2


def test_bootstrap_is_seeded(panel) -> None:
    a = E.callaway_santanna(panel, E.DidOptions(bootstrap=99, seed=5)).rows
    b = E.callaway_santanna(panel, E.DidOptions(bootstrap=99, seed=5)).rows
    pd.testing.assert_frame_equal(a, b)


def test_robust_estimators_agree_with_cs_and_twfe_is_biased_by_growing_effects() -> None:
    strong = OutcomeModel("rate", "A rate", level=50, council_sd=5, trend=0.3, noise_sd=1, gain=8, dip=0.0,
                          spread=0.0, ramp_years=5, later_cohorts=0.5)
    panel = make_panel(seed=3, n=120, n_treated=60, cohorts=(2013, 2015, 2017), model=strong)
    options = E.DidOptions(comparison="never_treated", window=(-3, 4), bootstrap=99)
    cs = E.callaway_santanna(panel, options).rows
    sa, gardner, twfe = E.sun_abraham(panel, options), E.gardner(panel, options), E.twfe(panel, options)
    cs_post = cs.query("aggregation == 'event' and event_time >= 0").set_index("event_time")["estimate"]
    sa_post = sa.query("aggregation == 'event' and event_time >= 0").set_index("event_time")["estimate"]
    # with never-treated comparisons CS's post event-time effects are Sun-Abraham's, to rounding
    np.testing.assert_allclose(cs_post, sa_post.reindex(cs_post.index), atol=1e-8)
    g_post = gardner.query("aggregation == 'event' and event_time >= 0").set_index("event_time")["estimate"]
    np.testing.assert_allclose(cs_post, g_post.reindex(cs_post.index), atol=0.4)
    cs_overall = cs.query("aggregation == 'overall'")["estimate"].iloc[0]
    assert abs(twfe["estimate"].iloc[0] - cs_overall) > 3 * twfe["std_error"].iloc[0]
    assert set(twfe.columns) == set(E.RESULT_COLUMNS)


def test_randomisation_inference_detects_effects_and_not_their_absence() -> None:
    none = make_panel(seed=4, model=OutcomeModel("rate", "r", 50, 5, 0.3, 2, gain=0.0, dip=0.0))
    big = make_panel(seed=4, model=OutcomeModel("rate", "r", 50, 5, 0.3, 2, gain=10.0, dip=0.0))
    r_none = randomisation_inference(none, permutations=199, seed=1)
    r_big = randomisation_inference(big, permutations=199, seed=1)
    assert r_big.p_space == pytest.approx(1 / 200)
    assert r_none.p_space > 0.05
    assert r_big.placebo_shifts and max(abs(e) for e in r_big.placebo_estimates) < abs(r_big.observed)
    assert r_big.distinct_assignments > 10**6


@pytest.mark.parametrize("anticipation", [0, 1])
def test_gardner_overall_is_did2s_static_estimate_from_the_event_study_fit(anticipation: int) -> None:
    import pyfixest as pf

    panel = make_panel(seed=6, model=OutcomeModel("rate", "r", 50, 5, 0.3, 2, gain=4.0, dip=1.0))
    options = E.DidOptions(anticipation=anticipation, bootstrap=99)
    overall = E.gardner(panel, options).query("aggregation == 'overall'").iloc[0]
    frame = E.gardner_frame(panel, anticipation)
    second = "~ post"
    if anticipation:
        frame["antic"] = frame["treat"] - frame["post"]
        second = "~ post + antic"
    static = E._quiet(pf.did2s, frame, yname="y", first_stage="~ 0 | unit + year", second_stage=second,
                      treatment="treat", cluster="unit").tidy().loc["post"]
    assert overall["estimate"] == pytest.approx(static["Estimate"], abs=1e-10)
    # the static fit's residuals also carry the differences between event times: its SE is a little larger
    assert 0.8 * static["Std. Error"] < overall["std_error"] <= static["Std. Error"] * 1.001


def test_randomisation_respects_the_covariates_strata() -> None:
    from impactstudy.impact.panel import Panel
    from impactstudy.impact.randomisation import _assignments, _deal, strata_of

    base = make_panel(seed=5, n=40, n_treated=12)
    rng = np.random.default_rng(2)
    codes = base.frame["council_code"].unique()
    # treated councils are mostly of one status: reassignments must keep that mix
    cohort = base.cohorts.reindex(codes).to_numpy()
    status = np.where((cohort > 0) ^ (rng.uniform(size=len(codes)) < 0.1), "weak", "strong")
    size = rng.lognormal(size=len(codes))
    frame = base.frame.merge(pd.DataFrame({"council_code": codes, "status": status, "size": size}), on="council_code")
    panel = Panel(base.outcome, frame, base.years)
    strata, words = strata_of(panel, ["status", "size"])
    assert words.startswith("within 4 strata of status, size (split at its median")
    _, ordered, councils = panel.matrix()
    dealt = _deal(ordered, strata, 50, np.random.default_rng(0))
    for stratum in np.unique(strata):
        idx = strata == stratum
        for row in dealt:  # each reassignment deals the stratum's own intervention years among its councils
            assert sorted(row[idx]) == sorted(ordered[idx])
    assert (dealt != ordered).any()
    assert _assignments(ordered, strata) < _assignments(ordered, np.zeros(len(ordered), dtype=int))
    with_cov = randomisation_inference(panel, permutations=99, seed=1, covariates=("status",))
    plain = randomisation_inference(panel, permutations=99, seed=1)
    assert with_cov.strata == "within 2 strata of status" and plain.strata == ""
    assert with_cov.observed == plain.observed and 0 < with_cov.p_space <= 1
    assert strata_of(panel, ())[1] == "" and len(set(strata_of(panel, ())[0])) == 1


def test_build_panel_balances_and_says_what_it_set_aside() -> None:
    councils = [f"C{i}" for i in range(6)]
    years = [2012, 2013, 2014, 2015]
    rows = pd.DataFrame([(c, y, float(i + y)) for i, c in enumerate(councils) for y in years],
                        columns=["council_code", "year", "value"]).assign(outcome="o", missing_reason=None)
    rows.loc[(rows.council_code == "C5") & (rows.year == 2013), ["value", "missing_reason"]] = [np.nan, "c"]
    panel = build_panel(rows, "o", {"C0": 2014, "C1": 2012, "C2": 2020, "C5": 2014})
    assert sorted(panel.frame["council_code"].unique()) == ["C0", "C2", "C3", "C4"]
    assert panel.cohorts.to_dict() == {"C0": 2014, "C2": 0, "C3": 0, "C4": 0}
    assert panel.set_aside == {"incomplete_years": 1, "treated_before_data": 1}
    assert any("c (1)" in n for n in panel.notes) and any("after 2015" in n for n in panel.notes)
    with pytest.raises(DataError, match="no treated council"):
        build_panel(rows, "o", {"C1": 2012})
    with pytest.raises(DataError, match="no values"):
        build_panel(rows, "other", {})


def test_make_panel_truth_is_recovered_on_a_large_panel() -> None:
    panel = make_panel(seed=7, n=400, n_treated=200, cohorts=(2014,))
    fit = E.callaway_santanna(panel, E.DidOptions(bootstrap=99))
    cohort = fit.att_gt.query("cohort == 2014 and year >= 2014").set_index("year")["estimate"]
    truth = {t: MODEL.gain * min(t - 2014 + 1, 3) / 3 for t in cohort.index}
    assert max(abs(cohort[t] - truth[t]) for t in truth) < 1.0


def test_pyfixest_estimators_take_string_council_codes(panel) -> None:
    """The stage's council codes are pandas strings (Arrow-backed); pyfixest's clustering needs NumPy."""
    from impactstudy.impact.panel import Panel

    strings = Panel(panel.outcome, panel.frame.astype({"council_code": "string"}), panel.years)
    options = E.DidOptions(bootstrap=49)
    for estimator in (E.gardner, E.sun_abraham, E.twfe):
        a, b = estimator(strings, options), estimator(panel, options)
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-10)
