"""Do the model stage's intervals cover, and do its tests hold their size? A simulation over demo-like studies.

Each simulated study is the demo generator's study (:mod:`impactstudy.demo`), made in memory as the
long frames of two effectiveness measures — one that changes (:data:`EFFECT_MEASURE`) and one that does
not (:data:`NULL_MEASURE`) — for a number of councils, a council-level random change of standard
deviation ``tau`` and a range of respondents per council (a :class:`Cell`). Every model the model stage
fits to such a measure is fitted by the stage's own function, :func:`impactstudy.model.fitting.fit_measure`
(overall and within each status, every contrast), and each row is set against the generator's truth:

* ``covers``: the interval contains the true value of the row's estimand — the change in the expected
  observed score (council-weighted over statuses, ``truth.json``'s ``effects``) for the mean-change
  models, the pseudo-true log odds ratio for the ordinal model (:func:`pseudo_truth`);
* ``rejects``: p < 0.05; for the measure with no true change this is the test's size.

Studies are grouped into tasks (:func:`task_rows`: a chunk of seeds of one cell) that run on Dask
distributed — a ``LocalCluster`` by default, or an existing scheduler — and each task's rows are written
to one Parquet file in the results folder as soon as it completes, so an interrupted run resumes where
it stopped (:func:`run`). :func:`summarise` turns the rows into coverage and size per model x cell, and
:func:`markdown` into the tables of ``docs/coverage.md``. ``make coverage`` runs it all (``python -m
impactstudy.coverage --help``).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactstudy import demo
from impactstudy.demo.sample import status_counts
from impactstudy.pipeline.atomic import write_parquet, write_text
from impactstudy.study.config import Study

EFFECT_MEASURE = "eff_practice"
NULL_MEASURE = "eff_voice"
MEASURES = (EFFECT_MEASURE, NULL_MEASURE)
GROUP_BY = ("status",)
LEVEL = 0.95
ALPHA = 0.05
TOLERANCE = 0.02  # coverage within the stated level +- 2 points
MAX_SIZE = 0.06  # rejection rate under no effect
JUDGED_FROM = 200  # intervals (tests) a cell needs before a miss is marked: Monte-Carlo SE <= 1.5 points
KEY_CONTRAST = "follow_up - baseline"  # the key findings' contrast: the last wave against the first
FEW_COUNCILS = 20  # the demo's [models] few_councils
POOLED_COUNCILS = 1200  # councils pooled for the pseudo-true values, at least ...
POOLED_COPIES = 40  # ... this many studies' worth: the truth's SE at most 1/sqrt(40) of one study's
PSEUDO_MODELS = ("ordinal", "wilcoxon")  # fitted to the pooled councils for their estimands' truths
PSEUDO_ESTIMANDS = ("log odds ratio", "pseudo-median")
SEED_BASE = 1_000_000
TRUTH_SEED_BASE = 9_000_000
DEFAULT_COUNCILS = (6, 20, 40, 152)
DEFAULT_TAUS = (0.0, 0.15, 0.3)
DEFAULT_RESPONDENTS = (1, 4)


@dataclass(frozen=True)
class Cell:
    """One setting of the simulation: councils per study, SD of the council-level change, respondents per council."""

    councils: int
    tau: float
    respondents: tuple[int, int] = DEFAULT_RESPONDENTS

    @property
    def key(self) -> str:
        """A file-name-safe name, e.g. ``councils=6_tau=0.15_respondents=1-4``."""
        return f"councils={self.councils}_tau={self.tau:g}_respondents={self.respondents[0]}-{self.respondents[1]}"


def grid(councils: Iterable[int] = DEFAULT_COUNCILS, taus: Iterable[float] = DEFAULT_TAUS,
         respondents: tuple[int, int] = DEFAULT_RESPONDENTS) -> list[Cell]:
    """Every combination of ``councils`` and ``taus``."""
    return [Cell(int(n), float(t), respondents) for n in councils for t in taus]


# ------------------------------------------------------------------------------------------ studies


@functools.cache
def demo_study(councils: int) -> Study:
    """The demo's study config for ``councils`` councils (parsed once per process)."""
    return demo.study_config(councils)


def effect_model(cell: Cell) -> demo.EffectModel:
    """The demo's effect model with ``cell``'s council-level change."""
    return replace(demo.MODEL, council_change_sd=cell.tau)


def simulate(cell: Cell, seed: int) -> dict[str, pd.DataFrame]:
    """One simulated study's long frame per measure in :data:`MEASURES` (the demo generator's
    :func:`impactstudy.demo.long_frames`): what ``fit_measure`` takes."""
    return demo.long_frames(demo_study(cell.councils), cell.councils, seed, cell.respondents, effect_model(cell),
                            MEASURES)


def truth(cell: Cell) -> pd.DataFrame:
    """The true change of every measure, contrast and group (``truth.json``'s ``effects``) for ``cell``."""
    study = demo_study(cell.councils)
    effects = pd.DataFrame(demo.true_effects(study, status_counts(cell.councils), effect_model(cell)))
    return effects[effects["measure"].isin(MEASURES)][["measure", "contrast", "group", "estimate"]].rename(
        columns={"estimate": "truth"})


