"""The ingest stage on a small study the test writes itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from impactstudy import stages
from impactstudy.cli import main
from impactstudy.pipeline.paths import StudyPaths

from conftest import write_mini_study


@pytest.fixture()
def mini(tmp_path):
    write_mini_study(tmp_path)
    stages.run("mini", ["ingest"], root=tmp_path)
    return StudyPaths(tmp_path.resolve(), "mini")


def test_rows_conserved_and_duplicates_quarantined(mini):
    report = json.loads(mini.ingest_report.read_text())
    w1, w2 = report["waves"]
    assert (w1["rows_read"], w1["rows_accepted"], w1["rows_quarantined"]) == (5, 3, 2)
    assert (w2["rows_read"], w2["rows_accepted"], w2["rows_quarantined"]) == (3, 3, 0)
    quarantine = pd.read_csv(mini.quarantine, keep_default_na=False)
    rows = quarantine[quarantine["scope"] == "row"]
    assert sorted(rows["source_row"]) == [2, 4]  # the earlier of B's two submissions; the row with no council
    assert rows.loc[rows.source_row == 2, "reason"].item().startswith("Duplicate submission")
    assert "kept source row 3" in rows.loc[rows.source_row == 2, "reason"].item()


def test_values_recoded_with_reasons(mini):
    w1 = pd.read_parquet(mini.wave_file("w1")).set_index("source_row")
    assert w1.loc[1, "eff"] == 4.0
    assert w1.loc[3, "eff"] == 5.0
    assert np.isnan(w1.loc[5, "eff"]) and w1.loc[5, "eff__missing"] == "Out of range"
    assert w1.loc[3, "pct"] == 20.0
    assert np.isnan(w1.loc[5, "pct"]) and w1.loc[5, "pct__missing"] == "No answer"
    assert list(w1["role"]) == ["Strategic lead", "Frontline manager", "Strategic lead"]
    assert "email" not in w1.columns
    w2 = pd.read_parquet(mini.wave_file("w2")).set_index("source_row")
    assert w2.loc[1, "eff"] == 1.0  # "Very good" is 5, reversed in w2
    assert np.isnan(w2.loc[2, "eff"]) and w2.loc[2, "eff__missing"] == "Don't know"
    assert w2.loc[3, "eff__missing"] == "Unrecognised answer"
    assert list(w2["plan"].fillna(-1)) == [1.0, 0.0, -1.0]
    assert w2.loc[1, "note"] == '<b>bold</b> & "quoted"'
    assert w2.loc[3, "note"] == "Très bien"


def test_user_missing_from_file_kept_as_reason(tmp_path):
    write_mini_study(tmp_path)
    raw = tmp_path / "data/raw/mini"
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(raw / "w1.sav"), user_missing=True)
    frame.loc[0, "q1"] = 9.0
    pyreadstat.write_sav(frame, str(raw / "w1.sav"), variable_value_labels=meta.variable_value_labels,
                         missing_ranges={"q1": [9]})
    stages.run("mini", ["ingest"], root=tmp_path)
    w1 = pd.read_parquet(StudyPaths(tmp_path.resolve(), "mini").wave_file("w1")).set_index("source_row")
    assert w1.loc[1, "eff__missing"] == "Not applicable"


def test_value_quarantine_names_column_and_value(mini):
    quarantine = pd.read_csv(mini.quarantine, keep_default_na=False)
    values = quarantine[quarantine["scope"] == "value"].sort_values(["wave", "source_row"])
    assert values[["wave", "source_row", "column", "value", "reason"]].values.tolist() == [
        ["w1", 5, "q1", "6.0", "Out of range"],
        ["w2", 3, "Q1 effectiveness", "banana", "Unrecognised answer"],
    ]


def test_respondent_ids_pseudonymised_consistently(mini):
    w1 = pd.read_parquet(mini.wave_file("w1"))
    w2 = pd.read_parquet(mini.wave_file("w2"))
    assert not set(w1["respondent_id"]) & {"A", "B", "D"}
    assert set(w1["respondent_id"]) & set(w2["respondent_id"]) == set(w1.loc[w1.council_raw != "E08000003", "respondent_id"])


def test_second_run_does_nothing_and_changed_wave_reruns_alone(mini):
    assert stages.run("mini", ["ingest"], root=mini.root) == []
    csv = mini.raw / "w2.csv"
    csv.write_bytes(csv.read_bytes() + "Hartlepool,F,Partner,Good,Yes,\r\n".encode())
    assert stages.run("mini", ["ingest"], root=mini.root) == ["ingest:w2", "ingest"]


def test_missing_column_is_one_line_error(tmp_path, capsys):
    write_mini_study(tmp_path)
    toml = tmp_path / "pipelines/mini/study.toml"
    toml.write_text(toml.read_text().replace('w1 = "q1"', 'w1 = "q1x"'))
    code = main(["ingest", "--study", "mini", "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("impactstudy: error:")]
    assert len(errors) == 1
    err = errors[0]
    assert "'q1x'" in err and "closest: 'q1'" in err
    assert not (tmp_path / "data/processed/mini/waves/w1.parquet").exists()


# ------------------------------------------------------------------ waves read at once (pipeline.run_steps)


def test_failing_waves_raise_the_first_ones_error_and_the_others_are_kept(tmp_path, capsys):
    write_mini_study(tmp_path)
    paths = StudyPaths(tmp_path.resolve(), "mini")
    (paths.raw / "w1.sav").write_bytes(b"")
    code = main(["ingest", "--study", "mini", "--root", str(tmp_path)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("impactstudy: error:")]
    assert code == 3 and len(errors) == 1 and "w1.sav" in errors[0] and "empty" in errors[0]
    steps = json.loads(paths.manifest.read_text())["steps"]
    assert "ingest:w1" not in steps and "ingest:w2" in steps  # w2 ran alongside and was recorded
    assert paths.wave_file("w2").is_file() and not paths.wave_file("w1").exists()
    (paths.raw / "w2.csv").write_bytes(b"")  # both fail: the error is the first wave's, as in order
    code = main(["ingest", "--study", "mini", "--root", str(tmp_path)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("impactstudy: error:")]
    assert code == 3 and len(errors) == 1 and "w1.sav" in errors[0]


def test_batches_group_consecutive_independent_parallel_steps(tmp_path):
    from impactstudy.pipeline.steps import Step, _batches

    def step(name, inputs=(), outputs=(), parallel=True):
        return Step(name, tuple(tmp_path / i for i in inputs), tuple(tmp_path / o for o in outputs), config={},
                    code=(), run=lambda: None, parallel=parallel)

    steps = [step("a", ["ra"], ["a"]), step("b", ["rb"], ["b"]), step("c", ["a"], ["c"]),
             step("d", ["a", "b"], ["d"], parallel=False), step("e", [], ["e"]), step("f", [], ["f"])]
    assert [[s.name for s in batch] for batch in _batches(steps)] == [["a", "b"], ["c"], ["d"], ["e", "f"]]
