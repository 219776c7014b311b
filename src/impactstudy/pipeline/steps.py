"""Run steps only when what they depend on changed, and say why a step is stale.

Each stage (and each wave, for ingest) is a :class:`Step`, declared by the stage's light module
``<stage>/steps.py``: the files it reads, the settings of study.toml it reads (by key, see
:mod:`impactstudy.study.keys`), the files it writes, the package whose code it runs, and a function that
writes them (imported only when the step runs). The manifest (``data/processed/<study>/manifest.json``)
records, per step, the SHA-256 of every input, of each declared setting, of each file of its code
(:mod:`impactstudy.pipeline.code`) and of every output. A step reruns when one of those changed or an
output is missing or was altered, and only then; a touched file whose content hashes the same does not
rerun anything (file sizes and modification times are kept only to avoid re-hashing).

Consecutive steps marked ``parallel`` (ingest's waves), none reading another's outputs, run at the
same time in worker processes, one per core; each is recorded, in order, once its outputs are written,
and the first one to fail (in order) raises its error as if they had run one after another.

A per-study lock (``data/processed/<study>/.lock``) keeps two runs from interleaving: a second run
waits up to ``lock_timeout`` seconds, then stops with a clear message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impactstudy.errors import ConfigError, LockError
from impactstudy.pipeline import library_warnings
from impactstudy.pipeline.atomic import make_folder, recover_staged_folders, write_json
from impactstudy.pipeline.code import code_hashes
from impactstudy.pipeline.hashing import sha256_file
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.progress import progress


@dataclass(frozen=True)
class Step:
    """One unit of work with declared inputs, settings, code and outputs (see docs/architecture.md)."""

    name: str  # "<stage>" or "<stage>:<part>"
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    config: Mapping[str, Any]  # each setting it reads, by key (impactstudy.study.keys.settings) -> its value
    code: tuple[str, ...]  # the packages whose code it runs ("impactstudy.ingest"): its code version
    run: Callable[[], Any] = field(compare=False)
    parallel: bool = False  # may run in a worker process alongside the consecutive steps so marked
    about: str = field(default="", compare=False)  # what it works on in the user's words: the wave and its file
    unit: str = field(default="steps", compare=False)  # what progress counts it as when run side by side ("waves")

    @property
    def stage(self) -> str:
        return self.name.split(":")[0]

    @property
    def shown(self) -> str:
        """The step as the console names it: its name, and what it works on when that says more."""
        return f"{self.name} ({self.about})" if self.about else self.name


def deferred(target: str, *args: Any) -> Callable[[], Any]:
    """A step's ``run``: ``"module:function"`` called with ``args``, imported only when the step runs, so
    declaring steps (planning, ``status``) imports no stage code and no pandas."""
    module, function = target.split(":")

    def run() -> Any:
        return getattr(importlib.import_module(module), function)(*args)

    run.__qualname__ = target
    return run


def sha256_config(config: Any) -> str:
    """SHA-256 of a setting's canonical JSON (sorted keys; the values :func:`impactstudy.study.keys.settings` gives)."""
    text = json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _changed(recorded: Any, now: Mapping[str, str]) -> list[str]:
    """The keys whose hash differs between a recorded ``{key: hash}`` and ``now`` (all of them when the
    record has another shape, as a manifest written before hashes were kept per key)."""
    if not isinstance(recorded, dict):
        return sorted(now)
    return sorted(k for k in {*recorded, *now} if recorded.get(k) != now.get(k))


