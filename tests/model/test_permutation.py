"""Exact council-level tests: sign-flip test and Hartigan interval, wild cluster bootstrap (Webb), and
the exact conditional Wilcoxon test with ties, against R (tests/reference/permutation_reference.R:
enumeration and coin's exact conditional distribution), scipy's permutation_test and wildboottest."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from impactstudy.model.stats import permutation
from impactstudy.model.stats.paired import conditional_p_value, hodges_lehmann
from impactstudy.model.stats.permutation import sign_flip, wcr_t_statistics, wild_cluster_bootstrap

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REF = json.loads((FIXTURES / "permutation_reference.json").read_text())


def _nan(value: object) -> float:
    return float("nan") if value is None else float(value)


def _level(warning: str, requested: float = 0.95) -> float | None:
    """The interval level a row's warning states (None: no interval)."""
    if "not available" in warning:
        return None
    if "not achievable" in warning:
        return float(warning.rsplit("the CI is a ", 1)[1].split()[0])
    return requested


@pytest.mark.parametrize("case", REF["sign_flip"], ids=lambda c: f"n{len(c['x'])}")
def test_sign_flip_matches_r_enumeration(case: dict) -> None:
    res = sign_flip(np.array(case["x"], dtype=float))
    assert res.p_value == pytest.approx(case["p"], rel=1e-12)
    assert res.min_p_value == pytest.approx(case["min_p"], rel=1e-12)
    assert res.estimate == pytest.approx(np.mean(case["x"]))
    want_level = case["level"]
    if want_level is None:
        assert math.isnan(res.ci_low) and "not available with 3 councils" in res.warning
    else:
        assert (res.ci_low, res.ci_high) == pytest.approx((case["ci"][0], case["ci"][1]), rel=1e-12)
        assert res.conf_level == pytest.approx(want_level)
        assert _level(res.warning) == pytest.approx(want_level)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-30, 30), min_size=2, max_size=11))
def test_sign_flip_p_is_scipys_exact_permutation_test(values: list[int]) -> None:
    # integers: sums are exact, so scipy (whose tie tolerance is relative to the observed statistic) and
    # this module (relative to the changes' scale) count the same ties; with a mean of 0 in floating
    # point noise scipy can miss ties that are there
    d = np.array(values, dtype=float)
    ours = sign_flip(d)
    theirs = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                    vectorized=True, n_resamples=np.inf)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)
    assert ours.p_value >= ours.min_p_value - 1e-12


def test_five_councils_cannot_reach_p_below_0_0625_however_large_the_change() -> None:
    res = sign_flip(np.array([2.0, 2.5, 3.0, 3.5, 4.0]))
    assert res.p_value == res.min_p_value == 0.0625
    assert res.conf_level == 0.9375 and (res.ci_low, res.ci_high) == (2.0, 4.0)


def test_hartigan_interval_covers_at_its_stated_level() -> None:
    """Seeded simulation: symmetric council changes around 0.3, six councils (a 95% level is reached)."""
    rng = np.random.default_rng(11)
    covered = [(r.ci_low <= 0.3 <= r.ci_high) for r in (sign_flip(rng.normal(0.3, 1.0, 6)) for _ in range(400))]
    assert 0.93 <= np.mean(covered) <= 0.995


@pytest.mark.parametrize("case", REF["wilcoxon"], ids=lambda c: f"n{len(c['x'])}")
def test_wilcoxon_with_ties_uses_the_exact_conditional_distribution_as_coin(case: dict) -> None:
    hl = hodges_lehmann(np.array(case["x"], dtype=float))
    assert hl.p_value == pytest.approx(case["p"], rel=1e-9)
    assert hl.p_value == pytest.approx(case["p_enumerated"], rel=1e-9)
    assert hl.estimate == pytest.approx(case["estimate"], rel=1e-12)
    assert _level(hl.warning) == (None if case["level"] is None else pytest.approx(case["level"]))
    got = (hl.ci_low, hl.ci_high)
    want = (_nan(case["ci"][0]), _nan(case["ci"][1]))
    assert got == pytest.approx(want, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("panel", ["models_data", "demo_panel"])
def test_wilcoxon_on_council_means_of_the_reference_panels_matches_coin(panel: str) -> None:
    """Tie cases of the committed panels (tests/model/test_models_*.py fit them): p, estimate and interval."""
    import pandas as pd

    data = pd.read_csv(FIXTURES / ("models_data.csv" if panel == "models_data" else "demo_panel.csv"))
    for case in REF[panel]:
        d = data[data["value"].notna()]
        if case["measure"]:
            d = d[d["measure"] == case["measure"]]
        if case["group"] != "all":
            d = d[d["status"] == case["group"].split("=", 1)[1]]
        later, earlier = case["contrast"].split(" - ")
        means = d.groupby(["council_code", "wave"])["value"].mean().unstack()
        diff = (means[later] - means[earlier]).dropna().to_numpy()
        assert len(diff) == case["n"]
        hl = hodges_lehmann(diff)
        where = f"{case['measure']} {case['contrast']} {case['group']}"
        assert hl.p_value == pytest.approx(case["p"], rel=1e-9), where
        assert hl.estimate == pytest.approx(case["estimate"], rel=1e-12), where
        assert (hl.ci_low, hl.ci_high) == pytest.approx((_nan(case["ci"][0]), _nan(case["ci"][1])), rel=1e-9,
                                                        nan_ok=True), where


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-4, 4).filter(bool), min_size=1, max_size=10))
def test_conditional_p_value_is_the_enumerated_sign_pattern_distribution(values: list[int]) -> None:
    x = np.array(values, dtype=float)
    ranks = stats.rankdata(np.abs(x))
    observed = ranks[x > 0].sum()
    centre = ranks.sum() / 2
    patterns = np.array(list(itertools.product([0, 1], repeat=len(x))))
    extreme = np.abs(patterns @ ranks - centre) >= abs(observed - centre) - 1e-9
    assert conditional_p_value(x) == pytest.approx(extreme.mean(), abs=1e-12)


