"""The report stage's step, declared (light: no pandas or matplotlib; they are imported when it runs).

One step writing both bundles from the link, model and (with ``[impact]``) impact stages' outputs and
the ingest report. It reads the study's wording and display settings: title, description, aims,
measures, waves' ids and labels, the intervention's words, expectations, group_by, min_cell,
``[models] flag_councils`` (the finding caveat) and ``[impact]``. Its provenance table lists the
config and raw files as they were when the report was made.
"""

from __future__ import annotations

from pathlib import Path

from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, deferred
from impactstudy.study.config import Study
from impactstudy.study.keys import settings

AUDIENCES = ("public", "internal")  # one bundle each, both written by the one step
DESCRIPTIVE = ("distributions", "shares", "ordinal_check", "icc", "effect_sizes", "tipping_point", "ipw_diagnostics",
               "ipw_balance")
THEMES = ("themes", "theme_changes", "agreement")  # coded free text (model/themes.py)
CONFIG_KEYS = ("title", "description", "min_cell", "aims", "measures", "waves.id", "waves.label", "intervention",
               "expectations", "councils.group_by", "models.flag_councils", "impact", "redact_names",
               "coding.question", "coding.themes", "coding.consent")


def input_files(paths: StudyPaths, impact: bool = False, triangulation: bool = False,
                coding: bool = False) -> tuple[Path, ...]:
    """The files the report reads (the manifest and config are read for provenance only); with ``impact``
    the impact stage's outputs too (each treated council's own effect for its council page), with ``triangulation`` its survey triangulation table, with ``coding``
    the coders' codes (their quote marks)."""
    extra = (paths.impact_table, paths.impact_json, paths.impact_councils) if impact else ()
    extra += (paths.impact_triangulation,) if triangulation else ()
    extra += (paths.codes,) if coding else ()
    return extra + (paths.panel_long, paths.linkage_summary, paths.ingest_report, paths.quarantine, paths.link_quarantine,
                    paths.tables / "contrasts.csv", paths.tables / "estimates.csv", paths.tables / "attrition.csv",
                    paths.tables / "expectations.csv", *(paths.tables / f"{name}.csv" for name in (*DESCRIPTIVE, *THEMES)),
                    paths.models_json)


def report_outputs(paths: StudyPaths) -> tuple[Path, ...]:
    """The files the report step records (the bundles' other files are rewritten with them)."""
    return (*(paths.bundle(a) / name for a in AUDIENCES for name in ("index.html", "report.json")), paths.report_snapshot)


def council_aliases(study: Study, paths: StudyPaths) -> Path | None:
    """The study's own council aliases file, if it declares one (its names are redacted from public quotes)."""
    return paths.raw_file(study.councils.aliases) if study.councils and study.councils.aliases else None


def report_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The report stage as one step writing both bundles; the audience is not a setting, so nothing to switch."""
    triangulation = study.impact is not None and any(o.survey for o in study.impact.outcomes)
    aliases = council_aliases(study, paths)
    inputs = input_files(paths, study.impact is not None, triangulation, bool(study.coding)) + ((aliases,) if aliases else ())
    return [Step(name="report", inputs=inputs, outputs=report_outputs(paths),
                 config=settings(study, *CONFIG_KEYS), code=("impactstudy.report",),
                 run=deferred("impactstudy.report.stage:run_report", study, paths))]
