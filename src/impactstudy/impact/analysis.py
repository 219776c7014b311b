"""Everything the impact stage estimates for one outcome, as tidy rows plus a summary for the report.

:func:`analyse_outcome` runs, on one balanced :class:`~impactstudy.impact.panel.Panel`:

1. Callaway & Sant'Anna (primary): ATT(g, t), event study with a simultaneous band, cohort effects
   and the overall ATT; the universal-base event study's pre-period joint Wald test;
2. robustness: Gardner's two-stage imputation, Sun & Abraham, TWFE (the biased benchmark) and the
   naive before/after change of treated councils (what an uncontrolled study would report);
3. randomisation inference (placebo in space and in time) for the overall ATT;
4. the relative-magnitudes sensitivity of the average post effect (HonestDiD's Δ^RM, C-LF);

and decides, by rules a reader can check (:func:`verdict`), whether the report may word the result
causally. A robustness estimator that fails (a library error on odd data) is recorded as a warning,
never allowed to stop the primary estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.impact import estimate as E
from impactstudy.impact.panel import Panel
from impactstudy.impact.randomisation import randomisation_inference
from impactstudy.impact.sensitivity import DEFAULT_MBARS, Sensitivity, relative_magnitudes

#: impact.csv's estimator for the HonestDiD relative-magnitudes intervals.
SENSITIVITY = "honestdid_rm"
ROBUSTNESS = {"gardner": E.gardner, "sun_abraham": E.sun_abraham, "twfe": E.twfe}


@dataclass(frozen=True)
class Rules:
    """When the report may say the intervention *caused* the change (config ``[impact]``)."""

    pretrend_alpha: float = 0.05  # the pre-period joint test must not reject at this level
    min_breakdown: float = 0.5  # and the effect must survive violations this large (relative magnitudes)
    permutations: int = 999
    mbars: tuple[float, ...] = DEFAULT_MBARS


def before_after(panel: Panel, options: E.DidOptions) -> pd.DataFrame:
    """Naive before/after: treated councils' mean post-treatment value minus their value the year before.

    No comparison councils and no allowance for anticipation: national trends and rebounds from a bad
    year count as "effect". Shown so the reader sees what the comparison group changes.
    """
    frame = panel.frame[panel.frame["cohort"] > 0]
    base_year = frame["cohort"] - 1
    before = frame[frame["year"] == base_year].set_index("council_code")["y"]
    after = frame[frame["year"] >= frame["cohort"]].groupby("council_code")["y"].mean()
    change = (after - before).dropna()
    se = change.std(ddof=1) / np.sqrt(len(change)) if len(change) > 1 else np.nan
    return E.tidy_rows(panel.outcome, "before_after", "overall", change.mean(), se, options.alpha,
                       n_treated=len(change), n_comparison=0)


def verdict(overall: pd.Series, pretrend_p: float, breakdown: float | None, rules: Rules,
            n_treated: int, p_space: float) -> dict[str, Any]:
    """Whether causal wording is supported, and the reasons in plain words (for the report)."""
    reasons = []
    excludes_zero = overall["ci_low"] > 0 or overall["ci_high"] < 0
    if not excludes_zero:
        reasons.append("the 95% interval includes no effect")
    if not np.isfinite(pretrend_p):
        reasons.append("there are too few years before the intervention to test for differing pre-trends")
    elif pretrend_p < rules.pretrend_alpha:
        reasons.append(f"councils already diverged before the intervention (pre-trend test p = {pretrend_p:.3f})")
    if breakdown is None:
        reasons.append("the sensitivity analysis needs at least two years before the intervention")
    elif excludes_zero and breakdown < rules.min_breakdown:
        reasons.append(f"a violation of parallel trends {breakdown:.2f} times the largest seen before the "
                       f"intervention would explain the effect away (the declared threshold is {rules.min_breakdown:g})")
    if excludes_zero and p_space > 0.05:
        reasons.append(f"reassigning the intervention dates to other councils gives effects this large "
                       f"often (randomisation p = {p_space:.3f}, {n_treated} treated councils)")
    return {"causal": not reasons, "reasons": reasons, "excludes_zero": bool(excludes_zero)}


def analyse_outcome(panel: Panel, options: E.DidOptions, rules: Rules = Rules()) -> tuple[pd.DataFrame, dict]:
    """Tidy rows (:data:`~impactstudy.impact.estimate.RESULT_COLUMNS`) and the summary of one outcome."""
    cs = E.callaway_santanna(panel, options)
    rows = [cs.rows]
    warnings_ = list(panel.notes)
    for name, estimator in ROBUSTNESS.items():
        try:
            rows.append(estimator(panel, options))
        except Exception as err:  # a library failing on odd data must not lose the primary estimate
            warnings_.append(f"{name} could not be estimated: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
    rows.append(before_after(panel, options))

    ri = randomisation_inference(panel, options.comparison, options.anticipation, rules.permutations, options.seed,
                                 options.covariates)
    rows.append(E.tidy_rows(panel.outcome, "randomisation_space", "overall", ri.observed, np.nan, options.alpha,
                            n_treated=panel.n_treated, n_comparison=int((panel.cohorts == 0).sum())).assign(
        p_value=ri.p_space))
    rows.append(E.tidy_rows(panel.outcome, "randomisation_time", "overall", ri.observed, np.nan, options.alpha,
                            n_treated=panel.n_treated, n_comparison=int((panel.cohorts == 0).sum())).assign(
        p_value=ri.p_time))
    sens = relative_magnitudes(cs.event_times, cs.event_estimates, cs.event_vcov, options.alpha, rules.mbars,
                               options.anticipation)
    if sens is not None:
        rows.append(sensitivity_rows(panel, sens))
    table = pd.concat(rows, ignore_index=True)
    overall = table[(table["estimator"] == E.CS) & (table["aggregation"] == "overall")].iloc[0]
    decision = verdict(overall, cs.pretrend_p, None if sens is None else sens.breakdown, rules, panel.n_treated,
                       ri.p_space)
    agreement = {
        name: _overall(table, name) for name in (E.CS, "gardner", "sun_abraham", "twfe", "before_after")
    }
    summary = {
        "n_councils": int(panel.frame["council_code"].nunique()),
        "n_treated": panel.n_treated,
        "cohorts": {str(g): int(n) for g, n in panel.cohorts[panel.cohorts > 0].value_counts().sort_index().items()},
        "years": [panel.years[0], panel.years[-1]],
        "set_aside": dict(panel.set_aside),
        "overall": _overall(table, E.CS),
        "pretrend": {"chi2": cs.pretrend_chi2, "df": cs.pretrend_df, "p_value": cs.pretrend_p,
                     "base": "universal (each event time against the year before treatment)"},
        "sensitivity": None if sens is None else {
            "method": sens.description, "method_code": f"DeltaRM {sens.method}", "mbar": list(sens.mbars),
            "lower": list(sens.lower), "upper": list(sens.upper), "breakdown": sens.breakdown,
            "breakdown_interval": list(sens.breakdown_interval), "min_breakdown": rules.min_breakdown, "estimate": sens.estimate, "std_error": sens.std_error,
            "max_pre_change": sens.max_pre_change, "n_pre": sens.n_pre, "n_post": sens.n_post},
        "randomisation": {"p_space": ri.p_space, "permutations": ri.permutations,
                          "distinct_assignments": str(ri.distinct_assignments), "strata": ri.strata,
                          "p_time": ri.p_time, "p_time_smallest": 1 / (1 + len(ri.placebo_shifts)),
                          "placebo_shifts": list(ri.placebo_shifts), "placebo_estimates": list(ri.placebo_estimates),
                          "time_note": ri.time_note,
                          "p_asymptotic": float(overall["p_value"])},
        "estimators": agreement,
        "verdict": decision,
        "warnings": warnings_,
    }
    return table, summary


def sensitivity_rows(panel: Panel, sens: Sensitivity) -> pd.DataFrame:
    """The sensitivity intervals as rows of impact.csv: estimator ``honestdid_rm``, aggregation
    ``sensitivity`` (one row per ``mbar``) and ``breakdown`` (the interval at the breakdown value)."""
    breakdown = [sens.breakdown] if np.isfinite(sens.breakdown) else []
    mbars = [*sens.mbars, *breakdown]
    lower, upper = list(sens.lower), list(sens.upper)
    if breakdown:
        lower.append(sens.breakdown_interval[0])
        upper.append(sens.breakdown_interval[1])
    rows = pd.DataFrame({
        "outcome": panel.outcome, "estimator": SENSITIVITY, "aggregation": ["sensitivity"] * len(sens.mbars)
        + ["breakdown"] * len(breakdown), "estimate": sens.estimate, "std_error": sens.std_error,
        "ci_low": lower, "ci_high": upper, "band_low": lower, "band_high": upper, "mbar": mbars,
        "n_treated": panel.n_treated, "n_comparison": int((panel.cohorts == 0).sum())}, columns=E.RESULT_COLUMNS)
    return rows


def _overall(table: pd.DataFrame, estimator: str) -> dict[str, float] | None:
    row = table[(table["estimator"] == estimator) & (table["aggregation"] == "overall")]
    if row.empty:
        return None
    r = row.iloc[0]
    return {k: float(r[k]) for k in ("estimate", "std_error", "ci_low", "ci_high", "p_value")}
