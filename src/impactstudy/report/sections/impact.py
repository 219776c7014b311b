"""The impact section: administrative outcomes of treated councils against comparison councils.

Built from the impact stage's outputs (``tables/impact.csv`` and ``impact.json``; see docs/impact.md).
This is the only section that may word a result causally ("{intervention} is estimated to have
reduced … by …"), and only when the stage's verdict says the pre-trends, the sensitivity analysis and
randomisation inference support it; otherwise it says which of them does not. The intervention's name
comes from ``[intervention] name``: nothing here is specific to one study.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from impactstudy.report import figures, findings
from impactstudy.report.context import Context, Section
from impactstudy.report.tables import interval, number, table

CS = "callaway_santanna"
ESTIMATORS = {
    CS: ("Callaway & Sant'Anna (primary)", "cohort-size weighted average of each cohort's effect"),
    "gardner": ("Gardner two-stage imputation", "treated council-years weighted equally"),
    "sun_abraham": ("Sun & Abraham", "average of the post-intervention years, never-treated comparisons"),
    "twfe": ("Two-way fixed effects (biased benchmark)",
             "uses already-treated councils as comparisons: biased when effects grow or differ by cohort"),
    "before_after": ("Before/after, no comparison group",
                     "counts national trends and rebounds from a bad year as effect"),
}
#: Below this many treated councils the section says the estimate is inconclusive, whatever its p.
INCONCLUSIVE_BELOW = 8


def event_study_chart(frame: pd.DataFrame, title: str, subtitle: str, ylabel: str, xlabel: str,
                      anticipation: int = 0) -> Figure:
    """Event-study estimates with pointwise 95% intervals (bars) and the simultaneous 95% band (shaded).

    ``frame`` has ``event_time, estimate, ci_low, ci_high, band_low, band_high``; a dashed line marks
    no effect and a dotted one the start of the intervention. The ``anticipation`` years just before
    it (not used as the baseline) are drawn with their own marker, so a dip there is not read as a
    pre-trend.
    """
    fig = figures.new_figure(7.0, 3.6, title, subtitle)
    ax = fig.subplots()
    t = frame["event_time"].to_numpy(dtype=float)
    ax.fill_between(t, frame["band_low"], frame["band_high"], color="#c9d7e8", step=None,
                    label="Simultaneous 95% band")
    groups = ((t < -anticipation, "o", "#505a5f", "Before"),
              ((t >= -anticipation) & (t < 0), "^", "#f47738", "Anticipation (not the baseline)"),
              (t >= 0, "s", "#1d70b8", "After"))
    for mask, marker, colour, label in groups:
        if not mask.any():
            continue
        est, low, high = (frame[c].to_numpy(dtype=float)[mask] for c in ("estimate", "ci_low", "ci_high"))
        ax.errorbar(t[mask], est, yerr=[est - low, high - est], fmt=marker, color=colour, markersize=4, capsize=2,
                    linewidth=1, label=f"{label} (95% CI)")
    ax.axhline(0, color="#555555", linewidth=0.8, linestyle="--")
    ax.axvline(-0.5, color="#555555", linewidth=0.8, linestyle=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(t, [f"{int(v)}" for v in t])
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    figures.figure_legend(fig, *ax.get_legend_handles_labels(), most=2)
    return fig


def _direction(estimate: float, better: str) -> tuple[str, str]:
    verb = "increased" if estimate > 0 else "reduced"
    good = (estimate > 0) == (better == "higher")
    return verb, "an improvement" if good else "a deterioration"


def _units(outcome: dict[str, Any]) -> str:
    return f" {outcome['units']}" if outcome.get("units") else ""


def headline(name: str, outcome: dict[str, Any], intervention: str) -> str:
    """One sentence for the outcome: causal wording only when the stage's verdict supports it."""
    o, label = outcome["overall"], outcome["label"]
    ci = interval(o["ci_low"], o["ci_high"])
    n = outcome["n_treated"]
    if n < INCONCLUSIVE_BELOW:
        return (f"{label}: inconclusive with {n} treated councils — the difference from comparison councils was "
                f"{number(o['estimate'], signed=True)}{_units(outcome)} (95% CI {ci}), but so few councils cannot "
                "separate an effect from the ordinary differences between councils.")
    verb, quality = _direction(o["estimate"], outcome["better"])
    if outcome["verdict"]["causal"]:
        return (f"{intervention[:1].upper()}{intervention[1:]} is estimated to have {verb} {label[:1].lower()}"
                f"{label[1:]} by {number(abs(o['estimate']))}{_units(outcome)} on average in the years after it "
                f"(95% CI {ci}; {quality}), compared with how comparison councils changed over the same years.")
    reasons = "; ".join(outcome["verdict"]["reasons"])
    return (f"{label}: councils changed by {number(o['estimate'], signed=True)}{_units(outcome)} relative to comparison "
            f"councils (95% CI {ci}). This is not shown to be an effect of {intervention}: {reasons}.")


