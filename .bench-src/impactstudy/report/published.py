"""The bundle's tables as files: every table of the report, as the page shows it, with numbers as numbers.

A report table (:class:`~impactstudy.report.tables.Table`) holds the text a reader sees, already past
disclosure control, so the page, ``tables/<id>.csv`` and the workbook cannot disagree: they are written
from the same cells. :func:`typed` turns that text into values a spreadsheet can compute with, one
column at a time, by the few shapes the report formats numbers in (:mod:`impactstudy.report.tables`):

* ``1,234`` and ``−0.03`` (true minus sign) and ``+0.12`` become numbers;
* ``53%`` becomes 53, the column's header gaining `` (%)``;
* ``−0.03 to 0.38`` (an interval) becomes two columns, ``<header> low`` and ``<header> high``; an
  interval below 95% (``60% CI −2.00 to 0.75†``) keeps its level in a third column ``<header> level (%)``;
* ``+0.18 (−0.03 to 0.38); q 0.253`` (an estimate, its interval and its q- or p-value in one cell)
  becomes ``<header>: estimate``, ``: low``, ``: high`` and ``: q-value``;
* p- and q-values below the smallest shown stay the text ``< 0.001``: a bound is not a value;
* ``[c]`` (withheld) stays ``[c]``, ``–`` (nothing to show) becomes an empty cell; any other text is text.

A column is converted only when every cell in it has one of these shapes, so labels ("Wave 2") stay text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from impactstudy.pipeline.atomic import write_csv
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import Table

EMPTY = "–"
_NUMBER = r"[+\-\u2212]?\d[\d,]*(?:\.\d+)?"
NUMBER = re.compile(rf"^{_NUMBER}$")
PERCENT = re.compile(rf"^({_NUMBER})%$")
INTERVAL = re.compile(rf"^(?:(\d+)% CI )?({_NUMBER}) to ({_NUMBER})(†?)$")
# an estimate with its interval and a q- or p-value in one cell: "+0.18 (−0.03 to 0.38); q 0.253", "53% (32 to 73)"
COMBINED = re.compile(rf"^({_NUMBER})%? \((?:(\d+)% CI )?({_NUMBER}) to ({_NUMBER})\)(†?)(?:; ([qp]) ((?:< )?{_NUMBER}))?$")


def _float(text: str) -> float:
    return float(text.replace(",", "").replace("\u2212", "-").replace("+", ""))


def _shape(cells: list[str]) -> str | None:
    """The one shape every non-empty, non-withheld cell of a column has, or None (text)."""
    shown = [c for c in cells if c not in (MARK, EMPTY, "")]
    if not shown:
        return None
    for name, pattern in (("number", NUMBER), ("percent", PERCENT), ("interval", INTERVAL), ("combined", COMBINED)):
        if all(pattern.match(c) for c in shown):
            return name
    return None


def _value(text: str, convert: Any) -> Any:
    if text == MARK:
        return MARK
    if text in (EMPTY, ""):
        return None
    return convert(text)


def _p(text: str | None) -> Any:
    """A p- or q-value: a number, or the text "< 0.001" (a bound is not a value)."""
    if text is None:
        return None
    return text if text.startswith("<") else _float(text)


def _whole(value: Any) -> Any:
    """Counts carried as floats (40.0) as integers; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _percent_header(column: str) -> str:
    return column if "%" in column else f"{column} (%)"


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (display text, or already numbers) with its number-shaped text columns as numbers."""
    out: dict[str, list[Any]] = {}
    for column in frame.columns:
        values = frame[column].tolist()
        if not all(isinstance(v, str) or v is None for v in values):
            out[str(column)] = [_whole(v) for v in values]  # already values (figure data)
            continue
        cells = ["" if v is None else v for v in values]
        shape = _shape(cells)
        if shape == "number":
            out[str(column)] = [_whole(_value(c, _float)) for c in cells]
        elif shape == "percent":
            out[_percent_header(column)] = [_value(c, lambda t: _float(PERCENT.match(t).group(1))) for c in cells]
        elif shape == "interval":
            parts = [INTERVAL.match(c) for c in cells]
            out[f"{column} low"] = [_value(c, lambda _t, m=m: _float(m.group(2))) for c, m in zip(cells, parts)]
            out[f"{column} high"] = [_value(c, lambda _t, m=m: _float(m.group(3))) for c, m in zip(cells, parts)]
            if any(m and m.group(1) for m in parts):
                out[f"{column} level (%)"] = [_value(c, lambda _t, m=m: float(m.group(1) or 95)) for c, m in zip(cells, parts)]
        elif shape == "combined":
            parts = [COMBINED.match(c) for c in cells]
            for suffix, group in (("estimate", 1), ("low", 3), ("high", 4)):
                out[f"{column}: {suffix}"] = [_value(c, lambda _t, m=m, g=group: _float(m.group(g))) for c, m in zip(cells, parts)]
            if any(m and m.group(2) for m in parts):
                out[f"{column}: interval level (%)"] = [_value(c, lambda _t, m=m: float(m.group(2) or 95)) for c, m in zip(cells, parts)]
            kinds = {m.group(6) for m in parts if m and m.group(6)}
            if kinds:
                out[f"{column}: {'q' if kinds == {'q'} else 'p'}-value"] = [
                    _value(c, lambda _t, m=m: _p(m.group(7))) for c, m in zip(cells, parts)]
        else:
            out[str(column)] = cells
    return pd.DataFrame(out)


def frame(table: Table) -> pd.DataFrame:
    """A report table's cells as a typed frame (see :func:`typed`)."""
    return typed(pd.DataFrame(list(table.rows), columns=list(table.header)))


def report_tables(sections: Iterable[Any]) -> list[Table]:
    """Every table of the report in reading order: the sections' tables and the data behind each chart."""
    return [block["table"] for section in sections for block in section.blocks if block["kind"] in ("table", "figure")]


def write_tables(sections: Iterable[Any], folder: Path) -> list[str]:
    """Write each table of the report as ``folder/<id>.csv`` (UTF-8 with a byte-order mark); return the names."""
    names = []
    for item in report_tables(sections):
        write_csv(folder / f"{item.id}.csv", frame(item), bom=True)
        names.append(f"{item.id}.csv")
    return names