def fit_study(cell: Cell, seed: int, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Every model's contrast rows of one simulated study (``models``: only these), from the model stage's
    ``fit_measure``, each with its ``estimand`` (the model stage's :func:`~impactstudy.model.fitting.estimand`).
    The LMM's rows come once per df method, from one fit; ``variant`` names the method (empty for the
    other models), so both can be judged."""
    from impactstudy.model import fitting  # statsmodels: imported where the fitting happens

    study = demo_study(cell.councils)
    methods = {name: method for method, name in fitting.DDF_NAMES.items()}
    rows = []
    for name, frame in simulate(cell, seed).items():
        waves = [w for w in study.wave_ids if w in set(frame["wave"].astype(str))]
        measure = study.measure(name)
        result = fitting.fit_measure(measure, frame, waves, GROUP_BY, study.models.few_councils,
                                     models=models, lmm_also=tuple(methods.values()))
        for part in result["contrasts"]:
            variant = np.where(part["model"] == "lmm", part["correction"].map(methods).fillna(""), "")
            estimand = [fitting.estimand(m, measure.type, g) for m, g in zip(part["model"], part["group"])]
            rows.append(part.assign(measure=name, variant=variant, estimand=estimand))
    return pd.concat(rows, ignore_index=True).assign(seed=seed)


# ----------------------------------------------------------------------------------- pseudo-truth


def pseudo_truth(cell: Cell, models: Sequence[str] = PSEUDO_MODELS, councils: int = POOLED_COUNCILS) -> pd.DataFrame:
    """The true value of every estimand without a closed form under ``cell``'s design, from about
    ``councils`` councils (at least :data:`POOLED_COPIES` studies' worth) drawn from it and pooled as one
    study (studies with their own seeds, councils relabelled per study): columns ``measure, estimand,
    contrast, group, truth``.

    * log odds ratio (the ordinal model) and pseudo-median shift of council changes (Wilcoxon's
      Hodges–Lehmann): ``models`` fitted to the pooled councils. A log odds ratio of a clipped, rounded
      latent score has no closed form, and both depend on who answers at each wave;
    * respondent-weighted mean change, overall: each status's true change (``truth.json``) weighted by
      its share of the answers at the contrast's two waves among the pooled councils (statuses answer
      and drop out at different rates, so this is not the council-weighted change). Within a status
      every council has the same expected change, so both weightings are the status's truth there.
    """
    from impactstudy.model import fitting

    study = demo_study(cell.councils)
    copies = max(POOLED_COPIES, math.ceil(councils / cell.councils))
    pooled: dict[str, list[pd.DataFrame]] = {m: [] for m in MEASURES}
    for k in range(copies):
        for name, frame in simulate(cell, TRUTH_SEED_BASE + k).items():
            codes = frame["council_code"].astype(str)
            pooled[name].append(frame.assign(council_code=f"{k}:" + codes,
                                             respondent_id=frame["respondent_id"].astype(str) + f":{k}"))
    effects = truth(cell).set_index(["measure", "contrast", "group"])["truth"]
    rows = []
    for name, frames in pooled.items():
        frame = pd.concat(frames, ignore_index=True)
        waves = [w for w in study.wave_ids if w in set(frame["wave"].astype(str))]
        measure = replace(study.measure(name), models=tuple(models))
        for part in fitting.fit_measure(measure, frame, waves, GROUP_BY, study.models.few_councils)["contrasts"]:
            rows.append(part.assign(measure=name, estimand=[fitting.estimand(m, measure.type, g)
                                                            for m, g in zip(part["model"], part["group"])]))
        answers = frame.groupby(["wave", "status"], observed=True).size()
        for later, earlier in fitting.tidy.default_contrasts(waves):
            contrast = f"{later} - {earlier}"
            n = answers.loc[[later, earlier]].groupby(level="status").sum()
            value = sum(n[s] * effects[(name, contrast, f"status={s}")] for s in n.index) / n.sum()
            rows.append(pd.DataFrame([{"measure": name, "estimand": fitting.estimand("lmm", measure.type),
                                       "contrast": contrast, "group": "all", "estimate": value}]))
    out = pd.concat(rows, ignore_index=True)
    return out[["measure", "estimand", "contrast", "group", "estimate"]].rename(columns={"estimate": "truth"})


def pseudo_kind(estimand: str, group: str) -> str:
    """Which :func:`pseudo_truth` a row of ``estimand`` in ``group`` is judged against ('' for ``truth.json``):
    the estimand's kind, so that a reworded estimand still finds its truth."""
    if estimand.startswith("difference between groups"):
        return ""  # within a status both weightings agree: the difference of the statuses' truths
    kind = next((k for k in PSEUDO_ESTIMANDS if k in estimand), "")
    return kind or ("respondent-weighted" if estimand.startswith("respondent-weighted") and group == "all" else "")


# ------------------------------------------------------------------------------------------- tasks


def task_rows(cell: Cell, seeds: Sequence[int], models: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of studies ``seeds`` of ``cell`` (``models``: only these), each with its truth, ``covers``,
    ``rejects`` and ``level`` (rows judged against the pseudo-truth get them when :func:`load` reads them).

    A task of the simulation: run in a Dask worker, one BLAS thread (the fits are many small products).
    """
    return _offloaded(_task_rows, cell, seeds, models)


def _task_rows(cell: Cell, seeds: Sequence[int], models: Sequence[str] | None) -> pd.DataFrame:
    from threadpoolctl import threadpool_limits

    # scipy warns (e.g. every council changed by the same amount); the rows' own warnings say what matters
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fits = pd.concat([fit_study(cell, s, models) for s in seeds], ignore_index=True)
    return judge(fits, truth(cell), None)


_CHILD: Any = None


def _offloaded(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a child process of this Dask worker (one, kept for the worker's life).

    Why: a worker's event loop shares the GIL with the task thread. On a loaded machine the loop's thread
    is often descheduled while it holds the GIL, and the task waits: measured, the task got about 40% of
    its core, the loop as much again. A child process has no event loop; the task thread only waits.
    Outside a Dask worker (tests, ``task_rows`` called directly) the function runs here.
    """
    global _CHILD
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return function(*args)
    if _CHILD is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _CHILD = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_exit_with_parent, initargs=(os.getpid(),))
    return _CHILD.submit(function, *args).result()


def _exit_with_parent(parent: int) -> None:
    """Make this child process end when the Dask worker that started it ends.

    Why: a LocalCluster stops its workers by terminating them, so the executor's own shutdown never runs
    and its idle child (and the resource tracker it holds open) would outlive the run, found as orphans
    after the test suite. A daemon thread checks every second that the parent is still there.
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def truth_task(cell: Cell, councils: int = POOLED_COUNCILS) -> pd.DataFrame:
    """The pseudo-true values of ``cell`` from about ``councils`` pooled councils (:func:`pseudo_truth`),
    one BLAS thread."""
    return _offloaded(_truth_task, cell, councils)


def _truth_task(cell: Cell, councils: int) -> pd.DataFrame:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return pseudo_truth(cell, councils=councils)


def stated_level(frame: pd.DataFrame) -> pd.Series:
    """Each row's confidence level: its ``level`` column when the model stage gives one, else 95% unless the
    row's warning says the interval could not reach it (the Wilcoxon test with few councils)."""
    from impactstudy.report.findings import achieved_level

    for column in ("level", "conf_level"):
        if column in frame.columns:
            return frame[column].astype(float).fillna(LEVEL)
    return frame["warning"].map(lambda w: achieved_level(w) or LEVEL).astype(float)


def with_differences(effects: pd.DataFrame, groups: Iterable[str]) -> pd.DataFrame:
    """``effects`` plus the true difference for every row group of the form ``<a> - <b>`` (a comparison
    of two group levels): the truth of ``a`` minus the truth of ``b``, per measure and contrast."""
    wanted = sorted({g for g in groups if isinstance(g, str) and " - " in g} - set(effects["group"]))
    if not wanted:
        return effects
    keyed = effects.set_index(["measure", "contrast", "group"])["truth"]
    extra = []
    for group in wanted:
        a, _, b = group.partition(" - ")
        for measure, contrast in effects[["measure", "contrast"]].drop_duplicates().itertuples(index=False):
            if (measure, contrast, a) in keyed.index and (measure, contrast, b) in keyed.index:
                extra.append({"measure": measure, "contrast": contrast, "group": group,
                              "truth": keyed[(measure, contrast, a)] - keyed[(measure, contrast, b)]})
    return pd.concat([effects, pd.DataFrame(extra)], ignore_index=True) if extra else effects


def judge(fits: pd.DataFrame, effects: pd.DataFrame, pseudo: pd.DataFrame | None) -> pd.DataFrame:
    """``fits`` with the true value of each row's ``estimand`` (``truth.json``'s council-weighted change,
    or ``pseudo`` where :func:`needs_pseudo_truth`; NaN, so not judged, when ``pseudo`` is None), whether
    its interval covers it, whether its test rejects at 5%, and the interval's stated level."""
    out = fits.merge(with_differences(effects, fits["group"]), on=["measure", "contrast", "group"], how="left",
                     validate="m:1")
    kind = pd.Series([pseudo_kind(str(e), str(g)) for e, g in zip(out["estimand"], out["group"])], index=out.index)
    other = (kind != "").to_numpy()
    out.loc[other, "truth"] = np.nan
    if pseudo is not None and other.any():
        pseudo = pseudo.assign(kind=[pseudo_kind(str(e), str(g)) for e, g in zip(pseudo["estimand"], pseudo["group"])])
        keyed = pseudo.drop_duplicates(["measure", "kind", "contrast", "group"]).set_index(
            ["measure", "kind", "contrast", "group"])["truth"]
        index = pd.MultiIndex.from_frame(out.loc[other, ["measure", "contrast", "group"]].assign(
            kind=kind[other])[["measure", "kind", "contrast", "group"]])
        out.loc[other, "truth"] = keyed.reindex(index).to_numpy()
    estimable = out["ci_low"].notna() & out["ci_high"].notna() & out["truth"].notna()
    out["covers"] = ((out["ci_low"] <= out["truth"]) & (out["truth"] <= out["ci_high"])).where(estimable)
    out["rejects"] = (out["p_value"] < ALPHA).where(out["p_value"].notna())
    out["level"] = stated_level(out)
    return out


def chunks(n_studies: int, size: int) -> list[range]:
    """Seed ranges of ``size`` studies (the last one shorter) covering ``n_studies`` studies."""
    return [range(SEED_BASE + a, SEED_BASE + min(a + size, n_studies)) for a in range(0, n_studies, size)]


def models_tag(models: Sequence[str] | None) -> str:
    """The results subfolder of a run of ``models`` (``all`` for every model)."""
    return "all" if not models else "+".join(sorted(models))


def task_path(results: Path, cell: Cell, seeds: range, models: Sequence[str] | None = None) -> Path:
    return (results / cell.key / models_tag(models)
            / f"studies-{seeds.start - SEED_BASE:05d}-{seeds.stop - SEED_BASE:05d}.parquet")


def truth_path(results: Path, cell: Cell) -> Path:
    return results / cell.key / "pseudo-truth.parquet"


# What each model's rows depend on, beside the data generator and the row format (:data:`SHARED_CODE`):
# its own modules, and the functions of the model stage that fit it (``file:function``). A model's code
# version (:func:`code_version`) is the hash of these texts, so a change to one model's code makes only
# that model's rows stale, and the rows of one model in one cell never mix two versions (:func:`load`).
SHARED_CODE = ("model/stats/tidy.py", "model/stats/wave_design.py", "demo/answers.py", "demo/model.py",
               "demo/people.py", "demo/sample.py", "demo/panels.py", "demo/demo_study.toml",
               "demo/generator.py:long_frames", "demo/generator.py:study_config", "coverage/simulation.py:fit_study",
               "coverage/simulation.py:simulate")
_COUNCIL_LEVEL = ("model/stats/council_level.py", "model/stats/cluster_robust.py", "model/stats/permutation.py",
                  "model/stats/paired.py")
MODEL_CODE: dict[str, tuple[str, ...]] = {
    "lmm": ("model/stats/lmm.py", "model/stats/group_differences.py", "model/fitting.py:lmm_rows",
            "model/fitting.py:council_wave_identifiable", "model/fitting.py:recurring_respondents"),
    "gee": ("model/stats/gee.py", "model/fitting.py:fit_measure"),
    "ordinal": ("model/stats/ordinal.py", "model/fitting.py:fit_measure"),
    "paired_t": ("model/stats/paired.py", "model/stats/permutation.py"),
    "wilcoxon": ("model/stats/paired.py", "model/stats/permutation.py"),
    "cr2": _COUNCIL_LEVEL, "cr2_council": _COUNCIL_LEVEL, "sign_flip": _COUNCIL_LEVEL,
    "wild_bootstrap": _COUNCIL_LEVEL,
}
PACKAGE = Path(__file__).resolve().parent.parent  # src/impactstudy


def _source(path: str, commit: str | None) -> str:
    """The text of ``path`` (relative to the package; ``file:function`` for one top-level function's
    source) in the checkout (``commit`` None) or at ``commit``; '' when it does not exist there."""
    import ast

    file, _, function = path.partition(":")
    if commit is None:
        target = PACKAGE / file
        text = target.read_text(encoding="utf-8") if target.is_file() else ""
    else:
        shown = subprocess.run(["git", "-C", str(PACKAGE), "show", f"{commit}:src/impactstudy/{file}"],
                               capture_output=True, text=True)
        text = shown.stdout if shown.returncode == 0 else ""
    if not function or not text:
        return text
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == function:
            return ast.get_source_segment(text, node) or ""
    return ""


@functools.cache
def code_version(model: str, commit: str | None = None) -> str:
    """A short hash of the code ``model``'s rows depend on (:data:`MODEL_CODE`, :data:`SHARED_CODE`), in
    the checkout (``commit`` None) or at a recorded commit. A commit recorded with uncommitted changes
    (``abc1234+``) or unknown cannot be reconstructed: its version is the commit itself, which never
    equals a reconstructed one."""
    import hashlib

    if commit is not None and (commit.endswith("+") or commit in ("", "unknown")):
        return f"uncommitted:{commit}"
    paths = (*MODEL_CODE.get(model, ("model/fitting.py",)), *SHARED_CODE)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + _source(path, commit).encode() + b"\0")
    return digest.hexdigest()[:12]


