"""A corpus of bad input, built here, each with its documented outcome and nothing half-written.

Every case runs the command line in-process: either it ends with exit code 2 (config) or 3 (data)
and exactly one `impactstudy: error:` line and no traceback, or the pipeline goes on and the bad rows
or values are quarantined with a reason. In both cases every file under data/processed parses and no
temporary file is left; a wave that failed has no outputs and is not recorded in the manifest.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import textwrap
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from openpyxl import Workbook

from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import read_raw

from conftest import assert_outputs_complete, run_cli, write_mini_study

W2_COLUMNS = ["Council", "ID", "Role", "Q1 effectiveness", "Q2 plan", "Comment"]
W2_ROWS = [
    ["Hartlepool", "A", "Strategic lead", "Very good", "Yes", "Très bien"],
    ["Middlesbrough", "B", "Frontline manager", "Can\u2019t say", "No", ""],
    ["Manchester", "E", "Partner", "Good", "", "ok"],
]


@pytest.fixture()
def mini(tmp_path):
    write_mini_study(tmp_path)
    return StudyPaths(tmp_path.resolve(), "mini")


def _csv_text(rows=W2_ROWS, columns=W2_COLUMNS, sep=",") -> str:
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, sep=sep, lineterminator="\r\n")


def _edit_config(paths: StudyPaths, old: str, new: str) -> None:
    text = paths.config.read_text(encoding="utf-8")
    assert old in text, old
    paths.config.write_text(text.replace(old, new, 1), encoding="utf-8")


def _run(paths: StudyPaths, capsys, command: str = "ingest") -> tuple[int, list[str]]:
    return run_cli([command, "--study", "mini", "--root", str(paths.root)], capsys)


def _assert_error(paths: StudyPaths, capsys, code: int, *words: str, failed_wave: str | None = "w2",
                  command: str = "ingest") -> str:
    got, errors = _run(paths, capsys, command)
    assert got == code, errors
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], errors[0]
    assert_outputs_complete(paths.root)
    if failed_wave:
        assert not any(paths.waves_dir.glob(f"{failed_wave}.*")), "a failed wave left outputs"
        steps = json.loads(paths.manifest.read_text())["steps"] if paths.manifest.exists() else {}
        assert f"ingest:{failed_wave}" not in steps
    return errors[0]


def _ingested(paths: StudyPaths, wave: str) -> tuple[pd.DataFrame, dict]:
    report = {w["wave"]: w for w in json.loads(paths.ingest_report.read_text())["waves"]}[wave]
    assert report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"]
    return pd.read_parquet(paths.wave_file(wave)), report


# ------------------------------------------------------------------------------------- data errors (3)


@pytest.mark.parametrize("wave,name", [("w1", "w1.sav"), ("w2", "w2.csv")])
def test_zero_byte_file(mini, capsys, wave, name):
    (mini.raw / name).write_bytes(b"")
    _assert_error(mini, capsys, 3, name, "empty", failed_wave=wave)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.95])
def test_truncated_sav(mini, capsys, keep):
    data = (mini.raw / "w1.sav").read_bytes()
    (mini.raw / "w1.sav").write_bytes(data[: int(len(data) * keep)])
    _assert_error(mini, capsys, 3, "w1.sav", "SPSS", failed_wave="w1")


def test_sav_that_is_not_spss(mini, capsys):
    (mini.raw / "w1.sav").write_text(_csv_text(), encoding="utf-8")
    _assert_error(mini, capsys, 3, "w1.sav", "cannot be read as a SPSS file", failed_wave="w1")


def test_windows_1252_csv_needs_its_encoding(mini, capsys):
    (mini.raw / "w2.csv").write_bytes(_csv_text().encode("cp1252"))
    _assert_error(mini, capsys, 3, "w2.csv", "read.encoding")
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.csv"\nread = { encoding = "cp1252" }')
    code, errors = _run(mini, capsys)
    assert (code, errors) == (0, [])
    data, _ = _ingested(mini, "w2")
    assert data["note"].tolist()[0] == "Très bien"
    assert data["eff__missing"].tolist()[1] == "Don't know"  # curly apostrophe matched the declared reason


@pytest.mark.parametrize("columns", [
    ["Council", "ID", "Role", "Q1 effectiveness", "Q1 effectiveness", "Comment"],
    ["Council", "ID", "Role", "Q1 effectiveness", "Q2 plan", "Role "],  # the same once trimmed
])
def test_duplicated_column_names_csv(mini, capsys, columns):
    (mini.raw / "w2.csv").write_text(_csv_text(columns=columns), encoding="utf-8")
    _assert_error(mini, capsys, 3, "w2.csv", "more than once")


def test_duplicated_column_names_excel(mini, capsys):
    _xlsx(mini.raw / "w2.xlsx", [W2_COLUMNS[:5] + ["Q2 plan"], *(r[:6] for r in W2_ROWS)])
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.xlsx"')
    _assert_error(mini, capsys, 3, "w2.xlsx", "'Q2 plan'", "more than once")


def test_csv_with_too_many_fields_is_a_data_error(mini, capsys):
    text = _csv_text(sep=";")  # declared as comma-separated below, so rows split wrongly
    (mini.raw / "w2.csv").write_text(text.replace("Très bien", "Très, bien, indeed"), encoding="utf-8")
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.csv"\nread = { delimiter = "," }')
    got, errors = _run(mini, capsys)
    assert got in (2, 3) and len(errors) == 1  # a column not in the file (2) or a ragged row (3)
    assert_outputs_complete(mini.root)


# --------------------------------------------------------------------------------- read as documented


def test_csv_with_byte_order_mark(mini, capsys):
    (mini.raw / "w2.csv").write_bytes(_csv_text().encode("utf-8-sig"))
    assert _run(mini, capsys) == (0, [])
    data, report = _ingested(mini, "w2")
    assert report["rows_read"] == 3 and data["council_raw"].tolist() == ["Hartlepool", "Middlesbrough", "Manchester"]


def test_csv_with_semicolons(mini, capsys):
    (mini.raw / "w2.csv").write_text(_csv_text(sep=";"), encoding="utf-8")
    assert _run(mini, capsys) == (0, [])
    data, report = _ingested(mini, "w2")
    assert report["delimiter"] == ";"
    assert data["eff"].tolist()[0] == 1.0  # "Very good", reversed in w2
    assert data["plan"].tolist()[:2] == [1.0, 0.0]


def _xlsx(path, rows, merges=()) -> None:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in merges:
        sheet.merge_cells(cells)
    book.save(path)


def test_excel_two_header_rows_and_merged_cells(mini, capsys):
    """A title row merged across the columns above the real header; the council merged down two rows."""
    rows = [["Peer review follow-up survey", None, None, None, None, None], W2_COLUMNS, *W2_ROWS,
            [None, "F", "Partner", "Poor", "No", "merged council cell"]]
    _xlsx(mini.raw / "w2.xlsx", rows, merges=["A1:F1", "A5:A6"])
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.xlsx"')
    # header row 1 holds the title only: the configured columns are not there (config error)
    _assert_error(mini, capsys, 2, "'Council'", "not in the file")
    _edit_config(mini, 'file = "w2.xlsx"', 'file = "w2.xlsx"\nread = { header_row = 2 }')
    assert _run(mini, capsys) == (0, [])
    data, report = _ingested(mini, "w2")
    assert (report["rows_read"], report["rows_accepted"], report["rows_quarantined"]) == (4, 3, 1)
    quarantine = pd.read_csv(mini.quarantine, keep_default_na=False)
    row = quarantine[(quarantine.wave == "w2") & (quarantine.scope == "row")]
    assert row["source_row"].tolist() == [4] and row["reason"].str.startswith("No council identifier").all()


def test_wave_where_every_answer_is_missing(mini, capsys):
    blank = [[r[0], r[1], r[2], "", "", ""] for r in W2_ROWS]
    (mini.raw / "w2.csv").write_text(_csv_text(rows=blank), encoding="utf-8")
    assert _run(mini, capsys, "link") == (0, [])
    data, report = _ingested(mini, "w2")
    assert report["rows_accepted"] == 3
    assert any("every answer" in w for w in report["warnings"])
    assert set(data["eff__missing"]) == {"No answer"} and data["eff"].isna().all()
    assert_outputs_complete(mini.root)


def test_wave_with_no_council_that_links(mini, capsys):
    nowhere = [["Atlantis", *r[1:]] for r in W2_ROWS]
    (mini.raw / "w2.csv").write_text(_csv_text(rows=nowhere), encoding="utf-8")
    assert _run(mini, capsys, "link") == (0, [])
    assert_outputs_complete(mini.root)
    quarantine = pd.read_csv(mini.link_quarantine, keep_default_na=False)
    w2 = quarantine[quarantine.wave == "w2"]
    assert sorted(w2["source_row"]) == [1, 2, 3]
    assert w2["reason"].str.contains("'Atlantis' not found in the register").all()
    panel = pd.read_parquet(mini.panel_long)
    assert "w2" not in set(panel["wave"].astype(str))
    summary = json.loads(mini.linkage_summary.read_text())
    assert summary["rows_linked"]["w2"] == 0 and summary["rows_by_method"]["unmatched"] == 3


def test_value_labels_that_disagree_between_waves(mini, capsys):
    """w1's file labels its codes the other way round from the study (and from w2's text answers)."""
    path = mini.raw / "w1.sav"
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    labels = dict(meta.variable_value_labels)
    labels["q1"] = {1: "Very good", 2: "Good", 3: "Neither", 4: "Poor", 5: "Very poor", 8: "Don't know"}
    pyreadstat.write_sav(frame, str(path), variable_value_labels=labels, missing_ranges={"q1": [8, 9]})
    assert _run(mini, capsys) == (0, [])
    _, report = _ingested(mini, "w1")
    assert any("code 1.0 'Very good'" in w and "'Very poor'" in w for w in report["warnings"]), report["warnings"]
    assert len(report["warnings"]) == 4  # every code but the middle one


# ------------------------------------------------------------------------------------ config errors (2)


@pytest.mark.parametrize("old,new,words", [
    ('title = "Mini study"', 'title = "Mini study', ("not valid TOML",)),
    ("fieldwork_end = 2014-03-31", "fieldwork_ned = 2014-03-31", ("unknown key 'fieldwork_ned'", "'fieldwork_end'")),
    ('type = "likert"', 'type = "likret"', ("unknown type 'likret'", "'likert'")),
    ('columns = { w1 = "q1", w2 = "Q1 effectiveness" }', 'columns = { w1 = "q1", w3 = "Q1 effectiveness" }',
     ("unknown wave 'w3'",)),
    ('reverse = ["w2"]', 'reverse = ["w2"]\ncoding_frame_for = "notte"', ("unknown measure 'notte'",)),
    ('name = "note"', 'name = "note"\nmodels = ["lnm"]', ("unknown model 'lnm'", "'lmm'")),
])
def test_config_errors(mini, capsys, old, new, words):
    _edit_config(mini, old, new)
    for command in ("ingest", "validate", "status"):
        _assert_error(mini, capsys, 2, "study.toml", *words, failed_wave=None, command=command)
    assert not mini.processed.exists() or not any(mini.processed.rglob("*.parquet"))


def test_misspelt_expectation_set(mini, capsys):
    text = mini.config.read_text()
    text += textwrap.dedent("""
        [[measures]]
        name = "hoped"
        type = "multi"
        options = { a = "A", b = "B" }
        columns = { w1 = { a = "q2" } }

        [[measures]]
        name = "got"
        type = "multi"
        options = { a = "A", b = "B" }
        columns = { w2 = { a = "Q2 plan" } }

        [[expectations]]
        expected = "hopped"
        achieved = "got"
    """)
    mini.config.write_text(text)
    _assert_error(mini, capsys, 2, "'hopped'", "'hoped'", failed_wave=None)


@pytest.mark.parametrize("value", ["../w1.sav", "../../../etc/passwd", "/etc/passwd", "sub/../../w1.sav"])
def test_path_leaving_the_study_folder(mini, capsys, value):
    _edit_config(mini, 'file = "w1.sav"', f'file = "{value}"')
    _assert_error(mini, capsys, 2, "inside the study's raw folder", failed_wave=None)


def test_councils_file_leaving_the_study_folder(mini, capsys):
    mini.config.write_text(mini.config.read_text() + '\n[councils]\nfile = "../shared/councils.csv"\nkey = "gss"\n')
    _assert_error(mini, capsys, 2, "inside the study's raw folder", failed_wave=None)


def test_symlink_leaving_the_study_folder(mini, capsys, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "w2.csv"
    outside.write_text(_csv_text(), encoding="utf-8")
    (mini.raw / "w2.csv").unlink()
    (mini.raw / "w2.csv").symlink_to(outside)
    _assert_error(mini, capsys, 2, "leaves the study's raw folder", failed_wave=None)


# bytes (0-based offset: value) that make readstat crash the interpreter on the mini study's w1.sav,
# found by fuzzing (tests/ingest/test_fuzz_ingest.py)
CRASHING_BYTES = {296: 0o265, 303: 0o324, 352: 0o11, 753: 0o205}


def test_sav_that_crashes_the_reader(mini, capsys):
    import subprocess
    import sys

    data = bytearray((mini.raw / "w1.sav").read_bytes())
    for at, value in CRASHING_BYTES.items():
        data[at] = value
    (mini.raw / "w1.sav").write_bytes(bytes(data))
    bare = subprocess.run([sys.executable, "-c", f"import pyreadstat; pyreadstat.read_sav({str(mini.raw / 'w1.sav')!r})"],
                          capture_output=True, check=False)
    if bare.returncode >= 0:
        pytest.skip("this pyreadstat no longer crashes on the file")
    _assert_error(mini, capsys, 3, "w1.sav", "crashed", "damaged", failed_wave="w1")


# ------------------------------------------------------- hardening (issue #18): personal data, pseudonyms

COUNCILS_TABLE = '\n[councils]\nfile = "councils.csv"\nkey = "gss"\ncovariates = {{ {} }}\n'


@pytest.mark.parametrize("old,new,words", [
    # personal data read from a column the wave also carries into processed data
    ('columns = { w1 = "email" }', 'columns = { w1 = "la" }', ("pii = true", "'la'", "council column")),
    ('columns = { w1 = "email" }', 'columns = { w1 = "role" }', ("pii = true", "role column")),
    ('columns = { w1 = "email" }', 'columns = { w1 = "q3" }', ("pii = true", "measure 'pct'")),
    # names that collide with the pipeline's own columns, SPSS's rules or each other
    ('name = "pct"', 'name = "source_row"', ("'source_row'", "pipeline's own column")),
    ('name = "pct"', 'name = "council_code"', ("pipeline's own column",)),
    ('name = "pct"', 'name = "months_since_intervention"', ("pipeline's own column",)),
    ('name = "pct"', 'name = "role"', ("pipeline's own column",)),
    ('name = "pct"', 'name = "eff__missing"', ("'__'",)),
    ('name = "pct"', 'name = "2019_rate"', ("not starting with a digit",)),
    ('name = "pct"', 'name = "EFF"', ("also used by measure 'eff'",)),
    ('name = "note"', 'name = "note"', ("councils covariate 'value'", "pipeline's own column")),
    ('name = "note"', 'name = "note"', ("councils covariate 'Region'", "pipeline's own column")),
    ('name = "note"', 'name = "note"', ("councils covariate 'eff'", "also used by measure 'eff'")),
    ('name = "note"', 'name = "note"', ("councils covariate 'a=b'", "without '='")),
    ('name = "note"', 'name = "note"', ("councils covariate ' status'", "spaces at either end")),
    # values
    ("levels = [1, 2, 3, 4, 5]", "levels = [1, 2, 3, 3, 5]", ("'levels'", "more than once")),
    ("min = 0\nmax = 100", "min = 100\nmax = 0", ("'min' (100) is above 'max' (0)",)),
    ('reverse = ["w2"]', 'reverse = ["w2"]\nrecode = { w1 = { 6 = "five" } }', ("recode.w1", "'6'", "a number")),
    ('file = "w2.csv"', 'file = "w2.csv"\nread = { delimiter = "" }', ("'delimiter' must be one character",)),
    ('file = "w2.csv"', 'file = "w2.csv"\nread = { delimiter = ";;" }', ("'delimiter' must be one character",)),
    ('file = "w2.csv"', 'file = "w2\\u0000.csv"', ("NUL character",)),
    ('title = "Mini study"', 'title = "Mini study"\n[models]\nworkers = 0', ("'workers' must be at least 1",)),
    ('title = "Mini study"', 'title = "Mini study"\n[report]\nmin_cell = -1', ("'min_cell' must be at least 1",)),
    ('title = "Mini study"', 'title = "Mini study"\n[report]\nredact_names = ["Jo", 3]', ("'redact_names' must be a list of names",)),
])
def test_config_values_and_names_refused(mini, capsys, old, new, words):
    _edit_config(mini, old, new)
    covariate = next((w.split("'")[1] for w in words if w.startswith("councils covariate")), None)
    if covariate is not None:
        mini.config.write_text(mini.config.read_text() + COUNCILS_TABLE.format(f'"{covariate}" = "number"'))
    for command in ("ingest", "validate", "status"):
        _assert_error(mini, capsys, 2, "study.toml", *words, failed_wave=None, command=command)
    assert not mini.processed.exists() or not any(mini.processed.rglob("*.parquet"))


def test_names_spss_cannot_hold_are_mapped_in_the_sav(mini, capsys):
    """A measure named like an SPSS reserved word or longer than 64 bytes, and covariates named by their
    councils-file headers ('Ofsted rating', '2019 rate'), keep their names in the panels and the report;
    panel_long.sav names them safely (export_names) with the study's name as the variable label."""
    long_name = "p" * 70
    _edit_config(mini, 'name = "pct"', f'name = "{long_name}"')
    _edit_config(mini, 'name = "plan"', 'name = "ALL"')
    (mini.raw / "councils.csv").write_text("gss,Ofsted rating,2019 rate\nE06000001,Good,1.5\nE06000002,,2\n"
                                           "E08000003,Outstanding,3\n", encoding="utf-8")
    mini.config.write_text(mini.config.read_text() + COUNCILS_TABLE.format('"Ofsted rating" = "category", '
                                                                           '"2019 rate" = "number"')
                           + 'group_by = ["Ofsted rating"]\n')
    assert _run(mini, capsys, "validate")[0] == 0
    assert _run(mini, capsys, "report")[0] == 0
    panel = pd.read_parquet(mini.panel_long)
    assert {"Ofsted rating", "2019 rate"} <= set(panel.columns) and {long_name, "ALL"} <= set(panel["measure"])
    sav, meta = pyreadstat.read_sav(str(mini.processed / "panel_long.sav"))
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["Ofsted_rating"] == "Ofsted rating" and labels["v2019_rate"] == "2019 rate"
    assert labels["ALL_"] == "Has a plan" and labels["p" * 64] == "Percent"
    assert meta.variable_value_labels["Ofsted_rating"] == {1.0: "Good", 2.0: "Outstanding"}  # categories: labelled codes
    assert sav["Ofsted_rating"].isna().any() and set(sav["Ofsted_rating"].dropna()) <= {1.0, 2.0}
    figures = {p.name for p in (mini.root / "reports" / "mini" / "internal" / "figures").iterdir()}
    assert not any(" " in name for name in figures), figures
    html = (mini.root / "reports" / "mini" / "internal" / "index.html").read_text(encoding="utf-8")
    # the council with no rating is said once per table of the grouping, as a table note, not as a paragraph
    note = "1 council has no recorded Ofsted rating: shown as “not recorded” in the charts and left out of the models"
    assert note in html
    assert f"<p>{note}" not in html


