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
        for column in zip(*sheet[ref]):  # no column narrower than its longest word (widths are in characters)
            word = max((len(w) for c in column for w in str(c.value if c.value is not None else "").split()), default=0)
            assert (sheet.column_dimensions[column[0].column_letter].width or 0) >= word, (name, column[0].value)
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


def test_codebook_is_in_the_methods_section_the_workbooks_the_documents_and_the_tables(bundles):
    import docx
    import openpyxl
    import pandas as pd

    study, paths, results = bundles
    for audience in ("public", "internal"):
        bundle = paths.bundle(audience)
        assert {"codebook.csv", "codebook-sources.csv"} <= set(results[audience]["tables"])
        measures = pd.read_csv(bundle / "tables" / "codebook.csv", encoding="utf-8-sig")
        assert measures["Variable"].tolist() == [m.name for m in study.analysed_measures]
        row = measures.set_index("Variable").loc["eff_leadership"]
        assert row["Missing codes"] == "8 (Stata .a) = Don't know; 9 (Stata .b) = Not applicable"
        book = openpyxl.load_workbook(bundle / "tables.xlsx")
        titles = {book[n]["A1"].value.split(" [note")[0]: n for n in book.sheetnames[3:]}
        sheet = book[titles["Codebook: the measures"]]
        [(_, ref)] = sheet.tables.items()
        cells = [[c.value for c in r] for r in sheet[ref]]
        assert cells[0][:3] == ["Variable", "Label", "Type"] and len(cells) == len(measures) + 1
        assert "Codebook: where each measure comes from in each wave" in titles
        doc = docx.Document(str(bundle / "report.docx"))
        heads = [t.rows[0].cells[0].text for t in doc.tables]
        assert sum(1 for t in doc.tables if t.rows[0].cells[1].text == "Label") >= 1 and "Variable" in heads
        html = (bundle / "index.html").read_text(encoding="utf-8")
        methods = html[html.index("Methods and data quality"):]
        assert "Codebook: the measures" in methods


def test_word_columns_fill_the_page_and_share_it_by_their_text():
    from impactstudy.report.document import WIDTH_CM, column_widths
    from impactstudy.report.tables import from_rows

    item = from_rows("t", "T", ["Measure", "n"], [["A long label of a measure asked in every wave", "40"]], numeric=["n"])
    widths = column_widths(item)
    assert sum(widths) == pytest.approx(WIDTH_CM) and widths[0] > 3 * widths[1]
    assert widths[1] >= 0.45 + 0.18 * 2  # a column of numbers never narrower than its digits
    many = from_rows("t", "T", [f"Heading{k}" for k in range(12)], [["x" * 30] * 12])
    assert sum(column_widths(many)) == pytest.approx(WIDTH_CM)


def test_wide_word_tables_get_a_landscape_page_or_are_split_so_no_column_is_narrower_than_its_words(tmp_path):
    import docx
    from docx.enum.section import WD_ORIENT

    from dataclasses import replace

    from impactstudy.report.document import (LANDSCAPE_CM, SMALL, WIDTH_CM, column_widths, least_widths, pages,
                                             write_document)
    from impactstudy.report.tables import from_rows

    narrow = from_rows("n", "Narrow", ["Measure", "n"], [["Leadership", "40"]], numeric=["n"])
    wide = from_rows("w", "Wide", ["Question", *[f"Reason{k}" for k in range(9)]],
                     [["Effectiveness: leadership", *["1,234"] * 9]])
    widest = from_rows("x", "Widest", ["Question", *[f"Comparison{k}" for k in range(14)]],
                       [["Effectiveness", *["−0.21 (−0.53 to 0.16)"] * 14]], notes=["A note."])
    assert pages(narrow) == [(narrow, False, False)]
    assert sum(least_widths(wide, SMALL)) > WIDTH_CM and pages(wide) == [(wide, True, False)]
    snug = replace(wide, header=wide.header[:8], rows=(wide.rows[0][:8],), numeric=wide.numeric[:8])
    assert sum(least_widths(snug)) > WIDTH_CM >= sum(least_widths(snug, SMALL)) and pages(snug) == [(snug, False, True)]
    parts = pages(widest)
    assert len(parts) >= 2 and all(landscape for _, landscape, _ in parts)
    assert [p.header[0] for p, _, _ in parts] == ["Question"] * len(parts)  # row labels repeated
    assert sum(len(p.header) - 1 for p, _, _ in parts) == 14 and parts[-1][0].notes == ("A note.",)
    assert parts[0][0].caption == f"Widest (part 1 of {len(parts)})"
    for part, _, _ in parts:
        assert sum(least_widths(part)) <= LANDSCAPE_CM
        widths = column_widths(part, LANDSCAPE_CM)
        assert all(w >= m - 1e-9 for w, m in zip(widths, least_widths(part)))  # no column below its longest word

    class Section:  # the shape write_document reads
        def __init__(self, blocks):
            self.title, self.intro, self.blocks = "Section", "", blocks

    blocks = [{"kind": "table", "table": t} for t in (narrow, wide, snug, widest)]
    path = tmp_path / "wide.docx"
    write_document(path, [Section(blocks)], "Title", "Banner", None)
    document = docx.Document(str(path))
    orientation = [s.orientation for s in document.sections]
    assert orientation == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE,
                           WD_ORIENT.PORTRAIT][: len(orientation)]
    assert all((s.page_width > s.page_height) == (s.orientation == WD_ORIENT.LANDSCAPE) for s in document.sections)
    assert {(round(s.page_width.cm, 1), round(s.page_height.cm, 1)) for s in document.sections} == {(21.0, 29.7), (29.7, 21.0)}
    assert {round(s.page_width.cm - s.left_margin.cm - s.right_margin.cm, 1) for s in document.sections} == {
        WIDTH_CM, LANDSCAPE_CM}  # the widths the tables are laid out for
    assert len(document.tables) == 3 + len(parts)
    assert document.tables[2].rows[0].cells[0].paragraphs[0].style.name == "Table text small"
