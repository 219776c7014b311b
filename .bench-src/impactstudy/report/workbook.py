"""The bundle's ``tables.xlsx``: every table of the report in one accessible workbook.

Written with ONS's ``gptables`` (the Analysis Function's own package for its guidance on releasing
statistics in spreadsheets), which gives the structure the guidance asks for: a cover sheet, a contents
sheet linking every table, a notes sheet, one table per sheet marked as an Excel table with a title in
its first row and no merged cells, blank rows or colours carrying meaning. The cells are those of
``tables/<id>.csv`` (:func:`impactstudy.report.published.frame`): labels, not codes; numbers stored as
numbers with a number format (whole numbers ``#,##0``, others with the decimals the report shows);
``[c]`` for a withheld cell, ``[z]`` where there is nothing to show, each explained by a note that the
tables holding it reference.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from impactstudy.pipeline.atomic import atomic_path
from impactstudy.report.disclosure import MARK
from impactstudy.report.published import frame
from impactstudy.report.tables import Table

NOT_APPLICABLE = "[z]"
_WORDLESS = re.compile(r"[^a-zA-Z0-9]*")  # gptables' test for a cell of symbols only
NOTES = {
    "withheld": "[c] Confidential: withheld because it rests on fewer than {threshold} councils or respondents, "
                "or because it would let a withheld figure be worked out from the totals.",
    "empty": "[z] Not applicable: nothing to show here (no earlier wave to compare with, no model fitted, or no value).",
    "bound": "A p-value or q-value shown as '< 0.001' is below 0.001; it is text because a bound is not a value.",
}


def _decimals(values: Sequence[Any]) -> int:
    """The decimals the report shows for a column of numbers (the most any value needs, at most 3)."""
    most = 0
    for value in values:
        if isinstance(value, float) and not value.is_integer():
            text = f"{value:.3f}".rstrip("0")
            most = max(most, len(text.split(".")[1]) if "." in text else 0)
    return min(most, 3)


def _filled(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with every empty cell as :data:`NOT_APPLICABLE` (the guidance: no blank cells).

    Empty means missing, blank, or a symbol with no letter or digit (the page's "–" for nothing to
    show): the guidance, and gptables, refuse a cell with no ASCII letter or digit.
    """
    out = data.astype(object)
    blank = out.isna() | out.map(lambda v: isinstance(v, str) and _WORDLESS.fullmatch(v) is not None)
    return out.mask(blank, NOT_APPLICABLE)


def _sheet_table(item: Table, threshold: int | None) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """The table's cells for a sheet, its number formats and the notes its cells need."""
    data = _filled(frame(item))
    notes, formats = [], []
    cells = data.to_numpy().ravel().tolist()
    if MARK in cells:
        notes.append("withheld")
    if NOT_APPLICABLE in cells:
        notes.append("empty")
    if any(isinstance(c, str) and c.startswith("< ") for c in cells):
        notes.append("bound")
    for column in data.columns:
        numbers = [v for v in data[column] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers:
            places = _decimals(numbers)
            formats.append({"column": {"columns": [column], "format": {
                "num_format": "#,##0" if places == 0 else "0." + "0" * places, "align": "right"}}})
    return data, formats, notes


def _name(text: str, taken: set[str]) -> str:
    """An Excel table name: letters, digits and underscores, starting with a letter, unique."""
    base = re.sub(r"\W+", "_", text).strip("_") or "table"
    base = base if base[0].isalpha() else f"t_{base}"
    name, k = base[:250], 2
    while name.lower() in taken:
        name, k = f"{base[:240]}_{k}", k + 1
    taken.add(name.lower())
    return name


def write_workbook(path: Path, tables: Sequence[Table], title: str, audience: str, threshold: int | None,
                   extra: Sequence[tuple[str, pd.DataFrame]] = ()) -> list[str]:
    """Write ``tables`` (and ``extra`` sheets: (title, frame)) as an accessible workbook; return the sheet titles."""
    import gptables as gpt

    sheets: dict[str, Any] = {}
    used: set[str] = set()
    referenced: list[str] = []
    titles = []
    items = [(t.caption, t) for t in tables] + [(caption, data) for caption, data in extra]
    for k, (caption, item) in enumerate(items, start=1):
        if isinstance(item, Table):
            data, formats, notes = _sheet_table(item, threshold)
            name = item.id
        else:
            data, formats, notes = _filled(item), [], []
            if NOT_APPLICABLE in data.to_numpy().ravel().tolist():
                notes.append("empty")
            name = caption
        if data.empty:
            continue
        marks = "".join(f" $${n}$$" for n in notes)
        referenced += [n for n in notes if n not in referenced]
        label = f"Table_{k}"
        sheets[label] = gpt.GPTable(
            table=data.reset_index(drop=True), table_name=_name(name, used), title=f"{caption}{marks}",
            instructions="This worksheet contains one table." + (" Some cells refer to notes on the notes worksheet."
                                                                if notes else ""),
            source=f"Source: {title} ({audience} report)", additional_formatting=formats)
        titles.append(caption)
    notes_table = pd.DataFrame({"Note reference": list(NOTES), "Note text": [
        NOTES[n].format(threshold=threshold) for n in NOTES]})
    notes_table = notes_table[notes_table["Note reference"].isin(referenced)].reset_index(drop=True)
    about = ["Each table of the report is on its own worksheet, in the order of the report; the contents "
             "worksheet links to each. Numbers are stored as numbers. Labels are those the report uses."]
    about.append("This is the public version: every figure resting on fewer than "
                 f"{threshold} councils or respondents is withheld and shown as [c]." if audience == "public" else
                 "This is the internal version for the research team: nothing is withheld. Do not publish it.")
    cover = gpt.Cover(title=f"{title}: tables", intro=[f"The tables of the {audience} report, as published."],
                      about=about)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gptables warns about notes it sorts itself and widths it estimates
        gpt.write_workbook(filename=str(tmp), sheets=sheets, cover=cover,
                           notes_table=notes_table if len(notes_table) else None,
                           auto_width=True)
    return titles