@pytest.mark.parametrize("section", ["time_since_intervention", "time_since_review"])  # the name before the rename
def test_knots_must_be_numbers(mini, capsys, section):
    mini.config.write_text(mini.config.read_text() + COUNCILS_TABLE.format('review = "date"')
                           + f'\n[models.{section}]\ndate = "review"\nknots = [6, "twelve"]\n')
    _assert_error(mini, capsys, 2, "study.toml", f"models.{section}", "'knots' must list numbers", failed_wave=None)


def test_time_since_review_is_read_as_time_since_intervention(mini):
    from impactstudy.study.config import load_study

    base = mini.config.read_text() + COUNCILS_TABLE.format('review = "date"')
    settings = []
    for section in ("time_since_intervention", "time_since_review"):
        mini.config.write_text(base + f'\n[models.{section}]\ndate = "review"\nknots = [6]\n')
        settings.append(load_study(mini.config, "mini").models.time_since_intervention)
    assert settings[0] == settings[1] and settings[0].knots == (6.0,)
    mini.config.write_text(base + '\n[models.time_since_review]\ndate = "review"\n'
                           '[models.time_since_intervention]\ndate = "review"\n')
    with pytest.raises(Exception, match="give 'time_since_intervention' only"):
        load_study(mini.config, "mini")


