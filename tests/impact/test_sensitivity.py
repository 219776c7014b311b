"""HonestDiD relative magnitudes (Δ^RM, C-LF and conditional): the package's intervals, the closed-form
linear programs against HiGHS, the breakdown value and the symmetries of the confidence set."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space
from scipy.optimize import linprog
from scipy.stats import truncnorm

from impactstudy.impact.sensitivity import (_moments, _Problem, _rays, event_study_blocks, relative_magnitudes,
                                            truncated_normal_quantile)

FIXTURE = Path(__file__).parents[1] / "reference" / "fixtures" / "impact_honestdid.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _ours(case: dict, grid: bool = True):
    return relative_magnitudes(np.array(case["times"]), np.array(case["estimates"]), np.array(case["vcov"]),
                               alpha=case["alpha"], mbars=case["mbar"], anticipation=case["anticipation"],
                               method=case["method"], grid=tuple(case["grid"]) if grid else None)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_honestdid_intervals_on_its_grid(case: dict) -> None:
    """On the package's own grid (1,000 points), every interval end is the package's to one grid step
    (the tolerance stated in docs/impact.md); in practice they are the same grid point."""
    ours = _ours(case)
    assert (ours.n_pre, ours.n_post) == (case["n_pre"], case["n_post"])
    low, high, points = case["grid"]
    step = (high - low) / (points - 1)
    for m, lo, hi, ref_lo, ref_hi in zip(case["mbar"], ours.lower, ours.upper, case["lb"], case["ub"], strict=True):
        assert abs(lo - ref_lo) <= step + 1e-9 and abs(hi - ref_hi) <= step + 1e-9, (m, lo, hi, ref_lo, ref_hi)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_refined_intervals_agree_with_honestdid_where_its_grid_does_not_cut_them(case: dict) -> None:
    """Without a fixed grid the interval is widened until closed and its ends refined: within one of the
    package's grid steps of its ends wherever the package's set did not reach its grid's edge."""
    ours = _ours(case, grid=False)
    low, high, points = case["grid"]
    step = (high - low) / (points - 1)
    for lo, hi, ref_lo, ref_hi in zip(ours.lower, ours.upper, case["lb"], case["ub"], strict=True):
        if ref_lo > low + step / 2:
            assert abs(lo - ref_lo) <= step, (lo, ref_lo)
        if ref_hi < high - step / 2:
            assert abs(hi - ref_hi) <= step, (hi, ref_hi)
        else:  # the package cut it at its grid's edge: ours goes on
            assert hi > ref_hi


def test_breakdown_of_the_first_fixture_and_its_interval() -> None:
    ours = _ours(CASES[0], grid=False)
    assert ours.method == "C-LF" and "conditional–least-favourable" in ours.description
    # HonestDiD's lower ends: +2.24 at M̄ = 0.5 and −1.71 at M̄ = 1, so zero is crossed in between
    assert 0.7 < ours.breakdown < 0.85
    lo, _hi = ours.breakdown_interval
    assert 0 < lo < 0.05  # at the breakdown value the interval just excludes zero
    problem = _problem(CASES[0])
    assert problem.interval(ours.breakdown + 0.005)[0] < 0


def _problem(case: dict, method: str = "C-LF") -> _Problem:
    times = np.array(case["times"])
    pre, post = event_study_blocks(times, case["anticipation"])
    keep = np.r_[pre, post]
    beta = np.array(case["estimates"])[keep]
    sigma = np.array(case["vcov"])[np.ix_(keep, keep)]
    return _Problem(beta, sigma, len(pre), np.array(case["l_vec"]), 0.05, method, 0)


def _lp_eta(y: np.ndarray, X: np.ndarray, sd: np.ndarray) -> tuple[float, np.ndarray]:
    """HonestDiD's ``.test_delta_lp_fn``: min η s.t. y − X τ ≤ η σ, by HiGHS; with the dual (HiGHS marginals)."""
    k = X.shape[1]
    res = linprog(np.r_[1.0, np.zeros(k)], A_ub=-np.column_stack([sd, X]), b_ub=-y,
                  bounds=[(None, None)] * (k + 1), method="highs")
    assert res.status == 0
    return float(res.fun), -res.ineqlin.marginals


def _lp_max(f: np.ndarray, W: np.ndarray) -> float:
    """HonestDiD's ``.max_program``: max f'γ over γ ≥ 0, W'γ = e_1 (HiGHS)."""
    res = linprog(-f, A_eq=W.T, b_eq=np.r_[1.0, np.zeros(W.shape[1] - 1)], bounds=[(0, None)] * len(f),
                  method="highs")
    assert res.status == 0
    return float(-res.fun)


