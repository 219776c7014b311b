"""Respondents who stop answering: a sequential model of staying, stabilised weights, diagnostics, and
the weighted change model (``gee_ipw``).

The cohort is the first wave's respondents. Dropout is taken as **monotone**: a respondent *stays* to
wave k when they answered every wave up to k; a respondent who misses a wave and returns is counted as
having left at the wave they missed, and their later answers are not used here (the count is in the
diagnostics). For each later wave k, among those who stayed to k - 1, a Firth-penalised logistic model
(:func:`impactstudy.model.stats.firth.firth_logit`) of staying to k on what is known about them: their
baseline score and their previous wave's score (each the mean, over the measures they answered, of
their answers standardised by the first wave's mean and SD; 0, the average, when they answered none),
and the council's grouping covariates. If dropout depends only on these (missing at random), weighting
each answer by the inverse of the modelled chance of having stayed that long removes the bias it
causes.

Weights (:func:`weights`) are **stabilised**: at wave k, ``prod_j pbar_j / prod_j p_ij`` over the
steps ``j <= k``, where ``p_ij`` is the modelled and ``pbar_j`` the overall proportion staying at step
j, so they average about one and the weighted sample keeps its size; they are then **truncated** at
stated percentiles (default the 1st and 99th, ``[models] ipw_truncate``) of all later-wave weights, so
that a few respondents cannot dominate. Baseline answers weigh 1.

Diagnostics (:func:`diagnostics`): per wave, respondents at risk, staying, the weights' range and mean
before and after truncation, how many were truncated, and the effective sample size ``(sum w)^2 / sum
w^2`` (the number of equally weighted answers that would carry the same information); balance
(:func:`balance`): for each predictor, the standardised mean difference between those who stayed and
the whole baseline cohort, unweighted and weighted: weighting works when the weighted differences are
near 0 (below 0.1 is the usual rule).

The weighted change model (:func:`weighted_change_rows`): ``value ~ wave`` by weighted least squares on
the cohort's answers, i.e. a Gaussian GEE with an **independence** working correlation (an exchangeable
one is not consistent when weights vary within a council), with the CR2 cluster-robust covariance over
councils and Bell–McCaffrey degrees of freedom (:mod:`impactstudy.model.stats.cluster_robust`, R
clubSandwich), computed the same way whatever the number of councils. R reproduces every row from
``tables/ipw_weights.csv``: ``lm(value ~ wave, weights = weight)`` + ``clubSandwich::vcovCR(type =
"CR2")`` + ``linear_contrast(test = "Satterthwaite")`` (tests/reference/ipw_reference.R).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactstudy.model.stats import tidy
from impactstudy.model.stats.cluster_robust import cr2_vcov
from impactstudy.model.stats.firth import labelled_design

MODEL = "gee_ipw"
CORRECTION = "retention-weighted (stabilised, truncated), independence working correlation, CR2 SE, Bell-McCaffrey df"
WEIGHT_COLUMNS = ["council_code", "respondent_id", "wave", "weight"]
DIAGNOSTIC_COLUMNS = ["wave", "at_risk", "stayed", "returned_later", "weight_min", "weight_max", "weight_mean",
                      "truncated_min", "truncated_max", "truncated_mean", "n_truncated", "ess", "truncation"]
BALANCE_COLUMNS = ["wave", "predictor", "cohort_mean", "stayed_mean", "weighted_mean", "smd_unweighted", "smd_weighted"]


@dataclass(frozen=True)
class History:
    """The baseline cohort: one row per respondent (``council_code``, ``respondent_id``, covariates),
    ``present`` (respondents x waves, bool), ``score`` (respondents x waves, NaN where absent)."""

    people: pd.DataFrame
    present: np.ndarray
    score: np.ndarray
    waves: tuple[str, ...]

    @property
    def stayed(self) -> np.ndarray:
        """Monotone: answered every wave up to and including each wave."""
        return np.logical_and.accumulate(self.present, axis=1)


def _positions(values: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """Position of each value's text in ``labels`` (-1 when absent), from a categorical's codes."""
    lookup = {str(v): k for k, v in enumerate(labels)}
    if isinstance(values.dtype, pd.CategoricalDtype):
        per_category = np.array([lookup.get(str(c), -1) for c in values.cat.categories] + [-1], dtype=int)
        return per_category[values.cat.codes.to_numpy()]
    return pd.Series(values.astype(str)).map(lookup).fillna(-1).to_numpy(dtype=int)


def history(panel: pd.DataFrame, waves: Sequence[str], scored: Sequence[str], covariates: Sequence[str] = ()) -> History:
    """The first wave's respondents, whether they answered each wave, and their mean standardised score.

    ``panel`` has ``council_code, respondent_id, wave, measure, value`` and the ``covariates``;
    ``scored`` names the measures averaged into the score (standardised by their first-wave mean/SD).
    """
    waves = tuple(str(w) for w in waves)
    d = panel[["council_code", "respondent_id", "wave", "measure", "value", *covariates]]
    wave_index = _positions(d["wave"], waves)
    d = d[wave_index >= 0].reset_index(drop=True)
    wave_index = wave_index[wave_index >= 0]
    council_code, respondent = pd.factorize(d["council_code"])[0], pd.factorize(d["respondent_id"])[0]
    key = council_code.astype(np.int64) * (int(respondent.max(initial=0)) + 1) + respondent
    cohort = pd.unique(key[wave_index == 0])
    person = pd.Index(cohort).get_indexer(key)
    inside = person >= 0
    present = np.zeros((len(cohort), len(waves)), dtype=bool)
    present[person[inside], wave_index[inside]] = True
    # each scored answer standardised by its measure's first-wave mean and SD, averaged per person x wave
    measure = pd.Series(tidy.as_text(d["measure"]), index=d.index)
    use = inside & measure.isin(list(scored)).to_numpy() & d["value"].notna().to_numpy()
    first = d[use & (wave_index == 0)].groupby(measure[use & (wave_index == 0)])["value"].agg(["mean", "std"])
    mean = measure[use].map(first["mean"]).to_numpy(float)
    sd = measure[use].map(first["std"]).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (d["value"].to_numpy(float)[use] - mean) / sd
    cell = person[use] * len(waves) + wave_index[use]
    ok = np.isfinite(z)
    total = np.bincount(cell[ok], weights=z[ok], minlength=present.size)
    count = np.bincount(cell[ok], minlength=present.size)
    with np.errstate(invalid="ignore"):
        score = (total / count).reshape(present.shape)
    score = np.where(present & (count.reshape(present.shape) == 0), 0.0, score)
    first_rows = pd.Series(np.flatnonzero(wave_index == 0)).groupby(person[wave_index == 0]).first()
    people = d.loc[first_rows.to_numpy(), ["council_code", "respondent_id", *covariates]].reset_index(drop=True)
    return History(people, present, score, waves)


@dataclass(frozen=True)
class StepFit:
    """The model of staying from wave k - 1 to wave k."""

    wave: str
    at_risk: np.ndarray  # bool over the cohort
    fitted: np.ndarray  # modelled probability of staying, for those at risk
    table: pd.DataFrame  # firth_logit coefficient rows
    record: dict


def step_models(h: History, covariates: Sequence[str] = ()) -> list[StepFit]:
    """One Firth logistic model of staying per later wave (see the module docstring)."""
    from impactstudy.model.stats.firth import firth_logit  # firthmodels loads scikit-learn: only when fitted

    stayed = h.stayed
    fits = []
    for k in range(1, len(h.waves)):
        risk = stayed[:, k - 1]
        frame = h.people.loc[risk, list(covariates)].copy()
        frame["baseline"] = h.score[risk, 0]
        numeric = {"baseline": "baseline score (standardised)"}
        if k >= 2:
            frame["previous"] = h.score[risk, k - 1]
            numeric["previous"] = "previous wave's score (standardised)"
        design = labelled_design(frame, list(covariates), numeric)
        y = stayed[risk, k].astype(float)
        record = {"measure": f"stayed:{h.waves[k]}", "model": "dropout_logit", "group_by": "",
                  "formula": "stayed ~ " + " + ".join(design.X.columns), "n_obs": int(risk.sum()),
                  "n_councils": int(h.people.loc[risk, "council_code"].nunique()),
                  "reference_levels": dict(design.reference),
                  "note": "respondent-level; the intervals treat respondents as independent"}
        if len(y) == 0 or y.min() == y.max():
            record["error"] = "every respondent at risk stayed (or none did); nothing to model"
            fits.append(StepFit(h.waves[k], risk, np.full(int(risk.sum()), y.mean() if len(y) else np.nan),
                                pd.DataFrame(), record))
            continue
        result = firth_logit(y, design.X)
        record.update(converged=result.converged, warnings=list(result.warnings), method=result.method)
        fitted = result.fitted if np.isfinite(result.fitted).all() else np.full(len(y), y.mean())
        fits.append(StepFit(h.waves[k], risk, fitted, result.table, record))
    return fits


def weights(h: History, fits: Sequence[StepFit], truncate: tuple[float, float] = (1.0, 99.0)
            ) -> tuple[np.ndarray, np.ndarray]:
    """Untruncated and truncated stabilised weights (respondents x waves; NaN where not stayed)."""
    stayed = h.stayed
    raw = np.full(stayed.shape, np.nan)
    raw[:, 0] = 1.0
    cumulative = np.ones(len(stayed))
    for k, fit in enumerate(fits, start=1):
        ratio = np.ones(len(stayed))
        mean_stay = float(stayed[fit.at_risk, k].mean()) if fit.at_risk.any() else np.nan
        ratio[fit.at_risk] = mean_stay / np.clip(fit.fitted, 1e-12, 1.0)
        cumulative = cumulative * ratio
        raw[stayed[:, k], k] = cumulative[stayed[:, k]]
    later = raw[:, 1:][np.isfinite(raw[:, 1:])]
    if later.size == 0:
        return raw, raw.copy()
    lo, hi = np.percentile(later, truncate)
    trunc = raw.copy()
    trunc[:, 1:] = np.clip(raw[:, 1:], lo, hi)
    return raw, trunc


def diagnostics(h: History, raw: np.ndarray, trunc: np.ndarray, truncate: tuple[float, float]) -> pd.DataFrame:
    """:data:`DIAGNOSTIC_COLUMNS`, one row per later wave."""
    stayed = h.stayed
    rows = []
    for k in range(1, len(h.waves)):
        w, t = raw[stayed[:, k], k], trunc[stayed[:, k], k]
        returned = int(np.sum(h.present[:, k] & ~stayed[:, k]))
        rows.append({"wave": h.waves[k], "at_risk": int(stayed[:, k - 1].sum()), "stayed": int(stayed[:, k].sum()),
                     "returned_later": returned,
                     "weight_min": _stat(np.min, w), "weight_max": _stat(np.max, w), "weight_mean": _stat(np.mean, w),
                     "truncated_min": _stat(np.min, t), "truncated_max": _stat(np.max, t),
                     "truncated_mean": _stat(np.mean, t), "n_truncated": int(np.sum(~np.isclose(w, t))),
                     "ess": float(t.sum() ** 2 / np.sum(t ** 2)) if len(t) else np.nan,
                     "truncation": f"{_ordinal(truncate[0])} and {_ordinal(truncate[1])} percentiles"})
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


def _ordinal(value: float) -> str:
    """``1`` -> ``1st``, ``99`` -> ``99th``, ``2.5`` -> ``2.5th``."""
    if value != int(value):
        return f"{value:g}th"
    n = int(value)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _stat(f, values: np.ndarray) -> float:
    return float(f(values)) if len(values) else np.nan


def balance(h: History, trunc: np.ndarray, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """:data:`BALANCE_COLUMNS`: per later wave and predictor (baseline score, each covariate level), the
    standardised mean difference between the cohort and those who stayed, before and after weighting."""
    predictors = {"baseline score (standardised)": h.score[:, 0]}
    design = labelled_design(h.people, list(covariates))
    for column in design.X.columns:
        predictors[column.split(" (against")[0]] = design.X[column].to_numpy(float)
    for column in covariates:  # the reference level too: balance is about every group
        ref = design.reference.get(column)
        if ref is not None:
            predictors[f"{column.replace('_', ' ')}: {ref}"] = (h.people[column].astype(str) == ref).to_numpy(float)
    stayed = h.stayed
    rows = []
    for k in range(1, len(h.waves)):
        keep = stayed[:, k]
        w = trunc[keep, k]
        for name, x in predictors.items():
            sd = float(np.nanstd(x, ddof=1)) if len(x) > 1 else np.nan
            cohort, kept = float(np.nanmean(x)), float(np.nanmean(x[keep])) if keep.any() else np.nan
            weighted = float(np.average(x[keep], weights=w)) if keep.any() else np.nan
            rows.append({"wave": h.waves[k], "predictor": name, "cohort_mean": cohort, "stayed_mean": kept,
                         "weighted_mean": weighted,
                         "smd_unweighted": (kept - cohort) / sd if sd > 0 else np.nan,
                         "smd_weighted": (weighted - cohort) / sd if sd > 0 else np.nan})
    return pd.DataFrame(rows, columns=BALANCE_COLUMNS)


def weight_table(h: History, trunc: np.ndarray) -> pd.DataFrame:
    """:data:`WEIGHT_COLUMNS`: the weight of every cohort respondent at every wave they stayed to."""
    person, wave = np.nonzero(np.isfinite(trunc))
    return pd.DataFrame({"council_code": h.people["council_code"].astype(str).to_numpy()[person],
                         "respondent_id": h.people["respondent_id"].to_numpy()[person],
                         "wave": np.asarray(h.waves, dtype=object)[wave], "weight": trunc[person, wave]},
                        columns=WEIGHT_COLUMNS)


def weighted_change_rows(data: pd.DataFrame, wave_order: Sequence[str], contrasts: Sequence[tidy.Contrast],
                         weight_table_: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """``gee_ipw`` rows for one measure: its answers from the weight table's respondent-waves (inner
    join on council, respondent, wave), ``value ~ wave`` by WLS, CR2 with Bell–McCaffrey df."""
    keys = ["council_code", "respondent_id", "wave"]
    d = data.assign(**{k: data[k].astype(str) for k in keys})
    w = weight_table_.assign(**{k: weight_table_[k].astype(str) for k in keys})
    d = d.merge(w, on=keys, how="inner")
    present = {str(v) for v in d["wave"].unique()}
    waves = [x for x in wave_order if x in present]
    d = d.assign(wave=pd.Categorical(d["wave"], categories=waves))
    sample = tidy.sample(d, waves, extra=["weight"])
    frame = sample.frame

    def result(design, test, warning: str) -> pd.DataFrame:
        return tidy.wald_rows(MODEL, sample, contrasts, correction=CORRECTION, design=design, test=test, warning=warning)

    if frame["council_code"].nunique() < 2 or len(waves) < 2:
        return result(None, None, "needs two or more councils and waves with retained respondents' answers")
    design = sample.design()
    beta_w = frame["weight"].to_numpy(float)
    y = frame["value"].to_numpy(float)
    sw = np.sqrt(beta_w)
    beta = np.linalg.lstsq(design.X * sw[:, None], y * sw, rcond=None)[0]
    resid = y - design.X @ beta
    try:
        robust = cr2_vcov(design.X, resid, frame["council_code"].cat.codes.to_numpy(), beta_w)
    except (ValueError, np.linalg.LinAlgError) as err:
        return result(design, None, f"the cluster-robust covariance could not be computed: {err}")

    def test(lvec: np.ndarray) -> dict[str, object]:
        values = robust.test(lvec, beta, conf_level)
        if not np.isfinite(values["std_error"]):
            values["warning"] = "the contrast's estimated variance is not positive"
        return values

    return result(design, test, "")


__all__ = ["BALANCE_COLUMNS", "DIAGNOSTIC_COLUMNS", "History", "StepFit", "WEIGHT_COLUMNS", "balance", "diagnostics",
           "history", "step_models", "weight_table", "weighted_change_rows", "weights"]
