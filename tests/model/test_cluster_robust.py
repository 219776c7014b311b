"""CR2 / CR3 cluster-robust covariance and Bell–McCaffrey degrees of freedom against R clubSandwich.

Reference values come from tests/reference/cluster_robust_reference.R (clubSandwich ``vcovCR``,
``coef_test(test = "Satterthwaite")``, ``linear_contrast``), stored as JSON so these tests run without R.
Agreement is ~1e-15; the tolerances are 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from impactstudy.model.stats.cluster_robust import cluster_robust_vcov, cr2_vcov, cr3_vcov, wls

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REF = json.loads((FIXTURES / "cluster_robust_reference.json").read_text())
DATA = pd.read_csv(FIXTURES / "cluster_robust_data.csv")
MEANS = pd.read_csv(FIXTURES / "cluster_robust_means.csv")
WAVES = REF["waves"]


def _design(d: pd.DataFrame, group: bool = False) -> np.ndarray:
    """R's model.matrix of value ~ wave (* status), treatment coding."""
    cols = [np.ones(len(d))] + [(d["wave"] == w).to_numpy(float) for w in WAVES[1:]]
    if group:
        b = (d["status"] == "B").to_numpy(float)
        cols += [b] + [(d["wave"] == w).to_numpy(float) * b for w in WAVES[1:]]
    return np.column_stack(cols)


def _fit(X: np.ndarray, d: pd.DataFrame, weighted: bool, kind: str):
    w = d["weight"].to_numpy() if weighted else None
    beta, resid = wls(X, d["value"].to_numpy(), w)
    return beta, cluster_robust_vcov(X, resid, d["council_code"].to_numpy(), w, kind)


@pytest.mark.parametrize(("case", "group", "weighted", "kind"), [
    ("ols_cr2", False, False, "CR2"), ("ols_cr3", False, False, "CR3"), ("wls_cr2", False, True, "CR2"),
    ("wls_cr3", False, True, "CR3"), ("group_cr2", True, False, "CR2")])
def test_coefficients_vcov_and_bm_df_match_clubsandwich(case: str, group: bool, weighted: bool, kind: str) -> None:
    ref = REF[case]
    beta, cr = _fit(_design(DATA, group), DATA, weighted, kind)
    np.testing.assert_allclose(beta, ref["beta"], rtol=1e-9)
    np.testing.assert_allclose(cr.vcov, np.array(ref["vcov"]), rtol=1e-9, atol=1e-14)
    for i, (se, df, p) in enumerate(zip(ref["se"], ref["df"], ref["p"])):
        row = cr.test(np.eye(len(beta))[i], beta)
        assert row["std_error"] == pytest.approx(se, rel=1e-9)
        assert row["df"] == pytest.approx(df, rel=1e-9)
        assert row["p_value"] == pytest.approx(p, rel=1e-8)


@pytest.mark.parametrize(("case", "group"), [("ols_contrast", False), ("group_contrast_A", True),
                                             ("group_contrast_B", True)])
def test_linear_contrasts_match_clubsandwich_linear_contrast(case: str, group: bool) -> None:
    ref = REF[case]
    beta, cr = _fit(_design(DATA, group), DATA, False, "CR2")
    row = cr.test(np.array(ref["L"][0], dtype=float), beta)
    for key, want in [("estimate", ref["est"]), ("std_error", ref["se"]), ("df", ref["df"]),
                      ("ci_low", ref["ci_low"]), ("ci_high", ref["ci_high"]), ("p_value", ref["p"])]:
        assert row[key] == pytest.approx(want, rel=1e-8), key
    # within one status level the contrast rests on that level's councils: far fewer df than G - 1
    assert row["df"] < len(set(DATA["council_code"])) - 1


def test_absorbed_council_fixed_effects_use_the_pseudo_inverse_square_root_as_clubsandwich() -> None:
    """Council dummies make I - H_jj singular; clubSandwich's Sym_power drops the zero eigenvalues."""
    m = MEANS
    X = np.column_stack([_design(m), pd.get_dummies(m["council_code"], drop_first=True).to_numpy(float)])
    beta, resid = wls(X, m["value"].to_numpy())
    cr = cr2_vcov(X, resid, m["council_code"].to_numpy())
    ref = REF["fe_cr2"]
    for i, (b, se, df, p) in enumerate(zip(ref["beta"], ref["se"], ref["df"], ref["p"]), start=1):
        row = cr.test(np.eye(X.shape[1])[i], beta)
        assert (row["estimate"], row["std_error"], row["df"], row["p_value"]) == pytest.approx((b, se, df, p), rel=1e-8)


def test_two_waves_with_council_fixed_effects_is_the_paired_t_test() -> None:
    """Balanced council x wave means, council dummies: CR2 + BM df reduce to the paired t test on the
    council changes (same estimate, SE, df = n - 1 and p) -- the council-weighted change."""
    rng = np.random.default_rng(3)
    n = 6
    before, after = rng.normal(3, 0.5, n), rng.normal(3.4, 0.5, n)
    y = np.concatenate([before, after])
    council = np.tile(np.arange(n), 2)
    X = np.column_stack([np.ones(2 * n), np.repeat([0.0, 1.0], n), np.eye(n)[council][:, 1:]])
    beta, resid = wls(X, y)
    row = cr2_vcov(X, resid, council).test(np.eye(X.shape[1])[1], beta)
    t = stats.ttest_rel(after, before)
    assert row["estimate"] == pytest.approx(np.mean(after - before), rel=1e-12)
    assert row["std_error"] == pytest.approx(stats.sem(after - before), rel=1e-10)
    assert row["df"] == pytest.approx(n - 1, rel=1e-10)
    assert row["p_value"] == pytest.approx(t.pvalue, rel=1e-9)


def test_results_do_not_depend_on_row_order_cluster_labels_or_weight_scale() -> None:
    X = _design(DATA)
    y, w = DATA["value"].to_numpy(), DATA["weight"].to_numpy()
    clusters = DATA["council_code"].to_numpy()
    beta, resid = wls(X, y, w)
    ref = cr2_vcov(X, resid, clusters, w)
    order = np.random.default_rng(7).permutation(len(y))
    beta2, resid2 = wls(X[order], y[order], 3.5 * w[order])
    other = cr2_vcov(X[order], resid2, pd.factorize(clusters[order])[0], 3.5 * w[order])
    L = np.array([0.0, -1.0, 1.0])
    np.testing.assert_allclose(other.vcov, ref.vcov, rtol=1e-10)
    assert other.bm_df(L) == pytest.approx(ref.bm_df(L), rel=1e-10)
    np.testing.assert_allclose(beta2, beta, rtol=1e-12)


def test_cr3_is_more_conservative_than_cr2_here_and_unknown_types_are_refused() -> None:
    X = _design(DATA)
    beta, resid = wls(X, DATA["value"].to_numpy())
    clusters = DATA["council_code"].to_numpy()
    assert np.all(np.diag(cr3_vcov(X, resid, clusters).vcov) > np.diag(cr2_vcov(X, resid, clusters).vcov))
    with pytest.raises(ValueError, match="unknown cluster-robust type"):
        cluster_robust_vcov(X, resid, clusters, type="CR1")
    with pytest.raises(ValueError, match="at least two clusters"):
        cr2_vcov(X, resid, np.zeros(len(resid)))
    with pytest.raises(ValueError, match="positive weights"):
        cr2_vcov(X, resid, clusters, np.zeros(len(resid)))