@pytest.mark.parametrize("n_pre, n_post, mbar, s, positive", [
    (3, 4, 0.5, 0, True), (3, 4, 1.3, -2, False), (2, 6, 0.0, -1, True), (1, 1, 2.0, 0, False),
    (4, 2, 0.8, -3, True)])
def test_closed_form_matches_the_linear_programs(n_pre: int, n_post: int, mbar: float, s: int,
                                                 positive: bool) -> None:
    """η, the dual vertex and the truncation points V^lo, V^up from the closed-form cone equal HiGHS's
    linear programs (η and its dual) and the bracketing HonestDiD's bisection looks for."""
    rng = np.random.default_rng(n_pre * 10 + n_post)
    k = n_pre + n_post
    beta = rng.normal(0, 1, k)
    L = rng.normal(0, 0.3, (k, k))
    sigma = L @ L.T + 0.05 * np.eye(k)
    l_vec = rng.uniform(0, 1, n_post)
    l_vec /= l_vec.sum()
    A = _moments(n_pre, n_post, mbar, s, positive)
    cov = A @ sigma @ A.T
    sd = np.sqrt(np.diag(cov))
    N = null_space(l_vec[None, :])  # nuisance directions: post effects with l'τ = 0
    X = A[:, n_pre:] @ N if n_post > 1 else np.zeros((len(A), 0))
    V = _rays(l_vec) / (_rays(l_vec) @ sd)[:, None]
    assert np.allclose(V @ X, 0, atol=1e-12) and (V >= 0).all() and np.allclose(V @ sd, 1)
    for theta in (-1.0, 0.3, 2.5):
        y = A @ beta - A[:, n_pre:] @ (l_vec / (l_vec @ l_vec)) * theta
        eta_lp, dual = _lp_eta(y, X, sd)
        values = V @ y
        assert values.max() == pytest.approx(eta_lp, abs=1e-9)
        gamma = V[np.argmax(values)]
        assert gamma @ y == pytest.approx(dual @ y, abs=1e-8)  # the LP's dual attains the same vertex value
        # V^lo and V^up: c is a "solution" (max over the polytope of s'γ + b'γ c equals c) exactly between them
        s2 = gamma @ cov @ gamma
        b = cov @ gamma / s2
        s_T = y - b * (gamma @ y)
        W = np.column_stack([sd, X])
        slack = 1 - V @ b
        with np.errstate(divide="ignore", invalid="ignore"):  # the conditioning vertex itself has no slack
            ratio = (V @ s_T) / slack
        vlo = ratio[slack > 1e-10].max(initial=-np.inf)
        vup = ratio[slack < -1e-10].min(initial=np.inf)
        assert vlo <= eta_lp + 1e-9 <= vup + 2e-9
        for c, inside in ((vlo + 1e-4, True), (vlo - 1e-3, False), (vup - 1e-4, True), (vup + 1e-3, False)):
            if np.isfinite(c):
                assert (abs(_lp_max(s_T + b * c, W) - c) <= 1e-7) == inside, (c, vlo, vup)


def test_truncated_normal_quantile_matches_scipy_far_into_the_tails() -> None:
    ends = [(-np.inf, np.inf), (0, 1), (-1, 2), (3, np.inf), (8, 9), (30, 40), (-40, -30), (-np.inf, -5), (-3, np.inf),
            (1.5, 1.6)]
    for (low, high), p in product(ends, (0.01, 0.5, 0.9444, 0.999)):
        assert truncated_normal_quantile(p, np.array([low]), np.array([high]))[0] == pytest.approx(
            truncnorm.ppf(p, low, high), rel=1e-9, abs=1e-9), (low, high, p)
    assert np.isnan(truncated_normal_quantile(0.5, np.array([2.0]), np.array([1.0]))[0])


def test_least_favourable_draws_are_honestdids() -> None:
    """The draws are NumPy's RandomState(0).multivariate_normal, as the honestdid package makes them."""
    problem = _problem(CASES[0])
    test = problem.tests(0.5)[0]
    cov = test.sigma
    draws = np.random.RandomState(0).multivariate_normal(np.zeros(len(cov)), cov, size=1000)
    expected = float(np.quantile((draws @ test.vertices.T).max(axis=1), 1 - 0.005))
    assert test.lf_cv == pytest.approx(expected, rel=1e-12)


