"""The pipeline's stages as a Python API: the command line is a thin layer over these functions.

``run("demo", ["model"])`` runs the model stage and whatever it reads from (ingest and link, not
impact), each step only where what it depends on changed, under the study's lock; ``status("demo")``
says which steps will run and why. A stage always brings the steps it reads from up to date first,
so a stage never reads stale inputs.

The steps come from each stage's light declaration module (``<stage>/steps.py``, named in
:data:`STAGE_STEPS`), which imports no pandas: planning and ``status`` cost a config read and a few
``stat`` calls, and a rerun with nothing changed answers in a fraction of a second. The stage's code
is imported only when one of its steps runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from impactstudy.errors import ConfigError
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.plan import check_plan, needed, stale
from impactstudy.pipeline.steps import Manifest, Step, run_steps, study_lock
from impactstudy.study.config import Study, load_study

# stage name -> "module:function" returning that stage's steps for a study, in pipeline order
STAGE_STEPS = {
    "ingest": "impactstudy.ingest.steps:ingest_steps",
    "link": "impactstudy.link.steps:link_steps",
    "impact": "impactstudy.impact.steps:impact_steps",
    "model": "impactstudy.model.steps:model_steps",
    "report": "impactstudy.report.steps:report_steps",
}
STAGES = tuple(STAGE_STEPS)


def _steps_for(stage: str, study: Study, paths: StudyPaths) -> list[Step]:
    module, function = STAGE_STEPS[stage].split(":")
    return getattr(importlib.import_module(module), function)(study, paths)


def open_study(study: str, root: Path | str = ".") -> tuple[Study, StudyPaths]:
    """Load a study's config and paths under project ``root``."""
    paths = StudyPaths(Path(root).resolve(), study)
    return load_study(paths.config, study), paths


def plan(study: Study, paths: StudyPaths) -> list[Step]:
    """Every step of every stage, in order, checked (:func:`impactstudy.pipeline.plan.check_plan`)."""
    steps = [step for stage in STAGES for step in _steps_for(stage, study, paths)]
    check_plan(steps, paths)
    return steps


def _stages(stages: Iterable[str] | None) -> list[str]:
    wanted = list(stages or STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    return wanted


def run(study: str, stages: Iterable[str] | None = None, root: Path | str = ".", force: bool = False,
        wait: float = 0.0, log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Run ``stages`` (default: all) of ``study``, and whatever they read from; return the steps that ran.

    ``force`` reruns the steps of ``stages`` themselves (not those they read from) whatever the manifest
    says. The report stage writes both bundles (``reports/<study>/public/``, with disclosure control, and
    ``internal/``): the audience is not a setting, so there is nothing to choose and nothing to rerun for it.
    """
    wanted = _stages(stages)
    config, paths = open_study(study, root)
    with study_lock(paths, timeout=wait):
        steps = needed(plan(config, paths), wanted)
        forced = {s.name for s in steps if s.stage in wanted} if force else set()
        return run_steps(paths, steps, force=forced, log=log)


def status(study: str, root: Path | str = ".", stages: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
    """Each step of ``stages`` (default: all) and of what they read from, with the reasons it will run
    (an empty list: up to date); a step is stale when a step it reads from will rerun."""
    config, paths = open_study(study, root)
    steps = needed(plan(config, paths), _stages(stages))
    return [(step.name, reasons) for step, reasons in stale(Manifest(paths), steps)]
