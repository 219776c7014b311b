"""Who stayed in the study, why it matters, and change by time since each council's review.

Retention per wave, overall and within each grouping covariate; a logistic model of a baseline
council taking part in each later wave given its baseline characteristics (grouping covariates and
its baseline mean score); and, as a sensitivity analysis, GEE contrasts weighted by the inverse of the
modelled probability of taking part (``gee_ipw``), beside the unweighted ones. If attrition depends
only on what the model sees (missing at random), the weighted estimates correct for it; if the two
disagree, the conclusion is sensitive to who dropped out.

Also here, because it too is about timing: the optional LMM of a measure on months since the
council's review (linear, or piecewise-linear at declared knots) for studies whose waves are not
simultaneous for all councils.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from impactstudy.config import Study
from impactstudy.errors import DataError
from impactstudy.stats import tidy
from impactstudy.stats.gee import fit_gee
from impactstudy.stats.lmm import fit_lmm

RETENTION_COLUMNS = ["wave", "group", "councils_baseline", "councils_present", "council_retention",
                     "respondents_baseline", "respondents_present", "respondent_retention"]
ESTIMATE_COLUMNS = tidy.ESTIMATE_COLUMNS


def _group_by(study: Study) -> tuple[str, ...]:
    return study.councils.group_by if study.councils else ()


def presence(panel: pd.DataFrame, wave_order: list[str]) -> pd.DataFrame:
    """One row per council with a 0/1 column per wave: did the council answer in that wave."""
    answered = panel.groupby(["council_code", "wave"], observed=True).size().unstack("wave", fill_value=0)
    return (answered.reindex(columns=wave_order, fill_value=0) > 0).astype(int)


def retention_table(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Councils and respondents at baseline still taking part in each wave, overall and by group."""
    waves = list(study.wave_ids)
    first = waves[0]
    councils = panel[["council_code", *_group_by(study)]].drop_duplicates("council_code").set_index("council_code")
    present = presence(panel, waves)
    people = panel.groupby(["council_code", "respondent_id"], observed=True)["wave"].agg(set)
    base_people = people[people.map(lambda s: first in s)]
    strata = [("all", councils.index)] + [
        (f"{g}={level}", councils.index[councils[g].astype(str) == str(level)])
        for g in _group_by(study) for level in sorted(councils[g].dropna().astype(str).unique())
    ]
    rows = []
    for label, index in strata:
        base = present.loc[present.index.isin(index) & (present[first] == 1)]
        bp = base_people[base_people.index.get_level_values("council_code").isin(base.index)]
        for wave in waves:
            kept = int(base[wave].sum())
            kept_people = int(bp.map(lambda s: wave in s).sum())
            rows.append({"wave": wave, "group": label, "councils_baseline": len(base), "councils_present": kept,
                         "council_retention": kept / len(base) if len(base) else np.nan,
                         "respondents_baseline": len(bp), "respondents_present": kept_people,
                         "respondent_retention": kept_people / len(bp) if len(bp) else np.nan})
    return pd.DataFrame(rows, columns=RETENTION_COLUMNS)


