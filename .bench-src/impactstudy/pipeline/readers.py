"""Read a raw survey file into a DataFrame plus the metadata the survey tool stored with it.

SPSS (.sav/.zsav/.por), Stata (.dta) and SAS (.sas7bdat) files are read with pyreadstat, keeping
variable labels, value labels and user-missing definitions: user-missing codes (8 "Don't know") are
read as their codes so ingest can keep the reason instead of a bare NaN. CSV is read as text with
pandas (delimiter sniffed when not given, UTF-8 with or without byte-order mark unless an encoding is
set), Excel with openpyxl. Every failure is a :class:`~impactstudy.errors.DataError` naming the file
and what to do; raw files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import faulthandler
import io as _io
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat

from impactstudy.errors import DataError
from impactstudy.study.config import ReadOptions

SNIFF_DELIMITERS = ",;\t|"
CSV_FIELD_LIMIT = 1 << 24  # 16 MB: the csv module's default of 128 KB refused long free-text answers


@dataclass(frozen=True)
class RawMeta:
    """What the file says about its columns, beyond the values."""

    column_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    user_missing: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # inclusive ranges
    file_format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    unnamed_data: tuple[int, ...] = ()  # 1-based numbers of columns holding data under an empty header cell
    header_row: int = 1


@dataclass(frozen=True)
class RawTable:
    """A raw file's rows (one per record, in file order) and its metadata."""

    data: pd.DataFrame
    meta: RawMeta


def _duplicated_columns(columns: list[str], path: Path) -> None:
    repeated = [name for name, n in Counter(columns).items() if n > 1]
    if repeated:
        raise DataError(
            f"{path}: column name(s) {', '.join(repr(r) for r in repeated)} appear more than once; "
            "rename them in the file so each column is unambiguous"
        )


def _user_missing(meta: Any) -> dict[str, list[tuple[float, float]]]:
    ranges: dict[str, list[tuple[float, float]]] = {}
    for column, spans in (getattr(meta, "missing_ranges", None) or {}).items():
        for span in spans:
            lo, hi = span["lo"], span["hi"]
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
                ranges.setdefault(column, []).append((float(lo), float(hi)))
    return ranges


