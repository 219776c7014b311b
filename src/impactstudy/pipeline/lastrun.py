"""A no-op rerun in milliseconds: what the last complete run saw, checked with ``stat`` calls only.

Asking the steps whether they are stale means building them, and building them imports each stage's
module (pandas, statsmodels, matplotlib: seconds) before a single file is looked at. So after every
complete run :func:`save` adds to the manifest (key ``last_run``) what that run's steps were built
from (:func:`seen`: the bytes of ``study.toml`` and of the secret salt, the code version, the project
root and every symbolic link under the raw folder, since a raw file's path is resolved when the steps
are built) and the steps' names. :func:`current_steps` compares that with now, and with
the manifest's own records: every step ran with this code, and each of its inputs and outputs has the
size and modification time it had when hashed, and the hash the step recorded. All equal: the plan
is up to date, and it is answered with the standard library alone.

Anything else (a changed byte, a touched file, a new symlink, a stage the record
does not cover) answers ``None`` and the caller takes the normal path, which hashes what changed: a
touched file with the same content still reruns nothing there, and the record is written afresh.
Writing the manifest after a step drops the record (:meth:`impactstudy.pipeline.steps.Manifest.save` keeps
only steps and files), so a run killed part-way leaves no record to trust.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from impactstudy.pipeline.atomic import write_json
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import code_version

KEY = "last_run"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def raw_links(folder: Path) -> dict[str, str]:
    """Where the raw folder, and every symbolic link below it, leads now (each real folder walked once)."""
    links = {".": os.path.realpath(folder)}
    walked: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in walked:  # a link back up the tree: do not go round it again
            dirs[:] = []
            continue
        walked.add(real)
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            if os.path.islink(path):
                links[os.path.relpath(path, folder)] = os.path.realpath(path)
    return links


def seen(paths: StudyPaths) -> dict[str, Any]:
    """What a plan's steps are built from besides the code. Take it before reading the config and the
    salt: a change made while the steps are built then differs from the record next time."""
    return {"root": str(paths.root), "config": _sha256(paths.config), "salt": _sha256(paths.secret_salt),
            "version": code_version(), "raw_links": raw_links(paths.raw)}


def _unchanged(root: str, rel: str, cached: dict[str, Any]) -> bool:
    path = os.path.join(root, rel)
    if os.path.realpath(path) != path:  # the manifest keys resolved paths: a new symlink means another file
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == cached["size"] and stat.st_mtime_ns == cached["mtime_ns"]


def current_steps(paths: StudyPaths, now: dict[str, Any], stages: Collection[str]) -> list[str] | None:
    """The names of the recorded steps of ``stages`` if all are up to date, else None (check the slow way).

    ``now`` is :func:`seen` of this run.
    """
    try:
        manifest = json.loads(paths.manifest.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        return _up_to_date(manifest, now, stages)
    except (AttributeError, KeyError, TypeError):  # a wrong-shaped manifest is no record: check the slow way
        return None


def _up_to_date(manifest: Any, now: dict[str, Any], stages: Collection[str]) -> list[str] | None:
    record = manifest.get(KEY)
    if not record or record.get("seen") != now:
        return None
    names = [name for name in record["steps"] if name.split(":")[0] in stages]
    if {name.split(":")[0] for name in names} != set(stages):
        return None
    steps, files = manifest.get("steps", {}), manifest.get("files", {})
    checked: set[str] = set()
    for name in names:
        step = steps.get(name)
        if step is None or step.get("version") != now["version"]:
            return None
        for rel, digest in (*step.get("inputs", {}).items(), *step.get("outputs", {}).items()):
            cached = files.get(rel)
            if digest is None or cached is None or cached.get("sha256") != digest:
                return None
            if rel not in checked:
                if not _unchanged(now["root"], rel, cached):
                    return None
                checked.add(rel)
    return names


def save(paths: StudyPaths, before: dict[str, Any], steps: list[str]) -> None:
    """Record that every one of ``steps`` (built from ``before``) is now up to date. Call it holding the
    study's lock, right after the run recorded its steps in the manifest.

    A salt absent before was created while the steps were built (ingest creates it once, exclusively,
    and never rewrites it), so it is recorded as it is now; otherwise the first run's record would
    never match.
    """
    if before["salt"] is None:
        before = {**before, "salt": _sha256(paths.secret_salt)}
    manifest = json.loads(paths.manifest.read_bytes())
    manifest[KEY] = {"seen": before, "steps": steps}
    write_json(paths.manifest, manifest)
