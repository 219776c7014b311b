"""Shares at or above a level, their changes and differences in change, against R (lm + sandwich::vcovCL
HC1: tests/reference/shares_reference.R); response distributions; the config's share threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.model.stats import shares, tidy
from impactstudy.study.config import Measure

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "shares_reference.json").read_text())
WAVES = ["baseline", "early_impact", "follow_up"]
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_shares_changes_and_differences_match_r(measure):
    data = PANEL[PANEL["measure"] == measure]
    pairs = tidy.default_contrasts(WAVES)
    levels, changes = shares.share_rows(data, WAVES, pairs, 4.0, few_councils=20)
    _, by_status = shares.share_rows(data, WAVES, pairs, 4.0, group="status", few_councils=20)
    diffs = shares.difference_in_change(data, WAVES, pairs, 4.0, "status", few_councils=20)
    expected = REFERENCE[measure]
    got = levels.set_index("wave")
    for row in expected["levels"]:
        assert got.loc[row["wave"], "estimate"] == pytest.approx(row["estimate"], abs=1e-12)
        assert got.loc[row["wave"], "std_error"] == pytest.approx(row["std_error"], rel=1e-9)
    every = pd.concat([changes, by_status, diffs]).set_index(["contrast", "group"])
    for row in expected["changes"] + expected["differences"]:
        assert every.loc[(row["contrast"], row["group"]), "estimate"] == pytest.approx(row["estimate"], abs=1e-12)
        assert every.loc[(row["contrast"], row["group"]), "std_error"] == pytest.approx(row["std_error"], rel=1e-9)
    # 40 councils >= few_councils: normal reference, the interval is the Wald one
    row = changes.iloc[1]
    assert row["ci_high"] - row["estimate"] == pytest.approx(1.959964 * row["std_error"], rel=1e-6)


def test_few_councils_use_t_and_a_share_with_no_variation_has_no_interval():
    data = pd.DataFrame({"council_code": list("aabbcc") * 2, "respondent_id": range(12),
                         "wave": ["baseline"] * 6 + ["follow_up"] * 6,
                         "value": [1, 2, 4, 5, 3, 4] + [5, 5, 4, 5, 4, 4]})
    levels, changes = shares.share_rows(data, ["baseline", "follow_up"], [("follow_up", "baseline")], 4.0, few_councils=40)
    follow = levels.set_index("wave").loc["follow_up"]
    assert follow["estimate"] == 1.0 and np.isnan(follow["ci_low"]) and "no variation" in follow["warning"]
    assert changes.loc[0, "df"] == 2 and changes.loc[0, "estimate"] == pytest.approx(0.5)


def test_distribution_counts_every_level():
    data = pd.DataFrame({"council_code": ["a"] * 4, "wave": pd.Categorical(["b", "b", "b", "f"], ["b", "f"]),
                         "value": [1.0, 3.0, 3.0, 2.0]})
    table = shares.distribution(data, [1.0, 2.0, 3.0], {1.0: "Low", 2.0: "Mid", 3.0: "High"})
    assert table["n"].tolist() == [1, 0, 2, 0, 1, 0]
    assert table.loc[2, "share"] == pytest.approx(2 / 3) and table.loc[0, "level_label"] == "Low"


def test_share_threshold_default_is_the_top_two_levels_named_by_their_labels():
    m = Measure("m", "M", "likert", {"w": "c"}, levels=(1.0, 2.0, 3.0, 4.0),
                level_labels={3.0: "Agree", 4.0: "Strongly agree"})
    assert m.share_threshold == (3.0, "Agree or Strongly agree")
    declared = Measure("m", "M", "likert", {"w": "c"}, levels=(1.0, 2.0, 3.0, 4.0), share_from=2.0, share_label="agree or better")
    assert declared.share_threshold == (2.0, "agree or better")
    assert Measure("b", "B", "binary", {"w": "c"}, levels=(0.0, 1.0)).share_threshold is None


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 15))
def test_share_is_the_proportion_and_the_change_the_difference(seed, councils):
    rng = np.random.default_rng(seed)
    n = councils * 4
    data = pd.DataFrame({"council_code": np.repeat([f"c{k}" for k in range(councils)], 4), "respondent_id": range(n),
                         "wave": np.tile(["baseline", "baseline", "follow_up", "follow_up"], councils),
                         "value": rng.integers(1, 6, size=n).astype(float)})
    levels, changes = shares.share_rows(data, ["baseline", "follow_up"], [("follow_up", "baseline")], 4.0)
    direct = data.assign(y=data["value"] >= 4).groupby("wave")["y"].mean()
    assert levels.set_index("wave")["estimate"].to_dict() == pytest.approx(direct.to_dict())
    assert changes.loc[0, "estimate"] == pytest.approx(direct["follow_up"] - direct["baseline"])
    ok = levels.dropna(subset=["ci_low"])
    assert ((ok["ci_low"] >= 0) & (ok["ci_high"] <= 1)).all()
