"""The impact stage: outcome files + councils file -> tables/impact.csv, impact.json, impact_quarantine.csv.

A thin layer over files: reads the declared outcome files and the councils file (raw, read-only),
hands DataFrames to the pure functions of :mod:`impactstudy.impact` and writes its outputs
atomically. It reads nothing another stage writes, so a new year of outcome data reruns only
``impact`` and ``report`` (the step's inputs are the outcome files, the councils file and the
``[impact]`` and ``[councils]`` config).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import date
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from impactstudy.councils import same_authority_code
from impactstudy.pipeline.councils_file import council_covariates
from impactstudy.errors import ConfigError, DataError
from impactstudy.impact import outcomes as O
from impactstudy.impact.panel import Panel, build_panel
from impactstudy.impact.steps import survey_waves
from impactstudy.pipeline import library_warnings
from impactstudy.pipeline.atomic import write_csv, write_json
from impactstudy.pipeline.panel import read_long
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.progress import Progress, progress
from impactstudy.pipeline.readers import read_raw
from impactstudy.study.config import ImpactSettings, Study
from impactstudy.study.periods import cohort_year

if TYPE_CHECKING:  # the estimators (scipy, csdid, pyfixest) are imported only where they run (a worker, or here
    # when the outcomes are too few for workers), so this process never imports them otherwise
    from impactstudy.impact.analysis import Rules
    from impactstudy.impact.estimate import DidOptions

#: From this many outcomes on, the analyses run in worker processes (see :func:`_run_all`).
MIN_PARALLEL = 4
#: Imported once by the workers' forkserver (see :func:`worker_pool`).
PRELOAD = ("impactstudy.impact.stage", "impactstudy.impact.analysis", "csdid.att_gt", "pyfixest", "pyfixest.did.estimation",
           "pyfixest.did.saturated_twfe")
LIBRARIES = ("csdid", "differences", "pyfixest", "numpy", "pandas", "scipy")


def _options(settings: ImpactSettings) -> DidOptions:
    from impactstudy.impact.estimate import DidOptions

    return DidOptions(comparison=settings.comparison, anticipation=settings.anticipation,
                      covariates=settings.covariates, window=settings.window, bootstrap=settings.bootstrap,
                      alpha=0.05, seed=settings.seed)


def _rules(settings: ImpactSettings) -> Rules:
    from impactstudy.impact.analysis import Rules

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
    if values.empty:  # every row set aside (its council unknown): nothing to estimate, and no date to map codes to
        reasons = quarantine["reason"].value_counts().head(2)
        raise DataError(f"{', '.join(s.file for s in settings.files)}: every one of the {len(quarantine)} rows "
                        f"was set aside ({'; '.join(f'{n} {r}' for r, n in reasons.items())}); check the council "
                        "column, or declare aliases under [councils]")
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


def analyse(study: Study, values: pd.DataFrame, covariates: pd.DataFrame, pool: ProcessPoolExecutor | None = None,
            ) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """All outcomes' tidy rows, per-outcome summaries and each treated council's own effect (pure: no
    files); in ``pool``'s workers if given. Progress counts the outcomes as each one's estimators,
    bootstrap and randomisation inference finish (:mod:`impactstudy.pipeline.progress`)."""
    settings = study.impact
    if settings.treatment not in covariates.columns:
        raise ConfigError(f"[impact] treatment = '{settings.treatment}' is not a column of the councils file; "
                          "declare it under [councils] covariates as a date")
    last = values["period_end"].max()
    cov = covariates.assign(council_code=[same_authority_code(str(c), last.date()) for c in covariates["council_code"]])
    cov = cov.drop_duplicates("council_code").set_index("council_code")
    jobs = []
    for spec in settings.files:
        cohorts = treatment_cohorts(cov.reset_index(), settings.treatment, spec.year_end, last)
        for outcome in spec.outcomes:
            panel = build_panel(values, outcome.name, cohorts, settings.anticipation, cov, settings.covariates)
            jobs.append((spec, outcome, panel))
    with progress("impact", "outcomes") as bar:
        results = _run_all([panel for _, _, panel in jobs], settings, pool, bar)
    rows, summaries, councils = [], {}, []
    for (spec, outcome, _), (table, summary, effects) in zip(jobs, results, strict=True):
        rows.append(table)
        councils.append(effects)
        summaries[outcome.name] = {"label": outcome.label, "better": outcome.better, "units": outcome.units,
                                   "file": spec.file, **summary}
    # each table has the tidy columns in order (RESULT_COLUMNS): not imported here, so that this process
    # does not import the estimators' libraries when the workers do
    return pd.concat(rows, ignore_index=True), summaries, pd.concat(councils, ignore_index=True)


def analyse_one(panel: Panel, settings: ImpactSettings) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """One outcome: its tidy rows and summary (:func:`~impactstudy.impact.analysis.analyse_outcome`) and
    each treated council's own effect (:func:`~impactstudy.impact.triangulation.council_effects`).

    It takes the ``[impact]`` settings, not the estimators' option objects, so that the process handing
    it to a worker need not import the estimation modules (scipy and the rest) to make them.
    """
    from impactstudy.impact.analysis import analyse_outcome
    from impactstudy.impact.estimate import RESULT_COLUMNS
    from impactstudy.impact.triangulation import council_effects

    table, summary = analyse_outcome(panel, _options(settings), _rules(settings))
    return table[RESULT_COLUMNS], summary, council_effects(panel, settings.comparison, settings.anticipation)


def _analyse_in_worker(panel: Panel, settings: ImpactSettings, spool: str | None,
                       ) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    library_warnings.spool_worker_warnings(spool)  # a forkserver worker: its warnings go to the step's record
    with threadpool_limits(1):
        return analyse_one(panel, settings)


@contextlib.contextmanager
def worker_pool(n_outcomes: int, workers: int | None) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for ``n_outcomes`` analyses; None when one process is faster.

    The outcomes are independent. Workers are forked from a ``forkserver`` process, never from this
    one: forking after pyfixest's numba kernels (or polars) have started their threads deadlocks. The
    forkserver imports :data:`PRELOAD` once (about 2.5 s of CPU) and every worker forked from it starts
    with the libraries loaded, instead of each importing them again. The forkserver is started here,
    without waiting for it, so that its imports run while this process reads the outcome files; the
    workers are forked when the first analyses are submitted. Below :data:`MIN_PARALLEL` outcomes one
    process is faster.
    """
    workers = min(workers or os.cpu_count() or 1, n_outcomes)
    if workers < 2 or n_outcomes < MIN_PARALLEL:
        yield None
        return
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        from multiprocessing import forkserver

        context.set_forkserver_preload(list(PRELOAD))  # no effect if a forkserver already runs
        forkserver.ensure_running()  # returns at once; the server imports PRELOAD in the background
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool


def _run_all(panels: list[Panel], settings: ImpactSettings, pool: ProcessPoolExecutor | None,
             bar: Progress) -> list[tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]]:
    """Each panel's :func:`analyse_one`, in ``pool``'s workers (see :func:`worker_pool`) or, without one, here;
    ``bar`` counts them as they finish."""
    if pool is None:
        bar.expect(len(panels))
        out = []
        for panel in panels:
            out.append(analyse_one(panel, settings))
            bar.advance()
        return out
    spool = library_warnings.current_spool()
    futures = bar.track([pool.submit(_analyse_in_worker, panel, settings, spool) for panel in panels])
    return [future.result() for future in futures]


def run_impact(study: Study, paths: StudyPaths) -> dict[str, Any]:
    """Read the outcome and councils files, estimate, and write the impact outputs; return impact.json."""
    settings = study.impact
    if settings is None:
        raise ConfigError(f"{paths.config}: no [impact] section; declare the outcome files to estimate impact")
    if study.councils is None:
        raise ConfigError(f"{paths.config}: [impact] needs a [councils] file with each council's "
                          f"'{settings.treatment}' date")
    with worker_pool(sum(len(spec.outcomes) for spec in settings.files), settings.workers) as pool:
        values, quarantine, counts = read_outcomes(study, paths)
        aliases = paths.raw_file(study.councils.aliases) if study.councils.aliases else None
        covariates, notes = council_covariates(study, paths, aliases)
        table, outcomes, councils = analyse(study, values, covariates, pool=pool)
    reasons = quarantine["reason"].str.split(";").str[0].str.split("(").str[0].str.strip().value_counts()
    summary = {
        "settings": {**asdict(settings), "alpha": 0.05, "libraries": {lib: version(lib) for lib in LIBRARIES}},
        "last_period_end": values["period_end"].max().date().isoformat(),
        "files": counts,
        "quarantined": {"rows": int(len(quarantine)), "by_reason": {k: int(v) for k, v in reasons.items()}},
        "councils_file_notes": notes,
        "outcomes": outcomes,
    }
    paths.tables.mkdir(parents=True, exist_ok=True)
    write_csv(paths.impact_table, table)
    write_csv(paths.impact_councils, councils)
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


def run_triangulation(study: Study, paths: StudyPaths) -> pd.DataFrame:
    """Each outcome with a ``survey`` measure: the survey's and the administrative change in the same
    treated councils, and their association (:func:`impactstudy.impact.triangulation.triangulate`)."""
    from impactstudy.impact.triangulation import TRIANGULATION_COLUMNS, survey_change, triangulate

    effects = pd.read_csv(paths.impact_councils, dtype={"council_code": str})
    last = date.fromisoformat(json.loads(paths.impact_json.read_text(encoding="utf-8"))["last_period_end"])
    pairs = [o for o in study.impact.outcomes if o.survey]
    long = read_long(paths.panel_long, ["council_code", "wave", "measure", "value"])
    long = long[long["measure"].isin([o.survey for o in pairs])]
    # the survey's council codes are as on its reference date; the outcomes' as at their last period end
    codes = {c: same_authority_code(str(c), last) for c in long["council_code"].unique()}
    long = long.assign(council_code=long["council_code"].map(codes))
    rows = []
    for outcome in pairs:
        waves = survey_waves(study, outcome.survey)
        change = survey_change(long, outcome.survey, waves)
        result = triangulate(effects[effects["outcome"] == outcome.name], change, outcome.better)
        rows.append({"outcome": outcome.name, "measure": outcome.survey, "earlier_wave": waves[0],
                     "later_wave": waves[-1] if len(waves) > 1 else "", **result})
    table = pd.DataFrame(rows, columns=TRIANGULATION_COLUMNS)
    write_csv(paths.impact_triangulation, table)
    return table
