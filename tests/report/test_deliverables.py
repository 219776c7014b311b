"""What researchers send: each bundle's tables.xlsx (accessible workbook) and report.docx (Word).

Both are read back (openpyxl, python-docx) and converted with LibreOffice headless when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from impactstudy.report.disclosure import MARK
from impactstudy.report.stage import run_report

from report_fixtures import build_study

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    study, paths = build_study(tmp_path_factory.mktemp("deliver"), 6)
    results = run_report(study, paths)
    return study, paths, results


def test_workbook_has_cover_contents_notes_and_one_titled_table_per_sheet(bundles):
    import openpyxl

    study, paths, results = bundles
    book = openpyxl.load_workbook(paths.bundle("public") / "tables.xlsx")
    assert book.sheetnames[:3] == ["Cover", "Contents", "Notes"]
    tables = book.sheetnames[3:]
    assert len(tables) == len(results["public"]["tables"])
    withheld = numbers = 0
    for name in tables:
        sheet = book[name]
        assert len(sheet.tables) == 1  # one Excel table per sheet
        assert isinstance(sheet["A1"].value, str) and sheet["A1"].value  # the title in the first row
        [(_, ref)] = sheet.tables.items()
        for row in sheet[ref][1:]:
            for cell in row:
                if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                    assert cell.number_format != "General", (name, cell.coordinate)
                    numbers += 1
                elif cell.value == MARK:
                    withheld += 1
                assert cell.value is not None, (name, cell.coordinate)  # no blank cell: [z] says why
    assert numbers > 100 and withheld > 0
    notes = [row[1] for row in book["Notes"].iter_rows(min_row=4, values_only=True) if row[1]]
    assert any(text.startswith("[c] Confidential") for text in notes)
    titled = [book[n]["A1"].value for n in tables if MARK in [c.value for r in book[n].iter_rows() for c in r]]
    assert titled and all("[note" in t for t in titled)  # a table with [c] points to its note
    contents = [row[0] for row in book["Contents"].iter_rows(min_row=4, values_only=True) if row[0]]
    assert contents == tables
    internal = openpyxl.load_workbook(paths.bundle("internal") / "tables.xlsx")
    assert all(MARK not in [c.value for r in internal[n].iter_rows() for c in r] for n in internal.sheetnames[3:])


def test_document_has_headings_by_aim_word_tables_and_pictures_with_alt_text(bundles):
    import docx

    study, paths, results = bundles
    doc = docx.Document(str(paths.bundle("public") / "report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    for aim in study.aims:
        assert aim.title in headings
    assert "The sample" in headings and "Methods and data quality" in headings
    assert len(doc.tables) >= len(results["public"]["tables"])
    pictures = doc.inline_shapes
    assert len(pictures) == len(results["public"]["figures"])
    for picture in pictures:
        assert picture._inline.docPr.get("descr")  # alt text
    text = "\n".join(p.text for p in doc.paragraphs)
    assert text.count("Public report") == 1 and headings[0] == "Summary"


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_converts_the_workbook_and_the_document(bundles, tmp_path):
    _, paths, _ = bundles
    public = paths.bundle("public")
    for source in (public / "tables.xlsx", public / "report.docx"):
        done = subprocess.run([SOFFICE, "--headless", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
                               "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
                              capture_output=True, text=True, timeout=240)
        pdf = tmp_path / f"{Path(source).stem}.pdf"
        assert done.returncode == 0 and pdf.is_file() and pdf.stat().st_size > 10_000, done.stderr[-2000:]


def test_cells_of_symbols_only_are_not_applicable_in_the_workbook() -> None:
    """gptables refuses a cell with no letter or digit (a generated study's forest table had '–')."""
    import pandas as pd

    from impactstudy.report.workbook import NOT_APPLICABLE, _filled

    data = pd.DataFrame({"a": ["–", "", "x", None], "b": [1.5, "†", "[c]", "< 0.001"]})
    out = _filled(data)
    assert out["a"].tolist() == [NOT_APPLICABLE, NOT_APPLICABLE, "x", NOT_APPLICABLE]
    assert out["b"].tolist() == [1.5, NOT_APPLICABLE, "[c]", "< 0.001"]
