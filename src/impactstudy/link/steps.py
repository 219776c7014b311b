"""The link stage's step, declared (light: no pandas; the stage's code is imported when it runs).

One step over every ingested wave and the councils file (and its aliases): it resolves councils with
each wave's dates and identifier columns, takes covariates from the councils file, writes measure and
wave labels into the panels and their SPSS/Stata files (``panel_long.sav`` …), and dates responses against the intervention.
"""

from __future__ import annotations

from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, deferred
from impactstudy.study.config import Study
from impactstudy.study.keys import settings

# what the panels record of each measure (impactstudy.study.metadata.measure_metadata), and which reach them;
# missing, recode and maximum choose the SPSS/Stata missing codes (impactstudy.study.codebook.missing_codes)
MEASURE_KEYS = tuple(f"measures.{key}" for key in
                     ("name", "label", "type", "levels", "level_labels", "parent", "option", "option_label", "aim", "pii",
                      "missing", "recode", "maximum"))


def link_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The link stage as one step over every ingested wave and the councils file."""
    inputs = [paths.wave_file(w.id) for w in study.waves]
    if study.councils is not None:
        inputs.append(paths.raw_file(study.councils.file))
        if study.councils.aliases:
            inputs.append(paths.raw_file(study.councils.aliases))
    config = settings(study, "waves", "councils", *MEASURE_KEYS, "models.time_since_intervention.date", "intervention.date",
                      "intervention.before_waves", "intervention.name")
    return [Step(name="link", inputs=tuple(inputs), config=config, code=("impactstudy.link",),
                 outputs=(paths.panel_long, paths.panel_wide, paths.linkage, paths.link_quarantine,
                          paths.linkage_summary, *paths.exports),
                 run=deferred("impactstudy.link.stage:run_link", study, paths))]
