"""The council x wave LMM: ``value ~ wave [* group] + (1 | council) + (1 | council:wave)
[+ (1 | council:respondent)]`` against lme4 / lmerTest (Satterthwaite) / pbkrtest (Kenward-Roger).

Reference values come from tests/reference/lmm_reference.R (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3,
pbkrtest 0.5.2; bobyqa with rhoend 1e-10) via the committed fixtures tests/reference/fixtures/lmm_*;
R is not needed. Everything is compared to 1e-6, relative to the size of the quantity compared
(``rtol = 1e-6`` and ``atol = 1e-6 * max |reference|``, so a coefficient near 0 is not held to a
relative error of its own). Observed agreement is ~1e-7 or better (lme4's optimiser tolerance).
Property tests check the closed-form algebra against dense n x n matrices on random designs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from impactstudy.model.stats.lmm import (
    LmmFit,
    _block_stats,
    _full,
    _kenward_roger,
    _profiled_deviance,
    fit_lmm,
    fit_summary,
    kenward_roger_df,
)
from impactstudy.model.stats.wave_design import design_matrix

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
WAVES = ["w1", "w2", "w3"]
R_NAMES = {"council": "council_code", "council_wave": "council_code:wave", "respondent": "council_code:respondent_id"}
# fixture, model key, group, respondent term, council x wave term
CASES = [
    ("council_wave", "wave", None, True, True),
    ("council_wave", "wave_status", "status", True, True),
    ("council_wave", "nested", None, True, False),
    ("council_wave_cross", "wave", None, False, True),
    ("council_wave_boundary", "wave", None, True, True),
    ("council_wave_six", "wave", None, True, True),
    ("nested", "wave", None, True, False),
    ("nested", "wave_status", "status", True, False),
    ("boundary", "nested", None, True, False),
    ("boundary", "council", None, False, False),
]


def _close(got: object, want: object) -> None:
    want = np.asarray(want, dtype=float)
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=1e-6, atol=1e-6 * float(np.max(np.abs(want))))


def _fit(name: str, group: str | None, respondent: bool, council_wave: bool) -> tuple[LmmFit, object, dict]:
    df = pd.read_csv(FIXTURES / f"lmm_{name}.csv")
    design = design_matrix(df, WAVES, group)
    fit = fit_lmm(df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(),
                  df["respondent_id"].to_numpy() if respondent else None,
                  df["wave"].to_numpy() if council_wave else None)
    return fit, design, json.loads((FIXTURES / f"lmm_{name}.json").read_text())


@pytest.mark.parametrize("name, key, group, respondent, council_wave", CASES)
def test_fit_matches_lme4_lmertest_and_pbkrtest(name, key, group, respondent, council_wave) -> None:
    fit, design, refs = _fit(name, group, respondent, council_wave)
    ref = refs[key]
    assert len(ref["terms"]) == len(fit.terms)
    _close(fit.beta, ref["beta"])
    _close(fit.vcov, ref["vcov"])
    _close(fit.reml_criterion, ref["reml_criterion"])
    assert set(fit.components) == {c for c, r in R_NAMES.items() if r in ref["varcomp"]}
    variances = [getattr(fit, f"var_{c}") for c in fit.components]
    np.testing.assert_allclose(variances, [ref["varcomp"][R_NAMES[c]] for c in fit.components], rtol=1e-6, atol=1e-9)
    _close(fit.var_residual, ref["varcomp"]["Residual"])
    assert fit.singular == ref["singular"]
    assert fit.n_obs == ref["n_obs"]
    assert sorted(fit.n_groups.values()) == sorted(ref["n_groups"].values())
    sat = fit.summary_frame()
    _close(sat["df"], ref["df"])
    _close(sat["p_value"], ref["p"])
    _close(fit.vcov_kr, ref["kr_vcov"])
    kr = fit.summary_frame(ddf="kenward-roger")
    _close(kr["std_error"], ref["kr_se"])
    _close(kr["df"], ref["kr_df"])
    _close(kr["p_value"], ref["kr_p"])
    # Every contrast R tested is one the design builds, with the same L, for both df methods.
    ours = {(c.contrast if c.group == "all" else f"{c.group}: {c.contrast}"): c.L for c in design.contrasts()}
    assert ref["contrasts"]
    for label, rc in ref["contrasts"].items():
        np.testing.assert_array_equal(ours[label], rc["L"])
        for method, want in (("satterthwaite", rc), ("kenward-roger", rc["kr"])):
            got = fit.contrast(ours[label], ddf=method)
            for ours_key, r_key in [("estimate", "estimate"), ("std_error", "se"), ("df", "df"), ("t", "t"),
                                    ("p_value", "p"), ("ci_low", "lower"), ("ci_high", "upper")]:
                # an estimate or bound near 0 is compared on the scale of its standard error
                slack = 1e-6 * (want["se"] if ours_key in ("estimate", "ci_low", "ci_high") else 1.0)
                assert got[ours_key] == pytest.approx(want[r_key], rel=1e-6, abs=slack), (label, method, ours_key)


def test_council_wave_boundary_fit_is_flagged_not_failed() -> None:
    fit, _, _ = _fit("council_wave_boundary", None, True, True)
    assert fit.var_council_wave == 0.0 and fit.boundary == ("council_wave",)
    assert fit.converged
    assert fit.warnings == ("boundary (singular) fit: council:wave variance estimated as (near) zero",)
    record = json.loads(json.dumps(fit_summary(fit)))
    assert record["boundary"] == ["council:wave"] and record["var_council_wave"] == 0.0
    # Both df methods still give finite intervals at the boundary (pbkrtest keeps the zero component).
    for method in ("satterthwaite", "kenward-roger"):
        row = fit.contrast(np.array([0.0, 0.0, 1.0]), ddf=method)
        assert np.isfinite([row["df"], row["ci_low"], row["ci_high"]]).all()


def test_council_wave_term_widens_the_change_interval_and_is_named() -> None:
    fit, _, _ = _fit("council_wave", None, True, True)
    nested, _, _ = _fit("council_wave", None, True, False)
    L = np.array([0.0, 0.0, 1.0])
    # the change is now replicated by councils: a wider SE and council-sized df (38 here, not 206)
    assert fit.contrast(L)["std_error"] > 1.05 * nested.contrast(L)["std_error"]
    assert fit.contrast(L)["df"] < nested.contrast(L)["df"] / 4
    assert fit.formula_terms == "(1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)"
    assert nested.formula_terms == "(1 | council_code) + (1 | council_code:respondent_id)"
    assert fit.n_groups == {"council": 30, "council_wave": 77, "respondent": 159}
    assert fit_summary(fit)["ddf"] == "Satterthwaite df (as lmerTest)"


def test_ddf_default_and_errors() -> None:
    df = pd.read_csv(FIXTURES / "lmm_council_wave_six.csv")
    design = design_matrix(df, WAVES)
    args = (df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(),
            df["respondent_id"].to_numpy(), df["wave"].to_numpy())
    kr = fit_lmm(*args, ddf="kenward-roger")
    L = np.array([0.0, 0.0, 1.0])
    assert kr.contrast(L) == kr.contrast(L, ddf="kenward-roger") != kr.contrast(L, ddf="satterthwaite")
    assert fit_summary(kr)["ddf"] == "Kenward-Roger df and SE (as pbkrtest)"
    with pytest.raises(ValueError, match="ddf must be one of"):
        fit_lmm(*args, ddf="residual")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ddf must be one of"):
        kr.contrast(L, ddf="containment")  # type: ignore[arg-type]


# ---- dense references on random designs ---------------------------------------------------------


def _dense(council: np.ndarray, wave: np.ndarray, resp: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """G_k = Z_k Z_k' for council, council x wave and council x respondent, as dense n x n matrices."""
    same_c = council[:, None] == council[None, :]
    return [same_c.astype(float), (same_c & (wave[:, None] == wave[None, :])).astype(float),
            (same_c & (resp[:, None] == resp[None, :])).astype(float)]


