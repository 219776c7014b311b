"""The plan: every step of a study in order, checked as a graph when it is built, and what is stale.

:func:`check_plan` refuses a plan in which two steps write the same file, a step writes into the raw
folder, or a step reads a file that is neither raw nor written by an earlier step (a file moved in one
stage but not in the stage that reads it): one line at plan time, before anything runs, instead of a
missing file part-way through a run.

:func:`needed` is the part of the plan a stage depends on (its steps and those of the stages writing
what they read, transitively), so ``run --until model`` runs no impact step. :func:`stale` says of each step
why it will run, its own reasons first and then the upstream steps that will rerun before it ("reads what
ingest:w1 (wave “First wave”, w1.sav) writes, which will rerun"): ``status`` tells
what ``run`` will do.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from impactstudy.errors import ConfigError
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Manifest, Step, joined


class PlanError(ConfigError):
    """The declared steps do not form a pipeline (a bug in a stage's ``steps.py``, or a file moved)."""


def _shown(path: Path, paths: StudyPaths) -> str:
    try:
        return path.resolve().relative_to(paths.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def check_plan(steps: list[Step], paths: StudyPaths) -> None:
    """Raise :class:`PlanError` unless ``steps`` are a pipeline in order (see the module docstring)."""
    raw = paths.raw.resolve()
    writer: dict[Path, str] = {}
    names: set[str] = set()
    for step in steps:
        if step.name in names:
            raise PlanError(f"two steps are named '{step.name}': give each step its own name in its stage's steps.py")
        names.add(step.name)
        for path in step.inputs:
            where = path.resolve()
            if where not in writer and not where.is_relative_to(raw):
                later = next((s.name for s in steps if where in {p.resolve() for p in s.outputs}), None)
                made = f"is written by {later}, which runs after it" if later else "no step writes it and it is not a raw file"
                raise PlanError(f"{step.name} reads {_shown(path, paths)}, but {made}: declare the file where the "
                                "step that writes it puts it (pipeline/paths.py) and read it from there")
        for path in step.outputs:
            where = path.resolve()
            if where.is_relative_to(raw):
                raise PlanError(f"{step.name} would write {_shown(path, paths)} into the raw folder, which is read-only")
            if where in writer:
                raise PlanError(f"{step.name} and {writer[where]} both write {_shown(path, paths)}: one file, one step")
            writer[where] = step.name


def needed(steps: list[Step], stages: Collection[str]) -> list[Step]:
    """Every step of ``stages`` and of each stage they read from (through their files, transitively), in
    order: a stage is brought up to date whole, so ``run --until link`` leaves ingest's quarantine and
    report written too, and ``--until model`` runs no impact step."""
    writer = {p.resolve(): step.stage for step in steps for p in step.outputs}
    wanted = set(stages)
    todo = list(wanted)
    while todo:
        stage = todo.pop()
        for step in steps:
            if step.stage == stage:
                for path in step.inputs:
                    producer = writer.get(path.resolve())
                    if producer is not None and producer not in wanted:
                        wanted.add(producer)
                        todo.append(producer)
    return [step for step in steps if step.stage in wanted]


def stale(manifest: Manifest, steps: list[Step]) -> list[tuple[Step, list[str]]]:
    """Each step with the reasons it will run (empty: up to date), upstream reruns included, named as the
    user knows them: the step and, for a wave, the wave and its file (never the intermediate files)."""
    writers = {p.resolve(): step for step in steps for p in step.outputs}
    rerun: dict[Path, Step] = {}  # output -> the stale step that writes it
    order = {step.name: i for i, step in enumerate(steps)}
    out = []
    for step in steps:
        reasons = manifest.stale_reasons(step, writers, {s.name for s in rerun.values()})
        upstream = sorted({rerun[p.resolve()].name for p in step.inputs if p.resolve() in rerun}, key=order.__getitem__)
        if upstream:
            shown = {s.name: s.shown for s in rerun.values()}
            reasons.append(f"reads what {joined([shown[name] for name in upstream])} "
                           f"write{'s' if len(upstream) == 1 else ''}, which will rerun")
        if reasons:
            rerun.update((p.resolve(), step) for p in step.outputs)
        out.append((step, reasons))
    return out
