"""The two report bundles: public/ passes disclosure control in every file, internal/ holds the rest.

The public bundle of the 6-council demo (small enough for many cells below ``min_cell``) is read file by
file: every HTML table, every figure CSV and every table CSV, every table of ``tables.xlsx`` (openpyxl)
and of ``report.docx`` (python-docx). No answer count below the threshold is published, and no withheld
cell can be worked out from the published totals of its table.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.report.disclosure import MARK, recoverable
from impactstudy.report.published import typed
from impactstudy.report.stage import run_report

from report_fixtures import build_study

# columns holding counts of answers (disclosive below min_cell); counts of councils and respondents taking
# part, and of file rows, are not disclosive (docs/report.md)
ANSWER_COUNTS = {"Respondents selecting it", "Respondents answering", "Answers mentioning it", "Coded answers"}
MISSING_TABLE = "missing.csv"  # every column but the first is a count of answers (headed Question … All reasons)
MARGINS = {"Total", "All reasons", "All questions"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    study, paths = build_study(tmp_path_factory.mktemp("bundles"), 6)
    run_report(study, paths)
    return study, paths


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _frames(bundle: Path) -> dict[str, pd.DataFrame]:
    """Every table of a bundle as text: each CSV (figures/, tables/) and each HTML table of each page."""
    out = {}
    for csv in sorted(bundle.rglob("*.csv")):
        assert csv.read_bytes().startswith(b"\xef\xbb\xbf"), f"{csv.name}: no byte-order mark for Excel"
        out[str(csv.relative_to(bundle))] = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for page in sorted(bundle.rglob("*.html")):
        parser = _Tables()
        parser.feed(page.read_text(encoding="utf-8"))
        for k, rows in enumerate(parser.tables):
            if len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows):
                out[f"{page.name}#{k}"] = pd.DataFrame(rows[1:], columns=rows[0])
    out.update(_workbook_frames(bundle / "tables.xlsx"))
    out.update(_document_frames(bundle / "report.docx"))
    return out


def _cell_text(value) -> str:
    """A spreadsheet cell as the page shows it: whole numbers without '.0', nothing as ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return f"{int(value)}"
    return str(value)


def _workbook_frames(path: Path) -> dict[str, pd.DataFrame]:
    """Every Excel table of a workbook (one per sheet after the cover, contents and notes) as text."""
    import openpyxl

    out = {}
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        for name, ref in sheet.tables.items():
            rows = [[_cell_text(c.value) for c in row] for row in sheet[ref]]
            out[f"{path.name}#{name}"] = pd.DataFrame(rows[1:], columns=rows[0])
    return out


def _document_frames(path: Path) -> dict[str, pd.DataFrame]:
    """Every Word table of a document as text."""
    import docx

    out = {}
    for k, grid in enumerate(docx.Document(str(path)).tables):
        rows = [[cell.text for cell in row.cells] for row in grid.rows]
        out[f"{path.name}#{k}"] = pd.DataFrame(rows[1:], columns=rows[0])
    return out


def _is_missing_table(name: str, frame: pd.DataFrame) -> bool:
    return name.endswith(MISSING_TABLE) or (frame.columns[0] == "Question" and "All reasons" in frame.columns)


def _number(cell: str) -> float | None:
    text = cell.replace(",", "").replace("\u2212", "-")
    try:
        return float(text)
    except ValueError:
        return None


def test_every_file_of_the_public_bundle_passed_disclosure_control(bundles):
    study, paths = bundles
    public = paths.bundle("public")
    assert not (public / "councils").exists()
    assert not list(public.rglob("contrasts.csv"))  # the model stage's raw tables are processed data
    frames = _frames(public)
    assert len(frames) > 20
    checked = withheld = 0
    for name, frame in frames.items():
        columns = list(frame.columns[1:]) if _is_missing_table(name, frame) else [c for c in frame if c in ANSWER_COUNTS]
        for column in columns:
            for cell in frame[column]:
                if cell == MARK:
                    withheld += 1
                elif (value := _number(cell)) is not None:
                    assert value == 0 or value >= study.min_cell, (name, column, cell)  # zeros: docs/report.md
                    checked += 1
        if {"Respondents selecting it", "Respondents answering"} <= set(frame.columns):
            for chosen, base in zip(frame["Respondents selecting it"], frame["Respondents answering"]):
                if chosen != MARK and base != MARK:  # those not selecting it follow: not 1 to min_cell - 1 either
                    rest = _number(base) - _number(chosen)
                    assert rest == 0 or rest >= study.min_cell, (name, chosen, base)
    assert checked > 10 and withheld > 10
    for kind in ("tables.xlsx", "report.docx"):  # the workbook and the document were read, the missing table too
        names = [n for n in frames if n.startswith(kind)]
        assert len(names) > 20 and any(_is_missing_table(n, frames[n]) for n in names), kind


