"""The model stage: change-over-time models for every measure, as tidy tables.

For each measure asked in two or more waves, the models its type calls for (overridable per measure
in ``study.toml``) are fitted overall and within each level of each grouping covariate, for every wave
against the first and each wave against the one before. Results are tidy rows with the same columns
whatever the model (``tables/contrasts.csv``), q-values are Benjamini–Hochberg across measures within
each model, contrast and group, and every fit is recorded in ``models.json`` with its formula, size,
convergence and warnings. A model that fails is recorded with its reason; the stage goes on.

Measures are fitted in parallel across cores (``[models] workers``; default: all cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from impactstudy import attrition, expectations
from impactstudy.atomic import write_csv, write_json
from impactstudy.config import Measure, Study
from impactstudy.errors import DataError, UserError
from impactstudy.paths import StudyPaths
from impactstudy.pipeline import Step
from impactstudy.stats import tidy
from impactstudy.stats.gee import fit_gee
from impactstudy.stats.lmm import fit_lmm
from impactstudy.stats.ordinal import fit_ordinal
from impactstudy.stats.paired import paired_t, wilcoxon_signed_rank
from impactstudy.stats.proportions import mcnemar_paired
from impactstudy.stats.wave_design import design_matrix

CONTRAST_COLUMNS = ["measure", "model", "contrast", "group", "estimate", "std_error", "ci_low", "ci_high", "p_value",
                    "q_value", "n_obs", "n_councils", "df", "correction", "flag", "warning"]
ESTIMATE_COLUMNS = tidy.ESTIMATE_COLUMNS
DEFAULT_MODELS = {
    "likert": ("lmm", "gee", "ordinal", "paired_t", "wilcoxon"),
    "numeric": ("lmm", "gee", "paired_t", "wilcoxon"),
    "binary": ("mcnemar", "gee"),
}
SATTERTHWAITE = "Satterthwaite df (as lmerTest)"
FEW_COUNCILS = "few councils"


def models_for(measure: Measure) -> tuple[str, ...]:
    """The models fitted to ``measure``: its override, else the defaults for its type."""
    return measure.models if measure.models is not None else DEFAULT_MODELS.get(measure.type, ())


def measure_data(panel: pd.DataFrame, measure: str, covariates: list[str]) -> pd.DataFrame:
    """The long frame of one measure with observed values: what every model function takes."""
    rows = panel[(panel["measure"] == measure) & panel["value"].notna()]
    out = rows[["council_code", "respondent_id", "wave", "value", *covariates]].copy()
    for column in ("council_code", "respondent_id", "wave"):
        out[column] = out[column].astype(str)
    return out.reset_index(drop=True)


def recurring_respondents(data: pd.DataFrame) -> bool:
    """True when some respondent answered in more than one wave (then the LMM nests respondents)."""
    return bool((data.groupby(["council_code", "respondent_id"])["wave"].nunique() > 1).any())


# ------------------------------------------------------------------------------------------- LMM


def lmm_rows(data: pd.DataFrame, wave_order: list[str], group: str | None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """LMM contrasts (Satterthwaite df), its coefficients, and its ``models.json`` record.

    An empty wave x group cell makes only the contrasts that need it NaN (with a warning), as in the
    other models: the design drops the interaction column it aliases.
    """
    d = tidy.prepare(data, wave_order, group, require_respondent=True)
    nested = recurring_respondents(d)
    formula = "value ~ wave" + (f" * {group}" if group else "") + " + (1 | council_code)" + (
        " + (1 | council_code:respondent_id)" if nested else "")
    record: dict[str, Any] = {"formula": formula, "n_obs": len(d), "n_councils": int(d["council_code"].nunique()),
                              "correction": SATTERTHWAITE}
    contrasts = tidy.default_contrasts(wave_order)
    try:
        design = design_matrix(d, wave_order, group, empty_cells="drop")
        fit = fit_lmm(d["value"].to_numpy(), design.X, design.columns, d["council_code"].to_numpy(),
                      d["respondent_id"].to_numpy() if nested else None)
    except (DataError, ValueError, np.linalg.LinAlgError) as err:
        reason = str(err)
        record.update(converged=False, error=reason)
        rows = tidy.wald_rows("lmm", data, d, group, contrasts, correction=SATTERTHWAITE, design=None, test=None,
                              warning=f"LMM could not be fitted: {reason}")
        return rows, pd.DataFrame(columns=ESTIMATE_COLUMNS), record
    warning = tidy.join_warnings(*fit.warnings)
    record.update(converged=fit.converged, warnings=list(fit.warnings), var_council=fit.var_council,
                  var_respondent=fit.var_respondent, var_residual=fit.var_residual,
                  reml_criterion=fit.reml_criterion, n_groups=dict(fit.n_groups))
    rows = tidy.wald_rows("lmm", data, d, group, contrasts, correction=SATTERTHWAITE, design=design,
                          test=fit.contrast, warning=warning)
    return rows, fit.summary_frame().assign(warning=warning), record


# -------------------------------------------------------------------------------- one measure


def _other_model(name: str) -> Callable[..., pd.DataFrame]:
    return {"gee": fit_gee, "ordinal": fit_ordinal, "paired_t": paired_t, "wilcoxon": wilcoxon_signed_rank,
            "mcnemar": mcnemar_paired}[name]


def fit_measure(measure: Measure, data: pd.DataFrame, wave_order: list[str], group_by: tuple[str, ...],
                few_councils: int) -> dict[str, Any]:
    """Every model of one measure, overall and by each grouping covariate."""
    waves = [w for w in wave_order if w in set(data["wave"])]
    contrasts = tidy.default_contrasts(waves)
    contrast_frames, estimate_frames, records = [], [], []
    for name in models_for(measure):
        for group in (None, *group_by):
            record: dict[str, Any] = {"measure": measure.name, "model": name, "group_by": group or ""}
            if name == "lmm":
                rows, estimates, fit_record = lmm_rows(data, waves, group)
                record.update(fit_record)
                estimate_frames.append(tidy.estimates_table(estimates, measure.name, name, group or ""))
            else:
                kwargs = {"few_councils": few_councils} if name in ("gee", "ordinal") else {}
                rows = _other_model(name)(data, waves, contrasts, group=group, **kwargs)
                record.update(n_obs=int(rows["n_obs"].max()) if len(rows) else 0,
                              n_councils=int(rows["n_councils"].max()) if len(rows) else 0,
                              correction=";".join(sorted(set(rows["correction"].dropna()) - {""})),
                              warnings=sorted(set(rows["warning"].dropna()) - {""}))
            records.append(record)
            rows.insert(0, "measure", measure.name)
            contrast_frames.append(rows)
    return {"contrasts": contrast_frames, "estimates": estimate_frames, "records": records}


def _fit_task(args: tuple[Measure, pd.DataFrame, list[str], tuple[str, ...], int]) -> dict[str, Any]:
    # The fits are many small linear-algebra calls: BLAS threads only add overhead, and the measures
    # already run in parallel across cores.
    with threadpool_limits(1, user_api="blas"):
        return fit_measure(*args)


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


def flag_few(contrasts: pd.DataFrame, flag_councils: int) -> pd.Series:
    """``few councils`` where a contrast rests on fewer than ``flag_councils`` councils."""
    return pd.Series(np.where(contrasts["n_councils"].fillna(0) < flag_councils, FEW_COUNCILS, ""),
                     index=contrasts.index)


def modelled_measures(study: Study, panel: pd.DataFrame) -> list[Measure]:
    """Measures with a model and observed values in at least two waves."""
    observed = panel[panel["value"].notna()].groupby("measure", observed=True)["wave"].nunique()
    return [m for m in study.analysed_measures if models_for(m) and observed.get(m.name, 0) >= 2]


def fit_all(study: Study, panel: pd.DataFrame, workers: int | None = None) -> dict[str, Any]:
    """Fit every measure's models (in parallel when ``workers`` > 1); the tables and records."""
    group_by = study.councils.group_by if study.councils else ()
    wave_order = list(study.wave_ids)
    tasks = [(m, measure_data(panel, m.name, list(group_by)), wave_order, group_by, study.models.few_councils)
             for m in modelled_measures(study, panel)]
    workers = workers or study.models.workers or os.cpu_count() or 1
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            results = list(pool.map(_fit_task, tasks))
    else:
        results = [_fit_task(t) for t in tasks]
    contrast_frames = [f for r in results for f in r["contrasts"]]
    estimate_frames = [f for r in results for f in r["estimates"] if len(f)]
    contrasts = pd.concat(contrast_frames, ignore_index=True) if contrast_frames else pd.DataFrame(columns=CONTRAST_COLUMNS)
    contrasts = add_q_values(contrasts)
    contrasts["flag"] = flag_few(contrasts, study.models.flag_councils)
    contrasts["warning"] = contrasts["warning"].fillna("")
    estimates = pd.concat(estimate_frames, ignore_index=True) if estimate_frames else pd.DataFrame(columns=ESTIMATE_COLUMNS)
    return {"contrasts": contrasts[CONTRAST_COLUMNS], "estimates": estimates[ESTIMATE_COLUMNS],
            "records": [rec for r in results for rec in r["records"]]}