@pytest.mark.parametrize("content,words", [(b"", ("salt is empty",)), (b"abc\n", ("salt is too short",))])
def test_damaged_salt_is_refused(mini, capsys, content, words):
    mini.secret_salt.parent.mkdir(parents=True)
    mini.secret_salt.write_bytes(content)
    _assert_error(mini, capsys, 3, str(mini.secret_salt), *words, failed_wave=None)
    assert not any(mini.waves_dir.glob("*")) if mini.waves_dir.exists() else True


def test_replaced_salt_is_refused(mini, capsys):
    assert _run(mini, capsys) == (0, [])
    salt = mini.secret_salt.read_bytes()
    assert len(salt) == 64 and stat.S_IMODE(mini.secret_salt.stat().st_mode) == 0o600
    before = {p: p.read_bytes() for p in mini.waves_dir.glob("*")}
    mini.secret_salt.write_bytes(os.urandom(32).hex().encode())
    _assert_error(mini, capsys, 3, "not the salt", "restore the original salt", failed_wave=None)
    assert {p: p.read_bytes() for p in mini.waves_dir.glob("*")} == before
    mini.secret_salt.write_bytes(salt)
    assert _run(mini, capsys) == (0, [])


def test_councils_resolve_neutralises_formulas(capsys):
    from impactstudy.cli import main

    values = ['=HYPERLINK("http://x.example","click")', "@SUM(A1:A9)", "+1+cmd", "-2+3", "Hartlepool"]
    assert main(["councils", "resolve", "--", *values]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [r[0] for r in rows[1:]] == ["'" + v for v in values[:4]] + ["Hartlepool"]


# ---------------------------------------------------------- hardening (issue #18): raw data, failed runs


def test_demo_never_writes_beside_a_real_study(mini, capsys):
    before = sorted(p.name for p in mini.raw.iterdir())
    config = mini.config.read_bytes()
    for argv in (["demo", "--study", "mini"], ["demo", "--study", "mini", "--force"]):
        code, errors = run_cli([*argv, "--root", str(mini.root), "--councils", "6"], capsys)
        assert code == 2 and len(errors) == 1, errors
    assert "not a demo study" in errors[0]
    assert sorted(p.name for p in mini.raw.iterdir()) == before and mini.config.read_bytes() == config


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"steps": [1, 2], "files": "x"}',
                                     b'{"steps": {"ingest:w1": 3}, "files": {"a": 1}}'])
