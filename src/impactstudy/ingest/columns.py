"""The raw columns a wave's config reads, and which of them a file lacks (with the closest names).

Used by the ingest stage before it reads a wave, and by ``impactstudy validate``.
"""

from __future__ import annotations

from pathlib import Path

from impactstudy.errors import DataError
from impactstudy.pipeline.readers import RawTable, first_rows, read_raw
from impactstudy.study.config import Study, Wave
from impactstudy.study.hints import did_you_mean


def closest(name: str, columns: list[str]) -> str:
    """"; closest: 'a', 'b'" naming up to three of a file's ``columns`` like the missing column ``name``."""
    return did_you_mean(name, columns, n=3, cutoff=0.4, wording="; closest: {}")


def wave_columns(wave: Wave, study: Study) -> dict[str, str]:
    """Every raw column the config reads from ``wave``, with what it is used for."""
    used = {wave.council: "council", **({wave.council_check: "council_check"} if wave.council_check else {})}
    for key in ("respondent", "role", "submitted"):
        column = getattr(wave, key)
        if column:
            used[column] = key
    for measure in study.measures:
        if wave.id in measure.columns and not measure.coded_from:  # a coded set reads its text's column
            used[measure.columns[wave.id]] = f"measure '{measure.name}'"
    return used


def check_columns(columns: list[str], wave: Wave, study: Study, source: str) -> list[str]:
    """Problems with the columns ``wave`` needs from a file that has ``columns``."""
    present = set(columns)
    return [
        f"{source}: column '{column}' ({use}, wave '{wave.id}') is not in the file{closest(column, columns)}"
        for column, use in wave_columns(wave, study).items()
        if column not in present
    ]


def header_hint(columns: list[str], rows: list[list[str]], wave: Wave, study: Study) -> str:
    """For a wave whose named columns are missing: the columns the file has, and the spreadsheet row
    (of ``rows``, the file's first rows from row 1) holding most of the named columns, if it is not
    the header row — the usual cause is a title above the header, fixed by ``read.header_row``."""
    wanted = set(wave_columns(wave, study))
    found = [c for c in columns if c]
    text = f"; the file's columns (header row {wave.read.header_row}) are: {', '.join(repr(c) for c in found[:12])}"
    text += f" and {len(found) - 12} more" if len(found) > 12 else ""
    return text + header_row_hint(rows, wave, study, len(wanted & set(columns)))


def header_row_hint(rows: list[list[str]], wave: Wave, study: Study, hits: int = 0) -> str:
    """"; row K holds h of the N columns named: set read.header_row = K" for the row of ``rows`` (the
    file's first rows, from row 1) holding most of the wave's named columns, when it holds more than
    ``hits`` and is not the header row already; else empty."""
    wanted = set(wave_columns(wave, study))
    best = None
    for number, row in enumerate(rows, start=1):
        if len(wanted & set(row)) > hits:
            best, hits = number, len(wanted & set(row))
    if best is None or best == wave.read.header_row:
        return ""
    return f"; row {best} holds {hits} of the {len(wanted)} columns named: set read.header_row = {best}"


def read_wave(path: Path, wave: Wave, study: Study) -> RawTable:
    """The wave's raw file, read; a refusal of a CSV or Excel file says which row holds the named columns
    when it is not the declared header row (a title line above the header makes the rows look too wide)."""
    try:
        return read_raw(path, wave.format, wave.read)
    except DataError as err:
        hint = header_row_hint(first_rows(path, wave.format, wave.read), wave, study) if wave.format in ("csv", "xlsx") else ""
        if not hint:
            raise
        raise DataError(str(err) + hint) from None
