"""Warnings the libraries raise while a step runs (pandas, statsmodels, scipy, pyreadstat, matplotlib …),
recorded with the step instead of printed between the console's lines.

A library warning in a successful run is rarely something a researcher can act on (``RuntimeWarning:
invalid value encountered in divide`` from inside a fit), but it is a fact about the run, so it is
kept: :func:`captured` collects every warning shown while its block runs, in this process and in the
worker processes forked from it (model fits, figures, the ``.sav`` writer, steps run side by side),
and hands back one record per distinct warning — ``category``, ``message``, ``where`` (the module
and line that raised it) and ``count``. The run records them in ``manifest.json`` with the step and
prints one line per step that had any. The process's warning filters are kept (``-W``,
``PYTHONWARNINGS``, a library's own filters), so what would have been shown is what is recorded, and
warnings a fit records itself (``models.json``) are not counted twice.

Worker processes that are spawned rather than forked (the impact stage's forkserver pool) inherit no
Python state: each task is handed :func:`current_spool` with its arguments and calls
:func:`spool_worker_warnings` with it. (Not an environment variable: a forkserver keeps the environment
it started with and is reused for the rest of the session, so its workers would write a later step's
warnings to the first step's folder, long deleted.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SPOOLS: list[str] = []  # the folders of the open captured() blocks, innermost last


def _where(filename: str, lineno: int) -> str:
    """``package/module.py:line`` from a full path: the last two parts, enough to find it, no home folder."""
    parts = Path(filename).parts
    return f"{'/'.join(parts[-2:])}:{lineno}"


def _key(message: Warning | str, category: type[Warning], filename: str, lineno: int) -> tuple[str, str, str]:
    text = " ".join(str(message).split())
    return category.__name__, text[:500], _where(filename, lineno)


def _spooler(spool: Path) -> Any:
    """A ``warnings.showwarning`` writing each warning as a JSON line to this process's file in ``spool``."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        with contextlib.suppress(OSError), open(spool / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(_key(message, category, filename, lineno)) + "\n")
    return show


def current_spool() -> str | None:
    """The folder of the innermost :func:`captured` block (None outside one): hand it to a spawned worker's task."""
    return _SPOOLS[-1] if _SPOOLS else None


def spool_worker_warnings(spool: str | None) -> None:
    """In a spawned worker, given the task's :func:`current_spool`: send the warnings it shows to that
    capturing run (none: shown as usual)."""
    if spool and Path(spool).is_dir():
        warnings.showwarning = _spooler(Path(spool))


def summarise(keys: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """One record per distinct (category, message, where), most frequent first."""
    counts = Counter(keys)
    return [{"category": c, "message": m, "where": w, "count": n}
            for (c, m, w), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


@contextlib.contextmanager
def captured() -> Iterator[list[dict[str, Any]]]:
    """Record the warnings shown while the block runs (here and in forked workers) instead of printing them.

    Yields a list that is filled with :func:`summarise`'s records when the block ends, also when it
    raises. Nested blocks record into the innermost one.
    """
    owner = os.getpid()
    spool = Path(tempfile.mkdtemp(prefix="impactstudy-warnings-"))
    here: list[tuple[str, str, str]] = []
    in_child = _spooler(spool)

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if os.getpid() == owner:
            here.append(_key(message, category, filename, lineno))
        else:  # a forked worker: its memory is its own, so the record goes through the spool
            in_child(message, category, filename, lineno)

    records: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.showwarning = show
        _SPOOLS.append(str(spool))
        try:
            yield records
        finally:
            _SPOOLS.remove(str(spool))
            spooled = [tuple(json.loads(line)) for path in sorted(spool.glob("*.jsonl"))
                       for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            shutil.rmtree(spool, ignore_errors=True)
            records.extend(summarise(here + spooled))


def console_line(step: str, records: list[dict[str, Any]], where: str) -> str:
    """The one console line for a step's library warnings: how many, the commonest, where they are listed."""
    total = sum(r["count"] for r in records)
    first = records[0]
    more = f" and {len(records) - 1} other kind(s)" if len(records) > 1 else ""
    message = first["message"] if len(first["message"]) <= 90 else first["message"][:87] + "…"
    return (f"{step}: {total} library warning(s), e.g. {first['category']}: {message} ({first['where']}){more}; "
            f"recorded in {where}")