def baseline_characteristics(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per baseline council: grouping covariates and the mean of its baseline scores (all measures)."""
    first = study.wave_ids[0]
    base = panel[panel["wave"] == first]
    likert = {m.name for m in study.analysed_measures if m.type in ("likert", "numeric") and first in m.waves}
    scores = base[base["measure"].isin(likert)]
    # standardise per measure so measures on different scales weigh alike
    z = scores.groupby("measure", observed=True)["value"].transform(lambda v: (v - v.mean()) / v.std(ddof=0))
    mean_score = z.groupby(scores["council_code"]).mean().rename("baseline_score")
    covs = base[["council_code", *_group_by(study)]].drop_duplicates("council_code").set_index("council_code")
    return covs.join(mean_score)


def separation(took_part: pd.Series, covariates: pd.DataFrame) -> str:
    """A warning naming covariate levels in which every council (or none) took part, else ''.

    Such a level is perfectly predicted, so its coefficient and standard error run off to infinity:
    the fit is still reported, but its estimates for that level are not to be read.
    """
    found = []
    for column in covariates.columns:
        shares = took_part.groupby(covariates[column].astype(str)).mean()
        found += [f"{column}={level}" for level, share in shares.items() if share in (0.0, 1.0)]
    if not found:
        return ""
    return ("quasi-complete separation: every council (or none) in " + ", ".join(found)
            + " took part, so those coefficients are unbounded; read the retention table instead")


def _logit_rows(y: pd.Series, X: pd.DataFrame, measure: str) -> tuple[pd.DataFrame, dict[str, Any], np.ndarray]:
    record: dict[str, Any] = {"measure": measure, "model": "attrition_logit", "group_by": "",
                              "formula": "took_part ~ " + " + ".join(c for c in X.columns if c != "const"),
                              "n_obs": int(len(y)), "n_councils": int(len(y))}
    with tidy.captured_warnings() as caught:
        try:
            fit = sm.Logit(y.to_numpy(float), X.to_numpy(float)).fit(disp=0, method="bfgs", maxiter=500)
            ok = np.all(np.isfinite(fit.bse))
        except (np.linalg.LinAlgError, ValueError) as err:
            caught.append(f"{type(err).__name__}: {err}")
            fit, ok = None, False
    warning = tidy.join_warnings(*caught)
    record.update(converged=bool(fit is not None and ok and fit.mle_retvals.get("converged", False)),
                  warnings=[warning] if warning else [])
    if fit is None or not ok:
        record["error"] = warning or "the logistic model could not be fitted (perfect prediction or too little data)"
        return pd.DataFrame(columns=ESTIMATE_COLUMNS), record, np.full(len(y), y.mean())
    ci = fit.conf_int()
    estimates = pd.DataFrame({
        "measure": measure, "model": "attrition_logit", "group_by": "", "term": X.columns,
        "estimate": fit.params, "std_error": fit.bse, "df": np.nan, "statistic": fit.tvalues, "p_value": fit.pvalues,
        "ci_low": ci[:, 0], "ci_high": ci[:, 1], "warning": warning,
    })
    return estimates, record, fit.predict(X.to_numpy(float))


def analyse(study: Study, panel: pd.DataFrame) -> dict[str, Any]:
    """Retention table, attrition models per later wave, and IPW-weighted GEE contrasts."""
    from impactstudy.models import CONTRAST_COLUMNS, measure_data, modelled_measures

    waves = list(study.wave_ids)
    retention = retention_table(panel, study)
    chars = baseline_characteristics(panel, study)
    present = presence(panel, waves).reindex(chars.index, fill_value=0)
    X = pd.get_dummies(chars[list(_group_by(study))].astype(str), drop_first=True, dtype=float) if _group_by(study) else pd.DataFrame(index=chars.index)
    if chars["baseline_score"].notna().all():
        X["baseline_score"] = chars["baseline_score"]
    X.insert(0, "const", 1.0)
    estimates, records, weights = [], [], {}
    for wave in waves[1:]:
        y = present[wave]
        if y.nunique() < 2:
            records.append({"measure": f"took_part:{wave}", "model": "attrition_logit", "group_by": "",
                            "n_obs": int(len(y)), "error": "every baseline council took part (or none did); nothing to model"})
            weights[wave] = pd.Series(1.0, index=y.index)
            continue
        rows, record, prob = _logit_rows(y, X, f"took_part:{wave}")
        separated = separation(y, chars[list(_group_by(study))])
        if separated:
            record.setdefault("warnings", []).append(separated)
            rows["warning"] = tidy.join_warnings(*rows["warning"].unique(), separated) if len(rows) else separated
        estimates.append(rows)
        records.append(record)
        weights[wave] = pd.Series(1.0 / np.clip(prob, 0.05, 1.0), index=y.index)  # capped at 20
    ipw = []
    for measure in modelled_measures(study, panel):
        if "gee" not in (measure.models or ("gee",)):
            continue
        data = measure_data(panel, measure.name, [])
        data = data[data["council_code"].isin(chars.index)]
        data["weight"] = [weights.get(w, pd.Series(dtype=float)).get(c, 1.0) if w != waves[0] else 1.0
                          for c, w in zip(data["council_code"], data["wave"])]
        mwaves = [w for w in waves if w in set(data["wave"])]
        rows = fit_gee(data, mwaves, tidy.default_contrasts(mwaves), few_councils=study.models.few_councils, weights="weight")
        rows = rows.assign(model="gee_ipw", measure=measure.name)
        ipw.append(rows)
    ipw_frame = pd.concat(ipw, ignore_index=True) if ipw else pd.DataFrame(columns=CONTRAST_COLUMNS)
    if len(ipw_frame):
        from impactstudy.models import add_q_values, flag_few

        ipw_frame = add_q_values(ipw_frame)
        ipw_frame["flag"] = flag_few(ipw_frame, study.models.flag_councils)
        ipw_frame["warning"] = ipw_frame["warning"].fillna("")
    return {"retention": retention,
            "estimates": pd.concat(estimates, ignore_index=True) if estimates else pd.DataFrame(columns=ESTIMATE_COLUMNS),
            "records": records, "ipw_contrasts": ipw_frame.reindex(columns=CONTRAST_COLUMNS)}


def time_design(months: pd.Series, knots: tuple[float, ...]) -> pd.DataFrame:
    """Intercept, months since review, and a hinge ``max(months - knot, 0)`` per knot."""
    X = pd.DataFrame({"Intercept": 1.0, "months": months.astype(float)})
    for knot in knots:
        X[f"months_after_{knot:g}"] = np.maximum(months.astype(float) - knot, 0.0)
    return X


def time_since_review(study: Study, panel: pd.DataFrame) -> dict[str, Any]:
    """LMM of each repeated likert/numeric measure on months since the review (``lmm_time``)."""
    from impactstudy.models import modelled_measures, recurring_respondents

    settings = study.models.time_since_review
    if settings is None or panel["months_since_review"].isna().all():
        return {"estimates": pd.DataFrame(columns=ESTIMATE_COLUMNS), "records": []}
    frames, records = [], []
    for measure in modelled_measures(study, panel):
        if measure.type not in ("likert", "numeric"):
            continue
        d = panel[(panel["measure"] == measure.name) & panel["value"].notna() & panel["months_since_review"].notna()]
        X = time_design(d["months_since_review"], settings.knots)
        nested = recurring_respondents(d.assign(respondent_id=d["respondent_id"].astype(str)))
        record: dict[str, Any] = {"measure": measure.name, "model": "lmm_time", "group_by": "",
                                  "formula": "value ~ " + " + ".join(X.columns[1:]) + " + (1 | council_code)"
                                  + (" + (1 | council_code:respondent_id)" if nested else ""),
                                  "n_obs": int(len(d)), "n_councils": int(d["council_code"].nunique())}
        try:
            fit = fit_lmm(d["value"].to_numpy(float), X.to_numpy(), list(X.columns), d["council_code"].astype(str).to_numpy(),
                          d["respondent_id"].astype(str).to_numpy() if nested else None)
        except (DataError, ValueError, np.linalg.LinAlgError) as err:
            record.update(converged=False, error=str(err))
            records.append(record)
            continue
        warning = tidy.join_warnings(*fit.warnings)
        record.update(converged=fit.converged, warnings=list(fit.warnings))
        records.append(record)
        frames.append(tidy.estimates_table(fit.summary_frame().assign(warning=warning), measure.name, "lmm_time", ""))
    return {"estimates": pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ESTIMATE_COLUMNS),
            "records": records}
