"""One outcome end to end: estimators agree once anticipation absorbs the pre-review dip; the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from impact_panels import make_panel

from impactstudy.impact import estimate as E
from impactstudy.impact.analysis import Rules, analyse_outcome, verdict
from impactstudy.demo.panels import OutcomeModel, true_att

DIP = OutcomeModel("rate", "A rate", level=50, council_sd=5, trend=0.3, noise_sd=1.5, gain=4, dip=4)


@pytest.fixture(scope="module")
def dip_results():
    panel = make_panel(seed=2, n=150, n_treated=40, cohorts=(2013, 2014), model=DIP)
    options = E.DidOptions(anticipation=1, window=(-4, 6), bootstrap=199)
    return panel, *analyse_outcome(panel, options, Rules(permutations=199))


def test_estimators_agree_and_the_naive_before_after_overstates(dip_results) -> None:
    panel, table, summary = dip_results
    assert set(table.columns) == set(E.RESULT_COLUMNS)
    est = {k: v["estimate"] for k, v in summary["estimators"].items() if v}
    truth = true_att(DIP, [2013, 2014], panel.years)
    sizes = panel.cohorts[panel.cohorts > 0].value_counts()
    target = sum(sizes[g] * np.mean([v for (gg, _t), v in truth.items() if gg == g]) for g in sizes.index) / sizes.sum()
    cs = summary["estimators"][E.CS]
    assert cs["ci_low"] < target < cs["ci_high"]
    for name in ("gardner", "sun_abraham"):
        assert abs(est[name] - est[E.CS]) < 0.5, (name, est)
    assert est["before_after"] > cs["ci_high"]  # the rebound from the dip counted as effect
    assert summary["randomisation"]["p_space"] == pytest.approx(1 / 200)
    assert summary["pretrend"]["df"] == 2  # event times -4, -3 against the reference -2
    assert summary["sensitivity"]["breakdown"] > 0


def test_ignoring_the_dip_biases_cs_upwards(dip_results) -> None:
    panel, _table, summary = dip_results
    naive, _ = analyse_outcome(panel, E.DidOptions(anticipation=0, bootstrap=49), Rules(permutations=9))
    overall = naive.query("estimator == @E.CS and aggregation == 'overall'")["estimate"].iloc[0]
    assert overall > summary["overall"]["ci_high"]


def test_verdict_reasons() -> None:
    row = pd.Series({"ci_low": 0.5, "ci_high": 2.0})
    assert verdict(row, 0.4, 1.2, Rules(), 40, 0.001) == {"causal": True, "reasons": [], "excludes_zero": True}
    weak = verdict(row, 0.01, 0.1, Rules(), 6, 0.2)
    assert not weak["causal"] and len(weak["reasons"]) == 3
    assert "6 treated councils" in weak["reasons"][2]
    null = verdict(pd.Series({"ci_low": -0.5, "ci_high": 2.0}), 0.4, 0.0, Rules(), 40, 0.5)
    assert null["reasons"] == ["the 95% interval includes no effect"]
