"""Who stayed in the study, why it matters, and change by time since each council's intervention.

Retention per wave, overall and within each grouping covariate; a Firth-penalised logistic model of a
baseline council taking part in each later wave given its baseline characteristics (grouping
covariates and its baseline mean score); the respondent-level sequential models of staying in the
study and the stabilised retention weights they give (:mod:`impactstudy.model.stats.ipw`, with weight and
balance diagnostics); and, as a sensitivity analysis, the change models weighted by them
(``gee_ipw``), beside the unweighted ones. If dropout depends only on what the models see (missing at
random), the weighted estimates correct for it; if the two disagree, the conclusion is sensitive to
who dropped out.

Also here, because it too is about timing: the optional LMM of a measure on months since the
council's intervention date (linear, or piecewise-linear at declared knots) for studies whose waves are not
simultaneous for all councils.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.errors import DataError
from impactstudy.pipeline.frames import MONTHS_SINCE
from impactstudy.model.fitting import CONTRAST_COLUMNS, council_wave_identifiable, extra_table, recurring_respondents
from impactstudy.model.stats import ipw, tidy
from impactstudy.model.stats.firth import LabelledDesign, firth_logit, labelled_design, separation_note
from impactstudy.model.stats.lmm import fit_lmm
from impactstudy.study.config import Measure, Study

RETENTION_COLUMNS = ["wave", "group", "councils_baseline", "councils_present", "council_retention",
                     "respondents_baseline", "respondents_present", "respondent_retention"]
ESTIMATE_COLUMNS = tidy.ESTIMATE_COLUMNS


def _group_by(study: Study) -> tuple[str, ...]:
    return study.councils.group_by if study.councils else ()


def presence(panel: pd.DataFrame, wave_order: list[str]) -> pd.DataFrame:
    """One row per council with a 0/1 column per wave: did the council answer in that wave."""
    answered = panel.groupby(["council_code", "wave"], observed=True).size().unstack("wave", fill_value=0)
    return (answered.reindex(columns=wave_order, fill_value=0) > 0).astype(int)


def _answered(panel: pd.DataFrame, wave_order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per respondent (a council and respondent id): did they answer in each wave ``(people, waves)``,
    and the council code (the panel's categorical code) of each, from integer codes in one pass."""
    council = panel["council_code"].cat.codes.to_numpy().astype(np.int64)
    respondent = np.asarray(panel["respondent_id"], dtype=np.int64)
    lookup = {str(w): k for k, w in enumerate(wave_order)}
    wave = np.array([lookup.get(str(w), -1) for w in panel["wave"].cat.categories] + [-1])[panel["wave"].cat.codes]
    keep = (council >= 0) & (respondent >= 0) & (wave >= 0)
    council, respondent, wave = council[keep], respondent[keep], wave[keep]
    person, _ = pd.factorize(council * (int(respondent.max(initial=0)) + 1) + respondent)
    answered = np.zeros((int(person.max(initial=-1)) + 1, len(wave_order)), dtype=bool)
    answered[person, wave] = True
    person_council = np.zeros(len(answered), dtype=np.int64)
    person_council[person] = council
    return answered, person_council


def retention_table(panel: pd.DataFrame, study: Study, present: pd.DataFrame | None = None) -> pd.DataFrame:
    """Councils and respondents at baseline still taking part in each wave, overall and by group.

    ``panel`` is :func:`impactstudy.model.fitting.compact` (categorical councils and waves, integer respondents);
    ``present`` is its :func:`presence` when the caller has it already.
    """
    waves = list(study.wave_ids)
    first = waves[0]
    councils = panel[["council_code", *_group_by(study)]].drop_duplicates("council_code").set_index("council_code")
    present = presence(panel, waves) if present is None else present
    answered, person_council = _answered(panel, waves)
    base_people = answered[:, 0]
    council_labels = panel["council_code"].cat.categories
    strata = [("all", councils.index)] + [
        (f"{g}={level}", councils.index[councils[g].astype(str) == str(level)])
        for g in _group_by(study) for level in sorted(councils[g].dropna().astype(str).unique())
    ]
    rows = []
    for label, index in strata:
        base = present.loc[present.index.isin(index) & (present[first] == 1)]
        bp = answered[base_people & council_labels.isin(base.index)[person_council]]
        for k, wave in enumerate(waves):
            kept = int(base[wave].sum())
            kept_people = int(bp[:, k].sum())
            rows.append({"wave": wave, "group": label, "councils_baseline": len(base), "councils_present": kept,
                         "council_retention": kept / len(base) if len(base) else np.nan,
                         "respondents_baseline": len(bp), "respondents_present": kept_people,
                         "respondent_retention": kept_people / len(bp) if len(bp) else np.nan})
    return pd.DataFrame(rows, columns=RETENTION_COLUMNS)


