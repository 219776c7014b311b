"""Staggered difference-in-differences estimators on one outcome's :class:`~impactstudy.impact.panel.Panel`.

Everything here calls a well-kept library and turns its answer into rows of the tidy impact table
(:data:`RESULT_COLUMNS`); no estimator is written here.

* :func:`callaway_santanna` — primary: Callaway & Sant'Anna (2021) group-time effects ATT(g, t) with
  ``csdid`` (a port of R's ``did``), outcome regression without covariates and doubly robust with
  them, aggregated to an event study (simultaneous multiplier-bootstrap band, clustered by council)
  and an overall ATT (the cohort-size-weighted average of each cohort's average effect, R's
  ``aggte(type = "group")``).
* :func:`differences_att_gt` — the same ATT(g, t) from the independent ``differences`` package, as a
  cross-check in the tests.
* :func:`gardner`, :func:`sun_abraham`, :func:`twfe` — robustness with ``pyfixest``: Gardner's
  two-stage imputation (did2s), Sun & Abraham's interaction-weighted event study, and two-way fixed
  effects, the last only as the benchmark that is biased when effects differ across cohorts and grow
  over time (already-treated councils serve as comparisons, with negative weights).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from impactstudy.impact.panel import Panel
from impactstudy.impact.randomisation import comparison_mask
from impactstudy.study.config import IMPACT_COMPARISONS

RESULT_COLUMNS = ["outcome", "estimator", "aggregation", "event_time", "cohort", "estimate", "std_error",
                  "ci_low", "ci_high", "band_low", "band_high", "p_value", "n_treated", "n_comparison", "mbar"]
COMPARISONS = IMPACT_COMPARISONS
CS = "callaway_santanna"


@dataclass(frozen=True)
class DidOptions:
    """Settings every estimator shares (the ``[impact]`` section's options)."""

    comparison: str = "not_yet_treated"
    anticipation: int = 0
    covariates: tuple[str, ...] = ()
    window: tuple[int, int] | None = None  # event times shown, e.g. (-5, 6)
    bootstrap: int = 999
    alpha: float = 0.05
    seed: int = 20130401


@dataclass(frozen=True)
class CsFit:
    """Callaway & Sant'Anna results for one outcome: tidy rows plus what the sensitivity needs."""

    rows: pd.DataFrame
    att_gt: pd.DataFrame  # cohort, year, estimate, std_error (the raw group-time effects)
    event_times: np.ndarray  # universal-base event study (for pre-trends and sensitivity)
    event_estimates: np.ndarray
    event_vcov: np.ndarray
    pretrend_chi2: float
    pretrend_df: int
    pretrend_p: float


def _z(alpha: float) -> float:
    return float(norm.ppf(1 - alpha / 2))


def tidy_rows(outcome: str, estimator: str, aggregation: str, estimates, std_errors, alpha: float,
              event_time=None, cohort=None, crit: float | None = None, n_treated=None,
              n_comparison=None) -> pd.DataFrame:
    """Rows of :data:`RESULT_COLUMNS` with pointwise intervals, two-sided normal p and (if ``crit``) a band."""
    est = np.atleast_1d(np.asarray(estimates, dtype=float))
    se = np.atleast_1d(np.asarray(std_errors, dtype=float)).reshape(-1)
    z = _z(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * norm.sf(np.abs(est / se))
    band = crit if crit is not None else z
    n = len(est)

    def col(v, dtype=float):
        return np.full(n, np.nan) if v is None else np.broadcast_to(np.asarray(v, dtype=dtype), (n,))

    return pd.DataFrame({
        "outcome": outcome, "estimator": estimator, "aggregation": aggregation,
        "event_time": col(event_time), "cohort": col(cohort), "estimate": est, "std_error": se,
        "ci_low": est - z * se, "ci_high": est + z * se, "band_low": est - band * se,
        "band_high": est + band * se, "p_value": p, "n_treated": col(n_treated), "n_comparison": col(n_comparison),
    }, columns=RESULT_COLUMNS)


def comparison_counts(cohort: np.ndarray, g: int, t: int, comparison: str, anticipation: int) -> int:
    """Councils in the comparison group of ATT(g, t): never treated, plus (not-yet) not treated by then.

    Not yet treated means first treated after ``max(t, base) + anticipation``, ``base`` being the
    year the change is measured from (``g - 1 - anticipation`` after treatment, ``t - 1`` before).
    """
    base = g - 1 - anticipation if t >= g - anticipation else t - 1
    return int(comparison_mask(cohort, t, base, cohort == g, comparison, anticipation).sum())


def _quiet(call, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def _csdid_model(panel: Panel, options: DidOptions):
    """csdid's model of ``panel``, its data preprocessed (once: both base periods are fitted on it)."""
    from csdid.att_gt import ATTgt

    frame = panel.frame.copy()
    frame["unit"] = pd.factorize(frame["council_code"])[0] + 1
    xformla = f"y ~ {' + '.join(options.covariates)}" if options.covariates else None
    return _quiet(
        ATTgt, yname="y", tname="year", idname="unit", gname="cohort", data=frame,
        control_group="notyettreated" if options.comparison == "not_yet_treated" else "nevertreated",
        xformla=xformla, anticipation=options.anticipation, cband=True, biters=options.bootstrap,
        alp=options.alpha,
    )


def _csdid_fit(model, options: DidOptions, base_period: str, bootstrap: bool) -> None:
    """Fit ``model`` with ``base_period``: each fit replaces the model's results (and what ``aggte`` reads)."""
    np.random.seed(options.seed)  # csdid's multiplier bootstrap draws from the global generator
    _quiet(model.fit, est_method="dr" if options.covariates else "reg", base_period=base_period,
           bstrap=bootstrap)


def _aggte(model, kind: str, options: DidOptions, band: bool = True, **kw):
    np.random.seed(options.seed + 1)
    _quiet(model.aggte, typec=kind, biters=options.bootstrap, cband=band, bstrap=band, alp=options.alpha, **kw)
    return model.atte


def callaway_santanna(panel: Panel, options: DidOptions) -> CsFit:
    """ATT(g, t), event study (simultaneous band) and overall ATT by ``csdid``; pre-trend Wald test.

    The event study and overall use the varying base period (R ``did``'s default: each pre-period
    effect is a one-year change); the pre-trend test and the sensitivity analysis use the universal
    base period (every event time against the year before treatment), as HonestDiD expects.
    """
    model = _csdid_model(panel, options)
    _csdid_fit(model, options, "varying", True)
    res = model.results
    cohort_vec = panel.cohorts.to_numpy()
    groups = np.asarray(res["group"], dtype=int)
    years = np.asarray(res["year"], dtype=int)
    sizes = {g: int((cohort_vec == g).sum()) for g in np.unique(groups)}
    comps = [comparison_counts(cohort_vec, g, t, options.comparison, options.anticipation)
             for g, t in zip(groups, years, strict=True)]
    out = [tidy_rows(panel.outcome, CS, "group_time", res["att"], res["se"], options.alpha,
                     event_time=years - groups, cohort=groups, crit=float(res["c"]),
                     n_treated=[sizes[g] for g in groups], n_comparison=comps)]
    att_gt = pd.DataFrame({"cohort": groups, "year": years, "estimate": np.asarray(res["att"], float),
                           "std_error": np.asarray(res["se"], float)})

    n_treated = panel.n_treated
    n_never = int((cohort_vec == 0).sum())
    window = {} if options.window is None else {"min_e": options.window[0], "max_e": options.window[1]}
    dyn = _aggte(model, "dynamic", options, **window)
    egt = np.asarray(dyn["egt"], dtype=int)
    treated_e = [int(sum(sizes[g] for g in sizes if panel.years[0] <= g + e <= panel.years[-1])) for e in egt]
    out.append(tidy_rows(panel.outcome, CS, "event", dyn["att_egt"], np.asarray(dyn["se_egt"]).reshape(-1),
                         options.alpha, event_time=egt, crit=float(dyn["crit_val_egt"]),
                         n_treated=treated_e, n_comparison=n_never))
    grp = _aggte(model, "group", options)
    out.append(tidy_rows(panel.outcome, CS, "cohort", grp["att_egt"], np.asarray(grp["se_egt"]).reshape(-1),
                         options.alpha, cohort=np.asarray(grp["egt"], dtype=int),
                         crit=float(grp["crit_val_egt"]), n_treated=[sizes[g] for g in grp["egt"]],
                         n_comparison=n_never))
    out.append(tidy_rows(panel.outcome, CS, "overall", grp["overall_att"], grp["overall_se"], options.alpha,
                         n_treated=n_treated, n_comparison=n_never))

    _csdid_fit(model, options, "universal", False)  # the varying-base results are all read above
    udyn = _aggte(model, "dynamic", options, band=False, **window)
    times = np.asarray(udyn["egt"], dtype=int)
    inf = np.asarray(udyn["inf_function"]["dynamic_inf_func_e"], dtype=float)
    vcov = inf.T @ inf / inf.shape[0] ** 2
    est = np.asarray(udyn["att_egt"], dtype=float)
    pre = (times < -1 - options.anticipation)
    stat, df, p = wald(est[pre], vcov[np.ix_(pre, pre)])
    return CsFit(pd.concat(out, ignore_index=True), att_gt, times, est, vcov, stat, df, p)


def wald(estimates: np.ndarray, vcov: np.ndarray) -> tuple[float, int, float]:
    """Joint Wald test that ``estimates`` are all zero: ``(chi2, df, p)``; NaN when none or singular."""
    k = len(estimates)
    if k == 0:
        return float("nan"), 0, float("nan")
    try:
        stat = float(estimates @ np.linalg.solve(vcov, estimates))
    except np.linalg.LinAlgError:
        return float("nan"), k, float("nan")
    return stat, k, float(chi2.sf(stat, k))


def differences_att_gt(panel: Panel, options: DidOptions) -> pd.DataFrame:
    """ATT(g, t) (``cohort, year, estimate, std_error``) from the ``differences`` package (cross-check)."""
    from differences import ATTgt

    frame = panel.frame.copy()
    frame["cohort"] = frame["cohort"].where(frame["cohort"] > 0)
    formula = f"y ~ {' + '.join(options.covariates)}" if options.covariates else "y"
    model = ATTgt(data=frame.set_index(["council_code", "year"]), cohort_column="cohort",
                  anticipation=options.anticipation)
    _quiet(model.fit, formula=formula, control_group=options.comparison,
           est_method="dr" if options.covariates else "reg", progress_bar=False)
    res = model.results().reset_index()
    res.columns = ["_".join(str(c) for c in col if c) for col in res.columns]
    est = [c for c in res.columns if c.endswith("ATT")][0]
    se = [c for c in res.columns if c.endswith("std_error")][0]
    return pd.DataFrame({"cohort": res["cohort"].astype(int), "year": res["time"].astype(int),
                         "estimate": res[est].astype(float), "std_error": res[se].astype(float)})


def _pf_frame(panel: Panel) -> pd.DataFrame:
    """The panel for pyfixest: integer council ids (``unit``; its sparse clustering needs NumPy arrays).

    pyfixest demeans with numba in parallel, and a parallel sum's order varies from run to run in the
    last digits; one numba thread keeps them fixed (the panels are small).
    """
    import numba

    numba.set_num_threads(1)
    frame = panel.frame.copy()
    frame["unit"] = pd.factorize(frame["council_code"])[0]
    frame["treat"] = ((frame["cohort"] > 0) & (frame["year"] >= frame["cohort"])).astype(int)
    frame["rel_year"] = np.where(frame["cohort"] > 0, frame["year"] - frame["cohort"], -1).astype(float)
    return frame


def _in_window(times: np.ndarray, options: DidOptions) -> np.ndarray:
    if options.window is None:
        return np.ones(len(times), dtype=bool)
    return (times >= options.window[0]) & (times <= options.window[1])


def _coef_rows(panel: Panel, estimator: str, fit, options: DidOptions, pattern: str) -> pd.DataFrame:
    tidy = fit.tidy()
    times, est, se = [], [], []
    for name, row in tidy.iterrows():
        match = re.search(pattern, str(name))
        if match:
            times.append(int(float(match.group(1))))
            est.append(row["Estimate"])
            se.append(row["Std. Error"])
    order = np.argsort(times)
    times = np.asarray(times, dtype=int)[order]
    keep = _in_window(times, options)
    return tidy_rows(panel.outcome, estimator, "event", np.asarray(est)[order][keep],
                     np.asarray(se)[order][keep], options.alpha, event_time=times[keep],
                     n_treated=panel.n_treated, n_comparison=int((panel.cohorts == 0).sum()))


def gardner_frame(panel: Panel, anticipation: int) -> pd.DataFrame:
    """The panel as did2s takes it: ``treat`` marks council-years left out of the first stage (treated or
    in the anticipation window), ``post`` the treated ones, ``rel_year`` the event time (the reference
    ``-1 - anticipation`` for never-treated councils).

    Councils with a single untreated year carry no information for the first stage (their council
    effect fits it exactly) and pyfixest drops them inconsistently, so they are left out here.
    """
    frame = _pf_frame(panel)
    untreated = frame["cohort"].eq(0) | (frame["year"] < frame["cohort"] - anticipation)
    enough = untreated.groupby(frame["unit"]).transform("sum") >= 2
    frame = frame[enough].reset_index(drop=True)
    frame["post"] = frame["treat"]
    frame["treat"] = ((frame["cohort"] > 0) & (frame["year"] >= frame["cohort"] - anticipation)).astype(int)
    frame["rel_year"] = np.where(frame["cohort"] > 0, frame["rel_year"], float(-1 - anticipation))
    return frame


def gardner(panel: Panel, options: DidOptions) -> pd.DataFrame:
    """Gardner's two-stage (did2s) imputation: event study and overall ATT (treated council-years weighted).

    First stage: council and year effects fitted on untreated council-years only (never treated,
    not yet treated, and years before the anticipation window); second stage: the residualised
    outcome on event-time indicators (no intercept), GMM standard errors clustered by council.

    One did2s fit gives both. Each event time's coefficient is the mean residualised outcome of the
    treated council-years at that event time, so the overall effect — the mean over all treated
    council-years, did2s's static ``~ post`` estimate (equal to it to 1e-10, tests/impact) — is their
    average weighted by how many council-years each has; its standard error is that combination's,
    from the same GMM covariance. (The static fit's own standard error is a little larger: its
    residuals count the differences between event times as noise.)
    """
    import pyfixest as pf

    frame = gardner_frame(panel, options.anticipation)
    ref = float(-1 - options.anticipation)
    event = _quiet(pf.did2s, frame, yname="y", first_stage="~ 0 | unit + year",
                   second_stage=f"~ i(rel_year, ref={ref})", treatment="treat", cluster="unit")
    names = list(event._coefnames)
    counts = frame.loc[frame["post"] == 1, "rel_year"].value_counts()
    weights = np.zeros(len(names))
    for i, name in enumerate(names):
        e = float(re.search(r"rel_year::(-?[\d.]+)", name).group(1))
        weights[i] = counts.get(e, 0) / counts.sum() if e >= 0 else 0.0
    estimate = float(weights @ np.asarray(event._beta_hat))
    se = float(np.sqrt(weights @ np.asarray(event._vcov) @ weights))
    n_never = int((panel.cohorts == 0).sum())
    return pd.concat([tidy_rows(panel.outcome, "gardner", "overall", estimate, se, options.alpha,
                                n_treated=panel.n_treated, n_comparison=n_never),
                      _coef_rows(panel, "gardner", event, options, r"rel_year::(-?[\d.]+)")], ignore_index=True)


def _saturated_lincomb(fit, model_data: pd.DataFrame, periods: list[float]) -> tuple[float, float]:
    """Equal-weight average of Sun-Abraham's post event-time effects: estimate and standard error."""
    from pyfixest.did.saturated_twfe import compute_period_weights

    weights = compute_period_weights(data=model_data, cohort="cohort", period="rel_time",
                                     treatment="is_treated").set_index(["cohort", "rel_time"])
    names = list(fit._coefnames)
    R = np.zeros(len(names))
    for period in periods:
        for i, name in enumerate(names):
            match = re.search(r"::(-?[\d.]+):(?:.+)::(\d+)$", name)
            if match and float(match.group(1)) == period:
                R[i] += weights.xs((int(match.group(2)), period)).to_numpy()[0] / len(periods)
    est = float(R @ np.asarray(fit._beta_hat))
    se = float(np.sqrt(R @ np.asarray(fit._vcov) @ R))
    return est, se


def sun_abraham(panel: Panel, options: DidOptions) -> pd.DataFrame:
    """Sun & Abraham (2021): cohort x event-time interactions, aggregated by cohort shares (pyfixest).

    Comparison: never-treated councils (Sun-Abraham's default; with none, the last-treated cohort).
    With anticipation ``a`` each cohort is entered as starting ``a`` years early, so the reference
    year is ``g - 1 - a`` as in the other estimators. The overall row is the equal-weight average of
    the event times from 0 in the window.
    """
    import pyfixest as pf

    frame = _pf_frame(panel)
    shift = options.anticipation
    frame["cohort"] = np.where(frame["cohort"] > 0, frame["cohort"] - shift, 0)
    fit = _quiet(pf.event_study, frame, yname="y", idname="unit", tname="year", gname="cohort",
                 estimator="saturated", att=True, cluster="unit")
    agg = _quiet(fit.aggregate, agg="period")
    shifted = np.asarray(agg.index, dtype=float)
    times = shifted.astype(int) - shift
    keep = _in_window(times, options)
    n_never = int((panel.cohorts == 0).sum())
    rows = [tidy_rows(panel.outcome, "sun_abraham", "event", agg["Estimate"].to_numpy(float)[keep],
                      agg["Std. Error"].to_numpy(float)[keep], options.alpha, event_time=times[keep],
                      n_treated=panel.n_treated, n_comparison=n_never)]
    post = [float(e) for e, t in zip(shifted[keep], times[keep], strict=True) if t >= 0]
    if post:
        est, se = _saturated_lincomb(fit, fit._data, post)
        rows.append(tidy_rows(panel.outcome, "sun_abraham", "overall", est, se, options.alpha,
                              n_treated=panel.n_treated, n_comparison=n_never))
    return pd.concat(rows, ignore_index=True)


def twfe(panel: Panel, options: DidOptions) -> pd.DataFrame:
    """Two-way fixed effects ``y ~ treat | council + year`` (clustered by council): the biased benchmark."""
    import pyfixest as pf

    frame = _pf_frame(panel)
    fit = _quiet(pf.feols, "y ~ treat | unit + year", data=frame, vcov={"CRV1": "unit"})
    row = fit.tidy().loc["treat"]
    return tidy_rows(panel.outcome, "twfe", "overall", row["Estimate"], row["Std. Error"], options.alpha,
                     n_treated=panel.n_treated, n_comparison=int((panel.cohorts == 0).sum()))
