"""The impact stage: outcome files + councils file -> tables/impact.csv, impact.json, impact_quarantine.csv.

A thin layer over files: reads the declared outcome files and the councils file (raw, read-only),
hands DataFrames to the pure functions of :mod:`impactstudy.impact` and writes its outputs
atomically. It reads nothing another stage writes, so a new year of outcome data reruns only
``impact`` and ``report`` (the step's inputs are the outcome files, the councils file and the
``[impact]`` and ``[councils]`` config).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from impactstudy.councils import same_authority_code
from impactstudy.pipeline.councils_file import council_covariates
from impactstudy.errors import ConfigError, DataError
from impactstudy.impact import outcomes as O
from impactstudy.impact.analysis import Rules, analyse_outcome
from impactstudy.impact.estimate import RESULT_COLUMNS, DidOptions
from impactstudy.impact.panel import Panel, build_panel
from impactstudy.pipeline import library_warnings
from impactstudy.pipeline.atomic import write_csv, write_json
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import read_raw
from impactstudy.pipeline.steps import Step
from impactstudy.study.config import ImpactSettings, Study
from impactstudy.study.periods import cohort_year

#: From this many outcomes on, the analyses run in worker processes (see :func:`_run_all`).
MIN_PARALLEL = 4
LIBRARIES = ("csdid", "differences", "pyfixest", "numpy", "pandas", "scipy")


def _options(settings: ImpactSettings) -> DidOptions:
    return DidOptions(comparison=settings.comparison, anticipation=settings.anticipation,
                      covariates=settings.covariates, window=settings.window, bootstrap=settings.bootstrap,
                      alpha=0.05, seed=settings.seed)


def _rules(settings: ImpactSettings) -> Rules:
    return Rules(pretrend_alpha=settings.pretrend_alpha, min_breakdown=settings.min_breakdown,
                 permutations=settings.permutations)


def read_outcomes(study: Study, paths: StudyPaths) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, int]]]:
    """Every declared outcome file's tidy values (with ``council_code``), the quarantine, and row counts."""
    settings = study.impact
    tables, counts = [], {}
    for spec in settings.files:
        path = paths.raw_file(spec.file)
        table = read_raw(path, "xlsx" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv").data
        table = table.astype(str).replace({"nan": "", "None": "", "<NA>": ""})
        read = O.read_outcome_table(
            table, source=spec.file, layout=spec.layout, indicators={o.name: o.column for o in spec.outcomes},
            year_end=spec.year_end, filters=spec.filters, council=spec.council, year=spec.year)
        tables.append(read)
        counts[spec.file] = read.counts
    aliases = paths.raw_file(study.councils.aliases) if study.councils and study.councils.aliases else None
    values, quarantine = O.combine(tables, aliases)
    return values, quarantine, counts


def treatment_cohorts(covariates: pd.DataFrame, column: str, year_end: tuple[int, int], last: pd.Timestamp,
                      ) -> dict[str, int]:
    """Council code (as of the outcomes' last period end) -> first treated outcome year."""
    out = {}
    for code, when in zip(covariates["council_code"], covariates[column], strict=True):
        year = cohort_year(when, year_end)
        if year is not None:
            out[same_authority_code(str(code), last.date())] = year
    return out


def analyse(study: Study, values: pd.DataFrame, covariates: pd.DataFrame,
            progress: Callable[[str], None] = lambda _m: None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """All outcomes' tidy rows and per-outcome summaries (pure: no files)."""
    settings = study.impact
    if settings.treatment not in covariates.columns:
        raise ConfigError(f"[impact] treatment = '{settings.treatment}' is not a column of the councils file; "
                          "declare it under [councils] covariates as a date")
    last = values["period_end"].max()
    cov = covariates.assign(council_code=[same_authority_code(str(c), last.date()) for c in covariates["council_code"]])
    cov = cov.drop_duplicates("council_code").set_index("council_code")
    options, rules = _options(settings), _rules(settings)
    jobs = []
    for spec in settings.files:
        cohorts = treatment_cohorts(cov.reset_index(), settings.treatment, spec.year_end, last)
        for outcome in spec.outcomes:
            panel = build_panel(values, outcome.name, cohorts, settings.anticipation, cov, settings.covariates)
            jobs.append((spec, outcome, panel))
    results = _run_all([panel for _, _, panel in jobs], options, rules, settings.workers, progress)
    rows, summaries = [], {}
    for (spec, outcome, _), (table, summary) in zip(jobs, results, strict=True):
        rows.append(table)
        summaries[outcome.name] = {"label": outcome.label, "better": outcome.better, "units": outcome.units,
                                   "file": spec.file, **summary}
    return pd.concat(rows, ignore_index=True)[RESULT_COLUMNS], summaries


def _analyse_one(panel: Panel, options: DidOptions, rules: Rules) -> tuple[pd.DataFrame, dict[str, Any]]:
    library_warnings.spool_worker_warnings()  # a forkserver worker: its warnings go to the step's record
    with threadpool_limits(1):
        return analyse_outcome(panel, options, rules)


def _run_all(panels: list[Panel], options: DidOptions, rules: Rules, workers: int | None,
             progress: Callable[[str], None]) -> list[tuple[pd.DataFrame, dict[str, Any]]]:
    """Each panel's analysis, in worker processes when there are enough outcomes to pay for them.

    The outcomes are independent. Workers come from a fresh ``forkserver`` process, not a fork of
    this one: forking after pyfixest's numba kernels have started their threads deadlocks. Each worker
    imports and compiles once (about 2 s), so below :data:`MIN_PARALLEL` outcomes one process is faster.
    """
    workers = min(workers or os.cpu_count() or 1, len(panels))
    if workers < 2 or len(panels) < MIN_PARALLEL:
        out = []
        for panel in panels:
            progress(panel.outcome)
            out.append(analyse_outcome(panel, options, rules))
        return out
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        futures = [pool.submit(_analyse_one, panel, options, rules) for panel in panels]
        out = []
        for panel, future in zip(panels, futures, strict=True):
            out.append(future.result())
            progress(panel.outcome)
        return out


def run_impact(study: Study, paths: StudyPaths) -> dict[str, Any]:
    """Read the outcome and councils files, estimate, and write the impact outputs; return impact.json."""
    settings = study.impact
    if settings is None:
        raise ConfigError(f"{paths.config}: no [impact] section; declare the outcome files to estimate impact")
    if study.councils is None:
        raise ConfigError(f"{paths.config}: [impact] needs a [councils] file with each council's "
                          f"'{settings.treatment}' date")
    values, quarantine, counts = read_outcomes(study, paths)
    aliases = paths.raw_file(study.councils.aliases) if study.councils.aliases else None
    covariates, notes = council_covariates(study, paths, aliases)
    table, outcomes = analyse(study, values, covariates)
    reasons = quarantine["reason"].str.split(";").str[0].str.split("(").str[0].str.strip().value_counts()
    summary = {
        "settings": {**asdict(settings), "alpha": 0.05, "libraries": {lib: version(lib) for lib in LIBRARIES}},
        "files": counts,
        "quarantined": {"rows": int(len(quarantine)), "by_reason": {k: int(v) for k, v in reasons.items()}},
        "councils_file_notes": notes,
        "outcomes": outcomes,
    }
    paths.tables.mkdir(parents=True, exist_ok=True)
    write_csv(paths.impact_table, table)
    write_csv(paths.impact_quarantine, quarantine)
    write_json(paths.impact_json, _finite(summary))
    return summary


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null. Numbers keep 10 significant digits, as the CSV
    tables do: pyfixest's last digits depend on whether its numba kernels were just compiled or loaded
    from their cache, and a rerun must write the same bytes."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(f"{value:.10g}") if np.isfinite(value) else None
    return value


def impact_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The impact stage as one step; without ``[impact]`` a step that does nothing (so every stage has a step)."""
    if study.impact is None:
        return [Step(name="impact", inputs=(), config={"impact": None}, outputs=(), run=lambda: None)]
    inputs = [paths.raw_file(f.file) for f in study.impact.files]
    if study.councils is not None:
        inputs.append(paths.raw_file(study.councils.file))
        if study.councils.aliases:
            inputs.append(paths.raw_file(study.councils.aliases))
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: outcome or councils file not found; put it there or correct [impact] "
                        "in study.toml")
    return [Step(
        name="impact",
        inputs=tuple(inputs),
        config={"impact": asdict(study.impact), "councils": asdict(study.councils) if study.councils else None},
        outputs=(paths.impact_table, paths.impact_json, paths.impact_quarantine),
        run=lambda: run_impact(study, paths),
    )]