def baseline_characteristics(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per baseline council: grouping covariates and the mean of its baseline scores (all measures)."""
    first = study.wave_ids[0]
    base = panel[panel["wave"] == first]
    likert = {m.name for m in study.research_measures if m.type in ("likert", "numeric") and first in m.waves}
    scores = base[base["measure"].isin(likert)]
    # standardise per measure so measures on different scales weigh alike
    z = scores.groupby("measure", observed=True)["value"].transform(lambda v: (v - v.mean()) / v.std(ddof=0))
    mean_score = z.groupby(scores["council_code"]).mean().rename("baseline_score")
    covs = base[["council_code", *_group_by(study)]].drop_duplicates("council_code").set_index("council_code")
    return covs.join(mean_score)


def _separated_levels(took_part: pd.Series, covariates: pd.DataFrame) -> list[str]:
    """Covariate levels in which every council (or none) took part: ``"status=Outstanding"``."""
    found = []
    for column in covariates.columns:
        shares = took_part.groupby(covariates[column].astype(str)).mean()
        found += [f"{column}={level}" for level, share in shares.items() if share in (0.0, 1.0)]
    return found


def _logit_rows(y: pd.Series, design: LabelledDesign, measure: str, levels: list[str]
                ) -> tuple[pd.DataFrame, dict[str, Any], np.ndarray]:
    """Firth-penalised logistic model of taking part (:func:`impactstudy.model.stats.firth.firth_logit`): its
    ``estimates.csv`` rows, its ``models.json`` record and the fitted probabilities."""
    result = firth_logit(y.to_numpy(float), design.X)
    note = separation_note(result)
    if note and levels:
        note = (f"every council (or none) in {', '.join(levels)} took part, so the ordinary (maximum-likelihood) "
                "estimates are infinite; the estimates are Firth-penalised, which stay finite, with profile-likelihood intervals")
    record: dict[str, Any] = {"measure": measure, "model": "attrition_logit", "group_by": "",
                              "formula": "took_part ~ " + (" + ".join(design.X.columns) or "1"),
                              "method": result.method, "reference_levels": dict(design.reference),
                              "n_obs": int(len(y)), "n_councils": int(len(y)), "converged": result.converged,
                              "separation": note, "separated_levels": levels if note else [],
                              "warnings": list(result.warnings)}
    rows = result.table.assign(measure=measure, model="attrition_logit", group_by="", df=np.nan)
    fitted = result.fitted if np.isfinite(result.fitted).all() else np.full(len(y), float(y.mean()))
    return rows.reindex(columns=ESTIMATE_COLUMNS), record, fitted


def analyse(study: Study, panel: pd.DataFrame) -> dict[str, Any]:
    """Retention table; the council-level models of taking part in each later wave; the respondent-level
    sequential models of staying, the stabilised retention weights they give, and their diagnostics
    (:mod:`impactstudy.model.stats.ipw`).

    ``weights`` is :data:`impactstudy.model.stats.ipw.WEIGHT_COLUMNS` (respondent ids as in ``panel``); the
    weighted change models themselves are :func:`ipw_tasks`, run with the other fits.
    """
    waves = list(study.wave_ids)
    present = presence(panel, waves)
    retention = retention_table(panel, study, present)
    chars = baseline_characteristics(panel, study)
    present = present.reindex(chars.index, fill_value=0)
    groups = list(_group_by(study))
    numeric = {"baseline_score": "mean baseline score (standardised)"} if chars["baseline_score"].notna().all() else {}
    design = labelled_design(chars, groups, numeric)
    estimates, records = [], []
    for wave in waves[1:]:
        y = present[wave]
        if y.nunique() < 2:
            records.append({"measure": f"took_part:{wave}", "model": "attrition_logit", "group_by": "",
                            "n_obs": int(len(y)), "error": "every baseline council took part (or none did); nothing to model"})
            continue
        rows, record, _ = _logit_rows(y, design, f"took_part:{wave}", _separated_levels(y, chars[groups]))
        estimates.append(rows)
        records.append(record)
    scored = [m.name for m in study.research_measures if m.type in ("likert", "numeric") and waves[0] in m.waves]
    cohort = ipw.history(panel, waves, scored, groups)
    steps = ipw.step_models(cohort, groups)
    raw, truncated = ipw.weights(cohort, steps, study.models.ipw_truncate)
    for step in steps:
        if len(step.table):
            estimates.append(step.table.assign(measure=step.record["measure"], model="dropout_logit", group_by="",
                                               df=np.nan).reindex(columns=ESTIMATE_COLUMNS))
        records.append(step.record)
    return {"retention": retention,
            "estimates": pd.concat(estimates, ignore_index=True) if estimates else pd.DataFrame(columns=ESTIMATE_COLUMNS),
            "records": records,
            "weights": ipw.weight_table(cohort, truncated),
            "diagnostics": ipw.diagnostics(cohort, raw, truncated, study.models.ipw_truncate),
            "balance": ipw.balance(cohort, truncated, groups)}


def ipw_rows(measure: str, data: pd.DataFrame, wave_order: list[str], weights: pd.DataFrame) -> pd.DataFrame:
    """``gee_ipw`` rows of one measure: the first wave's respondents' answers at the waves they stayed
    to, each weighted by its retention weight (``weights``, from :func:`analyse`):
    :func:`impactstudy.model.stats.ipw.weighted_change_rows`."""
    present = {str(w) for w in data["wave"].unique()}
    mwaves = [w for w in wave_order if w in present]
    rows = ipw.weighted_change_rows(data, mwaves, tidy.default_contrasts(mwaves), weights)
    return rows.assign(model=ipw.MODEL, measure=measure)


def ipw_tasks(study: Study, measures: Sequence[Measure], frames: dict[str, pd.DataFrame],
              weights: pd.DataFrame) -> list[tuple]:
    """A :func:`ipw_rows` task per measure with a GEE (for :func:`impactstudy.model.fitting.run_tasks`)."""
    return [(ipw_rows, (m.name, frames[m.name], list(study.wave_ids), weights))
            for m in measures if "gee" in (m.models or ("gee",))]


def ipw_table(study: Study, frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The ``gee_ipw`` rows of every measure, with q-values and flags as the unweighted ones."""
    return extra_table(study, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CONTRAST_COLUMNS))


