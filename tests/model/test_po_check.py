"""The proportional-odds check against R: ordinal::nominal_test, and the cut-specific log odds ratios
with their clustered Brant-type test (glm + sandwich::vcovCL): tests/reference/po_check_reference.R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model.stats import po_check, tidy

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "po_check_reference.json").read_text())
WAVES = ["baseline", "early_impact", "follow_up"]
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_check_matches_r(measure):
    rows = po_check.check_rows(measure, PANEL[PANEL["measure"] == measure], WAVES, tidy.default_contrasts(WAVES),
                               [1.0, 2.0, 3.0, 4.0, 5.0], few_councils=20)
    expected = REFERENCE[measure]
    nominal = rows[rows["kind"] == "nominal"].iloc[0]
    assert nominal["statistic"] == pytest.approx(expected["nominal"]["statistic"], rel=1e-6)
    assert nominal["df"] == expected["nominal"]["df"]
    assert nominal["p_value"] == pytest.approx(expected["nominal"]["p_value"], rel=1e-6)
    cuts = rows[rows["kind"] == "cut"].set_index(["contrast", "cut"])
    for row in expected["cuts"]:
        mine = cuts.loc[(row["contrast"], float(row["cut"]))]
        # R's glm stops at its default tolerance (1e-8 on the deviance): agreement ~1e-8
        assert mine["estimate"] == pytest.approx(row["estimate"], rel=1e-6)
        assert mine["std_error"] == pytest.approx(row["std_error"], rel=1e-6)
    brant = rows[rows["kind"] == "brant"].set_index("contrast")
    for row in expected["brant"]:
        assert brant.loc[row["contrast"], "statistic"] == pytest.approx(row["statistic"], rel=1e-5)
        assert brant.loc[row["contrast"], "df"] == row["df"]
        assert brant.loc[row["contrast"], "p_value"] == pytest.approx(row["p_value"], rel=1e-5)
    assert "sparse" in nominal["warning"]


def test_a_shift_at_one_cut_only_fails_the_check():
    """Answers move from 2 to 3 between waves and nowhere else: proportional odds is wrong."""
    rng = np.random.default_rng(5)
    councils = np.repeat([f"c{k}" for k in range(40)], 10)
    base = rng.choice([1, 2, 3, 4], size=400, p=[0.25, 0.25, 0.25, 0.25])
    fresh = rng.choice([1, 2, 3, 4], size=400, p=[0.25, 0.25, 0.25, 0.25])  # new respondents at follow-up
    follow = np.where(fresh == 2, 3, fresh)
    data = pd.DataFrame({"council_code": np.r_[councils, councils], "respondent_id": np.arange(800),
                         "wave": np.repeat(["b", "f"], 400), "value": np.r_[base, follow].astype(float)})
    rows = po_check.check_rows("m", data, ["b", "f"], [("f", "b")], [1.0, 2.0, 3.0, 4.0])
    assert rows.loc[rows["kind"] == "brant", "p_value"].iloc[0] < 1e-6
    cut3 = rows[(rows["kind"] == "cut") & (rows["cut"] == 3.0)].iloc[0]
    cut4 = rows[(rows["kind"] == "cut") & (rows["cut"] == 4.0)].iloc[0]
    assert cut3["estimate"] > 1.0 and cut4["ci_low"] < 0 < cut4["ci_high"]


def test_few_councils_use_f_with_g_minus_one_df():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"council_code": np.tile(np.repeat(list("abcdef"), 8), 2), "respondent_id": np.arange(96),
                         "wave": np.repeat(["b", "f"], 48), "value": rng.integers(1, 5, size=96).astype(float)})
    rows = po_check.cut_rows(data, ["b", "f"], [("f", "b")], [1.0, 2.0, 3.0, 4.0], few_councils=40)
    brant = rows[rows["kind"] == "brant"].iloc[0]
    assert brant["den_df"] == 5 and brant["df"] == 2