def _dense_reml(y: np.ndarray, X: np.ndarray, gs: list[np.ndarray], t: np.ndarray) -> float:
    n, p = X.shape
    W = np.eye(n) + sum(tk * g for tk, g in zip(t, gs))
    Wi = np.linalg.inv(W)
    A = X.T @ Wi @ X
    beta = np.linalg.solve(A, X.T @ Wi @ y)
    r = y - X @ beta
    rss = r @ Wi @ r
    return np.linalg.slogdet(W)[1] + np.linalg.slogdet(A)[1] + (n - p) * (1 + np.log(2 * np.pi * rss / (n - p)))


def _dense_kenward_roger(X: np.ndarray, gs: list[np.ndarray], s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pbkrtest's vcovAdj_internal, transcribed with dense matrices: (PhiA, W)."""
    n, p = X.shape
    G = [*gs, np.eye(n)]
    Sigma = sum(sk * g for sk, g in zip(s, G))
    Si = np.linalg.inv(Sigma)
    Phi = np.linalg.inv(X.T @ Si @ X)
    O = [g @ Si @ X for g in G]
    P = [-(o.T @ Si @ X) for o in O]
    k = len(G)
    Q = [[O[r].T @ Si @ O[q] for q in range(k)] for r in range(k)]
    K = np.array([[np.sum((G[r] @ Si).T * (G[q] @ Si)) for q in range(k)] for r in range(k)])
    IE = np.array([[K[r, q] - 2 * np.sum(Phi * Q[r][q]) + np.sum((Phi @ P[r]) * (P[q] @ Phi)) for q in range(k)]
                   for r in range(k)])
    ev = np.abs(np.linalg.eigvalsh(IE))
    assume(ev.min() > 1e-8 * ev.max())  # identifiable variances (not, say, one respondent per council)
    W = 2 * np.linalg.inv(IE)
    U = sum(W[r, q] * (Q[r][q] - P[r] @ Phi @ P[q]) for r in range(k) for q in range(k))
    U = (U + U.T) / 2
    return Phi + 2 * Phi @ U @ Phi, W


designs = st.lists(  # councils: per respondent, the waves answered (a respondent answers 1-3 of 3 waves)
    st.lists(st.sets(st.integers(0, 2), min_size=1, max_size=3), min_size=1, max_size=4), min_size=2, max_size=5)


def _design(sizes: list[list[set[int]]], seed: int) -> tuple[np.ndarray, ...]:
    rows = [(i, j, w) for i, c in enumerate(sizes) for j, waves in enumerate(c) for w in sorted(waves)]
    council, resp, wave = (np.array(col) for col in zip(*rows))
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(len(rows)), wave == 1, wave == 2, rng.normal(size=len(rows))]).astype(float)
    y = X @ [1.0, 0.3, 0.5, 0.2] + rng.normal(size=len(rows))
    return y, X, council, resp, wave