def time_design(months: pd.Series, knots: tuple[float, ...]) -> pd.DataFrame:
    """Intercept, months since the intervention, and a hinge ``max(months - knot, 0)`` per knot."""
    X = pd.DataFrame({"Intercept": 1.0, "months": months.astype(float)})
    for knot in knots:
        X[f"months_after_{knot:g}"] = np.maximum(months.astype(float) - knot, 0.0)
    return X


def time_rows(measure: str, data: pd.DataFrame, knots: tuple[float, ...]) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The ``lmm_time`` coefficients of one measure (None when the fit failed) and its record.

    The random part is the primary LMM's (:func:`~impactstudy.model.fitting.lmm_formula`): a council x wave
    intercept, so that the time slope is replicated by councils' waves, not by respondents (each council
    may sit above or below the curve at each wave), and the respondent term when respondents recur."""
    d = data[data[MONTHS_SINCE].notna()]
    X = time_design(d[MONTHS_SINCE], knots)
    nested = recurring_respondents(d)
    council_wave = council_wave_identifiable(d)
    record: dict[str, Any] = {"measure": measure, "model": "lmm_time", "group_by": "",
                              "formula": "value ~ " + " + ".join(X.columns[1:]) + " + (1 | council_code)"
                              + (" + (1 | council_code:wave)" if council_wave else "")
                              + (" + (1 | council_code:respondent_id)" if nested else ""),
                              "n_obs": int(len(d)), "n_councils": int(d["council_code"].nunique())}
    try:
        fit = fit_lmm(d["value"].to_numpy(float), X.to_numpy(), list(X.columns), d["council_code"].cat.codes.to_numpy(),
                      d["respondent_id"].to_numpy() if nested else None,
                      pd.factorize(d["wave"])[0] if council_wave else None)
    except (DataError, ValueError, np.linalg.LinAlgError) as err:
        record.update(converged=False, error=str(err))
        return None, record
    warning = tidy.join_warnings(*fit.warnings)
    record.update(converged=fit.converged, warnings=list(fit.warnings))
    return tidy.estimates_table(fit.summary_frame().assign(warning=warning), measure, "lmm_time", ""), record


def time_tasks(study: Study, measures: Sequence[Measure], frames: dict[str, pd.DataFrame], dated: bool) -> list[tuple]:
    """A :func:`time_rows` task per repeated likert/numeric measure (the LMM of each on months since the
    council's intervention), or none when the study asks for no such model or no row of the panel is ``dated``
    (has months since the intervention)."""
    settings = study.models.time_since_intervention
    if settings is None or not dated:
        return []
    return [(time_rows, (m.name, frames[m.name], settings.knots)) for m in measures
            if m.type in ("likert", "numeric")]


def time_table(results: Sequence[tuple[pd.DataFrame | None, dict[str, Any]]]) -> dict[str, Any]:
    """The ``lmm_time`` estimates and records of :func:`time_rows` results."""
    frames = [f for f, _ in results if f is not None]
    return {"estimates": pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ESTIMATE_COLUMNS),
            "records": [r for _, r in results]}
