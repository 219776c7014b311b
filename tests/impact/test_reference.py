"""Every unconditional ATT(g, t) equals R's plain lm() 2x2 regression (tests/reference/impact_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.impact import estimate as E
from impactstudy.impact.panel import Panel
from impactstudy.impact.randomisation import att_gt

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"


@pytest.fixture(scope="module")
def reference() -> tuple[Panel, pd.DataFrame]:
    frame = pd.read_csv(FIXTURES / "impact_panel.csv", dtype={"council_code": str})
    panel = Panel("y", frame[["council_code", "year", "y", "cohort"]], tuple(sorted(frame["year"].unique())))
    return panel, pd.read_csv(FIXTURES / "impact_att_gt.csv")


@pytest.mark.parametrize("comparison", E.COMPARISONS)
@pytest.mark.parametrize("anticipation", [0, 1])
def test_csdid_att_gt_equals_r_lm_2x2(reference, comparison: str, anticipation: int) -> None:
    panel, expected = reference
    want = expected.query("comparison == @comparison and anticipation == @anticipation")
    want = want.set_index(["cohort", "year"])
    fit = E.callaway_santanna(panel, E.DidOptions(comparison=comparison, anticipation=anticipation, bootstrap=49))
    rows = fit.rows.query("aggregation == 'group_time'")
    got = rows.assign(year=(rows["cohort"] + rows["event_time"]).astype(int), cohort=rows["cohort"].astype(int))
    got = got.set_index(["cohort", "year"])
    assert sorted(got.index) == sorted(want.index)
    np.testing.assert_allclose(got.loc[want.index, "estimate"], want["att"], atol=1e-8, rtol=0)
    np.testing.assert_array_equal(got.loc[want.index, "n_treated"], want["n_treated"])
    np.testing.assert_array_equal(got.loc[want.index, "n_comparison"], want["n_comparison"])
    Y, cohort, _ = panel.matrix()
    closed = att_gt(Y, cohort, np.asarray(panel.years), comparison, anticipation)
    np.testing.assert_allclose([closed[k] for k in want.index], want["att"], atol=1e-8, rtol=0)
