"""The model stage: read the linked panel, fit every measure's models, write the tables.

The stage reads ``panel_long.parquet`` (and the coders' ``codes.parquet`` when the ingest wrote one) and
writes ``tables/contrasts.csv``, ``tables/estimates.csv``, ``tables/attrition.csv``, ``tables/expectations.csv``,
the coded themes' ``tables/themes.csv``, ``theme_changes.csv`` and ``agreement.csv`` (:mod:`impactstudy.model.themes`)
and ``models.json`` (see docs/models.md). What is
fitted, and how, is :mod:`impactstudy.model.fitting`, with the attrition and time-since-intervention models of
:mod:`impactstudy.model.attrition` and the expectations of :mod:`impactstudy.model.expectations`.

Those modules import statsmodels and scipy, which take seconds; they are imported when the stage runs.
The stage's step is declared in :mod:`impactstudy.model.steps`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from impactstudy.errors import DataError
from impactstudy.pipeline.atomic import write_csv, write_json
from impactstudy.pipeline.frames import MONTHS_SINCE
from impactstudy.pipeline.panel import read_long
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.progress import progress
from impactstudy.study.config import Study

def read_panel(path: Path, study: Study) -> pd.DataFrame:
    """The columns of ``panel_long.parquet`` the model stage uses, text as categoricals."""
    group_by = list(study.councils.group_by) if study.councils else []
    columns = ["council_code", "respondent_id", "wave", "measure", "value", *group_by]
    if study.models.time_since_intervention is not None:
        columns.append(MONTHS_SINCE)
    return read_long(path, columns)


def read_theme_panel(path: Path, study: Study) -> pd.DataFrame:
    """The panel rows of the coded themes (the members of every multi set with ``coding_frame_for``)."""
    group_by = list(study.councils.group_by) if study.councils else []
    names = [m.name for m in study.research_measures if m.parent and m.coding_frame_for]
    return read_long(path, ["council_code", "respondent_id", "wave", "measure", "value", "role", *group_by], names)


def read_codes(study: Study, paths: StudyPaths) -> pd.DataFrame:
    """The coders' codes (``codes.parquet``, written by the ingest of ``[[coding]]`` sheets); empty without them."""
    if not study.coding:
        return pd.DataFrame(columns=["question", "answer_id", "coder", "theme", "coded"])
    if not paths.codes.is_file():
        raise DataError(f"{paths.codes}: not found; run `impactstudy ingest --study {paths.study}` first")
    return pd.read_parquet(paths.codes)


def run_model(study: Study, paths: StudyPaths) -> None:
    """Read the panel, fit everything (one pool for every measure's fits, the weighted GEE and the
    time-since-intervention models; the attrition models in this process while the pool works), write the
    tables and ``models.json``."""
    from impactstudy.model import attrition, describe, expectations, fitting, themes  # statsmodels, scipy: see the docstring

    if not paths.panel_long.is_file():
        raise DataError(f"{paths.panel_long}: not found; run `impactstudy link --study {paths.study}` first")
    group_by = list(study.councils.group_by) if study.councils else []
    raw = read_panel(paths.panel_long, study)
    # compact() codes respondents as pd.factorize does; the weights file needs the panel's own ids back
    respondent_ids = None if pd.api.types.is_integer_dtype(raw["respondent_id"].dtype) else pd.factorize(raw["respondent_id"])[1]
    panel = fitting.compact(raw, group_by)
    del raw
    measures = fitting.modelled_measures(study, panel)
    extra = [MONTHS_SINCE] if study.models.time_since_intervention is not None else []
    dated = bool(extra) and bool(panel[MONTHS_SINCE].notna().any())
    frames = fitting.measure_frames(panel, [m.name for m in measures], group_by, extra)
    with fitting.TaskPool(fitting.worker_count(study)) as pool, progress("model", "fits") as bar:
        # the measures' fits (the bulk) first; the attrition weights the weighted GEE needs meanwhile
        main_fits = bar.track(pool.start(fitting.fit_tasks(study, measures, frames)))
        retention = attrition.analyse(study, panel)
        expected = expectations.analyse(study, panel)
        del panel  # the workers need only the frames
        ipw_fits = bar.track(pool.start(attrition.ipw_tasks(study, measures, frames, retention["weights"])))
        time_fits = bar.track(pool.start(attrition.time_tasks(study, measures, frames, dated)))
        describe_fits = bar.track(pool.start(describe.describe_tasks(study, measures, frames)))
        main = fitting.main_tables(study, [f.result() for f in main_fits])
        ipw = attrition.ipw_table(study, [f.result() for f in ipw_fits])
        time_model = attrition.time_table([f.result() for f in time_fits])
        described = describe.describe_tables([f.result() for f in describe_fits], main["contrasts"])
    contrasts = pd.concat([main["contrasts"], ipw, fitting.extra_table(study, described["contrasts"])], ignore_index=True)
    contrasts["estimand"] = fitting.name_estimands(contrasts, study)
    estimates = pd.concat([main["estimates"], retention["estimates"], time_model["estimates"]], ignore_index=True)
    paths.tables.mkdir(parents=True, exist_ok=True)
    write_csv(paths.tables / "contrasts.csv", contrasts[fitting.CONTRAST_COLUMNS])
    write_csv(paths.tables / "estimates.csv", estimates[fitting.ESTIMATE_COLUMNS])
    write_csv(paths.tables / "attrition.csv", retention["retention"])
    write_csv(paths.tables / "ipw_diagnostics.csv", retention["diagnostics"])
    write_csv(paths.tables / "ipw_balance.csv", retention["balance"])
    weights = retention["weights"]
    if respondent_ids is not None:
        weights = weights.assign(respondent_id=respondent_ids[weights["respondent_id"].to_numpy(dtype=int)])
    write_csv(paths.processed / "ipw_weights.csv", weights)
    write_csv(paths.tables / "expectations.csv", expected)
    for name in describe.TABLES:
        write_csv(paths.tables / f"{name}.csv", described[name])
    theme_freq, theme_changes = themes.theme_tables(study, read_theme_panel(paths.panel_long, study))
    write_csv(paths.tables / "themes.csv", theme_freq)
    write_csv(paths.tables / "theme_changes.csv", theme_changes)
    write_csv(paths.tables / "agreement.csv", themes.agreement_table(read_codes(study, paths), *themes.coding_settings(study)))
    write_json(paths.models_json, {
        "settings": {**asdict(study.models), "group_by": group_by,
                     "confidence_level": 0.95, "q_value": "Benjamini-Hochberg across measures within model, contrast and group"},
        "fits": main["records"] + retention["records"] + time_model["records"],
        "design": described["design"],
    })


__all__ = ["read_panel", "run_model"]