def key_findings(ctx: Context) -> list[str]:
    """The impact headlines, for the key findings (which lead with them when the study has impact)."""
    summary = ctx.inputs.impact_summary
    if not summary or ctx.study.impact is None:
        return []
    return [headline(name, summary["outcomes"][name], ctx.study.intervention.name) for name in _order(ctx)]


def _order(ctx: Context) -> list[str]:
    """The outcomes in the config's order (impact.json sorts its keys)."""
    return [o.name for o in ctx.study.impact.outcomes if o.name in ctx.inputs.impact_summary["outcomes"]]


def _agreement(rows: pd.DataFrame, outcome: dict[str, Any]) -> pd.DataFrame:
    out = []
    for key, (label, note) in ESTIMATORS.items():
        r = outcome["estimators"].get(key)
        if r is None:
            continue
        out.append({"Estimator": label, "Overall effect": number(r["estimate"], signed=True),
                    "95% CI": interval(r["ci_low"], r["ci_high"]),
                    "p": findings.fmt_p(r["p_value"]) if np.isfinite(r.get("p_value", np.nan)) else "–",
                    "What it averages": note})
    ri = outcome["randomisation"]
    out.append({"Estimator": "Randomisation inference (placebo in space)", "Overall effect": number(
        outcome["overall"]["estimate"], signed=True), "95% CI": "–", "p": findings.fmt_p(ri["p_space"]),
        "What it averages": f"share of {ri['permutations']} random reassignments of the intervention dates "
                            "giving an effect at least as large"})
    placebo = ri["placebo_estimates"]
    out.append({"Estimator": "Randomisation inference (placebo in time)", "Overall effect": number(
        outcome["overall"]["estimate"], signed=True), "95% CI": "–",
        "p": findings.fmt_p(ri["p_time"]) if placebo else "not run",
        "What it averages": (f"share of {len(placebo)} earlier placebo date(s), and the real one, giving an effect at "
                             "least as large" if placebo else ri.get("time_note") or "too few years before the first "
                             "intervention")})
    return pd.DataFrame(out)


def _evidence(outcome: dict[str, Any], intervention: str) -> list[str]:
    pre, sens, ri = outcome["pretrend"], outcome["sensitivity"], outcome["randomisation"]
    items = []
    if pre["p_value"] is None or not np.isfinite(pre["p_value"]):
        items.append("Pre-trends: too few years before the intervention to test.")
    else:
        items.append(f"Pre-trends: the {pre['df']} pre-intervention event-study estimates are jointly "
                     f"{'consistent with' if pre['p_value'] >= 0.05 else 'not consistent with'} parallel trends "
                     f"(χ²({pre['df']}) = {pre['chi2']:.2f}, p {findings.fmt_p(pre['p_value'])}).")
    items.append(sensitivity_sentence(sens, intervention))
    among = f"councils alike on the covariates ({ri['strata']})" if ri.get("strata") else "councils"
    items.append(f"Randomisation inference: p {findings.fmt_p(ri['p_space'])} reassigning the intervention dates among "
                 f"{among} (placebo in space), against the asymptotic p {findings.fmt_p(ri['p_asymptotic'])}; "
                 + placebo_in_time_sentence(ri, intervention))
    if outcome["set_aside"]:
        items.append("Councils set aside: " + "; ".join(outcome["warnings"][:3]) + ".")
    return items


def placebo_in_time_sentence(ri: dict[str, Any], intervention: str) -> str:
    """Placebo in time in words: the placebo effects and their p, or why it could not be run."""
    placebo = ri["placebo_estimates"]
    if not placebo:
        note = ri.get("time_note") or "too few years before the first intervention"
        return f"placebo in time could not be run: {note}."
    ks = [str(k) for k in ri["placebo_shifts"]]
    shifts = ks[0] if len(ks) == 1 else f"{', '.join(ks[:-1])} or {ks[-1]}"
    years = "year" if ks == ["1"] else "years"
    smallest = ri.get("p_time_smallest", 1 / (1 + len(placebo)))
    dates = "1 placebo date" if len(placebo) == 1 else f"{len(placebo)} placebo dates"
    return (f"placebo in time (the dates of {intervention} moved {shifts} {years} earlier, using only years before each "
            f"council's own) gives placebo effects of {', '.join(number(v, signed=True) for v in placebo)} "
            f"(p {findings.fmt_p(ri['p_time'])}; with {dates} p cannot be below {number(smallest)}, so this checks "
            "that nothing like the effect appears before the intervention rather than testing it on its own).")