def test_damaged_manifest_is_no_record(mini, capsys, content):
    assert _run(mini, capsys) == (0, [])
    mini.manifest.write_bytes(content)
    assert _run(mini, capsys) == (0, [])
    steps = json.loads(mini.manifest.read_text())["steps"]
    assert {"ingest:w1", "ingest:w2", "ingest"} <= set(steps)


@pytest.mark.parametrize("value", ["nan", "-1", "-inf"])
def test_wait_must_be_seconds(mini, capsys, value):
    code, errors = run_cli(["ingest", "--study", "mini", "--root", str(mini.root), f"--wait={value}"], capsys)
    assert code == 2 and len(errors) == 1 and "--wait must be zero or more seconds" in errors[0]


def test_symlink_loop_in_raw_folder(mini, capsys):
    (mini.raw / "w2.csv").unlink()
    (mini.raw / "w2.csv").symlink_to(mini.raw / "loop.csv")
    (mini.raw / "loop.csv").symlink_to(mini.raw / "w2.csv")
    _assert_error(mini, capsys, 3, "w2.csv", "cannot be followed", failed_wave="w2")


def _raw_snapshot(paths: StudyPaths) -> dict:
    return {p: p.read_bytes() for p in sorted(paths.raw.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("text,words", [
    ('Council,ID,Role,Q1 effectiveness,Q2 plan,Comment\r\nHartlepool,A,Strategic lead,Good,Yes,"never closed\r\n'
     'Middlesbrough,B,Partner,Poor,No,ok\r\nManchester,E,Partner,Good,No,fine\r\n', ("not closed",)),
    ('Council,ID,Role,Q1 effectiveness,Q2 plan,Comment\r\nHartlepool,A,Strategic lead,Good,Yes,"stray\r\n'
     'Middlesbrough,B,Partner,Poor,No,ok\r\nManchester,E,Partner,Good,No,"fine"\r\n', ("not closed",)),
    ('Council,ID,Role,Q1 effectiveness,Q2 plan,Comment,\r\nHartlepool,A,Strategic lead,Good,Yes,a comment,more\r\n',
     ("column 7 holds data but has no name",)),
])
def test_csv_rows_are_never_lost(mini, capsys, text, words):
    (mini.raw / "w2.csv").write_text(text, encoding="utf-8")
    _assert_error(mini, capsys, 3, "w2.csv", *words)


def test_csv_answer_longer_than_128_kb_is_read(mini, capsys):
    long = "word " * 40000
    (mini.raw / "w2.csv").write_text(_csv_text(rows=[[*W2_ROWS[0][:5], long], *W2_ROWS[1:]]), encoding="utf-8")
    assert _run(mini, capsys) == (0, [])
    data, report = _ingested(mini, "w2")
    assert report["rows_read"] == 3 and data["note"].tolist()[0] == long.strip()


def test_a_multiline_answer_is_one_row(mini, capsys):
    rows = [[*W2_ROWS[0][:5], "first line\nsecond, with a comma"], *W2_ROWS[1:]]
    (mini.raw / "w2.csv").write_text(_csv_text(rows=rows), encoding="utf-8")
    assert _run(mini, capsys) == (0, [])
    assert _ingested(mini, "w2")[1]["rows_read"] == 3


def test_excel_header_merged_over_two_columns(mini, capsys):
    _xlsx(mini.raw / "w2.xlsx", [[*W2_COLUMNS, None], *([*r, "second half"] for r in W2_ROWS)], merges=["F1:G1"])
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.xlsx"')
    _assert_error(mini, capsys, 3, "w2.xlsx", "column 7 holds data but has no name in header row 1", "merged")


def test_excel_formulas_without_saved_values(mini, capsys):
    rows = [W2_COLUMNS, *([f'=IF(1,"{r[0]}","")', *r[1:]] for r in W2_ROWS)]
    _xlsx(mini.raw / "w2.xlsx", rows)
    _edit_config(mini, 'file = "w2.csv"', 'file = "w2.xlsx"')
    _assert_error(mini, capsys, 3, "w2.xlsx", "3 cell(s) hold formulas with no saved value", "recalculate and save")


def test_respondent_id_is_unique_within_its_council(mini, capsys):
    """The same id in two councils is two people; in one council, ids differing in case or spaces are one."""
    rows = [[*W2_ROWS[0][:1], "A", *W2_ROWS[0][2:]], ["Middlesbrough", "a ", *W2_ROWS[1][2:]],
            ["Manchester", "A", *W2_ROWS[2][2:]], ["Manchester", " a", *W2_ROWS[2][2:]]]
    (mini.raw / "w2.csv").write_text(_csv_text(rows=rows), encoding="utf-8")
    assert _run(mini, capsys, "link") == (0, [])
    data, report = _ingested(mini, "w2")
    assert data["council_raw"].tolist() == ["Hartlepool", "Middlesbrough", "Manchester"]
    assert data["respondent_id"].nunique() == 1  # one pseudonym, three people: keyed by council in the panel
    quarantine = pd.read_csv(mini.quarantine, keep_default_na=False)
    assert quarantine[(quarantine.wave == "w2") & (quarantine.scope == "row")]["source_row"].tolist() == [3]
    panel = pd.read_parquet(mini.panel_long)
    assert panel[panel.wave == "w2"].groupby(["council_code", "respondent_id"]).ngroups == 3


def test_every_council_unknown_in_every_wave(mini, capsys):
    frame, meta = pyreadstat.read_sav(str(mini.raw / "w1.sav"), user_missing=True)
    pyreadstat.write_sav(frame.assign(la="Atlantis"), str(mini.raw / "w1.sav"))
    (mini.raw / "w2.csv").write_text(_csv_text(rows=[["Atlantis", *r[1:]] for r in W2_ROWS]), encoding="utf-8")
    _assert_error(mini, capsys, 3, "no row of any wave could be linked", "aliases", failed_wave=None, command="link")
    assert not mini.panel_long.exists()


def test_full_disk_is_one_line_with_its_own_exit_code(mini, capsys):
    """`ulimit -f` (EFBIG) stands in for a full disk (ENOSPC): both end the same way."""
    import resource
    import subprocess
    import sys

    assert _run(mini, capsys) == (0, [])
    before = {p: p.read_bytes() for p in mini.processed.rglob("*") if p.is_file()}
    (mini.raw / "w2.csv").write_text(_csv_text(rows=W2_ROWS * 200), encoding="utf-8")
    raw = _raw_snapshot(mini)
    limit = max(len(b) for b in before.values()) + 512

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "impactstudy", "ingest", "--study", "mini", "--root", str(mini.root)],
                          capture_output=True, text=True, preexec_fn=small_files, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("impactstudy: error:")]
    assert done.returncode == 7 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "no space left on" in errors[0] and str(mini.processed) in errors[0]
    assert_outputs_complete(mini.root)
    assert {p: p.read_bytes() for p in mini.processed.rglob("*") if p.is_file() and p.name != "manifest.json"} == {
        p: b for p, b in before.items() if p.name != "manifest.json"}
    assert _raw_snapshot(mini) == raw


