"""Atomic, deterministic writers for every file the pipeline produces.

Each writer writes to a temporary file in the target's folder, flushes it to disk and renames it over
the target, so a run killed at any moment leaves either the previous file or the complete new one,
never a partial file. Output is deterministic (sorted JSON keys, no timestamps in Parquet) so two runs
from the same inputs give byte-identical files.

File permissions follow the user's umask, except where the data are sensitive: everything under
``data/processed/`` (respondent-level data, unsuppressed tables), the internal report bundle
``reports/<study>/internal/`` (small numbers, quotes, council pages) and ``.secrets/`` (the salt) is written
readable by its owner only (files 0o600, folders 0o700) whatever the umask, a stricter umask narrowing it
further (:func:`is_private`). The public bundle, made to be shared, gets ``0o666 & ~umask`` (0o644 with the
usual 022), as any file the user makes would.

CSV outputs neutralise spreadsheet formula injection: analysts open them in Excel, and a text cell
beginning ``=``, ``+``, ``-``, ``@``, tab or carriage return would be run as a formula. Such cells get
a leading apostrophe; numbers, negative ones included, stay numbers.

numpy, pandas and pyarrow are imported by the functions that need them, not by this module: the
pipeline's bookkeeping (:mod:`impactstudy.pipeline.steps`) uses the atomic writers, and a no-op rerun must
not pay a second for importing them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impactstudy.errors import no_space

if TYPE_CHECKING:
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@contextlib.contextmanager
def full_disk_as_error(folder: Path) -> Iterator[None]:
    """Turn an ``OSError`` saying the disk is full into a one-line :class:`~impactstudy.errors.NoSpaceError`."""
    try:
        yield
    except OSError as err:
        full = no_space(err, folder)
        if full is None:
            raise
        raise full from None


def is_private(path: Path) -> bool:
    """Whether ``path`` holds sensitive outputs: it lies in (or is) ``data/processed``, a report bundle
    ``reports/<study>/internal`` or ``.secrets`` of a project (see the module docstring)."""
    parts = [_unstaged(part) for part in Path(path).absolute().parts]
    for i, part in enumerate(parts):
        if part == ".secrets" or (part == "processed" and i and parts[i - 1] == "data"):
            return True
        if part == "internal" and i >= 2 and parts[i - 2] == "reports":
            return True
    return False


def _unstaged(part: str) -> str:
    """A folder name without the staging marks of :func:`staged_folders` (``.internal.staging.tmp`` is the
    internal bundle being written, and private as it will be)."""
    for suffix in (STAGING_SUFFIX, RETIRED_SUFFIX):
        if part.startswith(".") and part.endswith(suffix):
            return part[1:-len(suffix)]
    return part


@functools.cache
def umask() -> int:
    """The process's umask, read once: from /proc where there is one (setting the umask to read it back
    would, for a moment, let another thread create files with none)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o077)
    os.umask(old)
    return old


def file_mode(target: Path) -> int:
    """The permission bits of a file written at ``target``: owner-only when private, else the umask's."""
    return (0o600 if is_private(target) else 0o666) & ~umask()


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, private ones owner-only (0o700); a private folder that
    exists with group or other access (made before this rule, or by hand) is narrowed to its owner."""
    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir()
            os.chmod(created, (0o700 if is_private(created) else 0o777) & ~umask())
    mode = folder.stat().st_mode
    if mode & 0o077 and is_private(folder):
        os.chmod(folder, mode & 0o700)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over ``target``.

    A full disk (or ``ulimit -f``) leaves ``target`` as it was and raises :class:`~impactstudy.errors.NoSpaceError`.
    """
    target = Path(target)
    with full_disk_as_error(target.parent):
        make_folder(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as handle:
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), file_mode(target))  # mkstemp made it 0o600 whatever the rule
            os.replace(tmp_path, target)
        finally:
            tmp_path.unlink(missing_ok=True)


STAGING_SUFFIX = ".staging.tmp"  # a folder being written: .<name>.staging.tmp beside <name>
RETIRED_SUFFIX = ".retired.tmp"  # a folder being replaced: .<name>.retired.tmp until the new one is in place


def _beside(target: Path, suffix: str) -> Path:
    return target.parent / f".{target.name}{suffix}"


