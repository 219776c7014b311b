"""The council-level rows (cr2, cr2_council, sign_flip, wild_bootstrap), their columns (estimand,
min_p_value, n_councils_both) and when the model stage fits them.

The cr2 and cr2_council rows are checked against R clubSandwich on the same panel
(tests/reference/cluster_robust_reference.R: ``lm(value ~ wave)`` and ``lm(value ~ wave + factor(council))``
on council x wave means, CR2, Satterthwaite)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model import fitting
from impactstudy.model.stats import council_level, permutation, tidy
from impactstudy.model.stats.paired import paired_t, wilcoxon_signed_rank
from impactstudy.study.config import Measure

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REF = json.loads((FIXTURES / "cluster_robust_reference.json").read_text())
WAVES = REF["waves"]
CONTRASTS = tidy.default_contrasts(WAVES)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "cluster_robust_data.csv")


def _row(rows: pd.DataFrame, contrast: str, group: str = "all") -> pd.Series:
    return rows[(rows["contrast"] == contrast) & (rows["group"] == group)].iloc[0]


def test_cr2_rows_are_clubsandwich_on_the_answers(panel: pd.DataFrame) -> None:
    rows = council_level.fit_cr2(panel, WAVES, CONTRASTS)
    assert tuple(rows.columns) == tidy.COLUMNS
    ref = REF["ols_cr2"]
    for contrast, k in [("early_impact - baseline", 1), ("follow_up - baseline", 2)]:
        row = _row(rows, contrast)
        got = (row["estimate"], row["std_error"], row["df"], row["p_value"])
        assert got == pytest.approx((ref["beta"][k], ref["se"][k], ref["df"][k], ref["p"][k]), rel=1e-9)
        assert row["min_p_value"] == 0.0
    other = _row(rows, "follow_up - early_impact")
    want = REF["ols_contrast"]
    assert (other["estimate"], other["std_error"], other["df"], other["ci_low"], other["ci_high"]) == pytest.approx(
        (want["est"], want["se"], want["df"], want["ci_low"], want["ci_high"]), rel=1e-9)
    grouped = council_level.fit_cr2(panel, WAVES, CONTRASTS, group="status")
    b = _row(grouped, "follow_up - baseline", "status=B")
    assert (b["estimate"], b["df"], b["p_value"]) == pytest.approx(
        (REF["group_contrast_B"]["est"], REF["group_contrast_B"]["df"], REF["group_contrast_B"]["p"]), rel=1e-9)


def test_cr2_council_rows_are_clubsandwich_on_council_means_with_fixed_effects(panel: pd.DataFrame) -> None:
    rows = council_level.fit_cr2_council(panel, WAVES, CONTRASTS)
    ref = REF["fe_cr2"]
    for contrast, k in [("early_impact - baseline", 0), ("follow_up - baseline", 1)]:
        row = _row(rows, contrast)
        got = (row["estimate"], row["std_error"], row["df"], row["p_value"])
        assert got == pytest.approx((ref["beta"][k], ref["se"][k], ref["df"][k], ref["p"][k]), rel=1e-9)
    # counts are the answers and councils at the two waves, as every other model's
    assert _row(rows, "follow_up - baseline")["n_obs"] == int(panel["wave"].isin(["follow_up", "baseline"]).sum())


def test_council_weighted_rows_agree_where_they_estimate_the_same_thing() -> None:
    """Every council at both of two waves: cr2_council = paired t (estimate, SE, df, p); sign_flip has the
    same estimate, its exact p and floor; the Wilcoxon row states its floor too."""
    rng = np.random.default_rng(4)
    rows = [{"council_code": f"C{c}", "respondent_id": f"{c}-{r}", "wave": w, "value": float(v)}
            for c in range(6) for r in range(rng.integers(1, 5)) for w, v in
            zip(["w1", "w2"], [rng.integers(1, 6), rng.integers(2, 6)])]
    data = pd.DataFrame(rows)
    pairs = [("w2", "w1")]
    t = paired_t(data, ["w1", "w2"], pairs).iloc[0]
    fe = council_level.fit_cr2_council(data, ["w1", "w2"], pairs).iloc[0]
    flip = council_level.sign_flip_rows(data, ["w1", "w2"], pairs).iloc[0]
    wil = wilcoxon_signed_rank(data, ["w1", "w2"], pairs).iloc[0]
    for key in ("estimate", "std_error", "df", "p_value", "ci_low", "ci_high"):
        assert fe[key] == pytest.approx(t[key], rel=1e-9), key
    means = data.groupby(["council_code", "wave"])["value"].mean().unstack()
    exact = permutation.sign_flip((means["w2"] - means["w1"]).to_numpy())
    assert (flip["estimate"], flip["p_value"], flip["min_p_value"]) == pytest.approx(
        (t["estimate"], exact.p_value, exact.min_p_value))
    assert flip["n_councils_both"] == t["n_councils_both"] == 6
    nonzero = int(np.count_nonzero(np.round(means["w2"] - means["w1"], 12)))
    assert wil["min_p_value"] == pytest.approx(2.0 ** (1 - nonzero))


def test_wild_bootstrap_rows_state_their_floor_and_the_interval_inverting_the_test(panel: pd.DataFrame) -> None:
    rows = council_level.wild_bootstrap_rows(panel, WAVES, CONTRASTS)
    row = _row(rows, "follow_up - baseline")
    n = panel["council_code"].nunique()
    assert row["min_p_value"] == pytest.approx(2 / 6**n)
    assert row["min_p_value"] <= row["p_value"] <= 1
    assert row["ci_low"] < row["estimate"] < row["ci_high"] and "interval inverts the test" in row["correction"]
    assert (row["ci_low"] > 0 or row["ci_high"] < 0) == (row["p_value"] <= 0.05)  # 0 outside: the test rejects
    assert row["estimate"] == pytest.approx(REF["ols_cr2"]["beta"][2])


@pytest.mark.parametrize("model", ["paired_t", "wilcoxon", "sign_flip", "cr2", "cr2_council", "wild_bootstrap"])
def test_fewer_than_three_councils_at_both_waves_is_not_estimable(model: str) -> None:
    data = pd.DataFrame({"council_code": ["A", "A", "B", "B", "C"], "respondent_id": [1, 2, 3, 4, 5],
                         "wave": ["w1", "w2", "w1", "w2", "w1"], "value": [1.0, 3.0, 2.0, 5.0, 4.0]})
    function = {**council_level.MODELS, "paired_t": paired_t, "wilcoxon": wilcoxon_signed_rank}[model]
    row = function(data, ["w1", "w2"], [("w2", "w1")]).iloc[0]
    assert math.isnan(row["estimate"]) or math.isnan(row["ci_low"])
    assert math.isnan(row["p_value"]) and math.isnan(row["ci_high"])
    assert "not estimable with 2 councils" in row["warning"] and "at least 3" in row["warning"]
    assert row["n_councils_both"] == 2


def test_council_level_models_are_fitted_only_below_few_councils(panel: pd.DataFrame) -> None:
    measure = Measure(name="m", label="M", type="likert", columns={}, levels=(1, 2, 3, 4, 5))
    assert set(fitting.COUNCIL_LEVEL_MODELS) <= set(fitting.fitted_models(measure, panel, few_councils=20))
    assert fitting.fitted_models(measure, panel, few_councils=5) == fitting.models_for(measure)


@pytest.mark.parametrize(("model", "kind", "group", "want"), [
    ("lmm", "likert", "all", "respondent-weighted mean change"),
    ("gee_ipw", "numeric", "all", "respondent-weighted mean change"),
    ("cr2_council", "likert", "status=A", "council-weighted mean change"),
    ("sign_flip", "binary", "all", "council-weighted difference in proportions"),
    ("wilcoxon", "likert", "all", "pseudo-median shift of council changes"),
    ("ordinal", "likert", "all", "council-weighted log odds ratio (councils at both waves)"),
    ("mcnemar", "binary", "all", "difference in proportions (respondents at both waves)"),
    ("lmm", "likert", "status=B - status=A", "difference between groups in respondent-weighted mean change"),
])
def test_every_row_names_its_estimand(model: str, kind: str, group: str, want: str) -> None:
    assert fitting.estimand(model, kind, group) == want