@settings(max_examples=60, deadline=None)
@given(sizes=designs, t=st.tuples(st.floats(0, 3), st.floats(0, 3), st.floats(0, 3)), seed=st.integers(0, 2**16),
       respondent=st.booleans(), council_wave=st.booleans())
def test_closed_form_reml_and_gradient_equal_dense_computation(sizes, t, seed, respondent, council_wave) -> None:
    """Any unbalanced crossing of waves and respondents within councils, with or without either term:
    the Woodbury criterion and its exact gradient equal the dense n x n computation (and central
    differences of it). Central differences at the boundary t = 0 too: the criterion is smooth
    through it (t enters as log1p(t m) and 1 / (1 + t m)), and a one-sided difference's O(h) error
    can exceed the tolerance where the curvature at 0 is large."""
    y, X, council, resp, wave = _design(sizes, seed)
    assume(len(y) >= 6 and np.linalg.matrix_rank(X) == 4)
    gs = _dense(council, wave, resp, np.array(t))
    b = _block_stats(y, X, council, resp if respondent else None, wave if council_wave else None)
    tv = np.array(t)[[True, council_wave, respondent]]
    dev, grad = _profiled_deviance(b, tv)
    assert dev == pytest.approx(_dense_reml(y, X, gs, _full(b, tv)), rel=1e-9, abs=1e-9)
    h = 1e-6
    for k in range(len(tv)):
        e = np.zeros(len(tv))
        e[k] = h
        numeric = (_profiled_deviance(b, tv + e)[0] - _profiled_deviance(b, tv - e)[0]) / (2 * h)
        assert grad[k] == pytest.approx(numeric, rel=1e-4, abs=1e-4)


@settings(max_examples=20, deadline=None)
@given(sizes=designs, s=st.tuples(st.floats(0, 2), st.floats(0, 2), st.floats(0, 2), st.floats(0.2, 3)),
       seed=st.integers(0, 2**16))