def sensitivity_sentence(sens: dict[str, Any] | None, intervention: str) -> str:
    """The relative-magnitudes sensitivity in words: the breakdown value against the declared threshold."""
    if sens is None:
        return "Sensitivity: needs at least two years before the intervention."
    name = "Sensitivity (HonestDiD relative magnitudes, conditional–least-favourable hybrid)"
    threshold = sens.get("min_breakdown")
    need = (f"; causal wording needs at least {number(threshold)} (the study's declared threshold)"
            if threshold is not None else "")
    bd = sens["breakdown"]
    if bd == 0:
        return f"{name}: the effect is not distinguishable from zero even if trends were exactly parallel{need}."
    if bd is None or not np.isfinite(bd):
        return (f"{name}: the effect's 95% interval excludes zero however large a departure from parallel trends "
                f"is allowed relative to those seen before {intervention}.")
    return (f"{name}: the effect's 95% interval excludes zero unless, after {intervention}, trends departed from "
            f"parallel by more than {number(bd)} times the largest year-to-year departure seen before it "
            f"(breakdown value M̄ = {number(bd)}){need}.")


def triangulation(ctx: Context) -> tuple[list[str], pd.DataFrame] | None:
    """Sentences and a table setting each outcome's survey measure beside it in the same treated councils.

    From ``tables/impact_triangulation.csv`` (docs/impact.md): the survey's mean change and the mean
    administrative improvement in the councils with both, and their correlation across councils. The
    wording never goes beyond association; None when no outcome names a survey measure.
    """
    tri = ctx.inputs.impact_triangulation
    if tri is None or tri.empty:
        return None
    labels = {m.name: m.label for m in ctx.study.measures}
    waves = {w.id: w.label for w in ctx.study.waves}
    outcomes = {o.name: o for o in ctx.study.impact.outcomes}
    sentences, rows = [], []
    for r in tri.itertuples(index=False):
        if r.outcome not in outcomes:
            continue
        label, measure = outcomes[r.outcome].label, labels.get(r.measure, r.measure)
        later = r.later_wave if isinstance(r.later_wave, str) and r.later_wave else ""
        earlier = waves.get(r.earlier_wave, r.earlier_wave)
        change = f"change from “{earlier}” to “{waves.get(later, later)}”" if later else f"answers at “{earlier}”"
        more = "answers rose more" if later else "answered higher"
        n = int(r.n_councils)
        lead = f"{label}, beside {measure[:1].lower()}{measure[1:]} ({change}), in the {n} treated councils with both"
        if np.isfinite(r.correlation):
            finding = (f"councils whose respondents' {more} also improved more on this outcome"
                       if r.correlation_ci_low > 0 else
                       f"councils whose respondents' {more} improved less on this outcome"
                       if r.correlation_ci_high < 0 else "no clear association either way")
            sentences.append(f"{lead}: {finding} (correlation {number(r.correlation, signed=True)}, 95% CI "
                             f"{interval(r.correlation_ci_low, r.correlation_ci_high)}).")
        else:
            sentences.append(f"{lead}: {r.warning}.")
        rows.append({
            "Outcome": label, "Survey measure": f"{measure} ({change})", "Councils": n,
            "Survey change (95% CI)": f"{number(r.survey_change, signed=True)} "
                                      f"({interval(r.survey_ci_low, r.survey_ci_high)})",
            "Administrative improvement (95% CI)": f"{number(r.admin_improvement, signed=True)} "
                                                   f"({interval(r.admin_ci_low, r.admin_ci_high)})",
            "Correlation (95% CI)": (f"{number(r.correlation, signed=True)} "
                                     f"({interval(r.correlation_ci_low, r.correlation_ci_high)})"
                                     if np.isfinite(r.correlation) else "–"),
            "p": findings.fmt_p(r.correlation_p) if np.isfinite(r.correlation_p) else "–",
        })
    if not rows:
        return None
    sentences.append(caution(int(tri["n_councils"].max())))
    return sentences, pd.DataFrame(rows)


