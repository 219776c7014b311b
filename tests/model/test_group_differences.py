"""Difference in change between groups, the wave x group interaction F test and the baseline-adjusted
difference, against R (lmerTest contest1D / anova, lm): tests/reference/group_differences_reference.R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model.stats import group_differences as gd
from impactstudy.model.stats import tidy
from impactstudy.model.stats.lmm import fit_lmm

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "group_differences_reference.json").read_text())
WAVES = ["baseline", "early_impact", "follow_up"]
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")


def _lmm(measure):
    sample = tidy.sample(PANEL[PANEL["measure"] == measure], WAVES, "status", require_respondent=True)
    d = sample.frame
    design = sample.design()
    respondent = pd.factorize(d["council_code"].astype(str) + "|" + d["respondent_id"].astype(str))[0]
    fit = fit_lmm(d["value"].to_numpy(), design.X, design.columns, d["council_code"].cat.codes.to_numpy(), respondent)
    return sample, design, fit


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_lmm_difference_in_change_and_interaction_match_lmertest(measure):
    sample, design, fit = _lmm(measure)
    rows = gd.difference_rows("lmm", sample, tidy.default_contrasts(WAVES), correction="", design=design, test=fit.contrast)
    got = rows.set_index(["contrast", "group"])
    expected = REFERENCE[measure]
    assert len(rows) == len(expected["differences"]) == 9
    for row in expected["differences"]:
        mine = got.loc[(row["contrast"], row["group"])]
        for key in ("estimate", "std_error", "ci_low", "ci_high"):
            assert mine[key] == pytest.approx(row[key], rel=1e-4, abs=1e-6)
        assert mine["df"] == pytest.approx(row["df"], rel=1e-3)
        assert mine["p_value"] == pytest.approx(row["p_value"], rel=1e-3)
    joint = gd.joint_test(fit, gd.interaction_matrix(design))
    for key in ("F", "num_df", "den_df", "p_value"):
        assert joint[key] == pytest.approx(expected["interaction"][key], rel=1e-4)


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_baseline_adjusted_difference_matches_lm(measure):
    data = PANEL[PANEL["measure"] == measure]
    rows = gd.baseline_adjusted_rows(data, WAVES, tidy.default_contrasts(WAVES), "status").set_index(["contrast", "group"])
    for row in REFERENCE[measure]["adjusted"]:
        mine = rows.loc[(row["contrast"], row["group"])]
        assert mine["estimate"] == pytest.approx(row["estimate"], rel=1e-9)
        assert mine["std_error"] == pytest.approx(row["std_error"], rel=1e-9)
        assert mine["df"] == row["df"] and mine["p_value"] == pytest.approx(row["p_value"], rel=1e-8)


def test_regression_to_the_mean_alone_is_removed_by_adjusting_for_the_start():
    """Councils differ only by chance at baseline; the 'low' group (chosen for its low baseline) gains
    more unadjusted, as regression to the mean predicts, and not after adjustment."""
    rng = np.random.default_rng(11)
    councils = 400
    truth = rng.normal(size=councils)
    base = truth + rng.normal(size=councils)
    follow = truth + rng.normal(size=councils)
    group = np.where(base < np.median(base), "low", "high")
    data = pd.DataFrame({"council_code": np.tile([f"c{k:03d}" for k in range(councils)], 2),
                         "respondent_id": np.arange(2 * councils), "wave": np.repeat(["b", "f"], councils),
                         "value": np.r_[base, follow], "g": np.tile(group, 2)})
    means = data.groupby(["g", "wave"])["value"].mean()
    raw = (means["low", "f"] - means["low", "b"]) - (means["high", "f"] - means["high", "b"])
    assert raw > 1.0
    adjusted = gd.baseline_adjusted_rows(data, ["b", "f"], [("f", "b")], "g").iloc[0]
    assert adjusted["group"] == "g=low - g=high"  # ties in size: the first sorted level is the reference
    assert abs(adjusted["estimate"]) < 2.5 * adjusted["std_error"]


def test_one_group_level_gives_no_difference_rows():
    data = PANEL[PANEL["measure"] == "eff_leadership"].assign(status="Same")
    sample = tidy.sample(data, WAVES, "status")
    assert gd.difference_rows("lmm", sample, tidy.default_contrasts(WAVES), correction="", design=None, test=None).empty


JOINT = json.loads((FIXTURES / "joint_test_reference.json").read_text())


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
@pytest.mark.parametrize("ddf, key", [("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")])
def test_wave_by_group_test_of_the_council_wave_lmm_matches_lmertest_and_pbkrtest(measure, ddf, key):
    """The primary LMM (council x wave term): Satterthwaite as lmerTest's anova, Kenward-Roger as
    pbkrtest's KRmodcomp (scaled F), which lmerTest's anova(ddf = "Kenward-Roger") also reports."""
    sample = tidy.sample(PANEL[PANEL["measure"] == measure], WAVES, "status", require_respondent=True)
    d = sample.frame
    design = sample.design()
    respondent = pd.factorize(d["council_code"].astype(str) + "|" + d["respondent_id"].astype(str))[0]
    fit = fit_lmm(d["value"].to_numpy(), design.X, design.columns, d["council_code"].cat.codes.to_numpy(), respondent,
                  d["wave"].cat.codes.to_numpy())
    joint = gd.joint_test(fit, gd.interaction_matrix(design), ddf=ddf)
    expected = JOINT[measure][key]
    assert joint["method"] == ddf
    for name in ("F", "num_df", "den_df", "p_value"):
        assert joint[name] == pytest.approx(expected[name], rel=2e-4), name
    if ddf == "kenward-roger":
        assert joint["F_scaling"] == pytest.approx(expected["F_scaling"], rel=1e-6)
        assert expected["F"] == pytest.approx(JOINT[measure]["kenward_roger_lmertest"]["F"], rel=1e-12)