def test_kenward_roger_equals_dense_pbkrtest_transcription(sizes, s, seed) -> None:
    """The adjusted covariance and W from derivatives of the closed form equal pbkrtest's dense algebra,
    zero variances included."""
    y, X, council, resp, wave = _design(sizes, seed)
    assume(len(y) >= 7 and np.linalg.matrix_rank(X) == 4)
    b = _block_stats(y, X, council, resp, wave)
    gs = _dense(council, wave, resp, np.zeros(3))
    sv = np.array(s)
    Sigma = sum(sk * g for sk, g in zip(sv, [*gs, np.eye(len(y))]))
    phi = np.linalg.inv(X.T @ np.linalg.solve(Sigma, X))
    want_vcov, want_w = _dense_kenward_roger(X, gs, sv)
    got = _kenward_roger(b, sv, phi)
    scale = np.max(np.abs(want_vcov))
    np.testing.assert_allclose(got.vcov, want_vcov, rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_allclose(got.w, want_w, rtol=1e-5, atol=1e-7 * np.max(np.abs(want_w)))
    L = np.array([0.0, -1.0, 1.0, 0.0])
    df = kenward_roger_df(L, phi, got.p_mats, got.w)
    assert np.isfinite(df) and df > 0


def _panel(seed: int, n_councils: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_councils):
        uc, ucw = rng.normal(0, 0.5), rng.normal(0, 0.3, 3)
        for r in range(int(rng.integers(1, 7))):
            ur = rng.normal(0, 0.6)
            for k, w in enumerate(WAVES):
                if rng.random() < 0.25:
                    continue
                rows.append({"council_code": f"C{c}", "respondent_id": f"R{r}", "wave": w,
                             "value": 2 + 0.3 * k + uc + ucw[k] + ur + rng.normal()})
    return pd.DataFrame(rows)


def _fit_frame(df: pd.DataFrame) -> LmmFit:
    design = design_matrix(df, WAVES)
    return fit_lmm(df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(),
                   df["respondent_id"].to_numpy(), df["wave"].to_numpy())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), order=st.integers(0, 2**16))
