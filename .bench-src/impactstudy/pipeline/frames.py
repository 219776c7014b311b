"""Column names and DataFrame helpers that more than one stage uses.

``QUARANTINE_COLUMNS`` (with :func:`sheet_rows`) and :func:`missing_column` name columns of the data contracts (the quarantine
files of ingest and link, the missing-reason column of each measure in the waves and the panel), ``MONTHS_SINCE`` the
panel's months since each council's intervention;
:func:`map_distinct` maps a column cell by cell while calling the function once per distinct cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

QUARANTINE_COLUMNS = ["wave", "source_file", "source_row", "column", "value", "reason", "scope", "sheet_row"]
# panel_long's months from each council's intervention date to the answer ([models.time_since_intervention]);
# `months_since_review` before the rename (docs/data-contracts.md, "Renamed")
MONTHS_SINCE = "months_since_intervention"


def sheet_rows(source_rows: Any, file_format: str, header_row: int) -> pd.array:
    """The row number a spreadsheet shows for each data row ``source_row`` (1-based, after the header)
    of a CSV or Excel file: ``source_row + header_row``; blank for SPSS, Stata and SAS files, whose
    rows are cases, not lines."""
    rows = np.asarray(source_rows, dtype="int64")
    if file_format in ("csv", "xlsx"):
        return pd.array(rows + header_row, dtype="Int64")
    return pd.array([pd.NA] * len(rows), dtype="Int64")


def missing_column(measure: str) -> str:
    """Name of the column holding the missing reason of ``measure``."""
    return f"{measure}__missing"


def distinct(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values): ``raw`` as ``values[codes]``, so a function of a cell is computed once per distinct cell.

    Blanks (NaN, None, NA, NaT) share the last entry, ``None``. A column holding booleans is left cell
    by cell: the hash table would merge ``True`` with ``1``, which :func:`impactstudy.ingest.harmonise.raw_key` tells apart.
    """
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    values = np.empty(len(uniques) + 1, dtype=object)
    values[:-1] = np.asarray(uniques, dtype=object)
    values[-1] = None
    if raw.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in values):
        return np.arange(len(raw)), raw.to_numpy(dtype=object)
    return codes, values


def spread(per_value: list[Any], codes: np.ndarray, index: pd.Index, dtype: str) -> pd.Series:
    """The Series whose cell i is ``per_value[codes[i]]`` (code -1: the last), converted to ``dtype`` once
    per distinct value rather than once per cell."""
    if dtype == "string":
        return pd.Series(pd.array(per_value, dtype="string").take(codes), index=index)
    mapped = np.array([*per_value, None], dtype=object)[:-1]
    return pd.Series(mapped[codes], index=index).astype(dtype)


def map_distinct(raw: pd.Series, func: Any, dtype: str = "string") -> pd.Series:
    """``raw.map(func).astype(dtype)``, calling ``func`` once per distinct cell (see :func:`distinct`)."""
    codes, values = distinct(raw)
    return spread([func(v) for v in values], codes, raw.index, dtype)
