"""The model stage's step, declared (light: no pandas or statsmodels; they are imported when it runs).

One step over the long panel. It reads of each measure what decides its models (type, levels, range,
option set, models override, whether it is analysed at all), not its wording or raw columns: a reworded
question or a renamed raw column that ingests to the same panel does not refit anything.
"""

from __future__ import annotations

from pathlib import Path

from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, deferred
from impactstudy.study.config import Study
from impactstudy.study.keys import settings

# impactstudy.model.describe.TABLES (tests/model check they agree), named here without its imports
DESCRIPTIVE_TABLES = ("distributions", "shares", "ordinal_check", "icc", "effect_sizes", "tipping_point")
THEME_TABLES = ("themes", "theme_changes", "agreement")  # coded free text (model/themes.py)
MEASURE_KEYS = tuple(f"measures.{key}" for key in ("name", "type", "levels", "level_labels", "minimum", "maximum",
                                                    "parent", "option", "option_label", "models", "pii",
                                                    "coding_frame_for", "analyse"))
CODING_KEYS = ("coding.question", "coding.themes", "coding.alpha_threshold")


def model_outputs(paths: StudyPaths) -> tuple[Path, ...]:
    """The files the model stage writes."""
    return (paths.tables / "contrasts.csv", paths.tables / "estimates.csv", paths.tables / "attrition.csv",
            paths.tables / "expectations.csv", *(paths.tables / f"{name}.csv" for name in DESCRIPTIVE_TABLES),
            paths.tables / "ipw_diagnostics.csv", paths.tables / "ipw_balance.csv", paths.processed / "ipw_weights.csv",
            *(paths.tables / f"{name}.csv" for name in THEME_TABLES), paths.models_json)


def model_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The model stage as one step over the long panel."""
    config = settings(study, "models", "waves.id", *MEASURE_KEYS, "expectations", "councils.group_by", *CODING_KEYS)
    inputs = (paths.panel_long,) + ((paths.codes,) if study.coding else ())  # the coders' codes: agreement
    return [Step(name="model", inputs=inputs, outputs=model_outputs(paths), config=config,
                 code=("impactstudy.model",), run=deferred("impactstudy.model.stage:run_model", study, paths))]
