"""The link stage on the demo study and on small hand-made panels."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.errors import DataError
from impactstudy.link import stage as link
from impactstudy.link.stage import _categorical, _Vocabulary, carry_code_changes, months_since
from impactstudy.pipeline.paths import StudyPaths


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
    assert {"authority_type", "region", "status", "review_date", "months_since_intervention"} <= set(panel.columns)
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


def test_months_since_intervention():
    when = pd.Series(pd.to_datetime(["2013-04-01", "2014-04-01"]))
    review = pd.Series(pd.to_datetime(["2013-01-01", "2013-04-01"]))
    assert months_since(when, review).round(3).tolist() == [2.957, 11.992]  # 90 and 365 days at 30.4375 days a month


def test_waves_present_lists_the_waves_each_respondent_answered(demo):
    wide = pd.read_parquet(demo.panel_wide, columns=["council_code", "respondent_id", "waves_present"])
    long = pd.read_parquet(demo.panel_long, columns=["council_code", "respondent_id", "wave", "wave_order"])
    waves = (long.drop_duplicates(["council_code", "respondent_id", "wave"]).sort_values("wave_order")
             .groupby(["council_code", "respondent_id"], observed=True)["wave"].agg(lambda w: ";".join(map(str, w))))
    got = wide.set_index(["council_code", "respondent_id"])["waves_present"]
    assert got.astype(str).to_dict() == waves.to_dict()
    assert {"baseline;early_impact;follow_up", "baseline"} <= set(got)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["E06000001", "E08000037", "b", "a", None]), min_size=1, max_size=30),
       st.data())
def test_categorical_is_take_then_astype_category(values, data):
    column = pd.Series(values, dtype="string")
    rows = np.array(data.draw(st.lists(st.integers(0, len(values) - 1), max_size=40)), dtype=np.int64)
    used = np.zeros(len(values), dtype=bool)
    used[rows] = True
    expected = column.take(rows).astype("category")
    got = pd.Series(_categorical(column, rows, used))
    assert got.dtype == expected.dtype
    pd.testing.assert_series_equal(got, expected.reset_index(drop=True))


def test_vocabulary_encodes_values_or_their_labels():
    vocabulary = _Vocabulary()
    text = vocabulary.encode(pd.Series(["Poor", None, "Good"], dtype="string"))
    labelled = vocabulary.encode(pd.Series([2.0, np.nan, 4.0, 9.0]), {2: "Poor", 4.0: "Good"})
    assert text.tolist() == [0, -1, 1] and labelled.tolist() == [0, -1, 1, -1]
    assert vocabulary.decode(np.array([1, -1, 0])).tolist() == ["Good", pd.NA, "Poor"]


def _write_stand_in(paths, *_args):  # a stand-in for the SPSS/Stata writer
    for path in paths:
        Path(path).write_text("the export")


def _crash(*_args):
    os.kill(os.getpid(), signal.SIGKILL)


def _targets(folder):
    return tuple(folder / name for name in ("panel_long.sav", "panel_wide.sav", "panel_long.dta", "panel_wide.dta"))


@pytest.mark.parametrize("methods", [None, ["spawn"]], ids=["forked child", "no fork: after the body"])
def test_exports_appear_only_after_the_body(tmp_path, monkeypatch, methods):
    monkeypatch.setattr(link, "write_exports_in_place", _write_stand_in)
    if methods is not None:  # a platform that cannot fork writes the files in-process, after the body
        monkeypatch.setattr(link.multiprocessing, "get_all_start_methods", lambda: methods)
    targets = _targets(tmp_path)
    with link.exports_aside(targets, pd.DataFrame(), None, []):
        assert not any(t.exists() for t in targets)
    assert all(t.read_text() == "the export" for t in targets)
    assert sorted(tmp_path.iterdir()) == sorted(targets)


def test_failing_body_leaves_no_export(tmp_path, monkeypatch):
    monkeypatch.setattr(link, "write_exports_in_place", _write_stand_in)
    with pytest.raises(RuntimeError, match="panels failed"), link.exports_aside(_targets(tmp_path), pd.DataFrame(), None, []):
        raise RuntimeError("panels failed")
    assert list(tmp_path.iterdir()) == []


def test_crashed_export_writer_is_a_one_line_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(link, "write_exports_in_place", _crash)
    with (pytest.raises(DataError, match=r"the SPSS/Stata writer stopped unexpectedly") as err,
          link.exports_aside(_targets(tmp_path), pd.DataFrame(), None, [])):
        pass
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)
    assert list(tmp_path.iterdir()) == []
