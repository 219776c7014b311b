"""ICC with Searle's interval, baseline SDs and the minimum detectable effect against R
(tests/reference/precision_reference.R); effect sizes as contrasts over the SD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model.stats import precision

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "precision_reference.json").read_text())
WAVES = ["baseline", "early_impact", "follow_up"]
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_icc_and_sd_match_r(measure):
    data = PANEL[PANEL["measure"] == measure]
    rows = precision.icc_rows(measure, data, WAVES).set_index("wave")
    for row in REFERENCE[measure]["icc"]:
        mine = rows.loc[row["wave"]]
        for key in ("icc", "ci_low", "ci_high"):
            assert mine[key] == pytest.approx(row[key], abs=1e-10)
        assert (mine["n_obs"], mine["n_councils"]) == (row["n_obs"], row["n_councils"])
    assert precision.baseline_sd(data, WAVES) == pytest.approx(REFERENCE[measure]["sd"], rel=1e-12)


@pytest.mark.parametrize("case", REFERENCE["mde"], ids=lambda c: str(c["councils"]))
def test_minimum_detectable_effect_matches_r(case):
    assert precision.minimum_detectable_effect(case["councils"], case["per_council"], case["icc"]) == pytest.approx(
        case["mde"], rel=1e-10)


def test_mde_shrinks_with_councils_and_grows_with_icc():
    mde = precision.minimum_detectable_effect
    assert mde(6, 3, 0.1) > mde(40, 3, 0.1) > mde(150, 3, 0.1)
    assert mde(40, 10, 0.3) > mde(40, 10, 0.05)
    assert np.isnan(mde(1, 3, 0.1))


def test_icc_of_identical_councils_is_zero_with_a_note_and_of_separate_councils_near_one():
    rng = np.random.default_rng(1)
    council = np.repeat(np.arange(30), 5)
    none = precision.icc_anova(rng.normal(size=150), council)
    assert 0 <= none["icc"] < 0.3 and none["ci_low"] == 0
    strong = precision.icc_anova(np.repeat(rng.normal(size=30) * 10, 5) + rng.normal(size=150) * 0.1, council)
    assert strong["icc"] > 0.99 and strong["ci_low"] > 0.98


def test_effect_sizes_divide_by_the_sd():
    contrasts = pd.DataFrame({"measure": ["a", "a", "b"], "model": ["lmm", "ordinal", "gee"], "contrast": ["f - b"] * 3,
                              "group": ["all"] * 3, "estimate": [0.5, 1.0, 2.0], "ci_low": [0.1, 0.2, 1.0],
                              "ci_high": [0.9, 1.8, 3.0]})
    table = precision.effect_size_rows(contrasts, {"a": 0.5, "b": 2.0})
    assert table["model"].tolist() == ["lmm", "gee"]
    assert table["estimate"].tolist() == [1.0, 1.0] and table["ci_low"].tolist() == [0.2, 0.5]