def _read_isolated(path: Path, reader: Any, kwargs: dict[str, Any], kind: str) -> Any:
    """``reader(path, **kwargs)`` run in a child process, its result (or exception) passed back.

    readstat (C code) crashes the interpreter on some damaged files instead of raising, so the file is
    read in a child: a crash there becomes a clear DataError rather than a dead run. The child is forked
    where the platform allows (no interpreter start-up, nothing re-imported) and the file is read once:
    the frame comes back pickled, which costs a fraction of reading it.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else methods[0])
    # faulthandler off in the child: a crash there is expected and reported as a DataError, not dumped
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=faulthandler.disable) as pool:
        try:
            return pool.submit(reader, str(path), **kwargs).result()
        except BrokenProcessPool:
            raise DataError(f"{path}: the {kind} reader crashed on this file, so it is damaged; export the wave again") from None


def _read_stat(path: Path, fmt: str, options: ReadOptions) -> RawTable:
    readers = {
        "sav": (pyreadstat.read_sav, {"user_missing": True}),
        "por": (pyreadstat.read_por, {}),
        "dta": (pyreadstat.read_dta, {"user_missing": True}),
        "sas7bdat": (pyreadstat.read_sas7bdat, {"user_missing": True}),
    }
    reader, kwargs = readers[fmt]
    if options.encoding and fmt in ("sav", "dta", "sas7bdat"):
        kwargs = {**kwargs, "encoding": options.encoding}
    kind = {"sav": "SPSS", "por": "SPSS portable", "dta": "Stata", "sas7bdat": "SAS"}[fmt]
    try:
        try:
            frame, meta = _read_isolated(path, reader, kwargs, kind)
        except OverflowError:  # a date beyond Python's range (year 1 to 9999): read the numbers, convert here
            frame, meta = _read_isolated(path, reader, {**kwargs, "disable_datetime_conversion": True}, kind)
            frame = _dates_in_range(frame, meta, fmt)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as err:
        raise DataError(
            f"{path}: cannot be read as a {kind} file ({err}); check it is a complete {kind} export, "
            "or set the wave's format if the extension is wrong"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: text is not in the expected encoding ({err.reason}); set read.encoding for this file (in its [[waves]] entry or [councils])") from None
    unnamed = [str(i + 1) for i, name in enumerate(meta.column_names) if not isinstance(name, str) or not name.strip()]
    if unnamed:  # readstat reads some damaged headers without complaint, leaving the name empty
        raise DataError(f"{path}: variable(s) number {', '.join(unnamed)} have no name, so the file is damaged; export the wave again")
    _duplicated_columns(list(frame.columns), path)
    return RawTable(
        frame,
        RawMeta(
            column_labels={k: v for k, v in (meta.column_names_to_labels or {}).items() if v},
            value_labels={k: dict(v) for k, v in (meta.variable_value_labels or {}).items()},
            user_missing=_user_missing(meta),
            file_format=fmt,
            encoding=getattr(meta, "file_encoding", None),
        ),
    )


# where each format counts dates and times from, and in which unit, by the start of the variable's format
_EPOCHS = {
    "sav": (pd.Timestamp("1582-10-14"), (("DATETIME", "s"), ("YMDHMS", "s"), ("DATE", "s"), ("ADATE", "s"),
                                         ("EDATE", "s"), ("SDATE", "s"), ("JDATE", "s"), ("MOYR", "s"), ("QYR", "s"),
                                         ("WKYR", "s"))),
    "dta": (pd.Timestamp("1960-01-01"), (("%TC", "ms"), ("%TD", "D"), ("%D", "D"))),
    "sas7bdat": (pd.Timestamp("1960-01-01"), (("DATETIME", "s"), ("DATE", "D"), ("YYMMDD", "D"), ("MMDDYY", "D"),
                                              ("DDMMYY", "D"))),
}


def _dates_in_range(frame: pd.DataFrame, meta: Any, fmt: str) -> pd.DataFrame:
    """Date and datetime columns read as numbers turned into datetimes, one value at a time: a value
    beyond the range of dates is kept as its number, so ingest quarantines it with the value instead of
    the whole file failing."""
    epoch, units = _EPOCHS.get(fmt, (None, ()))
    out = frame.copy()
    for column, form in (getattr(meta, "original_variable_types", None) or {}).items():
        unit = next((u for prefix, u in units if str(form).upper().startswith(prefix)), None)
        if unit is None or column not in out:
            continue

        def convert(value: Any, unit: str = unit) -> Any:
            try:
                return (epoch + pd.Timedelta(value, unit=unit)).to_pydatetime() if pd.notna(value) else None
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
                return value

        out[column] = out[column].map(convert).astype(object)
    return out


def _decode(path: Path, data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as err:
            raise DataError(
                f"{path}: cannot be decoded as {encoding} ({err}); set read.encoding to the file's encoding "
                "(e.g. 'cp1252' for Windows Excel exports)"
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (byte {err.start}); set read.encoding for this file (in its [[waves]] entry or [councils]), "
            "e.g. read = {{ encoding = \"cp1252\" }} for a Windows Excel export"
        ) from None


def _read_csv(path: Path, options: ReadOptions) -> RawTable:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: the file is empty; export the wave again")
    text, encoding = _decode(path, data, options.encoding)
    delimiter = options.delimiter or _sniffed_delimiter(text)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # long free-text answers are answers
    try:
        rows = list(csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as err:
        if "field larger" in str(err):
            raise DataError(f"{path}: a field is longer than {CSV_FIELD_LIMIT >> 20} MB, so a quote is probably not "
                            "closed; correct the quotes in the file") from None
        raise DataError(f"{path}: a quoted field is not closed ({err}), so the lines after it would be read as one "
                        "cell; correct the quotes in the file or export it again") from None
    skip = options.header_row - 1
    if len(rows) <= skip:
        raise DataError(f"{path}: has no header row {options.header_row}; check read.header_row for this wave")
    header = [h.strip() for h in rows[skip]]
    _duplicated_columns([h for h in header if h], path)
    width = len(header)
    body = []
    for number, row in enumerate(rows[skip + 1 :], start=1):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise DataError(
                f"{path}: data row {number} has {len(row)} fields but the header has {width}; "
                f"check the delimiter (set read.delimiter, now {delimiter!r}) or quoting"
            )
        _swallowed_lines(row, width, delimiter, number, path)
        body.append((row + [""] * width)[:width])
    frame = pd.DataFrame(body, columns=header, dtype=object)
    frame, unnamed = _named_columns(frame, header)
    return RawTable(frame, RawMeta(file_format="csv", encoding=encoding, delimiter=delimiter, unnamed_data=unnamed,
                                   header_row=options.header_row))


def first_rows(path: Path, fmt: str, options: ReadOptions, n: int = 25) -> list[list[str]]:
    """The first ``n`` rows of a CSV or Excel file as text cells, header or not (empty for other formats
    or an unreadable file): for suggesting ``read.header_row`` when the named columns are not found.

    Read leniently, without the checks of :func:`read_raw` (a header as wide as the rows, closed
    quotes): the hint is most needed when those checks refused the file, e.g. a title line above the
    header made every data row "wider than the header".
    """
    try:
        if fmt == "xlsx":
            frame = pd.read_excel(path, sheet_name=options.sheet if options.sheet is not None else 0, header=None,
                                  dtype=object, engine="openpyxl", nrows=n)
            return [["" if pd.isna(v) else str(v).strip() for v in row] for row in frame.itertuples(index=False)]
        if fmt == "csv":
            with path.open("rb") as handle:
                head = handle.read(1 << 20)
            text, _ = _decode(path, head, options.encoding)
            lines = text.splitlines()[:n]
            delimiter = options.delimiter or _sniffed_delimiter("\n".join(lines[1:]) or text)
            return [[cell.strip().lstrip("\ufeff") for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    except Exception:  # the hint this serves is for a file already in error
        return []
    return []


def _sniffed_delimiter(text: str) -> str:
    """The delimiter of CSV ``text`` (``,`` when the sniffer cannot tell)."""
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _sheet_names(path: Path) -> str:
    """The workbook's sheet names, quoted, for an error message."""
    try:
        return ", ".join(repr(n) for n in pd.ExcelFile(path, engine="openpyxl").sheet_names)
    except Exception:  # the message this serves is already an error
        return "unreadable"


