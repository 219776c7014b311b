"""Read administrative outcome tables (council x year) into one tidy long frame.

Two layouts are read:

* ``dfe`` — the Department for Education's open-data CSV: ``time_period`` (``2013`` or ``201314``),
  ``time_identifier``, ``geographic_level``, ``old_la_code`` (3-digit DfE code), ``new_la_code``
  (GSS), ``la_name``, then filter columns (breakdowns) and indicator columns. Only
  ``geographic_level == "Local authority"`` rows are kept, and only rows whose filter columns equal
  the declared values (``{"breakdown": "Total"}``).
* ``plain`` — ``council, year, indicator…``: the council as a GSS code, DfE code or name, the year as
  ``2013``, ``201314``, ``2013-14`` or ``2013/14``.

A cell is a number or one of the DfE symbols (:data:`SYMBOLS`); a symbol is kept as the cell's
``missing_reason`` with a NaN value, never turned into a number (``low`` is not zero: it is a count
that rounds to zero and was withheld). Anything else (``12a``) is set aside in the quarantine with its
row and column.

Years: an outcome's ``year`` is the calendar year in which its reporting period *ends* on the declared
``year_end`` (month, day). ``201314`` with a year end of 31 March is the year April 2013 - March 2014,
so ``year = 2014`` and ``period_end = 2014-03-31``; ``2013`` is the period ending on the year end in
2013. Councils are resolved with the package's register as of each row's period end, and then mapped
to the code the same authority has at the panel's last period end (so Gateshead's 2013 code change
is one council, while a merger such as Bournemouth, Christchurch and Poole is a new council from the
year it exists). See docs/impact.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impactstudy.councils import resolve, same_authority_code
from impactstudy.errors import DataError
from impactstudy.study.config import IMPACT_LAYOUTS
from impactstudy.study.hints import did_you_mean
from impactstudy.study.periods import period_end

#: DfE's symbols for a value that is not given, and the reason each stands for.
SYMBOLS: dict[str, str] = {
    "c": "confidential (suppressed to protect individuals)",
    "x": "not available",
    "z": "not applicable",
    "low": "rounds to zero (withheld)",
    "u": "low reliability (withheld)",
    ":": "not available",
    "": "blank",
}
LAYOUTS = IMPACT_LAYOUTS
#: Columns of the DfE open-data layout the reader needs.
DFE_COLUMNS = ("time_period", "geographic_level", "old_la_code", "new_la_code", "la_name")
LOCAL_AUTHORITY = "Local authority"

VALUE_COLUMNS = ["outcome", "council_raw", "year", "period_end", "value", "missing_reason",
                 "source_file", "source_row"]
QUARANTINE_COLUMNS = ["source_file", "source_row", "column", "value", "reason"]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class OutcomeTable:
    """What one outcome file gave: tidy values, the cells and rows set aside, and counts of rows.

    ``values`` has :data:`VALUE_COLUMNS` (one row per council-row x outcome); ``quarantine`` has
    :data:`QUARANTINE_COLUMNS`; ``counts`` says how many raw rows were read, were of another
    geographic level, did not match the declared filter, and were used.
    """

    values: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def parse_cells(cells: pd.Series) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """Numbers, DfE-symbol reasons, and a mask of unreadable cells for text ``cells``.

    Thousands separators (``1,234``) are accepted; surrounding spaces are ignored; symbols are matched
    case-insensitively. Returns ``(values, reasons, bad)``: ``values`` NaN wherever the cell is not a
    number, ``reasons`` the :data:`SYMBOLS` text (or ``"unreadable"``), missing where a number.
    """
    text = cells.fillna("").astype(str).str.strip()
    plain = text.str.replace(",", "", regex=False)
    is_number = plain.str.match(_NUMBER)
    values = pd.to_numeric(plain.where(is_number), errors="coerce").to_numpy(dtype=float)
    symbol = text.str.lower().map(SYMBOLS)
    bad = ~is_number & symbol.isna()
    reasons = pd.Series(np.where(is_number, None, np.where(bad, "unreadable", symbol.astype(object))),
                        index=cells.index, dtype=object)
    return values, reasons, bad


def _pick_rows(table: pd.DataFrame, layout: str, filters: Mapping[str, str], source: str,
               ) -> tuple[pd.DataFrame, dict[str, int]]:
    counts = {"rows_read": len(table)}
    keep = pd.Series(True, index=table.index)
    if layout == "dfe":
        missing = [c for c in DFE_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(
                f"{source}: not in the DfE open-data layout (no column {', '.join(missing)}); "
                "declare layout = \"plain\" for a council, year, indicator table"
            )
        level = table["geographic_level"].str.strip() == LOCAL_AUTHORITY
        counts["rows_other_level"] = int((~level).sum())
        keep &= level
    for column, wanted in filters.items():
        if column not in table.columns:
            raise DataError(f"{source}: filter column '{column}' is not in the file; "
                            f"its columns are {', '.join(table.columns)}")
        keep_here = table[column].str.strip() == str(wanted)
        if not (keep & keep_here).any() and keep.any():
            seen = ", ".join(repr(v) for v in table.loc[keep, column].drop_duplicates().head(8))
            raise DataError(f"{source}: no row has {column} = '{wanted}' (values seen: {seen})")
        keep &= keep_here
    counts["rows_filtered_out"] = int(len(table) - keep.sum() - counts.get("rows_other_level", 0))
    return table[keep], counts


def _council_identifier(rows: pd.DataFrame, layout: str, council: str) -> pd.Series:
    """GSS code where given, else the DfE code, else the name (DfE layout); the named column (plain)."""
    if layout == "plain":
        return rows[council].str.strip()
    ident = rows["new_la_code"].str.strip()
    for fallback in ("old_la_code", "la_name"):
        ident = ident.where(ident != "", rows[fallback].str.strip())
    return ident


def read_outcome_table(
    table: pd.DataFrame,
    *,
    source: str,
    layout: str,
    indicators: Mapping[str, str],
    year_end: tuple[int, int],
    filters: Mapping[str, str] | None = None,
    council: str = "council",
    year: str = "year",
) -> OutcomeTable:
    """Tidy values of ``indicators`` (outcome name -> column) from a text ``table`` read from ``source``.

    ``table`` holds the file's cells as strings (``dtype=str, keep_default_na=False``) in file order;
    ``source_row`` counts its data rows from 1. ``council``/``year`` name the plain layout's columns
    (the DfE layout's are fixed). Raises :class:`DataError` for a missing column or a filter no row
    meets; unreadable periods and cells go to the quarantine.
    """
    if layout not in LAYOUTS:
        raise DataError(f"{source}: layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1)
    needed = list(indicators.values()) + ([council, year] if layout == "plain" else [])
    absent = [c for c in needed if c not in table.columns]
    if absent:
        hint = (did_you_mean(absent[0], table.columns, n=1, cutoff=0.6)
                or f"; its columns are {', '.join(map(str, table.columns))}")
        raise DataError(f"{source}: column(s) {', '.join(repr(c) for c in absent)} not in the file{hint}")
    rows, counts = _pick_rows(table, layout, filters or {}, source)
    period_text = rows["time_period" if layout == "dfe" else year].astype(str).str.strip()
    ends = period_text.map(lambda t: period_end(t, year_end))
    bad_period = ends.isna()
    quarantine = [pd.DataFrame({
        "source_file": source, "source_row": rows.index[bad_period],
        "column": "time_period" if layout == "dfe" else year, "value": period_text[bad_period].to_numpy(),
        "reason": "not a reporting period (expected 2013, 201314 or 2013-14)",
    })]
    rows, ends = rows[~bad_period], ends[~bad_period]
    ident = _council_identifier(rows, layout, council)
    frames = []
    for outcome, column in indicators.items():
        values, reasons, bad = parse_cells(rows[column])
        quarantine.append(pd.DataFrame({
            "source_file": source, "source_row": rows.index[bad], "column": column,
            "value": rows.loc[bad, column].to_numpy(), "reason": "not a number or a DfE symbol (c, x, z, low, u, :)",
        }))
        frames.append(pd.DataFrame({
            "outcome": outcome, "council_raw": ident.to_numpy(),
            "year": [e.year for e in ends], "period_end": pd.to_datetime(list(ends)),
            "value": values, "missing_reason": reasons.to_numpy(),
            "source_file": source, "source_row": rows.index.to_numpy(),
        }))
    counts["rows_used"] = len(rows)
    counts["rows_bad_period"] = int(bad_period.sum())
    if not len(rows):
        raise DataError(
            f"{source}: no row to use of {counts['rows_read']} read ({counts['rows_other_level']} at another "
            f"geographic level than 'Local authority', {counts['rows_filtered_out']} outside the declared filters, "
            f"{counts['rows_bad_period']} without a reporting period); check that it is a council-level table "
            "and the [impact] filters")
    values = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=VALUE_COLUMNS)
    return OutcomeTable(values[VALUE_COLUMNS], pd.concat(quarantine, ignore_index=True)[QUARANTINE_COLUMNS],
                        counts)


def resolve_councils(values: pd.DataFrame, aliases: Mapping[str, str] | None = None,
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add ``council_code`` to tidy ``values``; rows whose council is not in the register go to quarantine.

    Each distinct (identifier, period end) is resolved as of that period end (so a GSS code or name
    means the authority valid then), then mapped to the code the same authority has at the latest
    period end in ``values`` (:func:`impactstudy.councils.same_authority_code`: code changes are one
    council, mergers and splits are not). Returns ``(values with council_code, quarantine rows)``.
    """
    if values.empty:
        return values.assign(council_code=pd.Series(dtype="string")), pd.DataFrame(columns=QUARANTINE_COLUMNS)
    last = values["period_end"].max().date()
    pairs = values[["council_raw", "period_end"]].drop_duplicates()
    codes: dict[tuple[str, pd.Timestamp], str | None] = {}
    notes: dict[tuple[str, pd.Timestamp], str] = {}
    for end, group in pairs.groupby("period_end", sort=True):
        found = resolve(group["council_raw"].tolist(), as_of=end.date(), aliases=aliases)
        for raw, code, note in zip(group["council_raw"], found["gss_code"], found["note"], strict=True):
            codes[(raw, end)] = None if pd.isna(code) else same_authority_code(str(code), last)
            notes[(raw, end)] = "" if pd.isna(note) else str(note)
    keys = list(zip(values["council_raw"], values["period_end"], strict=True))
    council_code = pd.Series([codes[k] for k in keys], index=values.index, dtype="string")
    unmatched = council_code.isna()
    firsts = values[unmatched].drop_duplicates(["source_file", "source_row"])
    quarantine = pd.DataFrame({
        "source_file": firsts["source_file"], "source_row": firsts["source_row"], "column": "council",
        "value": firsts["council_raw"],
        "reason": [f"council not in the register on {k[1].date()} ({notes[k]}); add an alias or correct "
                   "the code" for k in zip(firsts["council_raw"], firsts["period_end"], strict=True)],
    })
    return values[~unmatched].assign(council_code=council_code[~unmatched]), quarantine[QUARANTINE_COLUMNS]


def check_duplicates(values: pd.DataFrame) -> None:
    """Raise a one-line :class:`DataError` when a council has two rows for the same outcome and year."""
    key = ["outcome", "council_code", "year"]
    dup = values[values.duplicated(key, keep=False)]
    if dup.empty:
        return
    first = dup.sort_values(["source_file", "source_row"]).iloc[0]
    same = dup[(dup[key] == first[key]).all(axis=1)]
    rows = ", ".join(f"{f} row {r}" for f, r in zip(same["source_file"], same["source_row"], strict=True))
    raise DataError(
        f"council {first['council_code']} has {len(same)} values of '{first['outcome']}' for {first['year']} "
        f"({rows}) and {dup[key].drop_duplicates().shape[0]} such council-years in all; declare a filter "
        "that picks one row per council and year (e.g. filters = { breakdown = \"Total\" }) or remove "
        "the duplicates"
    )


def combine(tables: Sequence[OutcomeTable], aliases: Mapping[str, str] | None = None,
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All files' values with ``council_code`` (checked for duplicate council-years), and the quarantine."""
    values = pd.concat([t.values for t in tables], ignore_index=True)
    values, unmatched = resolve_councils(values, aliases)
    check_duplicates(values)
    quarantine = pd.concat([t.quarantine for t in tables] + [unmatched], ignore_index=True)
    return values.reset_index(drop=True), quarantine
