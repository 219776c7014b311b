"""The impact stage's steps, declared (light: no pandas or pyfixest; they are imported when they run).

``impact``: the outcome files and the councils file; it reads nothing another stage writes, so a new
year of outcome data reruns only ``impact`` and the report. Without ``[impact]`` the step does nothing
and writes nothing (so every stage has a step). ``impact:triangulation``, when an outcome names a
``survey`` measure: the impact step's council effects beside the linked survey panel, so a new survey
wave reruns it but not the estimation.
"""

from __future__ import annotations

from impactstudy.errors import DataError
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, deferred
from impactstudy.study.config import Study
from impactstudy.study.keys import settings

CODE = ("impactstudy.impact",)
# the councils file as impact reads it (its dates and lineage); group_by is the survey's breakdown, not read here
COUNCILS_KEYS = tuple(f"councils.{key}" for key in ("file", "key", "covariates", "aliases", "date_format", "mergers", "read"))


def impact_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The impact stage as one step (one that does nothing without ``[impact]``)."""
    if study.impact is None:
        return [Step(name="impact", inputs=(), outputs=(), config=settings(study, "impact"), code=CODE,
                     run=lambda: None)]
    inputs = [paths.raw_file(f.file) for f in study.impact.files]
    if study.councils is not None:
        inputs.append(paths.raw_file(study.councils.file))
        if study.councils.aliases:
            inputs.append(paths.raw_file(study.councils.aliases))
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: outcome or councils file not found; put it there or correct [impact] "
                        "in study.toml")
    return [Step(name="impact", inputs=tuple(inputs),
                 outputs=(paths.impact_table, paths.impact_json, paths.impact_quarantine, paths.impact_councils),
                 config=settings(study, "impact", *COUNCILS_KEYS), code=CODE,
                 run=deferred("impactstudy.impact.stage:run_impact", study, paths)),
            *triangulation_steps(study, paths)]


def survey_waves(study: Study, measure: str) -> tuple[str, ...]:
    """The waves a survey measure's council-level change is taken between: ``[impact] survey_waves``, else
    the first and last waves it was asked in (one wave: its level there)."""
    if study.impact.survey_waves:
        return study.impact.survey_waves
    asked = next(m for m in study.measures if m.name == measure).waves
    order = [w.id for w in study.waves]
    asked = sorted(asked, key=order.index)
    return (asked[0], asked[-1]) if len(asked) > 1 else (asked[0],)


def triangulation_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The triangulation step when an outcome names a ``survey`` measure (none otherwise)."""
    paired = [o for o in study.impact.outcomes if o.survey]
    if not paired:
        return []
    config = {"impact.outcomes (name, survey, better)": [[o.name, o.survey, o.better] for o in paired],
              **settings(study, "impact.survey_waves"),
              "waves of the survey measures": {o.survey: list(survey_waves(study, o.survey)) for o in paired}}
    return [Step(name="impact:triangulation", inputs=(paths.impact_councils, paths.impact_json, paths.panel_long),
                 outputs=(paths.impact_triangulation,), config=config, code=CODE,
                 run=deferred("impactstudy.impact.stage:run_triangulation", study, paths))]