@contextlib.contextmanager
def staged_folders(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield an empty staging folder beside each of the folders ``targets``; when the block succeeds,
    swap them all in, so each target holds exactly what the block wrote; when it fails, remove the
    staging folders and leave every target as it was.

    For outputs that are whole folders of files (a report bundle: its page, figures, tables,
    workbook): written file by file, a failure part-way (a figure that cannot be drawn, a full disk)
    would otherwise leave new figures beside an old page. The swap is two renames per folder in the
    same file system; a run killed during it is completed or undone by :func:`recover_staged_folders`.
    """
    targets = [Path(t) for t in targets]
    staging = [_beside(t, STAGING_SUFFIX) for t in targets]
    with full_disk_as_error(targets[0].parent if targets else Path(".")):
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
            make_folder(folder)  # owner-only for the internal bundle
        try:
            yield staging
        except BaseException:
            for folder in staging:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        retired: list[tuple[Path, Path]] = []
        try:
            for target, new in zip(targets, staging, strict=True):
                old = _beside(target, RETIRED_SUFFIX)
                shutil.rmtree(old, ignore_errors=True)
                if target.exists():
                    os.replace(target, old)
                    retired.append((target, old))
                os.replace(new, target)
        except BaseException:  # put back the folders already swapped
            for target, old in retired:
                shutil.rmtree(target, ignore_errors=True)
                os.replace(old, target)
            for folder in staging:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        for _, old in retired:
            shutil.rmtree(old, ignore_errors=True)


def recover_staged_folders(folder: Path) -> list[Path]:
    """After a killed run, under ``folder``: remove staging folders, and put back a folder retired by a
    swap that did not finish (its replacement never arrived); return the leftovers found."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob(".*.tmp") if p.is_dir() and p.name.endswith((STAGING_SUFFIX, RETIRED_SUFFIX))]
    for path in found:
        if path.name.endswith(RETIRED_SUFFIX):
            target = path.with_name(path.name[1:-len(RETIRED_SUFFIX)])
            if not target.exists():
                os.replace(path, target)
                continue
        shutil.rmtree(path, ignore_errors=True)
    return found


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    # numpy and pandas values can only exist once they are imported: a manifest is written without them
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if np is not None and isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, float) or (np is not None and isinstance(value, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    return value


def dumps_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, NaN as null, two-space indent, trailing newline."""
    return json.dumps(_jsonable(data), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(target: Path, data: Any) -> None:
    """Write ``data`` as deterministic JSON atomically."""
    write_text(target, dumps_json(data))


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise_formula(value: Any) -> Any:
    """Prefix an apostrophe to text that a spreadsheet would run as a formula; leave numbers alone."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _is_number_text(value):
        return "'" + value
    return value


def safe_for_spreadsheet(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text columns cannot inject formulas (see module docstring)."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[column]) or pd.api.types.is_datetime64_any_dtype(out[column])):
            out[column] = out[column].map(neutralise_formula, na_action="ignore")
    return out


def write_csv(target: Path, frame: pd.DataFrame, bom: bool = False) -> None:
    """Write ``frame`` as UTF-8 CSV (no index), formula-safe, atomically.

    ``bom``: start with a UTF-8 byte-order mark, which Excel needs to read the file as UTF-8 (without it
    a minus sign shows as "âˆ’"); the report's bundles write their CSVs so, the pipeline's data files not.

    Lines end in CRLF (RFC 4180): Python's CSV writer quotes a cell only for the characters of the line
    terminator, so with a bare LF a text cell holding a carriage return was left unquoted and split
    its row in two for every reader.
    """
    text = safe_for_spreadsheet(frame).to_csv(index=False, lineterminator="\r\n", float_format="%.10g")
    write_text(target, ("\ufeff" if bom else "") + text)


def write_parquet(target: Path, frame: pd.DataFrame, metadata: dict[str, Any] | None = None) -> None:
    """Write ``frame`` as Parquet with our metadata (JSON under key ``impactstudy``), atomically.

    pandas' own schema metadata is kept so dtypes round-trip; no creation time is written, so the
    bytes depend only on the data.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema_meta = dict(table.schema.metadata or {})
    if metadata is not None:
        schema_meta[b"impactstudy"] = dumps_json(metadata).encode("utf-8")
    table = table.replace_schema_metadata(schema_meta)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


# an SPSS .sav header holds the time it was written: creation date (9 bytes) at byte 92, time (8) at 101
SAV_TIMESTAMP_AT = 92
SAV_TIMESTAMP = b"01 Jan 7000:00:00"


def fix_sav_timestamp(path: Path) -> None:
    """Overwrite the write time in a .sav header with a fixed one, so equal data give equal bytes."""
    with open(path, "r+b") as handle:
        if handle.read(4) in (b"$FL2", b"$FL3"):
            handle.seek(SAV_TIMESTAMP_AT)
            handle.write(SAV_TIMESTAMP)


DTA_TIMESTAMP = b"01 Jan 2000 00:00"  # Stata's "dd Mon yyyy hh:mm", fixed as the .sav's is


def fix_dta_timestamp(path: Path) -> None:
    """Overwrite the write time in a .dta (format 117 and later) header with a fixed one, so equal data
    give equal bytes."""
    with open(path, "r+b") as handle:
        head = handle.read(512)
        at = head.find(b"<timestamp>")
        if at >= 0 and head[at + 11] == len(DTA_TIMESTAMP):  # a length byte, then the text
            handle.seek(at + 12)
            handle.write(DTA_TIMESTAMP)


def read_parquet_metadata(path: Path) -> dict[str, Any]:
    """The ``impactstudy`` metadata stored by :func:`write_parquet` (empty if none)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"impactstudy")
    return json.loads(raw) if raw else {}
