"""The model stage's descriptive tables for one measure: shapes, and the same numbers as the
statistics they come from (those are checked against R in test_shares, test_po_check, test_precision)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from impactstudy.model import describe
from impactstudy.model.stats import po_check, precision, shares
from impactstudy.study.config import Measure

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
WAVES = ["baseline", "early_impact", "follow_up"]
LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
LABELS = dict(zip(LEVELS, ["Very low", "Low", "Middle", "High", "Very high"]))


@pytest.fixture(scope="module")
def described():
    panel = pd.read_csv(FIXTURES / "demo_panel.csv")
    data = panel[panel["measure"] == "eff_voice"].reset_index(drop=True)
    measure = Measure("eff_voice", "Voice", "likert", {w: w for w in WAVES}, levels=LEVELS, level_labels=LABELS)
    result = describe.describe_measure(measure, data, WAVES, ("status",), few_councils=20)
    contrasts = pd.DataFrame({"measure": ["eff_voice"], "model": ["lmm"], "contrast": ["follow_up - baseline"],
                              "group": ["all"], "estimate": [0.3], "ci_low": [0.1], "ci_high": [0.5]})
    return data, result, describe.describe_tables([result], contrasts)


def test_tables_have_their_contract_columns(described):
    _, _, tables = described
    assert list(tables["shares"].columns) == shares.SHARE_COLUMNS
    assert list(tables["distributions"].columns) == shares.DISTRIBUTION_COLUMNS
    assert list(tables["ordinal_check"].columns) == po_check.CHECK_COLUMNS
    assert list(tables["icc"].columns) == precision.ICC_COLUMNS
    assert set(tables["contrasts"]["model"]) == {"share", "share_diff", "change_adjusted"}
    # every wave x (all + 4 status levels) has a share, labelled by the default top-two rule
    assert len(tables["shares"]) == 3 * 5 and set(tables["shares"]["share_label"]) == {"High or Very high"}
    assert len(tables["distributions"]) == 3 * 5 * len(LEVELS)


def test_numbers_are_those_of_the_statistics(described):
    data, result, tables = described
    levels, _ = shares.share_rows(data, WAVES, [("follow_up", "baseline")], 4.0, None, 20)
    mine = tables["shares"][tables["shares"]["group"] == "all"].set_index("wave")["estimate"]
    assert mine.to_dict() == pytest.approx(levels.set_index("wave")["estimate"].to_dict())
    sd = precision.baseline_sd(data, WAVES)
    assert tables["effect_sizes"].loc[0, "estimate"] == pytest.approx(0.3 / sd)
    design = tables["design"]
    assert design["councils"] == 40
    assert design["minimum_detectable_effect"] == pytest.approx(precision.minimum_detectable_effect(
        40, design["respondents_per_council"], design["icc"]))
