"""Delta-adjusted multiple imputation and its tipping point: Rubin's rules against R mice::pool.scalar,
the imputations against R mice(method = "norm") with a delta-shifting `post` (Monte Carlo, loosely),
and what a tipping point must satisfy (tests/reference/tipping_reference.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model.stats import tipping
from impactstudy.model.stats.cluster_robust import cr2_vcov

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "tipping_reference.json").read_text())
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")
LEADERSHIP = PANEL[PANEL["measure"] == "eff_leadership"]


def test_rubins_rules_match_mice():
    ref = REFERENCE["pool"]
    pooled = tipping.rubin(np.array(ref["Q"]), np.array(ref["U"]), ref["complete_df"])
    assert pooled.estimate == pytest.approx(ref["qbar"], rel=1e-12)
    assert pooled.std_error ** 2 == pytest.approx(ref["t"], rel=1e-12)
    assert pooled.df == pytest.approx(ref["df"], rel=1e-10)


def test_imputations_agree_with_mice_and_move_linearly_with_delta():
    ref = REFERENCE["mi"]
    draws, reason, n_cohort, n_imputed = tipping.imputed_change(LEADERSHIP, "baseline", "follow_up", ["status"], 400,
                                                                np.random.default_rng(5))
    assert reason == "" and (n_cohort, n_imputed) == (ref["n_cohort"], ref["n_missing"])
    assert draws.sd == pytest.approx(ref["sd"], rel=1e-12)
    at0, at_half = draws.at(0.0), draws.at(-0.5)
    assert at0.estimate == pytest.approx(ref["estimate_0"], abs=0.02)  # Monte Carlo error ~0.005
    assert at_half.estimate == pytest.approx(ref["estimate_minus_half"], abs=0.02)
    assert at0.estimate - at_half.estimate == pytest.approx(0.5 * draws.sd * n_imputed / n_cohort, rel=1e-10)


def test_tipping_point_is_where_the_interval_reaches_zero():
    rows = tipping.tipping_rows("eff_leadership", LEADERSHIP, ["baseline", "follow_up"], ["status"])
    row = rows.iloc[0]
    assert row["conclusion"] == "clear rise" and row["delta_down"] < 0 and np.isnan(row["delta_up"])
    draws, *_ = tipping.imputed_change(LEADERSHIP, "baseline", "follow_up", ["status"], 50,
                                       np.random.default_rng([20130401, int.from_bytes(b"eff_lead", "little"), 1]))
    assert draws.at(row["delta_down"]).ci_low == pytest.approx(0.0, abs=1e-3)
    assert draws.at(row["delta_down"] / 2).ci_low > 0 and draws.at(row["delta_down"] * 1.1).ci_low < 0
    assert row["points_down"] == pytest.approx(row["delta_down"] * row["sd"])


def test_cr2_of_a_mean_is_the_general_cr2():
    rng = np.random.default_rng(3)
    council = rng.integers(0, 8, size=70)
    resid = rng.normal(size=70)
    resid -= resid.mean()
    codes, factor, df = tipping._cr2_mean(council)
    general = cr2_vcov(np.ones((70, 1)), resid, council)
    assert np.sum(np.bincount(codes, weights=resid) ** 2 * factor) == pytest.approx(general.vcov[0, 0], rel=1e-12)
    assert df == pytest.approx(general.bm_df(np.ones(1)), rel=1e-12)


def test_nothing_missing_means_nothing_to_tip():
    complete = LEADERSHIP[LEADERSHIP["respondent_id"].isin(
        set(LEADERSHIP.loc[LEADERSHIP["wave"] == "baseline", "respondent_id"])
        & set(LEADERSHIP.loc[LEADERSHIP["wave"] == "follow_up", "respondent_id"]))]
    row = tipping.tipping_rows("m", complete, ["baseline", "follow_up"]).iloc[0]
    assert row["n_imputed"] == 0 and np.isnan(row["delta_down"]) and "nothing depends" in row["warning"]
