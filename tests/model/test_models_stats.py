"""The non-LMM models (GEE, ordinal, paired t, Wilcoxon, McNemar) against R, plus their failure modes.

Reference values come from tests/reference/models_reference.R (geepack, ordinal + sandwich, stats),
stored as JSON fixtures so these tests run without R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.genmod.cov_struct import Exchangeable
from statsmodels.genmod.families import Gaussian
from statsmodels.genmod.generalized_estimating_equations import GEE

from impactstudy.model.stats import tidy
from impactstudy.model.stats.gee import BIAS_REDUCED, ROBUST, _Exchangeable, _LinearGEE, _start_params, fit_gee
from impactstudy.model.stats.ordinal import LogitOrderedModel, fit_ordinal
from impactstudy.model.stats.paired import council_means, hodges_lehmann, paired_t, wilcoxon_signed_rank
from impactstudy.model.stats.proportions import (
    EXACT_CORRECTION,
    exact_mcnemar_interval,
    expectations_vs_outcomes,
    mcnemar_paired,
    newcombe_paired_interval,
    wilson_interval,
)
from impactstudy.model.stats.wave_design import design_matrix

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REF = json.loads((FIXTURES / "models_reference.json").read_text())
PERMUTATION = json.loads((FIXTURES / "permutation_reference.json").read_text())
WAVES = REF["waves"]
CONTRASTS = tidy.default_contrasts(WAVES)
INTERACTION = "statusNotice to Improve"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "models_data.csv", dtype={"council_code": str, "respondent_id": str})


def _row(frame: pd.DataFrame, contrast: str, group: str = "all") -> pd.Series:
    hit = frame[(frame["contrast"] == contrast) & (frame["group"] == group)]
    assert len(hit) == 1
    return hit.iloc[0]


def _r_contrast(coef: dict, vcov: list | None, names: list[str], weights: dict[str, float]) -> tuple[float, float]:
    """L beta and sqrt(L V L') from R's named coefficients."""
    lvec = np.array([weights.get(n, 0.0) for n in names])
    beta = np.array([coef[n] for n in names])
    se = float(np.sqrt(lvec @ np.array(vcov) @ lvec)) if vcov is not None else float("nan")
    return float(lvec @ beta), se


# R coefficient weights of each contrast, overall and within 'Notice to Improve'.
R_WEIGHTS = {
    "early_impact - baseline": {"waveearly_impact": 1.0},
    "follow_up - baseline": {"wavefollow_up": 1.0},
    "follow_up - early_impact": {"wavefollow_up": 1.0, "waveearly_impact": -1.0},
}


def _within_notice(weights: dict[str, float]) -> dict[str, float]:
    return {**weights, **{f"{k}:{INTERACTION}": v for k, v in weights.items()}}


# ---- contract ------------------------------------------------------------------------------------

def test_default_contrasts_every_wave_vs_first_then_each_vs_previous() -> None:
    assert tidy.default_contrasts(["a", "b", "c", "d"]) == [
        ("b", "a"), ("c", "a"), ("d", "a"), ("c", "b"), ("d", "c")]
    assert tidy.default_contrasts(["a", "b"]) == [("b", "a")]


@pytest.mark.parametrize("fn", [fit_gee, fit_ordinal, paired_t, wilcoxon_signed_rank])
def test_every_model_returns_the_tidy_columns(panel: pd.DataFrame, fn) -> None:
    out = fn(panel, WAVES, CONTRASTS, group="status")
    assert tuple(out.columns) == tidy.COLUMNS
    assert len(out) == 2 * len(CONTRASTS)
    assert set(out["group"]) == {"status=Intervention", "status=Notice to Improve"}
    assert out["estimate"].notna().all() and (out["warning"] == "").all()
    assert (out["ci_low"] < out["ci_high"]).all()
    # the exact conditional Wilcoxon interval is closed at Walsh averages, where a tied estimate can sit
    assert (out["ci_low"] <= out["estimate"]).all() and (out["estimate"] <= out["ci_high"]).all()


# ---- GEE vs geepack --------------------------------------------------------------------------------

def test_gee_matches_geepack_estimates_and_sandwich_se(panel: pd.DataFrame) -> None:
    ref = REF["gee_all"]
    out = fit_gee(panel, WAVES, CONTRASTS, few_councils=10)  # 29 councils: plain sandwich
    for contrast, weights in R_WEIGHTS.items():
        est, se = _r_contrast(ref["coef"], ref["vcov"], ref["names"], weights)
        row = _row(out, contrast)
        assert row["estimate"] == pytest.approx(est, rel=1e-4)
        assert row["std_error"] == pytest.approx(se, rel=1e-4)
        assert row["correction"] == ROBUST and np.isnan(row["df"])


def test_gee_group_contrasts_match_geepack_interaction_model(panel: pd.DataFrame) -> None:
    ref = REF["gee_status"]
    out = fit_gee(panel, WAVES, CONTRASTS, group="status", few_councils=10)
    for contrast, weights in R_WEIGHTS.items():
        for group, w in (("status=Intervention", weights), ("status=Notice to Improve", _within_notice(weights))):
            est, se = _r_contrast(ref["coef"], ref["vcov"], ref["names"], w)
            row = _row(out, contrast, group)
            assert row["estimate"] == pytest.approx(est, rel=1e-4)
            assert row["std_error"] == pytest.approx(se, rel=1e-4)


def test_gee_uses_bias_reduced_errors_and_t_reference_below_the_threshold(panel: pd.DataFrame) -> None:
    robust = fit_gee(panel, WAVES, CONTRASTS, few_councils=10)
    reduced = fit_gee(panel, WAVES, CONTRASTS, few_councils=40)
    assert (reduced["correction"] == BIAS_REDUCED).all()
    assert (reduced["df"] == 29 - 3).all()  # K councils - p mean parameters
    np.testing.assert_allclose(reduced["estimate"], robust["estimate"])
    assert (reduced["std_error"] > robust["std_error"]).all()  # Mancl-DeRouen inflates the sandwich


# (statsmodels' bias-reduced covariance fails with weights, shortcuts or not)
@pytest.mark.parametrize(("weighted", "cov_type"), [(False, "robust"), (False, "bias_reduced"), (True, "robust")])
def test_gee_shortcuts_are_bit_for_bit_statsmodels(panel: pd.DataFrame, weighted: bool, cov_type: str) -> None:
    """``_LinearGEE`` and ``_Exchangeable`` only skip work: the same estimates and covariances as plain
    statsmodels ``GEE`` with ``Exchangeable``, to the last bit (weighted too, as the IPW fits are)."""
    d = tidy.prepare(panel, WAVES, "status")
    design = design_matrix(d, WAVES, "status")
    y = d["value"].to_numpy()
    w = np.random.default_rng(1).uniform(0.5, 3.0, len(d)) if weighted else None
    fits = [model(y, design.X, groups=d["council_code"].cat.codes.to_numpy(), family=Gaussian(), cov_struct=cov(),
                  weights=w).fit(start_params=_start_params(design, y, w), cov_type=cov_type, ddof_scale=0)
            for model, cov in ((GEE, Exchangeable), (_LinearGEE, _Exchangeable))]
    np.testing.assert_array_equal(fits[0].params, fits[1].params)
    np.testing.assert_array_equal(fits[0].cov_params(), fits[1].cov_params())
    assert fits[0].cov_struct.dep_params == fits[1].cov_struct.dep_params


def test_models_give_the_same_rows_from_a_shared_sample(panel: pd.DataFrame) -> None:
    """A :class:`tidy.Sample` shared by a measure's models changes no number, and its design is built once."""
    for group in (None, "status"):
        shared = tidy.sample(panel, WAVES, group)
        for fit in (fit_gee, fit_ordinal, paired_t, wilcoxon_signed_rank):
            pd.testing.assert_frame_equal(fit(shared, WAVES, CONTRASTS, group=group),
                                          fit(panel, WAVES, CONTRASTS, group=group))
        assert shared.design() is shared.design()
    assert tidy.sample(shared, WAVES, "status") is shared
    assert tidy.sample(shared, WAVES, None) is not shared  # another grouping: prepared from the raw input


# ---- ordinal: the likelihood's derivatives (R comparisons in test_ordinal.py) ---------------------------

def test_ordinal_analytic_derivatives_equal_statsmodels_numerical_ones() -> None:
    """The score and Hessian LogitOrderedModel supplies are those of statsmodels' own likelihood."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    from statsmodels.tools.numdiff import approx_fprime

    rng = np.random.default_rng(7)
    X = np.column_stack([rng.integers(0, 2, 400), rng.normal(size=400)])
    y = np.clip(np.round(X @ [0.5, 0.8] + rng.logistic(size=400)), -1, 2).astype(int) + 1
    ours, theirs = LogitOrderedModel(y, X), OrderedModel(y, X, distr="logit")
    for params in (ours.start_params, np.array([0.3, -0.2, -0.5, 0.1, 0.4])):
        assert ours.loglike(params) == pytest.approx(theirs.loglike(params), rel=1e-12)
        np.testing.assert_allclose(ours.score_obs(params), approx_fprime(params, theirs.loglikeobs, centered=True),
                                   atol=1e-7)
        np.testing.assert_allclose(ours.hessian(params), approx_fprime(params, ours.score, centered=True),
                                   rtol=1e-6, atol=1e-6)


# ---- paired tests vs t.test / wilcox.test -------------------------------------------------------------

@pytest.mark.parametrize("case", REF["paired"], ids=lambda c: f"{c['later']}-{c['earlier']}-n{len(c['councils'])}")
def test_paired_t_and_wilcoxon_match_r(panel: pd.DataFrame, case: dict) -> None:
    sub = panel[panel["council_code"].isin(case["councils"])]
    contrast = [(case["later"], case["earlier"])]
    t = paired_t(sub, WAVES, contrast).iloc[0]
    assert t["n_councils"] == len(case["councils"])
    for got, want in [(t["estimate"], case["t"]["estimate"]), (t["std_error"], case["t"]["se"]),
                      (t["ci_low"], case["t"]["ci"][0]), (t["ci_high"], case["t"]["ci"][1]),
                      (t["p_value"], case["t"]["p"]), (t["df"], case["t"]["df"])]:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-12)
    w = wilcoxon_signed_rank(sub, WAVES, contrast).iloc[0]
    ref = case["wilcoxon"]
    if "exact" in ref["method"]:  # no ties or zeros: R's wilcox.test, exact branch, to 1e-6
        assert w["correction"] == "exact"
        assert w["p_value"] == pytest.approx(ref["p"], rel=1e-6)
        for got, want in [(w["estimate"], ref["estimate"]), (w["ci_low"], ref["ci"][0]), (w["ci_high"], ref["ci"][1])]:
            assert got == pytest.approx(want, abs=1e-6)
        return
    # ties: the exact conditional distribution, against coin (tests/reference/permutation_reference.R)
    conditional = {(r["contrast"], r["group"]): r for r in PERMUTATION["models_data"]}
    ref = conditional[(f"{case['later']} - {case['earlier']}", "all")]
    assert w["correction"].startswith("exact conditional")
    assert w["p_value"] == pytest.approx(ref["p"], rel=1e-9)
    assert (w["estimate"], w["ci_low"], w["ci_high"]) == pytest.approx((ref["estimate"], *ref["ci"]), rel=1e-9)


@pytest.mark.parametrize("case", [c for c in REF["wilcoxon_vectors"] if c["exact"] or len(c["x"]) >= 50],
                         ids=lambda c: f"n{len(c['x'])}")
def test_hodges_lehmann_matches_wilcox_test(case: dict) -> None:
    """R's exact branch and its normal approximation (n >= 50); ties below 50 are the exact conditional
    test of tests/model/test_permutation.py."""
    hl = hodges_lehmann(np.array(case["x"]))
    tol = 1e-6 if case["exact"] else 1.5e-4
    assert (hl.method == "exact") == case["exact"]
    assert hl.p_value == pytest.approx(case["p"], rel=1e-6)
    assert hl.estimate == pytest.approx(case["estimate"], abs=tol)
    assert hl.ci_low == pytest.approx(case["ci"][0], abs=tol)
    assert hl.ci_high == pytest.approx(case["ci"][1], abs=tol)
    assert ("not achievable" in hl.warning) == (case["conf_level"] < 0.95)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-40, 40).filter(bool), min_size=5, max_size=25, unique_by=abs))
def test_exact_hodges_lehmann_is_the_walsh_median_inside_its_interval(values: list[int]) -> None:
    x = np.array(values) / 4.0
    hl = hodges_lehmann(x)
    i, j = np.triu_indices(len(x))
    assert hl.method == "exact"
    assert hl.estimate == pytest.approx(np.median((x[i] + x[j]) / 2))
    assert hl.ci_low <= hl.estimate <= hl.ci_high
    flipped = hodges_lehmann(-x)  # the shift, its CI and p are equivariant under a sign flip
    assert (flipped.estimate, flipped.ci_low, flipped.ci_high) == pytest.approx((-hl.estimate, -hl.ci_high, -hl.ci_low))
    assert flipped.p_value == pytest.approx(hl.p_value)


def test_council_means_average_respondents_within_council_and_wave() -> None:
    data = pd.DataFrame({"council_code": ["A", "A", "A", "B"], "respondent_id": ["1", "2", "1", "1"],
                         "wave": ["w1", "w1", "w2", "w1"], "value": [2.0, 4.0, 5.0, np.nan]})
    means = council_means(data, ["w1", "w2"])
    assert means.to_dict("records") == [{"council_code": "A", "wave": "w1", "mean": 3.0, "n": 2},
                                        {"council_code": "A", "wave": "w2", "mean": 5.0, "n": 1}]


# ---- McNemar, Newcombe, Wilson ------------------------------------------------------------------------

def test_mcnemar_on_respondent_pairs_matches_r(panel: pd.DataFrame) -> None:
    ref = REF["mcnemar"]
    binary = panel.drop(columns="value").rename(columns={"binary": "value"})
    row = _row(mcnemar_paired(binary, WAVES, CONTRASTS), "follow_up - baseline")
    assert row["n_obs"] == ref["n_pairs"]
    assert row["p_value"] == pytest.approx(ref["p_exact"], rel=1e-6)
    assert row["estimate"] == pytest.approx(ref["diff"], rel=1e-6)
    # the interval inverts the exact test (Clopper-Pearson on the discordant pairs, checked against
    # binom.test in test_expectations.py), so it excludes 0 exactly when p < 0.05
    (n11, n10), (n01, n00) = REF["newcombe"][0]["table"]
    expected = exact_mcnemar_interval(n01, n10, n11 + n10 + n01 + n00)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected, rel=1e-12)
    assert row["correction"] == EXACT_CORRECTION
    assert (row["ci_low"] > 0 or row["ci_high"] < 0) == (row["p_value"] < 0.05)


@pytest.mark.parametrize("case", REF["newcombe"], ids=lambda c: str(c["table"]))
def test_newcombe_paired_interval_matches_the_published_formula_in_r(case: dict) -> None:
    assert newcombe_paired_interval(np.array(case["table"])) == pytest.approx(case["ci"], rel=1e-6)


def test_expectations_met_share_has_the_wilson_interval_of_prop_test(panel: pd.DataFrame) -> None:
    ref = REF["expectation"]
    wide = panel.pivot_table(index=["council_code", "respondent_id"], columns="wave", values="binary").reset_index()
    pairs = wide.rename(columns={"baseline": "expected", "follow_up": "achieved"})
    out = expectations_vs_outcomes(pairs)
    met = out[out["model"] == "expectation_met"].iloc[0]
    assert met["contrast"] == "follow_up | baseline"
    assert met["n_obs"] == ref["n_expected"]
    assert met["estimate"] == pytest.approx(ref["share"])
    assert (met["ci_low"], met["ci_high"]) == pytest.approx(ref["ci"], rel=1e-6)
    mc = out[out["model"] == "mcnemar"].iloc[0]
    assert mc["p_value"] == pytest.approx(REF["mcnemar"]["p_exact"], rel=1e-6)
    assert wilson_interval(0, 5)[0] == 0.0


# ---- data that defeat a model: NaN rows with a reason, never an exception -------------------------------

def _tiny(values: dict[str, list[float]], councils: int = 8) -> pd.DataFrame:
    rows = []
    for c in range(councils):
        for wave, vals in values.items():
            rows.append({"council_code": f"E{c:08d}", "respondent_id": f"r{c}", "wave": wave,
                         "value": vals[c % len(vals)], "status": "a" if c % 2 else "b"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("fn", "data", "reason"),
    [
        (fit_gee, _tiny({"w1": [np.nan], "w2": [np.nan]}), "no observed values"),
        (fit_gee, _tiny({"w1": [3.0], "w2": [3.0]}), "same"),
        (fit_gee, _tiny({"w1": [1.0, 2.0], "w2": [3.0, 4.0]}, councils=1), "at least 2 councils"),
        (fit_ordinal, _tiny({"w1": [3.0], "w2": [3.0]}), "only 1 response category"),
        (fit_ordinal, _tiny({"w1": [1.0, 2.0], "w2": [2.0, 3.0]}), "separation"),
        (paired_t, _tiny({"w1": [1.0, 2.0], "w2": [2.0, 3.0]}, councils=1), "not estimable with 1 council observed at both waves"),
        (wilcoxon_signed_rank, _tiny({"w1": [1.0, 2.0], "w2": [1.0, 2.0]}), "every difference is zero"),
        (mcnemar_paired, _tiny({"w1": [0.0, 1.0], "w2": [2.0, 1.0]}), "other than 0/1"),
    ],
)
def test_unfittable_data_give_nan_rows_with_the_reason(fn, data: pd.DataFrame, reason: str, recwarn) -> None:
    out = fn(data, ["w1", "w2"], [("w2", "w1")])
    assert tuple(out.columns) == tidy.COLUMNS and len(out) == 1
    assert np.isnan(out["estimate"].iloc[0])
    assert reason in out["warning"].iloc[0]
    assert len(recwarn) == 0  # statsmodels' warnings (non-convergence, ...) end up in the row, not on stderr


def test_missing_wave_and_empty_cell_are_reported_per_contrast(panel: pd.DataFrame) -> None:
    data = panel[~((panel["status"] == "Notice to Improve") & (panel["wave"] == "early_impact"))]
    for fn in (fit_gee, fit_ordinal):
        out = fn(data, WAVES, CONTRASTS, group="status")
        empty = out[(out["group"] == "status=Notice to Improve") & out["contrast"].str.contains("early_impact")]
        assert empty["estimate"].isna().all() and empty["warning"].str.contains("no observations").all()
        assert out.drop(empty.index)["estimate"].notna().all()


def test_empty_reference_cell_leaves_the_level_s_other_contrasts_estimable(panel: pd.DataFrame) -> None:
    """No baseline answers within one level: only that level's contrasts against baseline are NaN."""
    data = panel[~((panel["status"] == "Notice to Improve") & (panel["wave"] == "baseline"))]
    for fn in (fit_gee, fit_ordinal):
        out = fn(data, WAVES, CONTRASTS, group="status")
        empty = out[(out["group"] == "status=Notice to Improve") & out["contrast"].str.endswith("baseline")]
        assert len(empty) == 2 and empty["warning"].str.contains("no observations at wave baseline").all()
        assert empty["estimate"].isna().all() and out.drop(empty.index)["estimate"].notna().all()
        assert (out.drop(empty.index)["warning"] == "").all()


def test_mcnemar_without_recurring_respondents_says_so() -> None:
    data = pd.DataFrame({"council_code": ["A", "A", "B", "B"], "respondent_id": ["1", "2", "3", "4"],
                         "wave": ["w1", "w2", "w1", "w2"], "value": [0.0, 1.0, 1.0, 1.0]})
    out = mcnemar_paired(data, ["w1", "w2"], [("w2", "w1")])
    assert out["n_obs"].iloc[0] == 0 and "no respondent answered at both waves" in out["warning"].iloc[0]


_cells = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 1), st.sampled_from(["w1", "w2", "w3"]),
              st.sampled_from([np.nan, 0.0, 1.0])),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_cells, st.booleans())