def test_breakdown_and_degenerate_inputs() -> None:
    times = np.arange(-4, 4)
    est = np.array([0.1, -0.1, 0.05, 0.0, 1.0, 1.2, 1.4, 1.6])
    vcov = np.eye(8) * 0.01
    vcov[3, 3] = 0  # the reference year
    s = relative_magnitudes(times, est, vcov, mbars=(0.0, 0.5, 1.0, 2.0, 4.0))
    assert s is not None and s.breakdown > 1  # a big effect after small pre-period changes
    assert all(np.diff(s.lower) < 0) and all(np.diff(s.upper) > 0)
    assert s.lower[0] > 0 and s.breakdown_interval[0] == pytest.approx(0, abs=0.02)
    null = relative_magnitudes(times, np.r_[est[:4], [0.01, -0.02, 0.0, 0.01]], vcov)
    assert null.breakdown == 0.0 and null.lower[0] < 0 < null.upper[0]
    assert relative_magnitudes(np.arange(-1, 3), est[:4], np.eye(4)) is None  # no year before the reference
    assert relative_magnitudes(np.arange(-4, 0), est[:4], np.eye(4)) is None  # no year after treatment
    # a gap in the event times: only the unbroken run around the reference year is used
    gap = relative_magnitudes(np.r_[-6, -3, -2, -1, 0, 1], np.r_[5.0, 0.1, 0.0, 0.0, 1.0, 1.2], np.eye(6) * 0.01,
                              anticipation=1)
    assert gap is not None and (gap.n_pre, gap.n_post) == (1, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        relative_magnitudes(times, est, vcov, method="FLCI")


def test_pre_period_violations_shrink_the_breakdown_value() -> None:
    """The same post effects after larger year-to-year changes before treatment survive smaller M̄."""
    times = np.arange(-5, 4)
    vcov = np.eye(9) * 0.02
    vcov[4, 4] = 0
    post = [0.8, 1.0, 1.1, 1.2]
    flat = relative_magnitudes(times, np.r_[0.05, -0.05, 0.05, -0.05, 0.0, post], vcov)
    bumpy = relative_magnitudes(times, np.r_[0.4, -0.4, 0.4, -0.4, 0.0, post], vcov)
    assert flat.breakdown > bumpy.breakdown > 0


event_studies = st.tuples(
    st.integers(1, 4), st.integers(1, 4), st.integers(0, 1),
    st.lists(st.floats(-2, 2, allow_nan=False), min_size=10, max_size=10),
    st.floats(0.05, 0.5), st.floats(0.5, 3.0))


@settings(max_examples=25, deadline=None)
@given(event_studies)
def test_confidence_sets_scale_and_mirror_with_the_data(study) -> None:
    """Scaling the estimates by c (covariance by c²) scales every interval by c and keeps the breakdown
    value; negating them mirrors every interval of the conditional test (the hybrid's least-favourable
    draws are not symmetric in the moments' order). Holds for any event study the search finds."""
    n_pre, n_post, anticipation, values, se, scale = study
    ref = -1 - anticipation
    times = np.arange(ref - n_pre, n_post)
    k = len(times)
    est = np.array(values[:k])
    est[times == ref] = 0
    rng = np.random.default_rng(k)
    L = rng.normal(0, se, (k, k))
    vcov = L @ L.T / k + se ** 2 * np.eye(k)
    vcov[times == ref, :] = 0
    vcov[:, times == ref] = 0
    mbars = (0.0, 0.5, 1.0)
    base = relative_magnitudes(times, est, vcov, mbars=mbars, anticipation=anticipation)
    scaled = relative_magnitudes(times, scale * est, scale ** 2 * vcov, mbars=mbars, anticipation=anticipation)
    conditional = relative_magnitudes(times, est, vcov, mbars=mbars, anticipation=anticipation, method="Conditional")
    mirror = relative_magnitudes(times, -est, vcov, mbars=mbars, anticipation=anticipation, method="Conditional")
    width = max(base.std_error, 1e-9)
    for i in range(len(mbars)):
        assert scaled.lower[i] == pytest.approx(scale * base.lower[i], abs=1e-4 * scale * width, nan_ok=True)
        assert scaled.upper[i] == pytest.approx(scale * base.upper[i], abs=1e-4 * scale * width, nan_ok=True)
        assert mirror.upper[i] == pytest.approx(-conditional.lower[i], abs=1e-4 * width, nan_ok=True)
        assert mirror.lower[i] == pytest.approx(-conditional.upper[i], abs=1e-4 * width, nan_ok=True)
    assert scaled.breakdown == pytest.approx(base.breakdown, abs=2e-3)
    assert mirror.breakdown == pytest.approx(conditional.breakdown, abs=2e-3)