def test_no_withheld_cell_follows_from_the_published_totals(bundles):
    _, paths = bundles
    margins_checked = 0
    for name, frame in _frames(paths.bundle("public")).items():
        label = frame.columns[0]
        total_rows = frame[label].isin(MARGINS).to_numpy()
        total_cols = [c for c in frame.columns if c in MARGINS]
        if total_rows.any() or total_cols:
            body = frame.loc[:, [c for c in frame.columns[1:]]]
            mask = (body == MARK).to_numpy()
            if mask.any():
                # the table with its margins last, as recoverable() expects
                order = np.r_[np.flatnonzero(~total_rows), np.flatnonzero(total_rows)]
                cols = [c for c in body.columns if c not in MARGINS] + total_cols
                mask = (body.iloc[order][cols] == MARK).to_numpy()
                exposed = recoverable(mask, rows=bool(total_cols), columns=bool(total_rows.any()))
                assert not exposed.any(), name
                margins_checked += 1
        if "Group" in frame and "Respondents" in frame and "Wave" in frame:
            # group counts add up to all councils': never exactly one of them withheld beside a published total
            for _, cell in frame.groupby([c for c in ("Measure", "Wave") if c in frame]):
                groups = cell[cell["Group"] != "All councils"]["Respondents"]
                total = cell[cell["Group"] == "All councils"]["Respondents"]
                if len(total) and total.iloc[0] != MARK and len(groups) > 1:
                    assert (groups == MARK).sum() != 1, (name, cell)
    assert margins_checked >= 1


def test_answer_distributions_never_show_one_withheld_level_or_a_whole_wave_in_one_level(bundles):
    """A wave's percentages beside the number answering are its counts: a single withheld level would be
    100% less the others, and a wave whose answers are all at one level tells each respondent's answer."""
    _, paths = bundles
    rows = 0
    for name, frame in _frames(paths.bundle("public")).items():
        if frame.columns[0] != "Wave" or "Answers" not in frame.columns or not name.startswith("figures/distribution"):
            continue
        for _, row in frame.iterrows():
            levels = row.drop(["Wave", "Answers"])
            if row["Answers"] == MARK:
                continue
            rows += 1
            assert (levels == MARK).sum() != 1, (name, row.to_dict())
            shown = [_number(v) for v in levels if v != MARK]
            assert not (len(shown) == len(levels) and sum(v > 0 for v in shown) == 1), (name, row.to_dict())
    assert rows >= 3


def test_the_internal_bundle_has_what_the_public_one_withholds(bundles):
    study, paths = bundles
    internal = paths.bundle("internal")
    assert len(list((internal / "councils").glob("E*.html"))) == 6
    missing = pd.read_csv(internal / "tables" / MISSING_TABLE, encoding="utf-8-sig")
    counts = missing.iloc[:, 1:].to_numpy(dtype=float)
    assert (counts < study.min_cell).any()  # there was something to withhold
    assert MARK not in (internal / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in paths.reports.iterdir()) == ["internal", "public"]  # nothing beside the bundles


def test_tables_keep_numbers_as_numbers_and_labels_as_text():
    shown = pd.DataFrame({
        "Wave": ["Wave 1", "Wave 2", "Total"],
        "Respondents": ["1,234", MARK, "2,000"],
        "Share": ["53%", "–", "7%"],
        "95% CI": ["\u22120.03 to 0.38", MARK, "60% CI \u22122.00 to 0.75†"],
        "LMM": ["+0.18 (\u22120.03 to 0.38); q 0.253", "\u22120.10 (\u22120.30 to 0.10); q < 0.001", MARK],
    })
    out = typed(shown)
    assert list(out.columns) == ["Wave", "Respondents", "Share (%)", "95% CI low", "95% CI high", "95% CI level (%)",
                                 "LMM: estimate", "LMM: low", "LMM: high", "LMM: q-value"]
    assert out["Wave"].tolist() == ["Wave 1", "Wave 2", "Total"]
    assert out["Respondents"].tolist() == [1234, MARK, 2000]
    assert out["Share (%)"].tolist()[0] == 53 and out["Share (%)"].isna().tolist()[1]
    assert out["95% CI low"].tolist()[0] == -0.03 and out["95% CI level (%)"].tolist() == [95, MARK, 60]
    assert out["LMM: estimate"].tolist()[:2] == [0.18, -0.10]
    assert out["LMM: q-value"].tolist() == [0.253, "< 0.001", MARK]