def git_commit() -> str:
    """The checkout's commit (with ``+`` when it has uncommitted changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+" if dirty else "")


# A busy machine (other jobs on every core) can starve the scheduler's event loop for many seconds;
# distributed's default 30 s connect / tcp timeouts then cancel every task ("scheduler-connection-lost").
# And a worker's event loop shares the GIL with its task: its statistical profiler (a stack sample of the
# task thread every 10 ms) and 20 ms health tick make the task wait for the GIL whenever the loop's thread
# is descheduled holding it, which on a loaded machine left the task a quarter of its core. Neither is
# needed here (there is a progress bar and no dashboard).
PATIENT = {"distributed.comm.timeouts.connect": "300s", "distributed.comm.timeouts.tcp": "600s",
           "distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
           "distributed.admin.system-monitor.interval": "5s", "distributed.worker.daemon": False}


def _client(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    import dask
    from distributed import Client, LocalCluster

    dask.config.set(PATIENT)
    for key, value in PATIENT.items():  # the worker processes read their config from the environment
        os.environ.setdefault("DASK_" + key.upper().replace(".", "__").replace("-", "_"), str(value))

    if scheduler:
        return Client(scheduler), None
    # the scheduler's HTTP server on any free port (8787 may be taken), no dashboard: the progress bar instead
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           scheduler_kwargs={"dashboard": False})
    return Client(cluster), cluster


def run(cells: Sequence[Cell], n_studies: int, results: Path, *, chunk: int = 10, scheduler: str | None = None,
        workers: int | None = None, progress: bool = True, pooled_councils: int = POOLED_COUNCILS,
        models: Sequence[str] | None = None) -> dict[str, Any]:
    """Simulate ``n_studies`` studies of every cell on Dask (``models``: only these, in their own subfolder
    of each cell's results), each task's rows written to ``results`` as it completes; tasks whose file is
    already there are skipped (resume). What was run, and how long it took.

    The client writes the files (workers of a remote cluster need not share its disk); only the package,
    installed in every worker, is needed there. Each row records the commit and its model's
    :func:`code_version` in the client's checkout (the workers must run the same code): do not edit the
    checkout a run is using.
    """
    from distributed import as_completed
    from tqdm import tqdm

    results = Path(results)
    # (priority, file, function, arguments): the first chunk of every cell, the pseudo-truths, then the
    # second chunks ..., so that every cell has about as many studies whenever the run stops
    todo: list[tuple[float, Path, Any, tuple[Any, ...]]] = []
    for cell in cells:
        if not truth_path(results, cell).is_file():
            todo.append((-0.5, truth_path(results, cell), truth_task, (cell, pooled_councils)))  # after 1st chunks
        if models and not applicable(cell, models):
            continue  # e.g. only council-level models, which the model stage fits below few_councils only
        done = done_seeds(results / cell.key, applicable(cell, models)) if models else set()
        todo.extend((-k, task_path(results, cell, seeds, models), task_rows, (cell, list(seeds), models))
                    for k, seeds in enumerate(chunks(n_studies, chunk))
                    if not task_path(results, cell, seeds, models).is_file()
                    and not (models and all((m, sd) in done for m in applicable(cell, models) for sd in seeds)))
    todo.sort(key=lambda t: -t[0])
    commit = git_commit()
    started = time.monotonic()
    if todo:
        client, cluster = _client(scheduler, workers)
        try:
            futures = {client.submit(f, *args, pure=False, priority=priority): path
                       for priority, path, f, args in todo}
            bar = tqdm(total=len(futures), desc="coverage tasks", unit="task", disable=not progress, file=sys.stderr)
            for future in as_completed(futures):
                frame = future.result()
                if "model" in frame.columns:  # a task's rows (the pseudo-truths have none)
                    frame = frame.assign(code=frame["model"].map({m: code_version(m) for m in frame["model"].unique()}))
                write_parquet(futures[future], frame.assign(commit=commit))
                bar.update()
                del futures[future]
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    where = f"scheduler {scheduler}" if scheduler else f"a LocalCluster of {workers or 2} workers"
    return {"tasks_run": len(todo), "seconds": round(time.monotonic() - started, 1), "commit": commit, "where": where}


# ---------------------------------------------------------------------------------------- results


def load(results: Path, cells: Sequence[Cell] | None = None) -> pd.DataFrame:
    """Every study row in ``results`` (for ``cells``, else all), judged against the pseudo-true values too.

    A cell's rows may come from several runs (one subfolder per set of models, :func:`models_tag`), made
    by different code. Each model's rows in a cell come from one code version (:func:`code_version` of
    the commit each file records), never a mix: the checkout's own version when some rows have it, else
    the newest version found, its rows marked ``stale`` (the summary and docs/coverage.md say so). Within
    a version, a study (seed) is taken once, from the newest file that has it.
    """
    results = Path(results)
    frames = []
    for folder in sorted(results.glob("councils=*")):
        cell = _parse_key(folder.name)
        if cells is not None and cell not in cells:
            continue
        rows = cell_rows(folder)
        if rows.empty:
            continue
        pseudo = pd.read_parquet(truth_path(results, cell)) if truth_path(results, cell).is_file() else None
        rows = judge(rows.drop(columns=["truth", "covers", "rejects", "level"], errors="ignore"), truth(cell), pseudo)
        frames.append(rows.assign(councils=cell.councils, tau=cell.tau,
                                  respondents=f"{cell.respondents[0]}-{cell.respondents[1]}"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def result_files(folder: Path) -> list[Path]:
    """A cell folder's task files, newest first."""
    files = [p for p in folder.glob("*/studies-*.parquet")]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def file_versions(path: Path) -> dict[str, str]:
    """Each model's :func:`code_version` in one task file: the ``code`` column :func:`run` writes, or for
    a file written before it, reconstructed from the commit the file records."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    column = "code" if "code" in names else "commit" if "commit" in names else None
    if column is None:
        return {str(m): "unknown" for m in pd.read_parquet(path, columns=["model"])["model"].unique()}
    index = pd.read_parquet(path, columns=["model", column]).drop_duplicates()
    if index["model"].duplicated().any():
        raise SystemExit(f"coverage: {path} holds rows of one model from two code versions; a task file is "
                         "written by one run: delete it and rerun to remake it")
    if column == "code":
        return dict(zip(index["model"].astype(str), index["code"].astype(str)))
    return {str(m): code_version(str(m), str(c)) for m, c in index.itertuples(index=False)}


def cell_rows(folder: Path) -> pd.DataFrame:
    """The rows of one cell folder, one code version per model (:func:`load`), with columns ``code``
    (the version) and ``stale`` (True when it is not the checkout's)."""
    files = result_files(folder)
    versions = {p: file_versions(p) for p in files}
    models = sorted({m for v in versions.values() for m in v})
    picked: dict[Path, list[tuple[str, str, bool]]] = {}
    for model in models:
        found = [versions[p][model] for p in files if model in versions[p]]  # newest first
        current = code_version(model)
        chosen = current if current in found else found[0]
        for p in files:
            if versions[p].get(model) == chosen:
                picked.setdefault(p, []).append((model, chosen, chosen != current))
    parts, taken = [], set()
    for p in files:  # newest first: a seed a newer file has is not taken again
        if p not in picked:
            continue
        rows = pd.read_parquet(p)
        for model, version, stale in picked[p]:
            own = rows[rows["model"] == model]
            fresh = ~own["seed"].map(lambda seed, m=model: (m, seed) in taken)
            own = own[fresh.to_numpy(bool)]
            taken |= {(model, seed) for seed in own["seed"].unique()}
            parts.append(own.assign(code=version, stale=stale))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def applicable(cell: Cell, models: Sequence[str]) -> list[str]:
    """Those of ``models`` the model stage fits in ``cell``: the council-level models only below
    :data:`FEW_COUNCILS` councils."""
    from impactstudy.model.fitting import COUNCIL_LEVEL_MODELS

    return [m for m in models if m not in COUNCIL_LEVEL_MODELS or cell.councils < FEW_COUNCILS]


def done_seeds(folder: Path, models: Sequence[str]) -> set[tuple[str, int]]:
    """``(model, seed)`` pairs of ``models`` a cell folder holds at the checkout's code version: the
    studies a run of these models need not fit again."""
    out: set[tuple[str, int]] = set()
    for p in result_files(folder) if folder.is_dir() else []:
        current = [m for m, v in file_versions(p).items() if m in models and v == code_version(m)]
        if current:
            index = pd.read_parquet(p, columns=["model", "seed"]).drop_duplicates()
            out |= {(m, int(sd)) for m, sd in index.itertuples(index=False) if m in current}
    return out


def _parse_key(key: str) -> Cell:
    parts = dict(p.split("=", 1) for p in key.split("_"))
    lo, hi = parts["respondents"].split("-")
    return Cell(int(parts["councils"]), float(parts["tau"]), (int(lo), int(hi)))


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Coverage and size per model, contrast, group kind (``all``, ``by status``, ``between statuses``) and cell.

    ``coverage``: share of estimable intervals that contain the truth (both measures), beside their mean
    stated ``level`` and its Monte-Carlo standard error; ``size``: share of tests with
    p < 0.05 for the measure with no true change; ``estimable``: share of rows with an interval.
    """
    group = rows["group"].astype(str)
    variant = rows["variant"].fillna("").astype(str) if "variant" in rows.columns else pd.Series("", index=rows.index)
    method = rows["model"].astype(str).where(variant == "", rows["model"].astype(str) + " (" + variant + ")")
    d = rows.assign(groups=np.select([group == "all", group.str.contains(" - ", regex=False)],
                                     ["all", "between statuses"], "by status"), model=method)
    keys = ["model", "contrast", "groups", "councils", "tau", "respondents"]

    def one(g: pd.DataFrame) -> pd.Series:
        covers = g["covers"].dropna().astype(float)
        null = g.loc[g["measure"] == NULL_MEASURE, "rejects"].dropna().astype(float)
        return pd.Series({
            "studies": g["seed"].nunique(),
            "intervals": len(covers),
            "estimable": float(g["covers"].notna().mean()),
            "level": float(g.loc[g["covers"].notna(), "level"].mean()) if len(covers) else LEVEL,
            "coverage": float(covers.mean()) if len(covers) else math.nan,
            "coverage_se": float(math.sqrt(covers.mean() * (1 - covers.mean()) / len(covers))) if len(covers) else math.nan,
            "size": float(null.mean()) if len(null) else math.nan,
            "tests": len(null),
            "mean_width": float((g["ci_high"] - g["ci_low"]).mean()),
            "bias": float((g["estimate"] - g["truth"]).mean()),
            "stale": bool(g["stale"].fillna(False).astype(bool).any()) if "stale" in g else False,
        })

    out = d.groupby(keys, sort=True).apply(one, include_groups=False).reset_index()
    out = out.astype({"studies": int, "intervals": int, "tests": int, "stale": bool})
    out["coverage_ok"] = (out["coverage"] - out["level"]).abs() <= TOLERANCE
    out["size_ok"] = out["size"] <= MAX_SIZE
    return out


STALE_MARK = " †"
STALE_NOTE = ("† rows made by an older version of the model's code than this checkout's (no rows of the current "
              "version yet): they describe the model as it was, not as it is")


def _pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


ABOUT = """\
Every 95% interval of the model stage should contain the true value in 95% of studies, and every test
should reject a true null hypothesis in at most 5% (here: at most 6%, allowing for simulation error).
This page checks both by simulation, with the demo generator (docs/demo.md) as the model of the data.

**Studies.** Each simulated study is the demo study (councils sampled from England's, a quarter on
Notice to Improve; 1–4 respondent seats per council — or 20–40 in the second grid, where a council's
change is replicated by many answers — with replacement, status-dependent response and, from 12
councils, whole councils dropping out) made in memory, two of its effectiveness measures: `{effect}`
(true change from baseline to follow-up +0.35 on the latent scale for an Adequate council, 1.8x for
Notice to Improve, 0.6x Good, 0.3x Outstanding) and `{null}` (no true change). Each council's change
varies around its status's change with standard deviation τ at the follow-up (reached along the
trajectory: 0.4 τ at early impact), the council-level heterogeneity the primary model has to allow for.