def _swallowed_lines(row: list[str], width: int, delimiter: str, number: int, path: Path) -> None:
    """Refuse a row one of whose cells holds whole further rows: a stray quote joined the lines after it.

    A text answer may span lines; a cell holding a line with as many delimiters as a row has is, instead,
    several respondents read as one (and every raw row must be counted: none may vanish into a cell).
    """
    for cell in row:
        if "\n" in cell and any(line.count(delimiter) >= width - 1 for line in cell.splitlines()[1:]):
            raise DataError(f"{path}: data row {number} has a quote that is not closed where it should be, so the "
                            "following lines were read into one of its cells; correct the quotes in the file")


def _named_columns(frame: pd.DataFrame, header: list[str]) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """``frame`` without its columns with no name, and the numbers of those that hold data (see
    :func:`unnamed_data_problem`)."""
    def filled(v: Any) -> bool:
        return not (v is None or pd.isna(v) or str(v).strip() == "")

    unnamed = tuple(index + 1 for index, name in enumerate(header) if name == "" and frame.iloc[:, index].map(filled).any())
    return frame.loc[:, [h != "" for h in header]], unnamed


def unnamed_data_problem(table: RawTable, path: Path) -> str | None:
    """A column holding data under no header name (a missing header, or a header cell merged over two
    columns) would be dropped unseen: the problem, once the wave's named columns were all found."""
    if not table.meta.unnamed_data:
        return None
    return (f"{path}: column {table.meta.unnamed_data[0]} holds data but has no name in header row "
            f"{table.meta.header_row} (a missing header, or a header cell merged over two columns); name every column")