def test_three_councils_get_no_interval_and_no_zero_width_one() -> None:
    hl = hodges_lehmann(np.array([0.5, 0.5, 0.5]))
    assert math.isnan(hl.ci_low) and math.isnan(hl.ci_high)
    assert hl.warning.startswith("interval not available with 3 councils")


# ---- wild cluster bootstrap ------------------------------------------------------------------------------

def _panel(G: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, G, n)
    cluster[:G] = np.arange(G)
    wave = rng.integers(0, 3, n)
    X = np.column_stack([np.ones(n), wave == 1, wave == 2]).astype(float)
    y = 3 + 0.3 * (wave == 2) + rng.normal(0, 0.5, G)[cluster] + rng.normal(size=n)
    return X, y, cluster


def test_wild_bootstrap_t_statistics_are_wildboottests_for_the_same_weights() -> None:
    wb_module = pytest.importorskip("wildboottest.wildboottest")
    X, y, cluster = _panel(6, 150, 5)
    R = np.array([0.0, -1.0, 1.0])
    wb = wb_module.WildboottestCL(X=X, Y=y, cluster=cluster, R=R, B=499, seed=3, parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    wb.get_weights(weights_type="webb")
    for step in (wb.get_numer, wb.get_denom, wb.get_tboot, wb.get_vcov, wb.get_tstat, wb.get_pvalue):
        step()
    estimate, t_stat, t_boot = wcr_t_statistics(X, y, cluster, R, wb.v)
    assert t_stat == pytest.approx(float(wb.t_stat), rel=1e-10)
    np.testing.assert_allclose(t_boot, wb.t_boot, rtol=1e-9)
    assert np.mean(np.abs(t_stat) < np.abs(t_boot)) == pytest.approx(wb.pvalue)
    assert estimate == pytest.approx(R @ np.linalg.lstsq(X, y, rcond=None)[0])


def test_wild_bootstrap_enumerates_every_webb_vector_with_few_councils() -> None:
    X, y, cluster = _panel(5, 120, 8)
    res = wild_cluster_bootstrap(X, y, cluster, np.array([0.0, 0.0, 1.0]))
    assert res.enumerated and res.draws == 6**5
    assert res.min_p_value == pytest.approx(2 / 6**5)
    assert res.min_p_value <= res.p_value <= 1
    again = wild_cluster_bootstrap(X, y, cluster, np.array([0.0, 0.0, 1.0]), seed=99)
    assert again.p_value == res.p_value  # enumeration: no randomness at all


def test_wild_bootstrap_with_more_councils_draws_seeded_webb_weights() -> None:
    X, y, cluster = _panel(12, 300, 2)
    res = wild_cluster_bootstrap(X, y, cluster, np.array([0.0, 0.0, 1.0]))
    assert not res.enumerated and res.draws == permutation.BOOTSTRAP_DRAWS
    assert res.min_p_value == pytest.approx(1 / (permutation.BOOTSTRAP_DRAWS + 1))
    assert wild_cluster_bootstrap(X, y, cluster, np.array([0.0, 0.0, 1.0])).p_value == res.p_value


@pytest.mark.parametrize("G, seed", [(5, 8), (6, 3), (12, 2)])
def test_wild_bootstrap_interval_is_every_value_its_test_does_not_reject(G: int, seed: int) -> None:
    """The bounds invert the test: just inside, the bootstrap test of ``L beta = r`` (run the plain way,
    on ``y - r X L / L'L``) does not reject at 5%; just outside it does."""
    X, y, cluster = _panel(G, 40 * G, seed)
    L = np.array([0.0, -1.0, 1.0])
    res = wild_cluster_bootstrap(X, y, cluster, L, conf_level=0.95)
    assert res.ci_low < res.estimate < res.ci_high
    crv1 = abs(res.estimate / res.t_stat)
    assert 1.0 < (res.ci_high - res.ci_low) / (2 * 1.96 * crv1) < 3.0  # wider than the normal CRV1 interval

    def p_at(r: float) -> float:
        return wild_cluster_bootstrap(X, y - r * (X @ L) / (L @ L), cluster, L).p_value

    for bound, outward in ((res.ci_low, -1.0), (res.ci_high, 1.0)):
        eps = 2e-6 * crv1  # the bounds are found to 1e-6 standard errors
        assert p_at(bound - outward * eps) > 0.05
        assert p_at(bound + outward * eps) <= 0.05
    assert np.isnan(wild_cluster_bootstrap(X, y, cluster, L).ci_low)  # no level asked: no interval


def test_interval_levels_follow_one_rule() -> None:
    assert permutation.interval_level(0.97) == 0.95
    assert permutation.interval_level(0.875) == 0.875
    assert permutation.interval_level(0.75) is None
    assert "not available with 3 councils" in permutation.level_warning(None, 0.95, 3)