def run_model(study: Study, paths: StudyPaths) -> None:
    """Read the panel, fit everything, write the tables and ``models.json``."""
    if not paths.panel_long.is_file():
        raise DataError(f"{paths.panel_long}: not found; run `impactstudy link --study {paths.study}` first")
    panel = pd.read_parquet(paths.panel_long)
    for column in ("council_code", "wave", "measure", "respondent_id"):
        panel[column] = panel[column].astype(str)
    main = fit_all(study, panel)
    retention = attrition.analyse(study, panel)
    time_model = attrition.time_since_review(study, panel)
    expected = expectations.analyse(study, panel)
    contrasts = pd.concat([main["contrasts"], retention["ipw_contrasts"]], ignore_index=True)
    estimates = pd.concat([main["estimates"], retention["estimates"], time_model["estimates"]], ignore_index=True)
    paths.tables.mkdir(parents=True, exist_ok=True)
    write_csv(paths.tables / "contrasts.csv", contrasts[CONTRAST_COLUMNS])
    write_csv(paths.tables / "estimates.csv", estimates[ESTIMATE_COLUMNS])
    write_csv(paths.tables / "attrition.csv", retention["retention"])
    write_csv(paths.tables / "expectations.csv", expected)
    write_json(paths.models_json, {
        "settings": {**asdict(study.models), "group_by": list(study.councils.group_by) if study.councils else [],
                     "confidence_level": 0.95, "q_value": "Benjamini-Hochberg across measures within model, contrast and group"},
        "fits": main["records"] + retention["records"] + time_model["records"],
    })


def model_outputs(paths: StudyPaths) -> tuple:
    """The files the model stage writes."""
    return (paths.tables / "contrasts.csv", paths.tables / "estimates.csv", paths.tables / "attrition.csv",
            paths.tables / "expectations.csv", paths.models_json)


def model_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """The model stage as one step over the long panel."""
    config = {"models": asdict(study.models), "measures": [asdict(m) for m in study.analysed_measures],
              "expectations": [asdict(e) for e in study.expectations],
              "group_by": list(study.councils.group_by) if study.councils else []}
    return [Step(name="model", inputs=(paths.panel_long,), config=config, outputs=model_outputs(paths),
                 run=lambda: run_model(study, paths))]


__all__ = ["fit_all", "fit_measure", "lmm_rows", "model_steps", "run_model", "UserError"]