def _listed(names: list[str], most: int = 3) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def joined(names: list[str], most: int = 3) -> str:
    """Names as a sentence lists them: "a", "a and b", "a, b and c", "a, b, c and 2 more"."""
    if len(names) > most:
        return _listed(names, most)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_record(path: Path) -> dict[str, Any]:
    """The manifest's JSON object; a missing, damaged or wrong-shaped one is no record (every step reruns)."""
    try:
        return _table(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


class Manifest:
    """The recorded hashes of every step, with a stat cache so unchanged files are not re-hashed."""

    def __init__(self, paths: StudyPaths):
        self.paths = paths
        self.path = paths.manifest
        data = _read_record(self.path)
        self.steps: dict[str, Any] = {name: step for name, step in _table(data.get("steps")).items()
                                      if isinstance(step, dict) and all(isinstance(step.get(k), dict) for k in ("inputs", "outputs"))}
        self.files: dict[str, Any] = {  # relpath -> {size, mtime_ns, sha256}
            rel: entry for rel, entry in _table(data.get("files")).items()
            if isinstance(entry, dict) and {"size", "mtime_ns", "sha256"} <= entry.keys()}

    def rel(self, path: Path) -> str:
        try:
            return Path(path).resolve().relative_to(self.paths.root.resolve()).as_posix()
        except ValueError:
            return Path(path).resolve().as_posix()

    def file_hash(self, path: Path) -> str | None:
        """SHA-256 of ``path`` (None when absent), re-hashing only when size or mtime changed."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        key = self.rel(path)
        cached = self.files.get(key)
        if cached and cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
            return cached["sha256"]
        digest = sha256_file(path)
        self.files[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        return digest

    def shown(self, path: Path) -> str:
        """A file as the console names it: a raw file (the user's) by its path from the project folder, a
        file the pipeline writes by its name in the study's folder (``linkage.csv``, ``public/index.html``)."""
        resolved = Path(path).resolve()
        for folder in (self.paths.processed, self.paths.reports):
            if resolved.is_relative_to(folder.resolve()):
                return resolved.relative_to(folder.resolve()).as_posix()
        return self.rel(path)

    def stale_reasons(self, step: Step, writers: Mapping[Path, Step] | None = None,
                      rerunning: Collection[str] = ()) -> list[str]:
        """Why ``step`` must run, by its own inputs, settings, code and outputs; empty when it is up to date.

        ``writers`` (resolved path -> the step writing it) lets an input another step writes be named by
        that step, in words (the wave and file it works on), not by the intermediate file; one that a step
        in ``rerunning`` writes is left out (:func:`impactstudy.pipeline.plan.stale` says it will rerun)."""
        record = self.steps.get(step.name)
        if record is None:
            return ["never run"]
        writers = writers or {}
        reasons = []
        if code := _changed(record.get("code"), code_hashes(step.code)):
            reasons.append(f"impactstudy's code for it changed ({_listed(code)})")
        if config := _changed(record.get("config"), config_hashes(step)):
            reasons.append(f"study.toml changed: {_listed(config, 5)}")
        recorded_inputs = record.get("inputs", {})
        upstream: list[Step] = []
        for path in step.inputs:
            key = self.rel(path)
            digest = self.file_hash(path)
            writer = writers.get(Path(path).resolve())
            if writer is not None and digest != recorded_inputs.get(key):
                if writer.name not in rerunning and writer not in upstream:
                    upstream.append(writer)
            elif digest is None:
                reasons.append(f"{key} is missing")
            elif key not in recorded_inputs:
                reasons.append(f"it reads {key}, new since it last ran")
            elif recorded_inputs[key] != digest:
                reasons.append(f"{key} changed")
        if upstream:
            reasons.append(f"what {joined([w.shown for w in upstream])} write{'s' if len(upstream) == 1 else ''} "
                           "changed since it last ran")
        for key in sorted(set(recorded_inputs) - {self.rel(p) for p in step.inputs}):
            reasons.append(f"it no longer reads {self.shown(self.paths.root / key)}")
        for path in step.outputs:
            digest = self.file_hash(path)
            if digest is None:
                reasons.append(f"its output {self.shown(path)} is missing")
            elif record.get("outputs", {}).get(self.rel(path)) != digest:
                reasons.append(f"its output {self.shown(path)} was changed outside the pipeline")
        return reasons

    def record(self, step: Step, shown: list[dict[str, Any]] | None = None) -> None:
        """Record ``step`` as run with its current inputs, settings, code and outputs, and the library warnings
        its run showed (:mod:`impactstudy.pipeline.library_warnings`; ``warnings``, only when there were any)."""
        self.steps[step.name] = {
            "code": code_hashes(step.code),
            "config": config_hashes(step),
            "inputs": {self.rel(p): self.file_hash(p) for p in step.inputs},
            "outputs": {self.rel(p): self.file_hash(p) for p in step.outputs},
            **({"warnings": shown} if shown else {}),
        }

    def save(self) -> None:
        write_json(self.path, {"steps": self.steps, "files": self.files})


def config_hashes(step: Step) -> dict[str, str]:
    """``{setting key: SHA-256 of its value}`` of what ``step`` declares it reads."""
    return {key: sha256_config(value) for key, value in step.config.items()}


BACKUP_SUFFIX = ".bak.tmp"


def _backup_of(path: Path) -> Path:
    return path.with_name(f".{path.name}{BACKUP_SUFFIX}")


def _set_aside(step: Step) -> list[tuple[Path, Path | None]]:
    """Keep each existing output of ``step`` under a backup name (a hard link: no copy, no space), so the
    step's outputs can be put back as they were if it fails part-way: they change together or not at all."""
    saved = []
    for path in step.outputs:
        backup = None
        if path.is_file():
            backup = _backup_of(path)
            backup.unlink(missing_ok=True)
            try:
                os.link(path, backup)
            except OSError:  # a file system without hard links
                shutil.copy2(path, backup)
        saved.append((path, backup))
    return saved


def _put_back(saved: list[tuple[Path, Path | None]]) -> None:
    """Undo a failed step: every output as before it ran (one it created is removed)."""
    for path, backup in saved:
        if backup is None:
            path.unlink(missing_ok=True)
        elif backup.exists():
            os.replace(backup, path)
            backup.unlink(missing_ok=True)  # rename does nothing when both names are links to one file


def _discard(saved: list[tuple[Path, Path | None]]) -> None:
    for _, backup in saved:
        if backup is not None:
            backup.unlink(missing_ok=True)


def remove_leftovers(paths: StudyPaths) -> list[Path]:
    """Undo what an interrupted run left: outputs set aside by a step that never finished are put back
    (``.<name>.bak.tmp``), then the temporary files of interrupted atomic writes (``.<name>.*.tmp``)
    are deleted; return the files found."""
    folders = [recover_staged_folders(folder) for folder in (paths.processed, paths.reports)]  # whole bundles
    found = [p for folder in (paths.processed, paths.reports) if folder.is_dir()
             for p in folder.rglob(".*.tmp") if p.is_file()] + [p for each in folders for p in each]
    for path in found:
        if path.name.endswith(BACKUP_SUFFIX):
            os.replace(path, path.with_name(path.name[1:-len(BACKUP_SUFFIX)]))
    for path in found:
        path.unlink(missing_ok=True)
    return found


def _batches(steps: list[Step]) -> Iterator[list[Step]]:
    """``steps`` in order, consecutive ``parallel`` steps that read none of each other's outputs together."""
    batch: list[Step] = []
    written: set[Path] = set()
    for step in steps:
        if batch and not (step.parallel and batch[-1].parallel and not written & {*step.inputs, *step.outputs}):
            yield batch
            batch, written = [], set()
        batch.append(step)
        written |= set(step.outputs)
    if batch:
        yield batch


_WORKER_STEPS: list[Step] = []  # the batch a forked worker runs from (closures cannot be pickled)


def _run_in_worker(index: int) -> list[dict[str, Any]]:
    with library_warnings.captured() as shown:
        _WORKER_STEPS[index].run()
    return shown


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_together(steps: list[Step]) -> list[tuple[BaseException | None, list[dict[str, Any]]]]:
    """Run ``steps`` at once in forked workers; each one's exception (or None) and library warnings, in
    order, once all finished. Progress counts the steps as they finish (ingest: "ingest: 2 waves done")."""
    global _WORKER_STEPS
    _WORKER_STEPS = steps
    try:
        with progress(steps[0].stage, steps[0].unit) as bar, ProcessPoolExecutor(
                max_workers=min(len(steps), _cores()), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = bar.track([pool.submit(_run_in_worker, i) for i in range(len(steps))])
            return [(future.exception(), [] if future.exception() else future.result()) for future in futures]
    finally:
        _WORKER_STEPS = []


def run_steps(paths: StudyPaths, steps: list[Step], force: Collection[str] = (),
              log: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """Run the stale steps (and those named in ``force``) in order, record them; return the names that ran.

    Call it holding the study's lock: it first removes temporary files a killed run left behind.
    """
    remove_leftovers(paths)
    manifest = Manifest(paths)
    writers = {p.resolve(): step for step in steps for p in step.outputs}
    ran = []

    def done(step: Step, saved: list[tuple[Path, Path | None]], shown: list[dict[str, Any]]) -> None:
        unwritten = [path for path in step.outputs if not path.is_file()]
        if unwritten:  # recorded as missing, it would rerun every time: a declaration out of step with its stage
            _put_back(saved)
            raise RuntimeError(f"{step.name} did not write {unwritten[0]}, which its stage's steps.py declares as an output")
        manifest.record(step, shown)
        try:
            manifest.save()
        except BaseException:  # not recorded (a full disk): the step's outputs go back to the recorded ones
            _put_back(saved)
            raise
        _discard(saved)
        ran.append(step.name)
        if shown:
            log(library_warnings.console_line(step.name, shown, manifest.rel(manifest.path)))

    together = _cores() > 1 and "fork" in multiprocessing.get_all_start_methods()
    for batch in _batches(steps):
        stale = [(step, ["forced"] if step.name in force else manifest.stale_reasons(step, writers)) for step in batch]
        stale = [(step, reasons) for step, reasons in stale if reasons]
        if len(stale) > 1 and together:
            for step, reasons in stale:
                log(f"{step.shown}: running ({'; '.join(reasons)})")
            saved = [_set_aside(step) for step, _ in stale]
            results = _run_together([step for step, _ in stale])
            for (step, _), (error, shown), aside in zip(stale, results, saved, strict=True):
                if error is None:
                    done(step, aside, shown)
                else:
                    _put_back(aside)
            failed = [error for error, _ in results if error is not None]
            if failed:
                raise failed[0]
            continue
        for step, reasons in stale:
            log(f"{step.shown}: running ({'; '.join(reasons)})")
            saved = _set_aside(step)
            try:
                with library_warnings.captured() as shown:
                    step.run()
            except BaseException:
                _put_back(saved)
                raise
            done(step, saved, shown)
    manifest.save()
    return ran


_HELD_LOCKS: set[int] = set()  # descriptors of the study locks this process holds


def _in_forked_child() -> None:
    """In a worker forked while a lock is held: let go of the lock's descriptor and die with the parent.

    A forked worker shares its parent's open lock file, and ``flock`` lasts while any process holds it
    open: without this, workers left behind by a parent killed alone (a closed terminal, the OOM killer)
    kept the lock, and every rerun was refused. Closing the child's copy leaves the parent's lock alone.
    On Linux the worker is also sent SIGTERM when its parent dies, so it does not write on.
    """
    if not _HELD_LOCKS:
        return
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()
    if sys.platform.startswith("linux"):
        _die_with_parent()


def _die_with_parent() -> None:
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the call took effect
            os._exit(1)


os.register_at_fork(after_in_child=_in_forked_child)


def wait_seconds(timeout: float) -> float:
    """``timeout`` checked as a lock wait: a number of seconds, zero or more (infinity: wait for ever)."""
    if not timeout >= 0:  # also refuses NaN, which compares false with everything and so waited for ever
        raise ConfigError(f"--wait must be zero or more seconds, got {timeout}")
    return timeout


@contextlib.contextmanager
def study_lock(paths: StudyPaths, timeout: float = 0.0) -> Iterator[None]:
    """Hold the study's lock; wait up to ``timeout`` seconds for another run to finish.

    The lock is ``flock`` on ``.lock``: the kernel releases it when its holder dies, so a lock left by a
    killed run is taken over at once (its forked workers let go of it, see :func:`_in_forked_child`).
    """
    deadline = time.monotonic() + wait_seconds(timeout)
    make_folder(paths.processed)  # owner-only, as everything under data/processed (pipeline.atomic)
    lock_path = paths.processed / ".lock"
    with open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "a+") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a lock file made before this rule
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{lock_path}: another impactstudy run is working on study '{paths.study}'; "
                        "wait for it to finish (or pass --wait SECONDS)"
                    ) from None
                time.sleep(0.2)
        _HELD_LOCKS.add(handle.fileno())
        try:
            yield
        finally:
            _HELD_LOCKS.discard(handle.fileno())
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
