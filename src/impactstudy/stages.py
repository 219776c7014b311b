"""The pipeline's stages as a Python API: the command line is a thin layer over these functions.

``run("demo", ["ingest", "link"])`` runs those stages (each only where its inputs changed) under the
study's lock; ``status("demo")`` says which steps are stale and why. Stages run in pipeline order and a
stage always brings the stages before it up to date first, so a stage never reads stale inputs.

Both first ask :mod:`impactstudy.pipeline.lastrun` whether the last complete run still stands (stat calls, no
stage module imported), so a rerun with nothing changed answers in milliseconds; only otherwise are
the steps built, which imports the stages' modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from impactstudy.errors import ConfigError
from impactstudy.pipeline import lastrun
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Manifest, Step, remove_leftovers, run_steps, study_lock
from impactstudy.study.config import Study, load_study

# stage name -> "module:function" returning that stage's steps for a study
STAGE_STEPS = {
    "ingest": "impactstudy.ingest.stage:ingest_steps",
    "link": "impactstudy.link.stage:link_steps",
    "impact": "impactstudy.impact.stage:impact_steps",
    "model": "impactstudy.model.stage:model_steps",
    "report": "impactstudy.report.stage:report_steps",
}
STAGES = tuple(STAGE_STEPS)


def _steps_for(stage: str, study: Study, paths: StudyPaths) -> list[Step]:
    module, function = STAGE_STEPS[stage].split(":")
    return getattr(importlib.import_module(module), function)(study, paths)


def open_study(study: str, root: Path | str = ".") -> tuple[Study, StudyPaths]:
    """Load a study's config and paths under project ``root``."""
    paths = StudyPaths(Path(root).resolve(), study)
    return load_study(paths.config, study), paths


def plan(study: Study, paths: StudyPaths, upto: str) -> list[Step]:
    """Every step of the stages up to and including ``upto``, in order."""
    names = STAGES[: STAGES.index(upto) + 1]
    return [step for stage in names for step in _steps_for(stage, study, paths)]


def run(study: str, stages: Iterable[str] | None = None, root: Path | str = ".", force: bool = False,
        wait: float = 0.0, log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Run ``stages`` (default: all) of ``study``, and whatever they depend on; return the steps that ran.

    The report stage writes both bundles (``reports/<study>/public/``, with disclosure control, and
    ``internal/``): the audience is not a setting, so there is nothing to choose and nothing to rerun for it.
    """
    paths = StudyPaths(Path(root).resolve(), study)
    before = lastrun.seen(paths)  # before the config and salt are read (see lastrun.seen)
    config = load_study(paths.config, study)
    wanted = list(stages or STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    upto = max(wanted, key=STAGES.index)
    names = STAGES[: STAGES.index(upto) + 1]
    with study_lock(paths, timeout=wait):
        if not force and lastrun.current_steps(paths, before, names) is not None:
            remove_leftovers(paths)
            return []
        steps = plan(config, paths, upto)
        forced = {s.name for s in steps if s.name.split(":")[0] in wanted} if force else set()
        ran = run_steps(paths, steps, force=forced, log=log)
        lastrun.save(paths, before, [s.name for s in steps])
        return ran


def status(study: str, root: Path | str = ".") -> list[tuple[str, list[str]]]:
    """Each step of every stage with the reasons it is stale (an empty list: up to date)."""
    paths = StudyPaths(Path(root).resolve(), study)
    current = lastrun.current_steps(paths, lastrun.seen(paths), STAGES)
    if current is not None:
        return [(name, []) for name in current]
    config = load_study(paths.config, study)
    manifest = Manifest(paths)
    return [(step.name, manifest.stale_reasons(step)) for step in plan(config, paths, STAGES[-1])]
