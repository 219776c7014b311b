"""Tests of impactstudy.model.stats.lmm (REML random-intercept models) and stats.wave_design.

Reference values come from R (lme4 1.1-31, lmerTest 3.1-3) via tests/reference/lmm_reference.R and
the committed fixtures tests/reference/fixtures/lmm_*.{csv,json}; R is not needed to run these tests.
Tolerances against R (relative): fixed effects and SEs 1e-4, variance components 1e-3 (absolute 1e-10
for a component R puts on the boundary), Satterthwaite df and p 1e-3, REML criterion 1e-6.
Observed agreement is ~1e-7 or better for every quantity. The dense-matrix property tests of the
closed-form criterion (with and without each random term) are in test_lmm_council_wave.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.errors import DataError
from impactstudy.model.stats.lmm import LmmFit, fit_lmm, fit_summary
from impactstudy.model.stats.wave_design import design_matrix

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
WAVES = ["w1", "w2", "w3"]
TOL = {"beta": 1e-4, "se": 1e-4, "var": 1e-3, "df": 1e-3, "p": 1e-3, "reml": 1e-6}


def _load(name: str) -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(FIXTURES / f"lmm_{name}.csv"), json.loads((FIXTURES / f"lmm_{name}.json").read_text())


def _fit_panel(df: pd.DataFrame, group: str | None = None, nested: bool = True) -> tuple[LmmFit, object]:
    design = design_matrix(df, WAVES, group)
    resp = df["respondent_id"].to_numpy() if nested else None
    return fit_lmm(df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(), resp), design


def _assert_matches_r(fit: LmmFit, ref: dict, council: str, respondent: str | None) -> None:
    assert len(fit.terms) == len(ref["terms"])
    np.testing.assert_allclose(fit.beta, ref["beta"], rtol=TOL["beta"])
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), ref["se"], rtol=TOL["se"])
    np.testing.assert_allclose(fit.vcov, np.array(ref["vcov"]), rtol=TOL["se"], atol=1e-12)
    np.testing.assert_allclose(fit.var_council, ref["varcomp"][council], rtol=TOL["var"], atol=1e-10)
    np.testing.assert_allclose(fit.var_residual, ref["varcomp"]["Residual"], rtol=TOL["var"])
    if respondent is None:
        assert fit.var_respondent is None and fit.sd_respondent is None
    else:
        np.testing.assert_allclose(fit.var_respondent, ref["varcomp"][respondent], rtol=TOL["var"], atol=1e-10)
    np.testing.assert_allclose(fit.reml_criterion, ref["reml_criterion"], rtol=TOL["reml"])
    assert fit.n_obs == ref["n_obs"]
    assert fit.singular == ref["singular"]
    table = fit.summary_frame()
    np.testing.assert_allclose(table["df"], ref["df"], rtol=TOL["df"])
    np.testing.assert_allclose(table["t"], ref["t"], rtol=TOL["beta"])
    np.testing.assert_allclose(table["p_value"], ref["p"], rtol=TOL["p"])


def test_sleepstudy_random_intercept_matches_lme4() -> None:
    df, ref = _load("sleepstudy")
    r = ref["intercept"]
    X = np.column_stack([np.ones(len(df)), df["Days"]])
    fit = fit_lmm(df["Reaction"].to_numpy(), X, ["(Intercept)", "Days"], df["Subject"].to_numpy())
    _assert_matches_r(fit, r, council="Subject", respondent=None)
    # Published lme4 values for this model (4 s.f.): 251.4051 (9.7467) and 10.4673 (0.8042).
    np.testing.assert_allclose(fit.beta, [251.4051, 10.4673], atol=1e-4)
    assert fit.n_groups == {"council": 18}
    assert fit.converged and fit.warnings == ()
    assert fit.sd_council == pytest.approx(np.sqrt(r["varcomp"]["Subject"]), rel=1e-3)


@pytest.mark.parametrize("model, group", [("wave", None), ("wave_status", "status")])
def test_nested_panel_matches_lme4_and_lmertest(model: str, group: str | None) -> None:
    df, ref = _load("nested")
    fit, design = _fit_panel(df, group)
    r = ref[model]
    _assert_matches_r(fit, r, council="council_code", respondent="council_code:respondent_id")
    assert fit.n_groups == {"council": r["n_groups"]["council_code"],
                            "respondent": r["n_groups"]["council_code:respondent_id"]}
    # Every contrast R tested is one the design helper builds, with the same L and Satterthwaite df.
    ours = {(c.contrast if c.group == "all" else f"{c.group}: {c.contrast}"): c.L for c in design.contrasts()}
    assert r["contrasts"]
    for name, rc in r["contrasts"].items():
        np.testing.assert_array_equal(ours[name], rc["L"])
        got = fit.contrast(ours[name])
        assert got["estimate"] == pytest.approx(rc["estimate"], rel=TOL["beta"])
        assert got["std_error"] == pytest.approx(rc["se"], rel=TOL["se"])
        assert got["df"] == pytest.approx(rc["df"], rel=TOL["df"])
        assert got["p_value"] == pytest.approx(rc["p"], rel=TOL["p"])
        assert got["ci_low"] == pytest.approx(rc["lower"], rel=TOL["df"])
        assert got["ci_high"] == pytest.approx(rc["upper"], rel=TOL["df"])


@pytest.mark.parametrize("model, nested", [("nested", True), ("council", False)])
def test_zero_council_variance_is_a_boundary_fit_matching_lme4(model: str, nested: bool) -> None:
    df, ref = _load("boundary")
    fit, design = _fit_panel(df, nested=nested)
    r = ref[model]
    _assert_matches_r(fit, r, council="council_code", respondent="council_code:respondent_id" if nested else None)
    assert fit.var_council == 0.0 and fit.singular
    assert fit.converged
    assert any(w.startswith("boundary (singular) fit: council variance") for w in fit.warnings)
    rc = r["contrasts"]["w3 - w2"]
    got = fit.contrast(design.contrasts()[-1].L)
    assert got["df"] == pytest.approx(rc["df"], rel=TOL["df"])
    assert got["p_value"] == pytest.approx(rc["p"], rel=TOL["p"])


def test_nested_panel_agrees_with_statsmodels_mixedlm() -> None:
    """Independent cross-check. statsmodels' REML log-likelihood is -REML criterion / 2; its
    fixed-effect covariance comes from the joint observed information, so SEs agree only to ~2e-3."""
    sm = pytest.importorskip("statsmodels.formula.api")
    df, _ = _load("nested")
    fit, _ = _fit_panel(df)
    ml = sm.mixedlm("value ~ wave", df, groups="council_code", re_formula="1",
                    vc_formula={"respondent": "0 + C(respondent_id)"}).fit(reml=True, method=["lbfgs"])
    np.testing.assert_allclose(fit.beta, ml.fe_params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fit.var_council, float(ml.cov_re.iloc[0, 0]), rtol=1e-4)
    np.testing.assert_allclose(fit.var_respondent, float(ml.vcomp[0]), rtol=1e-4)
    np.testing.assert_allclose(fit.var_residual, ml.scale, rtol=1e-4)
    np.testing.assert_allclose(-fit.reml_criterion / 2.0, ml.llf, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), ml.bse_fe.to_numpy(), rtol=5e-3)


def _simulated(seed: int = 3, n_councils: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_councils):
        uc = rng.normal(0, 0.5)
        for r in range(int(rng.integers(1, 8))):  # very unbalanced: 1-7 respondents, 1-3 waves each
            ur = rng.normal(0, 0.7)
            for k, w in enumerate(WAVES):
                if rng.random() < 0.3:
                    continue
                rows.append({"council_code": f"C{c}", "respondent_id": f"R{r}", "wave": w,
                             "value": 2 + 0.3 * k + uc + ur + rng.normal()})
    return pd.DataFrame(rows)


def test_fit_does_not_depend_on_row_order_or_on_respondent_ids_being_reused() -> None:
    df = _simulated()
    fit, _ = _fit_panel(df)
    shuffled, _ = _fit_panel(df.sample(frac=1.0, random_state=1).reset_index(drop=True))
    unique_ids = df.assign(respondent_id=df["council_code"] + "/" + df["respondent_id"])
    relabelled, _ = _fit_panel(unique_ids)
    for other in (shuffled, relabelled):
        np.testing.assert_allclose(other.beta, fit.beta, rtol=1e-10)
        np.testing.assert_allclose(other.reml_criterion, fit.reml_criterion, rtol=1e-12)
        np.testing.assert_allclose(other.var_respondent, fit.var_respondent, rtol=1e-6)
    # "R0" appears in every council, yet each council's R0 is a different respondent.
    assert fit.n_groups["respondent"] == unique_ids["respondent_id"].nunique()


@pytest.mark.parametrize("scale", [1e-5, 1e5])
def test_fit_is_invariant_to_the_scale_of_y(scale: float) -> None:
    """theta and Satterthwaite df do not depend on units. (lmerTest's numerical Hessian breaks down
    for values ~1e-5: it reports df 27.9 for the intercept where the unit-scale fit gives 30.3.)"""
    df = _simulated()
    base, _ = _fit_panel(df)
    scaled, _ = _fit_panel(df.assign(value=df["value"] * scale))
    np.testing.assert_allclose(scaled.theta, base.theta, rtol=1e-6)
    np.testing.assert_allclose(scaled.beta, base.beta * scale, rtol=1e-6)
    np.testing.assert_allclose(scaled.summary_frame()["df"], base.summary_frame()["df"], rtol=1e-4)
    assert scaled.converged and scaled.warnings == base.warnings


def test_fit_summary_is_json_ready() -> None:
    fit, _ = _fit_panel(_simulated())
    record = json.loads(json.dumps(fit_summary(fit)))
    assert record["terms"] == list(fit.terms)
    assert record["n_groups"] == fit.n_groups
    assert record["var_respondent"] == fit.var_respondent


def test_summary_frame_and_contrast_are_consistent() -> None:
    fit, _ = _fit_panel(_simulated())
    table = fit.summary_frame(level=0.9)
    assert list(table.columns) == ["term", "estimate", "std_error", "df", "t", "p_value", "ci_low", "ci_high"]
    assert list(table["term"]) == list(fit.terms)
    row = table.iloc[2]
    direct = fit.contrast(np.array([0.0, 0.0, 1.0]), level=0.9)
    assert direct["estimate"] == row["estimate"] and direct["df"] == row["df"]
    from scipy import stats

    half = stats.t.ppf(0.95, row["df"]) * row["std_error"]
    assert row["ci_low"] == pytest.approx(row["estimate"] - half)
    assert row["ci_high"] == pytest.approx(row["estimate"] + half)
    assert row["t"] == pytest.approx(row["estimate"] / row["std_error"])
    with pytest.raises(ValueError, match="contrast vector"):
        fit.contrast(np.array([1.0, 0.0]))


def _inputs():
    df = _simulated()
    design = design_matrix(df, WAVES)
    return (df["value"].to_numpy(), design.X, list(design.columns), df["council_code"].to_numpy(),
            df["respondent_id"].to_numpy())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda y, X, cols, c, r: (np.r_[np.nan, y[1:]], X, cols, c, r), "1 rows with a missing or infinite value"),
        (lambda y, X, cols, c, r: (y, np.vstack([[np.nan] * X.shape[1], X[1:]]), cols, c, r), "1 with a missing design"),
        (lambda y, X, cols, c, r: (y, X, cols, np.r_[[None], c[1:]], r), "1 missing council/respondent"),
        (lambda y, X, cols, c, r: (y, X, cols, np.full(len(c), "C0"), r), "1 council levels"),
        (lambda y, X, cols, c, r: (y, X, cols, c, np.arange(len(r)).astype(str)), "council:respondent levels"),
        (lambda y, X, cols, c, r: (y, np.column_stack([X, X[:, 1] + X[:, 2]]), [*cols, "dup"], c, r), "rank deficient"),
        (lambda y, X, cols, c, r: (y[:-1], X, cols, c, r), "must have n rows"),
        (lambda y, X, cols, c, r: (y, X, cols[:-1], c, r), "column names"),
    ],
)
def test_invalid_inputs_raise_data_error(mutate, message) -> None:
    with pytest.raises(DataError, match=message):
        fit_lmm(*mutate(*_inputs()))


def test_rank_deficiency_names_the_aliased_column() -> None:
    y, X, cols, c, r = _inputs()
    with pytest.raises(DataError, match="dup"):
        fit_lmm(y, np.column_stack([X, 2 * X[:, 1]]), [*cols, "dup"], c, r)


# ---- wave_design ------------------------------------------------------------------------------


def test_design_columns_and_contrasts_follow_r_treatment_coding() -> None:
    df = pd.DataFrame({"wave": ["w1", "w2", "w3", "w1", "w2", "w3"] * 2,
                       "grp": pd.Categorical(["y"] * 6 + ["x"] * 6, categories=["y", "x", "z"])})
    d = design_matrix(df, WAVES, "grp")
    assert d.levels == ("y", "x")  # categorical order, unused level dropped
    assert d.columns == ("Intercept", "wave[T.w2]", "wave[T.w3]", "grp[T.x]", "wave[T.w2]:grp[T.x]",
                         "wave[T.w3]:grp[T.x]")
    np.testing.assert_array_equal(d.X[1], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(d.X[8], [1, 0, 1, 1, 0, 1])
    got = {(c.group, c.contrast): c.L.tolist() for c in d.contrasts()}
    assert got == {
        ("grp=y", "w2 - w1"): [0, 1, 0, 0, 0, 0],
        ("grp=y", "w3 - w1"): [0, 0, 1, 0, 0, 0],
        ("grp=y", "w3 - w2"): [0, -1, 1, 0, 0, 0],
        ("grp=x", "w2 - w1"): [0, 1, 0, 0, 1, 0],
        ("grp=x", "w3 - w1"): [0, 0, 1, 0, 0, 1],
        ("grp=x", "w3 - w2"): [0, -1, 1, 0, -1, 1],
    }
    assert [c.contrast for c in d.contrasts(["successive"])][:2] == ["w2 - w1", "w3 - w2"]


def test_contrast_of_a_level_the_design_does_not_hold_is_not_estimable() -> None:
    """A two-wave fit (the LMM's per-contrast rows) may lack a group level answered only at other waves:
    its contrast is None (a 'not estimable' row), not a ValueError (found by tests/fuzz on a generated study)."""
    df = pd.DataFrame({"wave": ["w2", "w3"] * 3, "grp": ["North"] * 6})
    d = design_matrix(df, WAVES, "grp")
    assert d.levels == ("North",)
    assert d.contrast("w3", "w2", "South") is None
    assert d.contrast("w3", "w2", "North") is not None


@settings(max_examples=30, deadline=None)
@given(n_waves=st.integers(2, 5), n_levels=st.integers(1, 4), data=st.data())
def test_every_contrast_is_a_difference_of_cell_means(n_waves: int, n_levels: int, data) -> None:
    """With one row per cell, X @ beta are the cell means, so L @ beta must equal the difference of
    the two cells' means for any beta."""
    waves = [f"v{k}" for k in range(n_waves)]
    levels = [f"L{j}" for j in range(n_levels)]
    df = pd.DataFrame([(w, lv) for w in waves for lv in levels], columns=["wave", "g"])
    d = design_matrix(df, waves, "g" if n_levels > 1 else None)
    beta = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=d.X.shape[1], max_size=d.X.shape[1])))
    means = dict(zip(zip(df["wave"], df["g"]), d.X @ beta))
    for c in d.contrasts():
        late, early = c.contrast.split(" - ")
        lv = c.group.split("=")[1] if c.group != "all" else levels[0]
        assert c.L @ beta == pytest.approx(means[(late, lv)] - means[(early, lv)], abs=1e-9)


