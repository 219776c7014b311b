"""``impactstudy verbatims``: the free-text answers out to coders, as Excel coding sheets.

A tool over the stages, like the coverage simulation: it brings ingest and link up to date, reads the
ingested waves (and the council names link resolved) through their files, and writes one workbook per
coder to ``data/processed/<study>/coding/`` — processed data, not a report bundle, because the sheets hold
respondent-level answers. The coders' returned copies go in ``data/raw/<study>/`` and a ``[[coding]]``
section names them (docs/coding.md); :mod:`impactstudy.pipeline.coding_sheets` has the pure parts (the demo writes its returned sheets with them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from impactstudy.errors import DataError
from impactstudy.pipeline.atomic import FORMULA_PREFIXES, atomic_path, make_folder
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import Study
from impactstudy.pipeline.coding_sheets import answers_table, assign, check_coders, coding_workbook, questions

__all__ = ["PREVIOUS", "answers_table", "assign", "check_coders", "coding_workbook", "read_answers", "set_aside",
           "write_sheets"]

PREVIOUS = "previous"  # coding/previous/: an earlier run's workbooks for coders not in the latest run


def read_answers(study: Study, paths: StudyPaths) -> pd.DataFrame:
    """Every free-text answer of the ingested waves (see :func:`~impactstudy.pipeline.coding_sheets.answers_table`), council names
    from ``linkage.csv`` where link has run."""
    waves = {}
    for wave in study.waves:
        path = paths.wave_file(wave.id)
        if not path.is_file():
            raise DataError(f"{path}: not found; run `impactstudy ingest --study {study.name}` first")
        waves[wave.id] = pd.read_parquet(path)
    names = {}
    if paths.linkage.is_file():
        linkage = pd.read_csv(paths.linkage, dtype=str, keep_default_na=False)
        names = {(r.wave, _unneutralised(r.council_raw)): r.council_name for r in linkage.itertuples() if r.council_name}
    return answers_table(waves, study, names)


def _unneutralised(text: str) -> str:
    """A CSV cell as written before the atomic writer's formula guard (``'=x`` → ``=x``)."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_PREFIXES else text


def write_sheets(study: Study, paths: StudyPaths, coders: Sequence[str] = ("coder",), overlap: float = 0.0,
                 seed: int = 20130401, log: Callable[[str], None] = lambda _m: None,
                 written: datetime | None = None) -> list[Path]:
    """Write ``coding/coding_<coder>.xlsx`` for each coder; return their paths. Workbooks of an earlier run
    for coders not in this one are moved to ``coding/previous/`` (:func:`set_aside`), so the folder holds
    one run's split only."""
    names = check_coders(coders, overlap)
    if not questions(study):
        raise DataError(f"study '{study.name}' declares no free-text measure (type = \"text\"): nothing to code")
    answers = read_answers(study, paths)
    rows = assign(answers, names, overlap, seed)
    when = written or datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    out = []
    for coder in names:
        mine = rows[rows["coder"] == coder]
        target = paths.coding_dir / f"coding_{coder}.xlsx"
        with atomic_path(target) as tmp:
            coding_workbook(mine, study, coder, when).save(tmp)
        out.append(target)
        double = int((mine["coder_role"] == "second").sum())
        log(f"verbatims: {target.relative_to(paths.root)}: {len(mine):,} answers for {coder}"
            + (f" ({double:,} double-coded)" if double else ""))
    set_aside(paths, out, log)
    return out


def set_aside(paths: StudyPaths, current: Sequence[Path], log: Callable[[str], None] = lambda _m: None) -> list[Path]:
    """Move the workbooks in ``coding/`` that are not ``current`` (an earlier run's, for other coders) to
    ``coding/previous/``, replacing what an older rerun left there; return where they went.

    Why: the sheets of two splits side by side would let an answer be coded under two deals, and leave
    respondent-level answers lying about with no run that stands behind them. They are moved, not deleted,
    in case a coder is still working on one (it is still a valid sheet: rows are matched by answer id).
    Only ``data/processed/<study>/coding/`` is touched; returned sheets live in ``data/raw/`` and never are."""
    keep = {p.resolve() for p in current}
    old = sorted(p for p in paths.coding_dir.glob("coding_*.xlsx") if p.is_file() and p.resolve() not in keep)
    moved = []
    for path in old:
        target = paths.coding_dir / PREVIOUS / path.name
        make_folder(target.parent)  # owner-only, as the processed data
        os.replace(path, target)
        moved.append(target)
        log(f"verbatims: {path.relative_to(paths.root)} is an earlier run's sheet for a coder not in this run: moved to "
            f"{target.relative_to(paths.root)} (delete it once nobody codes on it)")
    return moved