def test_sparse_random_panels_never_raise(cells: list[tuple], by_group: bool) -> None:
    data = pd.DataFrame(
        [{"council_code": f"C{c}", "respondent_id": f"C{c}-{r}", "wave": w, "value": v,
          "status": "odd" if c % 2 else "even"} for c, r, w, v in cells],
        columns=["council_code", "respondent_id", "wave", "value", "status"],
    )
    group = "status" if by_group else None
    contrasts = tidy.default_contrasts(["w1", "w2", "w3"])
    for fn in (fit_gee, paired_t, wilcoxon_signed_rank, mcnemar_paired):
        out = fn(data, ["w1", "w2", "w3"], contrasts, group=group)
        assert tuple(out.columns) == tidy.COLUMNS
        assert len(out) == len(contrasts) * len(tidy.levels(data, group))
        assert (out["estimate"].notna() | (out["warning"] != "")).all()  # a missing number always says why


@pytest.mark.parametrize("categorical", [True, False], ids=["panel categorical", "text"])
def test_prepare_keeps_the_asked_waves_in_order_without_a_pandas_warning(categorical: bool) -> None:
    """The panel's wave column is a categorical of every wave; a model of two of them must not rebuild a
    Categorical from it (pandas deprecates that when its categories hold other waves: Pandas4Warning)."""
    import warnings

    waves = ["w1", "w2", "w3", "w1"]
    data = pd.DataFrame({"council_code": ["a", "b", "c", "d"], "value": [1.0, 2.0, 3.0, 4.0],
                         "wave": pd.Categorical(waves) if categorical else waves})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tidy.prepare(data, ["w2", "w1"])
    assert out["wave"].tolist() == ["w1", "w2", "w1"] and out["value"].tolist() == [1.0, 2.0, 4.0]
    assert list(out["wave"].cat.categories) == ["w2", "w1"] and out["wave"].cat.ordered