**Models.** Every model the model stage fits to a Likert measure, fitted by the stage's own
`fitting.fit_measure` (so every correction it applies below `few_councils` = 20 councils, and the GEE's and
ordinal model's below 40 councils in a row's group level, applies here), overall and within each status,
for every contrast; the LMM's rows once per df method (Satterthwaite, Kenward–Roger), from one fit.

**Truth.** Each row is judged against the true value of its own `estimand` (the model stage's column):
a council-weighted mean change (paired t, sign-flip, `cr2_council`) against the change in the expected
observed 1–5 score with the statuses weighted by their number of councils (`truth.json`'s `effects`); a
respondent-weighted mean change (LMM, GEE, `cr2`, wild bootstrap) overall against the statuses' changes
weighted by their share of the answers at the two waves (within a status both weightings are the
status's change); the pseudo-median shift (Wilcoxon) and the ordinal model's log odds ratio against
their pseudo-true values (the same model fitted to at least {pooled} councils of the same design pooled,
40 studies' worth or more). A row counts when its interval exists; an interval below 95% (an exact test
with few councils) is judged against its own stated level.
"""


def _cell(r: pd.Series) -> str:
    """``coverage / size`` in percent, ✗ after a miss, the stated level when it is not 95%."""
    if math.isnan(r["coverage"]):
        cov = "n/a"
    else:
        cov = _pct(r["coverage"]) + ("" if r["coverage_ok"] or r["intervals"] < JUDGED_FROM else " ✗")
        if abs(r["level"] - LEVEL) > 0.005:
            cov += f" (of {100 * r['level']:.0f})"
    size = _pct(r["size"]) + ("" if r["size_ok"] or math.isnan(r["size"]) or r["tests"] < JUDGED_FROM else " ✗")
    return f"{cov} / {size}"


def key_model(councils: int, few_councils: int = FEW_COUNCILS, lmm_df: str = "kenward-roger") -> str:
    """The row the key findings state for a Likert measure with ``councils`` councils (as
    :func:`impactstudy.report.findings.key_findings` chooses it): the council-level sign-flip test below
    ``few_councils``, else the LMM with the study's df method (as :func:`summarise` names it)."""
    from impactstudy.report import findings

    return findings.COUNCIL_LEVEL if councils < few_councils else f"{findings.PRIMARY['likert']} ({lmm_df})"


def verdict(r: pd.Series) -> str:
    """Whether a summary row's interval covers and its test holds size, in words (:data:`JUDGED_FROM`)."""
    parts = []
    if math.isnan(r["coverage"]):
        parts.append("no interval")
    elif r["intervals"] < JUDGED_FROM:
        parts.append(f"too few intervals to judge ({r['intervals']})")
    else:
        parts.append("covers" if r["coverage_ok"] else ("over-covers" if r["coverage"] > r["level"] else "UNDER-COVERS"))
    if not math.isnan(r["size"]):
        if r["tests"] < JUDGED_FROM:
            parts.append(f"size: too few tests ({r['tests']})")
        else:
            parts.append("holds size" if r["size_ok"] else "SIZE TOO HIGH")
    return "; ".join(parts)


def key_findings_section(summary: pd.DataFrame) -> list[str]:
    """The rows the key findings use (:func:`key_model`, overall, :data:`KEY_CONTRAST`), per cell, with
    coverage ± Monte-Carlo SE, size and a verdict, for both df methods of the LMM."""
    key = summary[(summary["contrast"] == KEY_CONTRAST) & (summary["groups"] == "all")]
    lines = ["## The key findings' intervals", "",
             f"Below {FEW_COUNCILS} councils a key finding states the sign-flip test's interval (council-weighted "
             "change; at the level it can reach with so few councils), from "
             f"{FEW_COUNCILS} on the LMM's (respondent-weighted change), with the df method of `[models] lmm_df`; "
             "both LMM df methods are shown. `coverage ± MC SE / size`, verdict from "
             f"{JUDGED_FROM} intervals (tests) on: coverage within {100 * TOLERANCE:.0f} points of the stated level, "
             f"size at most {100 * MAX_SIZE:.0f}%.", "",
             "| row | councils | respondents | τ | studies | level % | coverage % ± MC SE | size % | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (councils, respondents, tau), g in key.groupby(["councils", "respondents", "tau"], sort=True):
        models = {key_model(councils, lmm_df=d) for d in ("satterthwaite", "kenward-roger")}
        for r in g[g["model"].isin(models)].itertuples():
            row = pd.Series(r._asdict())
            lines.append(f"| {r.model}{STALE_MARK if r.stale else ''} | {councils} | {respondents} | {tau:g} | {r.studies} | {100 * r.level:.0f} | "
                         f"{_pct(r.coverage)} ± {_pct(r.coverage_se)} | {_pct(r.size)} | {verdict(row)} |")
    return lines + [""]


LMM_TAU_NOTE = """\
## Why the LMM under-covered with many respondents per council at τ = 0.3, and what changed

Before the fix below the LMM's `follow_up - baseline` intervals covered 91.8% at 20 councils and 88.6%
at 40 with 20–40 respondents per council and τ = 0.3 (110 studies a cell), and its test rejected in
10–12% of the studies with no change. What it was, checked on that cell:

- **Not the engine.** On four simulated studies of the 20-council cell, estimates, variance components
  (council:wave included), REML criterion, and the Kenward–Roger and Satterthwaite SE and df agreed with
  lme4 + pbkrtest / lmerTest to the printed digits (e.g. SE 0.068436 and KR df 36.83 in both).
- **Not the truth it was judged against.** The estimates averaged 0.320 against a respondent-weighted
  truth of 0.319 (council-weighted 0.336, 20 councils); the measure with no change in any council (truth
  0 under every weighting) under-covered as much (88.8% and 90.4%).
- **Not the df: the SE.** Across studies the estimates' SD was 0.087 (20 councils) and 0.061 (40), the
  mean SE 0.077 and 0.053: about 0.88 of the spread at either df.
- **The model's covariance.** The generator's council change builds up along the trajectory (0, 0.4 τ
  and τ at baseline, early impact and follow-up: a council that gains more by the follow-up was already
  gaining at the early wave). The council × wave term gives every wave's council deviation one
  variance, so a fit to the three waves averages the spread: for the council part of `follow_up -
  baseline` it implies about half of τ² (0.51 τ² with balanced waves) where the truth is τ². With 1–4
  respondents a council the answers' noise dominates and the miss hides; with 20–40 it shows. lme4 with
  an unstructured council covariance, `(0 + wave | council_code)`, gave SEs 0.090, 0.092 and 0.080
  against 0.068, 0.076 and 0.070 on the three studies' changing measure (df about 17.6 against 35–37).

**The fix** (`fitting.lmm_rows`, docs/lmm.md): with more than two waves each contrast comes from the
model fitted to its own two waves, where the term's variance is the contrast's own whatever the
trajectory. Checked on 100 studies of the 20-council cell before the grid was rerun: 95.5%
(Kenward–Roger) and 96.0% (Satterthwaite), size 5.0%; the LMM rows above are the rerun's.
"""


WHAT_THE_REPORT_DOES = """\
## What the report does about the misses

- **Key findings** rest on the sign-flip test below `few_councils` and on the LMM (Kenward–Roger, the
  default `[models] lmm_df`) from there on: the table above is their evidence. A cell marked
  UNDER-COVERS or SIZE TOO HIGH there is a miss of a key finding's interval; "too few intervals to
  judge" means the run did not reach the 100 studies (200 intervals) a verdict needs.
- **Ordinal rows** (council-weighted log odds ratio): fitted per contrast and group level to the councils
  at both waves, each council-wave weighted equally (issue #14). Fitted to every answer, as before, the
  log odds ratio moved with who answered (councils of one kind answering less or leaving), and its "no
  change" test rejected in 24% and 49% of studies with 20 and 40 councils of 20–40 respondents and 32% at
  152 councils (follow-up against baseline, pooled over τ, 110 studies a cell); rows of a run before that
  change show it. No key finding rests on it and no "models
  disagree" sentence compares it with another row (it is the only row of its estimand).
- **GEE rows within a group level** use the small-sample correction of the councils behind the level
  (below 40): the status rows that covered 75–86% at 20 councils before; the ordinal rows a t reference
  on the councils at both waves.
- **Wilcoxon** estimates a pseudo-median shift, not the mean change: it is judged against its own
  pseudo-true value and compared with no mean-change row.
- **Within-status and between-status rows** are pooled over the statuses of one study, so their tests are
  not independent: read their verdicts as a screen, their Monte-Carlo SE as too small.
"""


def pooled_section(summary: pd.DataFrame) -> list[str]:
    """Every model's :data:`KEY_CONTRAST` rows pooled over τ (three times the intervals, a third of the
    Monte-Carlo error), overall and within status."""
    key = summary[summary["contrast"] == KEY_CONTRAST]
    lines = [f"## `{KEY_CONTRAST}`, every model, pooled over τ", "",
             "Each cell: `coverage ± MC SE / size` (%), the three τ cells' intervals and tests together, and the verdict.",
             "", "| model | groups | councils | respondents | studies | coverage % ± MC SE | size % | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for (model, groups, councils, respondents), g in key.groupby(["model", "groups", "councils", "respondents"],
                                                                  sort=True):
        n, t = g["intervals"].sum(), g["tests"].sum()
        cov = float((g["coverage"] * g["intervals"]).sum() / n) if n else math.nan
        size = float((g["size"] * g["tests"]).sum() / t) if t else math.nan
        level = float((g["level"] * g["intervals"]).sum() / n) if n else LEVEL
        row = pd.Series({"coverage": cov, "intervals": n, "level": level, "size": size, "tests": t,
                         "coverage_ok": abs(cov - level) <= TOLERANCE, "size_ok": size <= MAX_SIZE})
        se = math.sqrt(cov * (1 - cov) / n) if n else math.nan
        lines.append(f"| {model}{STALE_MARK if g['stale'].any() else ''} | {groups} | {councils} | {respondents} | {int(g['studies'].max())} | "
                     f"{_pct(cov)} ± {_pct(se)} | {_pct(size)} | {verdict(row)} |")
    return lines + [""]


def markdown(summary: pd.DataFrame, info: dict[str, Any]) -> str:
    """``docs/coverage.md``: what is simulated, how it was run, then coverage / size per model x councils x
    tau for the key findings' contrast (overall and within status), and every contrast for reference."""
    taus = sorted(summary["tau"].unique())
    lines = [
        "# Coverage of the model stage's intervals and size of its tests (`make coverage`)",
        "",
        "Written by `make coverage` (`python -m impactstudy.coverage`, module `impactstudy.coverage`); "
        "do not edit by hand.",
        "",
        ABOUT.format(effect=EFFECT_MEASURE, null=NULL_MEASURE, pooled=info.get("pooled", POOLED_COUNCILS)),
        "## This run",
        "",
        f"- {info['date']}, commit `{info['commit']}`; {info['seconds']:.0f} s wall on {info['where']}"
        " (this invocation only: a resumed run reuses earlier tasks' results)",
        f"- studies per cell: {info['studies']} (asked for {info['requested']}); respondent seats per council: "
        f"{', '.join(sorted(summary['respondents'].unique()))}",
        "- each cell: `coverage / size` in percent — coverage of the contrast's intervals (both measures), "
        f"size = share of p < 0.05 for `{NULL_MEASURE}`; ✗: coverage more than {100 * TOLERANCE:.0f} points "
        f"from the stated level, or size above {100 * MAX_SIZE:.0f}% (marked only from {JUDGED_FROM} intervals or "
        f"tests in the cell: fewer cannot tell a miss from chance); `n/a`: no interval (too few councils).",
        "- Monte-Carlo standard error of a coverage of 95% from n intervals: √(0.95·0.05/n), 0.7 points for "
        "1,000 intervals (500 studies x 2 measures).",
        *(f"- {note}" for note in info.get("notes", ())),
        *([f"- {STALE_NOTE}: " + ", ".join(sorted(summary.loc[summary["stale"], "model"].unique()))]
          if summary["stale"].any() else []),
        "",
    ]
    lines += key_findings_section(summary)
    lines += LMM_TAU_NOTE.splitlines() + [""]
    lines += WHAT_THE_REPORT_DOES.splitlines() + [""]
    lines += pooled_section(summary)
    key = summary[summary["contrast"] == KEY_CONTRAST]
    for groups, title in (("all", "overall (group `all`): the key findings' rows"),
                          ("by status", "within each status (pooled over the four statuses)")):
        part = key[key["groups"] == groups]
        if part.empty:
            continue
        lines += [f"## `{KEY_CONTRAST}`, {title}", "",
                  "| model | councils | respondents | " + " | ".join(f"τ = {t:g}" for t in taus) + " |",
                  "|---|---|---|" + "---|" * len(taus)]
        for (model, councils, respondents), g in part.groupby(["model", "councils", "respondents"], sort=True):
            by_tau = {float(r["tau"]): _cell(r) for _, r in g.iterrows()}
            lines.append(f"| {model} | {councils} | {respondents} | " + " | ".join(by_tau.get(t, "") for t in taus) + " |")
        lines.append("")
    lines += ["## Every contrast", "",
              "| model | contrast | groups | councils | resp. | τ | studies | estimable % | level % | coverage % (± MC SE) "
              "| size % | mean width | mean error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.model} | {r.contrast} | {r.groups} | {r.councils} | {r.respondents} | {r.tau:g} | "
                     f"{r.studies} | {_pct(r.estimable)} | {100 * r.level:.0f} | {_pct(r.coverage)} ± "
                     f"{_pct(r.coverage_se)} | {_pct(r.size)} | {r.mean_width:.3f} | {r.bias:+.3f} |")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- CLI


def cells_of(respondents: str, councils: Sequence[int], taus: Sequence[float]) -> list[Cell]:
    """The cells of ``--respondents`` ranges (``lo-hi`` or ``lo-hi@n1/n2``: those councils only, else
    ``councils``) x ``taus``, in one list so that one run interleaves them."""
    cells = []
    for item in (x.strip() for x in respondents.split(",") if x.strip()):
        span, _, only = item.partition("@")
        try:
            lo, hi = (int(x) for x in span.split("-"))
            ns = [int(n) for n in only.split("/")] if only else list(councils)
        except ValueError:
            raise SystemExit(f"coverage: --respondents item {item!r} is not lo-hi or lo-hi@n1/n2 (e.g. 20-40@6/20)")
        cells += grid(ns, taus, (lo, hi))
    return cells


def _numbers(text: str, kind: type) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m impactstudy.coverage``: run (or resume) the simulation and write the summary."""
    parser = argparse.ArgumentParser(prog="python -m impactstudy.coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=500, help="simulated studies per cell (default 500)")
    parser.add_argument("--councils", default=",".join(map(str, DEFAULT_COUNCILS)), help="councils per study, comma-separated")
    parser.add_argument("--tau", default=",".join(f"{t:g}" for t in DEFAULT_TAUS), help="SDs of the council-level change")
    parser.add_argument("--respondents", default=f"{DEFAULT_RESPONDENTS[0]}-{DEFAULT_RESPONDENTS[1]}",
                        help="respondents per council, low-high (default 1-4, as the demo); several ranges "
                        "comma-separated, each optionally with its own councils: 1-4,20-40@6/20/40")
    parser.add_argument("--results", type=Path, default=Path("data/coverage"), help="folder of per-task results (resumable)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default 2)")
    parser.add_argument("--chunk", type=int, default=10, help="studies per task (default 10)")
    parser.add_argument("--pooled-councils", type=int, default=POOLED_COUNCILS,
                        help=f"councils pooled for the ordinal model's pseudo-true value (default {POOLED_COUNCILS})")
    parser.add_argument("--models", default="", help="fit only these models, comma-separated (default: every "
                        "model; a run of some models replaces their rows from earlier runs)")
    parser.add_argument("--docs", type=Path, default=None, help="write the summary as Markdown here")
    parser.add_argument("--summary-only", action="store_true", help="summarise what is in --results, run nothing")
    parser.add_argument("--note", action="append", default=[], help="a line for the page's 'This run' list "
                        "(how the results were run, e.g. the machine's load); may be repeated")
    args = parser.parse_args(argv)
    cells = cells_of(args.respondents, _numbers(args.councils, int), _numbers(args.tau, float))
    info: dict[str, Any] = {"seconds": 0.0, "commit": git_commit(), "tasks_run": 0, "where": "(summary only)"}
    if not args.summary_only:
        info = run(cells, args.studies, args.results, chunk=args.chunk, scheduler=args.scheduler, workers=args.workers,
                   pooled_councils=args.pooled_councils, models=_numbers(args.models, str) or None)
    rows = load(args.results, cells)
    if rows.empty:
        print(f"coverage: no results in {args.results}", file=sys.stderr)
        return 1
    summary = summarise(rows)
    done = summary.groupby(["councils", "tau", "respondents"])["studies"].max()
    if "commit" in rows.columns:  # the code that produced the rows, not the code summarising them
        info["commit"] = ", ".join(sorted(rows["commit"].dropna().astype(str).unique()))
    info.update(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                studies=(f"{int(done.min())}" if done.min() == done.max() else f"{int(done.min())}–{int(done.max())}"),
                requested=args.studies, pooled=args.pooled_councils, notes=args.note)
    write_parquet(args.results / "summary.parquet", summary)
    if args.docs is not None:
        write_text(args.docs, markdown(summary, info))
    key = summary[(summary["contrast"] == KEY_CONTRAST) & (summary["groups"] == "all")]
    print(key[["model", "councils", "tau", "studies", "coverage", "size"]].to_string(index=False))
    print(f"coverage: {info['tasks_run']} tasks run in {info['seconds']} s; results in {args.results}")
    return 0