def _read_xlsx(path: Path, options: ReadOptions) -> RawTable:
    try:
        frame = pd.read_excel(
            path,
            sheet_name=options.sheet if options.sheet is not None else 0,
            header=None,
            dtype=object,
            engine="openpyxl",
        )
    except ValueError as err:
        raise DataError(f"{path}: {err}; the workbook's sheets are {_sheet_names(path)}: set read.sheet to one "
                        "of them (or its 0-based index)") from None
    except Exception as err:  # openpyxl raises many types for a damaged or non-Excel file
        raise DataError(f"{path}: cannot be read as an Excel workbook ({type(err).__name__}: {err}); save it again as .xlsx") from None
    skip = options.header_row - 1
    if len(frame) <= skip:
        raise DataError(f"{path}: has no header row {options.header_row}; check read.header_row for this wave")
    header = ["" if pd.isna(h) else str(h).strip() for h in frame.iloc[skip]]
    _duplicated_columns([h for h in header if h], path)
    body = frame.iloc[skip + 1 :].reset_index(drop=True)
    _uncached_formulas(path, options, frame)
    body.columns = header
    body, unnamed = _named_columns(body, header)
    return RawTable(body, RawMeta(file_format="xlsx", unnamed_data=unnamed, header_row=options.header_row))


def _uncached_formulas(path: Path, options: ReadOptions, values: pd.DataFrame) -> None:
    """Refuse a sheet with formulas whose results were never saved (read as blanks, every row would be
    quarantined for want of a council): a workbook written by a program, not saved by Excel."""
    if not values.isna().to_numpy().any():
        return
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
        sheet = book.worksheets[options.sheet] if isinstance(options.sheet, int) else book[options.sheet or book.sheetnames[0]]
        found = []
        for r, row in enumerate(sheet.iter_rows(min_row=1, max_row=len(values), max_col=values.shape[1])):
            for c, cell in enumerate(row):
                if isinstance(cell.value, str) and cell.value.startswith("=") and pd.isna(values.iat[r, c]):
                    found.append(getattr(cell, "coordinate", f"row {r + 1}"))
        book.close()
    except Exception:  # noqa: BLE001 - the values were read; this check only adds advice
        return
    if found:
        raise DataError(f"{path}: {len(found)} cell(s) hold formulas with no saved value (first {found[0]}); open the "
                        "workbook in Excel or LibreOffice, recalculate and save it (or save a copy with values only)")


def read_raw(path: Path, fmt: str, options: ReadOptions | None = None) -> RawTable:
    """Read the raw file at ``path`` in format ``fmt`` (see :data:`impactstudy.study.config.FORMATS`)."""
    options = options or ReadOptions()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; put the wave's file there or correct 'file' in study.toml")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); export the wave again")
    if fmt in ("sav", "por", "dta", "sas7bdat"):
        return _read_stat(path, fmt, options)
    if fmt == "csv":
        return _read_csv(path, options)
    if fmt == "xlsx":
        return _read_xlsx(path, options)
    raise DataError(f"{path}: unsupported format '{fmt}'")


def read_columns(path: Path, fmt: str, options: ReadOptions | None = None) -> list[str]:
    """Column names of a raw file (for validation), reading as little as the format allows."""
    options = options or ReadOptions()
    if fmt in ("sav", "dta", "sas7bdat", "por"):
        reader = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta,
                  "sas7bdat": pyreadstat.read_sas7bdat, "por": pyreadstat.read_por}[fmt]
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found; put the wave's file there or correct 'file' in study.toml")
        try:
            _, meta = reader(str(path), metadataonly=True)
        except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as err:
            raise DataError(f"{path}: cannot be read as {fmt} ({err}); check the export") from None
        return list(meta.column_names)
    return list(read_raw(path, fmt, options).data.columns)