def _tmpfs(folder: Path, kilobytes: int) -> bool:
    """Mount a tmpfs of ``kilobytes`` over ``folder`` holding a copy of what it held (False where mounting is not allowed)."""
    import shutil
    import subprocess

    keep = folder.with_name(folder.name + ".before")
    shutil.copytree(folder, keep) if folder.exists() else keep.mkdir(parents=True)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
                          capture_output=True, check=False) if os.geteuid() == 0 else None
    if done is None:
        return False
    if done.returncode != 0:
        return False
    shutil.copytree(keep, folder, dirs_exist_ok=True)
    return True


@pytest.mark.parametrize("stage,folder,spare", [("link", "processed", 48), ("report", "reports", 48)])
def test_a_real_full_disk_leaves_the_outputs_as_they_were(mini, capsys, stage, folder, spare):
    """A small tmpfs under data/processed or reports that fills during a rerun (ENOSPC from the kernel, not
    `ulimit -f`): exit 7 with one line naming the folder; every output as before the run; no temporary file."""
    import subprocess

    assert _run(mini, capsys, stage) == (0, [])
    target = mini.processed if folder == "processed" else mini.root / "reports" / "mini"
    used = sum(4 * -(-p.stat().st_size // 4096) for p in target.rglob("*") if p.is_file())  # KB in 4 KB pages
    try:
        if not _tmpfs(target, used + spare):
            pytest.skip("mounting a tmpfs is not allowed here")
        before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        many = [[*row[:5], f"answer {i}: " + " ".join(str(i * k) for k in range(40))]  # text grows every output
                for i, row in enumerate(W2_ROWS * 1000)]
        (mini.raw / "w2.csv").write_text(_csv_text(rows=many), encoding="utf-8")  # every stage reruns
        got, errors = _run(mini, capsys, stage)
        assert got == 7 and len(errors) == 1, errors
        assert "no space left on" in errors[0] and str(target) in errors[0], errors[0]
        assert_outputs_complete(mini.root)
        after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        if folder == "processed":  # the manifest records the steps that finished before the disk filled
            before = {p: b for p, b in before.items() if p.name != "manifest.json"}
            after = {p: b for p, b in after.items() if p.name != "manifest.json"}
        assert after == before
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, check=False)


def test_workers_of_a_killed_run_do_not_keep_the_lock(mini):
    """Only the main process is killed (as a closed terminal or the OOM killer does): the lock is free at once."""
    import signal
    import subprocess
    import sys
    import time

    from impactstudy.pipeline.steps import study_lock

    script = textwrap.dedent(f"""
        import multiprocessing, sys, time
        from pathlib import Path
        from impactstudy.pipeline.paths import StudyPaths
        from impactstudy.pipeline.steps import study_lock
        with study_lock(StudyPaths(Path({str(mini.root)!r}), "mini")):
            worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
            worker.start()
            print(worker.pid, flush=True)
            time.sleep(60)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(run.stdout.readline())
    run.send_signal(signal.SIGKILL)
    run.wait()
    with study_lock(mini, timeout=10):
        pass
    for _ in range(50):  # the worker was told to stop when its parent died
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its parent")


FIXTURES = Path(__file__).parent / "fixtures"


def test_real_spss_file_with_a_date_beyond_range():
    """haven's own datetime.sav: pyreadstat overflows on it; the value out of range is kept as its number."""
    table = read_raw(FIXTURES / "haven-datetime.sav", "sav")
    assert table.data["date"].tolist() == [datetime(2014, 9, 22), datetime(2014, 9, 23)]
    assert table.data["date.posix"].tolist() == [6306150067200.0, datetime(2014, 9, 23, 15, 59, 20)]


def test_spss_zero_and_medieval_submission_times_are_quarantined(mini, capsys):
    path = mini.raw / "w1.sav"
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    frame["when"] = [datetime(1582, 10, 14), datetime(2014, 1, 2), datetime(2014, 2, 2), datetime(2014, 1, 3),
                     datetime(1066, 10, 14)]
    pyreadstat.write_sav(frame, str(path), variable_value_labels=meta.variable_value_labels,
                         missing_ranges={"q1": [8, 9]})
    assert _run(mini, capsys) == (0, [])
    quarantine = pd.read_csv(mini.quarantine, keep_default_na=False)
    times = quarantine[(quarantine.wave == "w1") & (quarantine.column == "when")]
    assert times["source_row"].tolist() == [1, 5] and (times["reason"] == "Unreadable date and time").all()
    assert _ingested(mini, "w1")[1]["rows_read"] == 5


def test_councils_file_takes_the_read_options_of_a_wave(mini, capsys):
    text = "gss;status\r\nE06000001;Good\r\nE06000002;Inadéquate\r\nE08000003;Good\r\n"
    (mini.raw / "councils.csv").write_bytes(text.encode("latin-1"))
    mini.config.write_text(mini.config.read_text() + COUNCILS_TABLE.format('status = "category"'))
    _assert_error(mini, capsys, 3, "councils.csv", "read.encoding", "[councils]", failed_wave=None, command="link")
    mini.config.write_text(mini.config.read_text() + 'read = { encoding = "latin-1", delimiter = ";" }\n')
    assert _run(mini, capsys, "link") == (0, [])
    panel = pd.read_parquet(mini.panel_long)
    assert "Inadéquate" in set(panel["status"].dropna())


@pytest.mark.parametrize("value", ["1066-10-14", "2300-01-01", "1582-10-14"])
def test_councils_file_date_beyond_range_is_one_line_naming_the_row(mini, capsys, value):
    """A date pandas cannot hold in nanoseconds (a typo for 2016, an SPSS zero date, a 'no date' sentinel)
    in a date covariate: link and validate say which row, never a traceback, never a silent blank."""
    (mini.raw / "councils.csv").write_text(f"gss,review,rate\nE06000001,2013-06-04,1.5\nE06000002,{value},n/a\n"
                                           "E08000003,2014-01-01,2\n", encoding="utf-8")
    mini.config.write_text(mini.config.read_text() + COUNCILS_TABLE.format('review = "date", rate = "number"'))
    line = _assert_error(mini, capsys, 3, "councils.csv row 3", f"review '{value}'", "outside the dates",
                         failed_wave=None, command="link")
    assert "Traceback" not in line
    from impactstudy.cli import main

    assert main(["validate", "--study", "mini", "--root", str(mini.root)]) == 6
    assert "councils.csv row 3: review" in capsys.readouterr().out
    (mini.raw / "councils.csv").write_text("gss,review,rate\nE06000001,2013-06-04,1.5\nE06000002,,n/a\n"
                                           "E08000003,2014-01-01,2\n", encoding="utf-8")
    assert _run(mini, capsys, "link")[0] == 0
    notes = json.loads(mini.linkage_summary.read_text())["covariate_notes"]
    assert "councils.csv row 3: rate 'n/a' is not a number; taken as not recorded" in notes