def test_reml_gradient_vanishes_at_the_optimum_and_fit_ignores_row_order(seed, order) -> None:
    """At the fitted ratios the projected gradient of the profiled REML deviance is ~0 (a component
    at 0 may only have a non-negative slope), and shuffling the rows changes nothing."""
    df = _panel(seed)
    assume(df.groupby(["council_code", "wave"]).ngroups < len(df) and df["wave"].nunique() == 3)
    fit = _fit_frame(df)
    b = _block_stats(df["value"].to_numpy(), design_matrix(df, WAVES).X, df["council_code"].to_numpy(),
                     df["respondent_id"].to_numpy(), df["wave"].to_numpy())
    t = fit.theta**2
    _, grad = _profiled_deviance(b, t)
    interior = t > 1e-8
    np.testing.assert_allclose(grad[interior], 0.0, atol=1e-5)
    assert np.all(grad[~interior] > -1e-5)
    shuffled = _fit_frame(df.sample(frac=1.0, random_state=order).reset_index(drop=True))
    # to the optimiser's tolerance: a millionth of a standard error
    np.testing.assert_allclose(shuffled.beta, fit.beta, rtol=0, atol=1e-6 * float(np.sqrt(np.diag(fit.vcov)).min()))
    np.testing.assert_allclose(shuffled.reml_criterion, fit.reml_criterion, rtol=1e-12)
    np.testing.assert_allclose(shuffled.theta, fit.theta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(shuffled.vcov_kr, fit.vcov_kr, rtol=1e-6, atol=1e-12)


def test_one_answer_per_council_and_wave_refuses_the_council_wave_term() -> None:
    """As lme4: council:wave with as many levels as rows is not identifiable; the message says what to do."""
    from impactstudy.errors import DataError

    df = pd.DataFrame({"council_code": np.repeat([f"C{i}" for i in range(6)], 3), "wave": WAVES * 6,
                       "value": np.arange(18.0) % 5})
    design = design_matrix(df, WAVES)
    with pytest.raises(DataError, match="18 council:wave levels for 18 rows"):
        fit_lmm(df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(), None,
                df["wave"].to_numpy())


@settings(max_examples=30, deadline=None)
@given(sizes=designs, t=st.tuples(st.floats(0, 3), st.floats(0, 3)), seed=st.integers(0, 2**16))
def test_without_council_wave_variance_the_model_is_the_nested_model(sizes, t, seed) -> None:
    """The council x wave criterion at a zero council x wave ratio is the nested model's criterion (the
    same gradient in the shared ratios), so the nested model is exactly a special case."""
    y, X, council, resp, wave = _design(sizes, seed)
    assume(len(y) >= 6 and np.linalg.matrix_rank(X) == 4)
    with_term = _block_stats(y, X, council, resp, wave)
    nested = _block_stats(y, X, council, resp, None)
    dev_w, grad_w = _profiled_deviance(with_term, np.array([t[0], 0.0, t[1]]))
    dev_n, grad_n = _profiled_deviance(nested, np.array(t))
    assert dev_w == pytest.approx(dev_n, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(grad_w[[0, 2]], grad_n, rtol=1e-9, atol=1e-9)


# ---- the model stage's LMM rows -----------------------------------------------------------------


def test_lmm_rows_fit_the_council_wave_model_and_name_the_df_method() -> None:
    from impactstudy.model import fitting

    df = pd.read_csv(FIXTURES / "lmm_council_wave.csv")
    refs = json.loads((FIXTURES / "lmm_council_wave.json").read_text())
    ref = refs["pair_w3_w1"]["contrasts"]["w3 - w1"]  # the row: the model fitted to w1 and w3 only
    whole = refs["wave"]  # the coefficients and variance components: the all-wave fit
    for ddf, want, name in [("satterthwaite", ref, "Satterthwaite df (as lmerTest)"),
                            ("kenward-roger", ref["kr"], "Kenward-Roger df and SE (as pbkrtest)")]:
        rows, estimates, record = fitting.lmm_rows(df, WAVES, None, ddf=ddf)
        assert record["formula"] == ("value ~ wave + (1 | council_code) + (1 | council_code:wave) + "
                                     "(1 | council_code:respondent_id)")
        assert record["var_council_wave"] == pytest.approx(whole["varcomp"]["council_code:wave"], rel=1e-5)
        assert estimates["estimate"].to_numpy() == pytest.approx(whole["beta"], rel=1e-6)
        assert set(record["contrast_fits"]) == {"w2 - w1", "w3 - w1", "w3 - w2"}
        assert record["contrast_fits"]["w3 - w1"]["var_council_wave"] == pytest.approx(
            refs["pair_w3_w1"]["varcomp"]["council_code:wave"], rel=1e-5)
        assert (rows["correction"] == name).all() and record["correction"] == name
        row = rows.set_index("contrast").loc["w3 - w1"]
        assert row["estimate"] == pytest.approx(want["estimate"], rel=1e-6)
        assert row["std_error"] == pytest.approx(want["se"], rel=1e-6)
        assert row["df"] == pytest.approx(want["df"], rel=1e-6)
        assert row["ci_low"] == pytest.approx(want["lower"], rel=1e-6)
        assert record["var_council_wave"] > 0 and record["boundary"] == [] and record["converged"]
        assert len(estimates) == 3


def test_lmm_rows_report_a_boundary_fit_in_the_rows_and_the_record() -> None:
    from impactstudy.model import fitting

    df = pd.read_csv(FIXTURES / "lmm_council_wave_boundary.csv")
    rows, _, record = fitting.lmm_rows(df, WAVES, None)
    assert record["converged"] and record["boundary"] == ["council:wave"] and record["var_council_wave"] == 0.0
    assert rows["estimate"].notna().all()
    # each row comes from its two waves' fit, and says whether that fit is on the boundary
    for contrast, warning in zip(rows["contrast"], rows["warning"]):
        at_zero = record["contrast_fits"][contrast]["boundary"]
        assert warning.startswith("boundary (singular) fit") == bool(at_zero)
        assert all(term in warning for term in at_zero)
    assert any("council:wave" in f["boundary"] for f in record["contrast_fits"].values())


def test_lmm_rows_leave_out_the_council_wave_term_with_one_answer_per_council_and_wave() -> None:
    from impactstudy.model import fitting

    rng = np.random.default_rng(5)
    df = pd.DataFrame({"council_code": np.repeat([f"C{i}" for i in range(8)], 3), "wave": WAVES * 8,
                       "respondent_id": np.arange(24), "value": rng.normal(size=24)})
    rows, _, record = fitting.lmm_rows(df, WAVES, None)
    assert record["formula"] == "value ~ wave + (1 | council_code)"
    assert "no council:wave term: one answer per council and wave" in record["warnings"]
    assert rows["warning"].str.contains("no council:wave term").all() and rows["estimate"].notna().all()


def test_models_lmm_df_chooses_the_df_method_and_is_checked() -> None:
    """``[models] lmm_df`` selects the model stage's LMM df method (Kenward-Roger by default, the one that
    covered best in docs/coverage.md); a wrong value is a config error that names the key and suggests the
    right spelling."""
    import tomllib

    from impactstudy.errors import ConfigError
    from impactstudy.model import fitting
    from impactstudy.study.config import parse_study

    path = Path(__file__).parents[2] / "pipelines" / "demo" / "study.toml"
    data = tomllib.loads(path.read_text())
    data["models"].pop("lmm_df", None)
    assert parse_study(data, "demo", path).models.lmm_df == "kenward-roger"
    data["models"]["lmm_df"] = "satterthwaite"
    assert parse_study(data, "demo", path).models.lmm_df == "satterthwaite"
    data["models"]["lmm_df"] = "kenward-roger"
    study = parse_study(data, "demo", path)
    assert study.models.lmm_df == "kenward-roger"
    data["models"]["lmm_df"] = "kenward_roger"
    with pytest.raises(ConfigError, match="lmm_df = 'kenward_roger' \\(did you mean 'kenward-roger'\\?\\)"):
        parse_study(data, "demo", path)
    measure = next(m for m in study.measures if m.type == "likert")
    first, _, last = study.wave_ids[:3]
    df = pd.read_csv(FIXTURES / "lmm_council_wave.csv")
    df["wave"] = df["wave"].map(dict(zip(WAVES, study.wave_ids)))
    [(function, args)] = fitting.fit_tasks(study, [measure], {measure.name: df})
    result = function(*args[:3], (), *args[4:])  # no grouping covariate in these rows
    lmm = pd.concat(result["contrasts"]).query("model == 'lmm'")
    assert (lmm["correction"] == "Kenward-Roger df and SE (as pbkrtest)").all() and len(lmm) == 3
    ref = json.loads((FIXTURES / "lmm_council_wave.json").read_text())["pair_w3_w1"]["contrasts"]["w3 - w1"]["kr"]
    assert lmm.set_index("contrast").loc[f"{last} - {first}", "df"] == pytest.approx(ref["df"], rel=1e-6)


def test_each_contrast_has_its_own_councils_spread_when_council_changes_build_up() -> None:
    """Councils' changes that grow over time (a council's deviation 0, 0.4 u, u at waves 1-3, as the demo
    generator and docs/coverage.md have it) spread the council means more at the later waves. The
    council x wave term gives every wave one variance, so an all-wave fit put the SE of ``w3 - w1`` at
    about 0.76 of the council-level one (its intervals covered 88.6-91.8% in the simulation); each
    contrast's rows come from its two waves' fit, whose SE is the council-level one (the paired t on
    council means: with equal councils the two estimate the same change)."""
    from impactstudy.model import fitting

    rng = np.random.default_rng(14)
    councils, people, trajectory = 60, 20, (0.0, 0.4, 1.0)
    rows = []
    for c in range(councils):
        base, change = rng.normal(0, 0.5), rng.normal(0, 0.8)
        person = rng.normal(0, 0.3, people)
        for w, share in enumerate(trajectory):
            value = 3 + base + share * change + person + rng.normal(0, 1.0, people)
            rows += [{"council_code": f"C{c:02d}", "respondent_id": f"R{r}", "wave": WAVES[w], "value": v}
                     for r, v in enumerate(value)]
    df = pd.DataFrame(rows)
    out, _, record = fitting.lmm_rows(df, WAVES, None)
    means = df.groupby(["council_code", "wave"])["value"].mean().unstack()
    for later, earlier in (("w3", "w1"), ("w2", "w1"), ("w3", "w2")):
        diff = means[later] - means[earlier]
        row = out.set_index("contrast").loc[f"{later} - {earlier}"]
        assert row["estimate"] == pytest.approx(diff.mean(), abs=1e-9)  # balanced: the council-means change
        assert 0.93 < row["std_error"] / (diff.std(ddof=1) / np.sqrt(councils)) < 1.07, (later, earlier)
        assert row["df"] == pytest.approx(councils - 1, rel=0.05)
    assert record["formula"].endswith("(1 | council_code:respondent_id)") and len(record["contrast_fits"]) == 3
