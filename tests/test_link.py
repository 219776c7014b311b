"""The link stage on the demo study and on small hand-made panels."""

from __future__ import annotations

import json

import pandas as pd
import pyreadstat
import pytest

from impactstudy.link import carry_code_changes, months_since
from impactstudy.paths import StudyPaths


@pytest.fixture(scope="module")
def demo(demo_root):
    return StudyPaths(demo_root.resolve(), "demo")


def test_every_method_used_and_the_unknown_council_quarantined(demo):
    linkage = pd.read_csv(demo.linkage, keep_default_na=False)
    assert {"code", "exact", "alias", "fuzzy", "unmatched"} <= set(linkage["method"])
    unmatched = linkage[linkage["method"] == "unmatched"]
    assert unmatched[["wave", "council_raw"]].values.tolist() == [["follow_up", "999"]]
    quarantine = pd.read_csv(demo.link_quarantine, keep_default_na=False)
    assert any(quarantine["reason"].str.startswith("Council '999' not found in the register"))


def test_conflicting_identifiers_quarantined(demo):
    quarantine = pd.read_csv(demo.link_quarantine, keep_default_na=False)
    conflicts = quarantine[quarantine["reason"].str.startswith("Identifiers disagree")]
    assert len(conflicts) == 1
    assert conflicts["wave"].item() == "baseline"


def test_every_ingested_row_is_in_the_panel_or_quarantined(demo):
    panel = pd.read_parquet(demo.panel_long, columns=["wave", "source_row"]).drop_duplicates()
    quarantine = pd.read_csv(demo.link_quarantine, keep_default_na=False)
    for wave in ("baseline", "early_impact", "follow_up"):
        ingested = set(pd.read_parquet(demo.wave_file(wave), columns=["source_row"])["source_row"])
        linked = set(panel.loc[panel["wave"] == wave, "source_row"])
        held = set(quarantine.loc[quarantine["wave"] == wave, "source_row"])
        assert linked | held == ingested
        assert not linked & held


def test_panel_long_contract(demo):
    panel = pd.read_parquet(demo.panel_long)
    assert list(panel.columns[:10]) == ["council_code", "council_name", "wave", "wave_order", "respondent_id", "role",
                                        "measure", "value", "value_label", "missing_reason"]
    assert {"authority_type", "region", "status", "review_date", "months_since_review"} <= set(panel.columns)
    assert panel["value"].dtype == "float64"
    assert panel["council_code"].astype(str).str.fullmatch(r"E0[689]\d{6}|E10\d{6}").all()
    assert not panel.duplicated(["council_code", "wave", "respondent_id", "measure"]).any()
    summary = json.loads(demo.linkage_summary.read_text())
    assert summary["councils"] == panel["council_code"].nunique() == 40
    assert set(summary["participation"]) == set(panel["council_code"].astype(str))


def test_panel_wide_has_one_row_per_council_and_respondent(demo):
    wide = pd.read_parquet(demo.panel_wide)
    assert not wide.duplicated(["council_code", "respondent_id"]).any()
    assert {"eff_leadership__baseline", "eff_leadership__early_impact", "eff_leadership__follow_up"} <= set(wide.columns)
    assert "lessons__follow_up" in wide.columns and "lessons__baseline" not in wide.columns


def test_sav_reads_back_with_labels(demo):
    frame, meta = pyreadstat.read_sav(str(demo.panel_sav))
    assert meta.column_names_to_labels["eff_leadership"] == "Effectiveness: leadership and governance"
    assert meta.variable_value_labels["eff_leadership"][5.0] == "Very effective"
    assert meta.variable_value_labels["wave"] == {1.0: "Before the review", 2.0: "Early impact (about 3 months after)",
                                                   3.0: "Longer-term follow-up (about a year after)"}
    panel = pd.read_parquet(demo.panel_long)
    assert len(frame) == panel.drop_duplicates(["council_code", "wave", "respondent_id"]).shape[0]


def test_code_changes_carried_but_mergers_and_splits_not():
    codes = pd.Series(["E06000048", "E08000020", "E06000029", "E10000021", "E06000001", None], dtype="string")
    out = carry_code_changes(codes, pd.Timestamp("2024-01-01").date())
    assert out.tolist() == ["E06000057", "E08000037", "E06000029", "E10000021", "E06000001", pd.NA]
    early = carry_code_changes(pd.Series(["E06000048"], dtype="string"), pd.Timestamp("2013-01-01").date())
    assert early.tolist() == ["E06000048"]


def test_months_since_review():
    when = pd.Series(pd.to_datetime(["2013-04-01", "2014-04-01"]))
    review = pd.Series(pd.to_datetime(["2013-01-01", "2013-04-01"]))
    assert months_since(when, review).round(3).tolist() == [2.957, 11.992]  # 90 and 365 days at 30.4375 days a month