def caution(n_councils: int) -> str:
    """What an association across councils can and cannot show (as the impact stage's triangulation says)."""
    return (f"These compare up to {n_councils} treated councils with each other. Administrative improvement is each "
            "council's own change against the comparison councils, signed so that a positive value is an "
            "improvement, and measured with the council's own year-to-year noise, which pulls any association "
            "towards zero; the survey records how the council's own staff saw the change; councils that changed "
            "more on both may differ in other ways. An association, or its absence, does not show what caused "
            "either change.")


def assumptions(intervention: str, anticipation: int) -> list[str]:
    """The identifying assumptions, in plain words."""
    return [
        f"Parallel trends: had they not had {intervention}, the treated councils' outcomes would have moved like the "
        "comparison councils' did. The pre-trend test and the sensitivity analysis probe this; neither proves it.",
        (f"No anticipation beyond {anticipation} year(s): the year(s) just before {intervention} are not used as the "
         "baseline, because councils may have changed then (or asked for it after a bad year)." if anticipation else
         f"No anticipation: councils did not change before {intervention} because of it."),
        "No spill-overs: treating one council did not change the comparison councils' outcomes.",
        "Stable measurement: each statistic is collected the same way throughout; reorganised councils start new series.",
    ]


def build(ctx: Context) -> Section | None:
    """One part per outcome (headline, event-study chart, estimator agreement, evidence); None without [impact]."""
    summary, rows = ctx.inputs.impact_summary, ctx.inputs.impact
    settings = ctx.study.impact
    if settings is None or not summary:
        return None
    intervention = ctx.study.intervention.name
    s = Section("impact", "Impact against comparison councils",
                f"How councils' administrative outcomes changed after {intervention}, compared with councils that had "
                f"not (yet) had it over the same years: a staggered difference-in-differences (Callaway & Sant'Anna), "
                "with other estimators beside it. Only this section estimates effects rather than changes.")
    for name in _order(ctx):
        outcome = summary["outcomes"][name]
        s.heading(outcome["label"])
        s.text(headline(name, outcome, intervention))
        event = rows[(rows["outcome"] == name) & (rows["estimator"] == CS) & (rows["aggregation"] == "event")]
        data = event[["event_time", "estimate", "ci_low", "ci_high", "band_low", "band_high", "n_treated"]].copy()
        data["event_time"] = data["event_time"].astype(int)
        title = f"{outcome['label']}: against comparison councils"
        subtitle = (f"Difference-in-differences (Callaway & Sant'Anna), {outcome['n_treated']} treated and "
                    f"{outcome['n_councils'] - outcome['n_treated']} comparison councils, "
                    f"{outcome['years'][0]}–{outcome['years'][1]}; bars 95% CI, shading simultaneous 95% band")
        alt = (f"Event-study chart of {outcome['label']}: estimated differences between treated and comparison "
               "councils for each year before and after the intervention. The table below gives the values.")
        shown = pd.DataFrame({
            "Years since": data["event_time"], "Estimate": data["estimate"].map(lambda v: number(v, signed=True)),
            "95% CI": [interval(a, b) for a, b in zip(data["ci_low"], data["ci_high"], strict=True)],
            "Simultaneous 95% band": [interval(a, b) for a, b in zip(data["band_low"], data["band_high"], strict=True)],
            "Treated councils": data["n_treated"].astype(int),
        })
        xlabel = f"Years since {intervention} (0 = the first reporting year it could affect)"
        ylabel = f"Difference ({outcome['units']})" if outcome.get("units") else "Difference"
        args = (data, title, subtitle, ylabel, xlabel, settings.anticipation)
        s.figure(*ctx.chart(event_study_chart, args, f"impact_{name}", title,
                            subtitle, alt, shown, f"Event study: {outcome['label']}",
                            numeric=["Years since", "Estimate", "Treated councils"]))
        s.items(_evidence(outcome, intervention))
        s.table(table(f"impact-agreement-{name}", f"Estimator agreement: {outcome['label']}", _agreement(rows, outcome),
                      numeric=["Overall effect", "p"]))
    tri = triangulation(ctx)
    if tri is not None:
        sentences, shown = tri
        s.heading("Survey and administrative change in the same councils")
        s.items(sentences)
        s.table(table("impact-triangulation", "Survey change beside administrative improvement, treated councils",
                      shown, numeric=["Councils", "p"]))
    s.heading("Assumptions")
    s.items(assumptions(intervention, settings.anticipation))
    return s
