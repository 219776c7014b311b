"""Fitting every measure's models: the frames they take, the fits, and the tables they make.

For each measure asked in two or more waves, the models its type calls for (overridable per measure
in ``study.toml``) are fitted overall and within each level of each grouping covariate, for every wave
against the first and each wave against the one before. Results are tidy rows with the same columns
whatever the model (``tables/contrasts.csv``), q-values are Benjamini–Hochberg across measures within
each model, contrast and group, and every fit has a record (``models.json``) with its formula, size,
convergence and warnings. A model that fails is recorded with its reason; the others go on.

Pure functions over DataFrames; :mod:`impactstudy.model.stage` is the stage that reads and writes the
files. Measures are fitted in parallel across cores (``[models] workers``; default: all cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from impactstudy.errors import DataError
from impactstudy.model.stats import council_level, tidy
from impactstudy.model.stats.gee import fit_gee
from impactstudy.model.stats.group_differences import difference_rows, interaction_matrix, joint_test
from impactstudy.model.stats.lmm import DDF_NAMES, Ddf, fit_lmm, fit_summary
from impactstudy.model.stats.ordinal import ESTIMAND as ORDINAL_ESTIMAND
from impactstudy.model.stats.ordinal import fit_ordinal
from impactstudy.model.stats.paired import paired_t, wilcoxon_signed_rank
from impactstudy.model.stats.proportions import mcnemar_paired
from impactstudy.study.config import Measure, Study

CONTRAST_COLUMNS = ["measure", "model", "contrast", "group", "estimand", "estimate", "std_error", "ci_low", "ci_high",
                    "p_value", "q_value", "min_p_value", "n_obs", "n_councils", "n_councils_both", "df", "correction",
                    "flag", "warning"]
ESTIMATE_COLUMNS = tidy.ESTIMATE_COLUMNS
DEFAULT_MODELS = {
    "likert": ("lmm", "gee", "ordinal", "paired_t", "wilcoxon"),
    "numeric": ("lmm", "gee", "paired_t", "wilcoxon"),
    "binary": ("mcnemar", "gee"),
}
COUNCIL_LEVEL_MODELS = tuple(council_level.MODELS)
"""Fitted to every measure whose councils are fewer than ``[models] few_councils`` (see
:mod:`impactstudy.model.stats.council_level`): with few councils the conclusions rest on them."""
RESPONDENT_WEIGHTED = frozenset({"lmm", "gee", "gee_ipw", "cr2", "wild_bootstrap"})
COUNCIL_WEIGHTED = frozenset({"paired_t", "sign_flip", "cr2_council"})
SATTERTHWAITE = DDF_NAMES["satterthwaite"]
KENWARD_ROGER = DDF_NAMES["kenward-roger"]
LMM_DDF: Ddf = "kenward-roger"
"""The LMM rows' default df method (``[models] lmm_df``; ``lmm_rows(ddf=...)`` for the other): Kenward–Roger
covered at least as well as Satterthwaite in every cell of the coverage simulation and better with few
councils per status (docs/coverage.md)."""
FEW_COUNCILS = "few councils"
SANDWICH_FROM = 40
"""The GEE and ordinal rows use their small-sample corrections (bias-reduced or CRV1 covariance with a t
reference) for a group level of fewer councils than this or ``few_councils``, whichever is larger: with
20-39 councils their plain sandwich with a normal reference covered 91-92% (docs/coverage.md)."""


def models_for(measure: Measure) -> tuple[str, ...]:
    """The models fitted to ``measure``: its override, else the defaults for its type."""
    return measure.models if measure.models is not None else DEFAULT_MODELS.get(measure.type, ())

def compact(panel: pd.DataFrame, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """The panel with councils, waves, measures and ``covariates`` as categoricals and respondents as
    integer codes (a no-op for a panel that is already so).

    Why: the models need only the identity of a respondent and the labels of the rest; 3 million rows
    of text cost seconds to convert and compare and hundreds of MB to hold and to send to workers.
    """
    out = {c: panel[c].astype("category") for c in ("council_code", "wave", "measure", *covariates)
           if c in panel.columns and not isinstance(panel[c].dtype, pd.CategoricalDtype)}
    if "respondent_id" in panel.columns and not pd.api.types.is_integer_dtype(panel["respondent_id"].dtype):
        out["respondent_id"] = pd.factorize(panel["respondent_id"])[0]
    return panel.assign(**out) if out else panel



def measure_frames(panel: pd.DataFrame, measures: Sequence[str], covariates: Sequence[str],
                   extra: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """The long frame of each of ``measures`` with observed values: what every model function takes.

    One pass over the panel (rows of a measure keep the panel's order). Councils and ``covariates`` are
    :func:`tidy.labels` categoricals, waves categorical, respondents integer codes; ``extra`` columns
    (e.g. ``months_since_intervention``) are carried along.
    """
    panel = compact(panel, covariates)
    codes, uniques = pd.factorize(panel["measure"])
    position = {str(u): k for k, u in enumerate(uniques)}
    rows = np.flatnonzero(panel["value"].notna().to_numpy() & (codes >= 0))
    # the codes in the smallest integer type that holds them: NumPy's stable sort is then a radix sort
    rows = rows[np.argsort(codes[rows].astype(np.min_scalar_type(len(uniques))), kind="stable")]
    bounds = np.searchsorted(codes[rows], np.arange(len(uniques) + 1))
    columns = ["council_code", "respondent_id", "wave", "value", *covariates, *extra]
    panel = panel[columns]
    frames = {}
    for name in measures:
        k = position.get(name)
        out = panel.take(rows[bounds[k]:bounds[k + 1]] if k is not None else rows[:0]).reset_index(drop=True)
        for column in ("council_code", *covariates):
            out[column] = tidy.labels(out[column])
        frames[name] = out
    return frames


def measure_data(panel: pd.DataFrame, measure: str, covariates: list[str]) -> pd.DataFrame:
    """The long frame of one measure with observed values (:func:`measure_frames` for one measure)."""
    return measure_frames(panel, [measure], covariates)[measure]


def recurring_respondents(data: pd.DataFrame) -> bool:
    """True when some respondent answered in more than one wave (then the LMM nests respondents)."""
    council, respondent, wave = (_codes(data[c]) for c in ("council_code", "respondent_id", "wave"))
    person = pd.factorize(council * (int(respondent.max(initial=0)) + 1) + respondent)[0]
    some_wave = np.empty(int(person.max(initial=-1)) + 1, dtype=np.int64)
    some_wave[person] = wave  # one of each person's waves; any other wave of theirs differs from it
    return bool(np.any(wave != some_wave[person]))


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes with the equalities of ``values``: a categorical's own codes (no hashing), else factorized."""
    codes = values.cat.codes.to_numpy() if isinstance(values.dtype, pd.CategoricalDtype) else pd.factorize(values)[0]
    return codes.astype(np.int64)


# ------------------------------------------------------------------------------------------- LMM


def council_wave_identifiable(data: pd.DataFrame) -> bool:
    """True when the council x wave term can be fitted: fewer council x wave cells than rows (lme4's
    rule). With one answer per council and wave the term is the residual itself, and the model
    without it already lets each council's change vary."""
    council, wave = (_codes(data[c]) for c in ("council_code", "wave"))
    return len(np.unique(council * (int(wave.max(initial=0)) + 1) + wave)) < len(data)


def lmm_formula(group: str | None, council_wave: bool, nested: bool) -> str:
    """The lme4 formula of the model stage's LMM."""
    return ("value ~ wave" + (f" * {group}" if group else "") + " + (1 | council_code)"
            + (" + (1 | council_code:wave)" if council_wave else "")
            + (" + (1 | council_code:respondent_id)" if nested else ""))


def lmm_rows(data: pd.DataFrame | tidy.Sample, wave_order: list[str], group: str | None,
             ddf: Ddf = LMM_DDF, also: Sequence[Ddf] = ()) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """LMM contrasts, its coefficients, and its ``models.json`` record.

    ``value ~ wave [* group] + (1 | council_code) + (1 | council_code:wave)``, plus
    ``(1 | council_code:respondent_id)`` when respondents recur: each council may change by its own
    amount, so a contrast is replicated by councils, not respondents. ``ddf`` is the df method
    (``"satterthwaite"`` or ``"kenward-roger"``), named in the rows' ``correction``. A boundary fit (a
    variance estimated as 0) is a result: its rows' ``warning`` and the record's ``boundary`` say which
    term. An empty wave x group cell makes only the contrasts that need it NaN (with a warning), as in
    the other models: the design drops the interaction column it aliases. ``also``: further df methods
    whose rows are appended, from the same fit (the coverage simulation judges both; a fit computes both).

    With more than two waves, each contrast's rows come from the same model fitted to the contrast's two
    waves only (the record's ``contrast_fits``); the all-wave fit gives the coefficients, the variance
    components of the record and the joint wave x group test. Why: the council x wave term gives every
    wave's council deviation one variance, so the all-wave fit averages the councils' spread over the
    waves. Where councils' changes build up over time (a council that gains more by the follow-up was
    already gaining at the early wave, the usual case and the demo generator's), the spread at the
    later waves is larger, and the all-wave fit understated the variance of ``follow_up - baseline``:
    its intervals covered 88.6-91.8% with 20-40 respondents per council and tau = 0.3 (docs/coverage.md).
    Fitted to two waves, the term's variance is that contrast's own (any 2 x 2 council-level covariance
    gives the difference the variance the model fits), whatever the trajectory.
    """
    sample = tidy.sample(data, wave_order, group, require_respondent=True)
    d = sample.frame
    nested = recurring_respondents(d)
    council_wave = council_wave_identifiable(d)
    correction = DDF_NAMES[ddf]
    record: dict[str, Any] = {"formula": lmm_formula(group, council_wave, nested), "n_obs": len(d),
                              "n_councils": int(d["council_code"].nunique()), "correction": correction}
    notes = [] if council_wave else ["no council:wave term: one answer per council and wave"]
    contrasts = tidy.default_contrasts(wave_order)
    try:
        design = sample.design()
        # integer codes: the fit needs only which rows share a council, a wave or a respondent
        fit = fit_lmm(d["value"].to_numpy(), design.X, design.columns, d["council_code"].cat.codes.to_numpy(),
                      d["respondent_id"].to_numpy() if nested else None,
                      d["wave"].cat.codes.to_numpy() if council_wave else None, ddf=ddf)
    except (DataError, ValueError, np.linalg.LinAlgError) as err:
        reason = str(err)
        record.update(converged=False, error=reason)
        rows = tidy.wald_rows("lmm", sample, contrasts, correction=correction, design=None, test=None,
                              warning=f"LMM could not be fitted: {reason}")
        rows = pd.concat([rows, difference_rows("lmm", sample, contrasts, correction=correction, design=None,
                                                test=None, warning=f"LMM could not be fitted: {reason}")], ignore_index=True)
        return rows, pd.DataFrame(columns=ESTIMATE_COLUMNS), record
    warning = tidy.join_warnings(*fit.warnings, *notes)
    summary = fit_summary(fit)
    record.update({k: summary[k] for k in ("converged", "var_council", "var_council_wave", "var_respondent",
                                           "var_residual", "reml_criterion", "n_groups", "boundary")},
                  warnings=list(fit.warnings) + notes)
    if len(wave_order) > 2:  # each contrast from the model fitted to its own two waves (see the docstring)
        parts, fits = [], {}
        for later, earlier in contrasts:
            pair = [w for w in wave_order if w in (earlier, later)]
            rows, _, pair_record = lmm_rows(sample.raw, pair, group, ddf=ddf, also=also)
            parts.append(rows)
            fits[tidy.contrast_label(later, earlier)] = {k: pair_record.get(k) for k in (
                "formula", "n_obs", "converged", "var_council_wave", "boundary", "error")}
        record["contrast_fits"] = fits
    else:
        parts = []
        for method in (ddf, *(m for m in also if m != ddf)):
            def test(L: np.ndarray, method: Ddf = method) -> dict[str, float]:
                return fit.contrast(L, ddf=method)

            parts.append(tidy.wald_rows("lmm", sample, contrasts, correction=DDF_NAMES[method], design=design,
                                        test=test, warning=warning))
            if group:  # the difference in change between groups
                parts.append(difference_rows("lmm", sample, contrasts, correction=DDF_NAMES[method], design=design,
                                             test=test, warning=warning))
    rows = pd.concat(parts, ignore_index=True)
    if group:  # the joint wave x group test
        record["interaction"] = joint_test(fit, interaction_matrix(design), ddf=ddf)
    return rows, fit.summary_frame().assign(warning=warning), record


# -------------------------------------------------------------------------------- one measure


def _other_model(name: str) -> Callable[..., pd.DataFrame]:
    return {"gee": fit_gee, "ordinal": fit_ordinal, "paired_t": paired_t, "wilcoxon": wilcoxon_signed_rank,
            "mcnemar": mcnemar_paired, **council_level.MODELS}[name]


def fitted_models(measure: Measure, data: pd.DataFrame, few_councils: int) -> tuple[str, ...]:
    """:func:`models_for` the measure, plus :data:`COUNCIL_LEVEL_MODELS` when its answers come from fewer
    than ``few_councils`` councils."""
    models = models_for(measure)
    if data["council_code"].nunique() < few_councils:
        models += tuple(m for m in COUNCIL_LEVEL_MODELS if m not in models)
    return models


def estimand(model: str, measure_type: str, group: str = "all") -> str:
    """What a ``contrasts.csv`` row estimates, in words (its ``estimand`` column).

    The LMM, GEE, ``cr2`` and the wild bootstrap weight answers (a council with more respondents
    counts more): a respondent-weighted mean change. The paired t, sign-flip and ``cr2_council`` rows
    weight councils equally: a council-weighted mean change. For a 0/1 item the mean change is a
    difference in proportions. Wilcoxon's Hodges–Lehmann estimate is a pseudo-median shift of the council
    changes; the ordinal model's a log odds ratio. Rows comparing two groups (``group`` reads
    ``a - b``) estimate the difference between the groups in that quantity.
    """
    change = "difference in proportions" if measure_type == "binary" else "mean change"
    base = {"wilcoxon": "pseudo-median shift of council changes", "ordinal": ORDINAL_ESTIMAND,
            "mcnemar": "difference in proportions (respondents at both waves)",
            "change_adjusted": "council-weighted mean change adjusted for the starting mean",
            "share": "change in the respondent-weighted share at or above the declared level",
            "share_diff": "change in the respondent-weighted share at or above the declared level"}.get(model)
    if base is None:
        weight = "respondent" if model in RESPONDENT_WEIGHTED else "council" if model in COUNCIL_WEIGHTED else ""
        base = f"{weight}-weighted {change}" if weight else change
    return f"difference between groups in {base}" if " - " in str(group) else base


def name_estimands(contrasts: pd.DataFrame, study: Study) -> pd.Series:
    """The ``estimand`` of every row of ``contrasts`` (:func:`estimand`)."""
    types = {m.name: m.type for m in study.measures}
    return pd.Series([estimand(m, types.get(x, ""), g) for x, m, g in
                      zip(contrasts["measure"], contrasts["model"], contrasts["group"])], index=contrasts.index, dtype=object)


def fit_measure(measure: Measure, data: pd.DataFrame, wave_order: list[str], group_by: tuple[str, ...],
                few_councils: int, lmm_df: Ddf = LMM_DDF, *, models: Sequence[str] | None = None,
                lmm_also: Sequence[Ddf] = ()) -> dict[str, Any]:
    """Every model of one measure, overall and by each grouping covariate (the models of one grouping
    share one :class:`tidy.Sample` of the rows); ``lmm_df`` is the LMM's df method (``[models] lmm_df``).

    ``models``: only these of :func:`fitted_models` (the coverage simulation fits a subset per run);
    ``lmm_also``: the LMM's rows with these df methods too, from the same fit (:func:`lmm_rows`)."""
    present = {str(w) for w in data["wave"].dropna().unique()}
    waves = [w for w in wave_order if w in present]
    contrasts = tidy.default_contrasts(waves)
    samples = {group: tidy.sample(data, waves, group) for group in (None, *group_by)}
    contrast_frames, estimate_frames, records = [], [], []
    for name in fitted_models(measure, data, few_councils):
        if models is not None and name not in models:
            continue
        for group in (None, *group_by):
            record: dict[str, Any] = {"measure": measure.name, "model": name, "group_by": group or ""}
            if name == "lmm":
                rows, estimates, fit_record = lmm_rows(samples[group], waves, group, ddf=lmm_df, also=lmm_also)
                record.update(fit_record)
                estimate_frames.append(tidy.estimates_table(estimates, measure.name, name, group or ""))
            else:
                kwargs = {"few_councils": max(few_councils, SANDWICH_FROM)} if name in ("gee", "ordinal") else {}
                rows = _other_model(name)(samples[group], waves, contrasts, group=group, **kwargs)
                record.update(n_obs=int(rows["n_obs"].max()) if len(rows) else 0,
                              n_councils=int(rows["n_councils"].max()) if len(rows) else 0,
                              correction=";".join(sorted(set(rows["correction"].dropna()) - {""})),
                              warnings=sorted(set(rows["warning"].dropna()) - {""}))
            records.append(record)
            rows.insert(0, "measure", measure.name)
            contrast_frames.append(rows)
    return {"contrasts": contrast_frames, "estimates": estimate_frames, "records": records}


Task = tuple[Callable[..., Any], tuple[Any, ...]]
"""A fit to run in a worker: a module-level function and its arguments (compact frames, settings)."""


# The fits are many small linear-algebra calls: BLAS threads only add overhead, and the tasks already
# run in parallel across cores. A pool worker limits BLAS once (threadpoolctl inspects every loaded
# library, ~6 ms a call); the caller, for each task it runs itself.


def _single_threaded_blas() -> None:
    threadpool_limits(1, user_api="blas")


def _call(task: Task) -> Any:
    function, args = task
    return function(*args)


def _run_task(task: Task) -> Any:
    with threadpool_limits(1, user_api="blas"):
        return _call(task)


class TaskPool:
    """Tasks started in a pool of ``workers`` processes while the caller goes on with other work (with
    one worker they run in the caller, when started). A context manager: leaving it waits for the pool.

    Why: the stage starts the measures' fits first and computes what only later tasks need (the
    attrition weights) meanwhile, instead of leaving the cores idle until it has everything.
    """

    def __init__(self, workers: int) -> None:
        self._pool = (ProcessPoolExecutor(max_workers=workers, initializer=_single_threaded_blas)
                      if workers > 1 else None)

    def __enter__(self) -> TaskPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._pool is not None:  # after an error, tasks not yet running are dropped, not waited for
            self._pool.shutdown(cancel_futures=exc_type is not None)

    def start(self, tasks: Sequence[Task]) -> list[Future[Any]]:
        """Start ``tasks`` (in order); their futures."""
        if self._pool is not None:
            return [self._pool.submit(_call, t) for t in tasks]
        done = []
        for task in tasks:
            future: Future[Any] = Future()
            future.set_result(_run_task(task))
            done.append(future)
        return done


def run_tasks(tasks: Sequence[Task], workers: int) -> list[Any]:
    """Every task's result, in order: in a pool of ``workers`` processes when there are more than one."""
    with TaskPool(workers if len(tasks) > 1 else 1) as pool:
        return [f.result() for f in pool.start(tasks)]


# ---------------------------------------------------------------------------------- the tables


def add_q_values(contrasts: pd.DataFrame) -> pd.DataFrame:
    """Benjamini–Hochberg q-values across measures within each model, contrast and group."""
    def bh(p: pd.Series) -> pd.Series:
        q = pd.Series(np.nan, index=p.index)
        ok = p.notna()
        if ok.any():
            q[ok] = multipletests(p[ok].to_numpy(), method="fdr_bh")[1]
        return q

    out = contrasts.copy()
    out["q_value"] = out.groupby(["model", "contrast", "group"], sort=False)["p_value"].transform(bh)
    return out


def extra_table(study: Study, rows: pd.DataFrame) -> pd.DataFrame:
    """Contrast rows from outside the main fits (shares, baseline-adjusted differences) with q-values and
    flags as the main ones, in :data:`CONTRAST_COLUMNS`."""
    if rows.empty:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    out = add_q_values(rows)
    out["flag"] = flag_few(out, study.models.flag_councils)
    out["warning"] = out["warning"].fillna("")
    return out.reindex(columns=CONTRAST_COLUMNS)


def flag_few(contrasts: pd.DataFrame, flag_councils: int) -> pd.Series:
    """``few councils`` where a contrast rests on fewer than ``flag_councils`` councils."""
    return pd.Series(np.where(contrasts["n_councils"].fillna(0) < flag_councils, FEW_COUNCILS, ""),
                     index=contrasts.index)


def modelled_measures(study: Study, panel: pd.DataFrame) -> list[Measure]:
    """Measures with a model and observed values in at least two waves."""
    panel = compact(panel)
    measure = panel["measure"].cat.codes.to_numpy().astype(np.int64)
    wave = panel["wave"].cat.codes.to_numpy()
    observed = panel["value"].notna().to_numpy() & (measure >= 0) & (wave >= 0)
    measure, wave = measure[observed], wave[observed]
    asked = np.zeros((len(panel["measure"].cat.categories), len(panel["wave"].cat.categories)), dtype=bool)
    asked[measure, wave] = True
    waves_of = dict(zip(panel["measure"].cat.categories.astype(str), asked.sum(axis=1)))
    return [m for m in study.research_measures if models_for(m) and waves_of.get(m.name, 0) >= 2]


def fit_tasks(study: Study, measures: Sequence[Measure], frames: dict[str, pd.DataFrame]) -> list[Task]:
    """One task per measure: every model of the measure (:func:`fit_measure`)."""
    group_by = study.councils.group_by if study.councils else ()
    return [(fit_measure, (m, frames[m.name], list(study.wave_ids), group_by, study.models.few_councils,
                           study.models.lmm_df)) for m in measures]


def main_tables(study: Study, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The contrasts (with q-values and flags), estimates and records of :func:`fit_measure` results."""
    contrast_frames = [f for r in results for f in r["contrasts"]]
    estimate_frames = [f for r in results for f in r["estimates"] if len(f)]
    contrasts = pd.concat(contrast_frames, ignore_index=True) if contrast_frames else pd.DataFrame(columns=CONTRAST_COLUMNS)
    contrasts = add_q_values(contrasts)
    contrasts["flag"] = flag_few(contrasts, study.models.flag_councils)
    contrasts["warning"] = contrasts["warning"].fillna("")
    contrasts["estimand"] = name_estimands(contrasts, study)
    estimates = pd.concat(estimate_frames, ignore_index=True) if estimate_frames else pd.DataFrame(columns=ESTIMATE_COLUMNS)
    return {"contrasts": contrasts[CONTRAST_COLUMNS], "estimates": estimates[ESTIMATE_COLUMNS],
            "records": [rec for r in results for rec in r["records"]]}


def worker_count(study: Study, workers: int | None = None) -> int:
    """How many processes fit models: ``workers``, else ``[models] workers``, else every core."""
    return workers or study.models.workers or os.cpu_count() or 1


def fit_all(study: Study, panel: pd.DataFrame, workers: int | None = None) -> dict[str, Any]:
    """Fit every measure's models (in parallel when ``workers`` > 1); the tables and records."""
    group_by = list(study.councils.group_by) if study.councils else []
    panel = compact(panel, group_by)
    measures = modelled_measures(study, panel)
    frames = measure_frames(panel, [m.name for m in measures], group_by)
    return main_tables(study, run_tasks(fit_tasks(study, measures, frames), worker_count(study, workers)))


__all__ = ["compact", "fit_all", "fit_measure", "lmm_rows", "measure_frames", "modelled_measures", "models_for"]