def test_design_drops_absent_waves_and_rejects_bad_input() -> None:
    df = pd.DataFrame({"wave": ["w2", "w3", "w2"], "g": ["a", "a", "b"]})
    d = design_matrix(df, WAVES)
    assert d.waves == ("w2", "w3") and d.columns == ("Intercept", "wave[T.w3]")
    with pytest.raises(DataError, match="w3 in g=b"):
        design_matrix(df, WAVES, "g")
    with pytest.raises(DataError, match=r"\['w9'\] are not in"):
        design_matrix(pd.DataFrame({"wave": ["w1", "w9"]}), WAVES)
    with pytest.raises(DataError, match="at least 2"):
        design_matrix(pd.DataFrame({"wave": ["w1", "w1"]}), WAVES)
    with pytest.raises(DataError, match="1 rows have no 'g'"):
        design_matrix(pd.DataFrame({"wave": ["w1", "w2"], "g": ["a", None]}), WAVES, "g")


def test_design_can_drop_the_columns_an_empty_cell_aliases() -> None:
    """empty_cells="drop": X stays full rank, and only contrasts that need an empty cell are None.
    The remaining contrasts are differences of observed cell means, whatever the empty cell."""
    rows = [(w, g) for w in WAVES for g in ("a", "b", "c")]
    for empty in [("w2", "b"), ("w1", "c")]:  # an interaction cell, and the reference wave of a level
        df = pd.DataFrame([r for r in rows if r != empty], columns=["wave", "g"])
        d = design_matrix(df, WAVES, "g", empty_cells="drop")
        assert np.linalg.matrix_rank(d.X) == d.X.shape[1] == len(df)  # one row per observed cell
        beta = np.linspace(-1.0, 2.0, d.X.shape[1])
        means = dict(zip(zip(df["wave"], df["g"]), d.X @ beta))
        for later, earlier in [("w2", "w1"), ("w3", "w1"), ("w3", "w2")]:
            for level in ("a", "b", "c"):
                L = d.contrast(later, earlier, level)
                if empty in ((later, level), (earlier, level)):
                    assert L is None
                else:
                    assert L @ beta == pytest.approx(means[(later, level)] - means[(earlier, level)], abs=1e-12)
        assert len(d.contrasts()) == 9 - 2


def test_lmm_rows_with_an_empty_cell_make_only_its_contrasts_nan() -> None:
    from impactstudy.model.fitting import lmm_rows

    df, _ = _load("nested")
    full, _, _ = lmm_rows(df, WAVES, "status")
    level = sorted(df["status"].unique())[1]
    sparse = df[~((df["status"] == level) & (df["wave"] == "w2"))]
    rows, estimates, record = lmm_rows(sparse, WAVES, "status")
    hit = (rows["group"] == f"status={level}") & rows["contrast"].str.contains("w2")
    assert hit.sum() == 2 and rows.loc[hit, "estimate"].isna().all()
    assert rows.loc[hit, "warning"].str.contains(f"no observations at wave w2 for status={level}").all()
    # the difference in change between the groups needs the empty cell too
    between = rows["group"].str.contains(" - ") & rows["contrast"].str.contains("w2")
    assert between.sum() == 2 and rows.loc[between, "estimate"].isna().all()
    assert rows.loc[between, "warning"].str.contains("not estimable").all()
    assert rows.loc[~hit & ~between, "estimate"].notna().all() and record["converged"]
    assert f"wave[T.w2]:status[T.{level}]" not in set(estimates["term"])
    assert len(rows) == len(full)
