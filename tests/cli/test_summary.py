"""Nothing set aside in silence: the end-of-run summary, and validate's list of what a run would set aside."""

from __future__ import annotations

import json

import pytest

from impactstudy.cli import main

from conftest import write_mini_study


def _mini(tmp_path):
    write_mini_study(tmp_path)
    csv = tmp_path / "data" / "raw" / "mini" / "w2.csv"
    csv.write_bytes(csv.read_bytes().replace(b"Manchester", b"Manchestr Citty"))
    return tmp_path


def test_every_run_ends_with_what_was_set_aside_and_why(tmp_path, capsys):
    root = _mini(tmp_path)
    assert main(["link", "--study", "mini", "--root", str(root)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert ("ingest w1: 5 rows read, 3 accepted, 2 set aside (1 duplicate submission by the same respondent, "
            "1 no council identifier)") in err
    assert "    q1 = '6.0': 1 (out of range)" in err
    assert "    Q1 effectiveness = 'banana': 1 (unrecognised answer)" in err
    assert "link: 3 councils; rows linked w1 3, w2 2 (1 set aside)" in err
    unmatched = next(line for line in err if line.startswith("    w2: 'Manchestr Citty'"))
    assert "closest: Manchester" in unmatched
    report = json.loads((root / "data" / "processed" / "mini" / "ingest_report.json").read_text(encoding="utf-8"))
    w1 = report["waves"][0]
    assert w1["rows_set_aside_by_reason"] == {"Duplicate submission by the same respondent": 1, "No council identifier": 1}
    assert w1["answers_not_declared"] == [{"column": "q1", "value": "6.0", "reason": "Out of range", "n": 1}]
    summary = json.loads((root / "data" / "processed" / "mini" / "linkage_summary.json").read_text(encoding="utf-8"))
    assert summary["unmatched_councils"][0]["closest"][0] == "Manchester"
    # a rerun with nothing to do says so, and the summary again
    assert main(["link", "--study", "mini", "--root", str(root)]) == 0
    assert "link: 3 councils; rows linked w1 3, w2 2 (1 set aside)" in capsys.readouterr().err.splitlines()


def test_validate_lists_each_value_a_run_would_set_aside(tmp_path, capsys):
    root = _mini(tmp_path)
    assert main(["validate", "--study", "mini", "--root", str(root)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "w1.sav: 2 of 5 rows and 1 answers would be set aside:" in out
    assert "  w1 case 5 q1 '6.0': Out of range" in out
    assert "  w2 row 3 (spreadsheet row 4) Q1 effectiveness 'banana': Unrecognised answer" in out
    assert any(line.startswith("  w2 row 3 (spreadsheet row 4) Council 'Manchestr Citty': Council 'Manchestr Citty' not found")
               for line in out)
    assert "would be set aside" in captured.err
    assert not (root / "data" / "processed").exists(), "validate ran a stage"


def test_a_wrong_header_row_and_sheet_say_what_the_file_has(tmp_path, capsys):
    import pandas as pd

    root = _mini(tmp_path)
    toml = root / "pipelines" / "mini" / "study.toml"
    toml.write_text(toml.read_text().replace('file = "w2.csv"', 'file = "w2.xlsx"'), encoding="utf-8")
    frame = pd.read_csv(root / "data" / "raw" / "mini" / "w2.csv", encoding="utf-8-sig", keep_default_na=False)
    with pd.ExcelWriter(root / "data" / "raw" / "mini" / "w2.xlsx") as writer:
        pd.DataFrame([["Survey export"]]).to_excel(writer, index=False, header=False, sheet_name="Export")
        frame.to_excel(writer, index=False, sheet_name="Export", startrow=2)
    assert main(["ingest", "--study", "mini", "--root", str(root)]) != 0
    err = capsys.readouterr().err
    assert "the file's columns (header row 1) are: 'Survey export'" in err
    assert "row 3 holds 6 of the 6 columns named: set read.header_row = 3" in err
    toml.write_text(toml.read_text().replace('file = "w2.xlsx"', 'file = "w2.xlsx"\nread = { sheet = "Data" }'),
                    encoding="utf-8")
    assert main(["ingest", "--study", "mini", "--root", str(root)]) != 0
    assert "the workbook's sheets are 'Export'" in capsys.readouterr().err


@pytest.mark.parametrize("title", ["Survey export, wave two\r\n\r\n", "Survey export\r\nDownloaded 2015-04-01\r\n"])
def test_a_title_line_above_a_csv_header_gets_the_header_row_hint(tmp_path, capsys, title):
    """A title line above the header makes every data row look wider than the header, which the CSV reader
    refuses before the columns are checked: the refusal still names the row holding the named columns."""
    root = _mini(tmp_path)
    w2 = root / "data" / "raw" / "mini" / "w2.csv"
    w2.write_bytes(title.encode() + w2.read_bytes().replace(b"\xef\xbb\xbf", b""))
    for command in ("ingest", "validate"):
        assert main([command, "--study", "mini", "--root", str(root)]) != 0
        captured = capsys.readouterr()  # validate lists its problems on stdout
        assert "row 3 holds 6 of the 6 columns named: set read.header_row = 3" in captured.out + captured.err
    toml = root / "pipelines" / "mini" / "study.toml"
    toml.write_text(toml.read_text().replace('file = "w2.csv"', 'file = "w2.csv"\nread = { header_row = 3 }'),
                    encoding="utf-8")
    assert main(["ingest", "--study", "mini", "--root", str(root)]) == 0
