"""One section per research aim (``[[aims]]`` in the config): its option sets, change over time (the
LMM forest plot and every model side by side), single-wave measures, and coded free text
(:mod:`impactstudy.report.themes`: theme frequencies, changes, coder agreement, quotes).
"""

from __future__ import annotations

import pandas as pd

from impactstudy.report import answers, figures, findings, summaries, themes
from impactstudy.report.blocks import contrast_data, trajectory_figure
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import binary_mask, count_mask, counts_text, interval, number, pct, table
from impactstudy.study.config import Aim, Measure

MODEL_ORDER = ("lmm", "gee", "gee_ipw", "ordinal", "paired_t", "wilcoxon", "mcnemar",
               "sign_flip", "cr2_council", "cr2", "wild_bootstrap")


def _option_set(ctx: Context, s: Section, parent: str) -> None:
    members = ctx.study.set_members(parent)
    shares = summaries.option_shares(ctx.inputs.panel, ctx.study, parent)
    shares = shares[shares["group"] == summaries.ALL]
    if shares.empty:
        return
    set_label = members[0].label.rsplit(":", 1)[0] if members else parent
    for wave, cell in shares.groupby("wave", sort=False):
        cell = cell.reset_index(drop=True)
        masked = binary_mask(cell["selected"], cell["base"], ctx.threshold)
        value = cell["share"].where(~masked)
        base_text = counts_text(cell["base"], count_mask(cell["base"], ctx.threshold))
        data = pd.DataFrame({
            "Option": cell["option_label"],
            "Respondents selecting it": counts_text(cell["selected"], masked),
            "Respondents answering": base_text,
            "Percentage": [MARK if m else pct(v) for v, m in zip(cell["share"], masked)],
            "95% CI (%)": [MARK if m else interval(lo, hi, 0, 100) for lo, hi, m in zip(cell["ci_low"], cell["ci_high"], masked)],
        })
        top = cell.loc[value.idxmax()] if value.notna().any() else None
        title = (f"“{top['option_label']}” was the most common: {pct(top['share'])} of respondents" if top is not None
                 else f"{set_label}: too few respondents to publish")
        subtitle = (f"{set_label}, {ctx.wave_labels.get(wave, wave)}: percentage of respondents selecting each option, "
                    f"with 95% Wilson intervals; respondents could select more than one")
        frame = pd.DataFrame({"label": cell["option_label"], "value": value,
                              "ci_low": cell["ci_low"].where(~masked), "ci_high": cell["ci_high"].where(~masked)})
        fig = (figures.bar_chart, (frame, title, subtitle, "Percentage of respondents",))
        alt = f"Bar chart of {set_label.lower()}: " + "; ".join(
            f"{lab} {MARK if m else pct(v)}" for lab, v, m in zip(cell["option_label"], cell["share"], masked)) + "."
        s.figure(*ctx.chart(*fig, f"{parent}_{wave}", title, subtitle, alt, data, f"{set_label} ({ctx.wave_labels.get(wave, wave)})",
                             numeric=list(data.columns[1:])))


def _single_wave(ctx: Context, s: Section, measures: list[Measure]) -> None:
    """Questions asked in one wave: mean of council means (t interval), or % yes (Wilson interval)."""
    if not measures:
        return
    scored = [m.name for m in measures if m.type != "binary"]
    binary = [m.name for m in measures if m.type == "binary"]
    traj = ctx.trajectories[ctx.trajectories["measure"].isin(scored) & (ctx.trajectories["group"] == summaries.ALL)]
    shares = summaries.binary_shares(ctx.inputs.panel, binary)
    shares = shares[shares["group"] == summaries.ALL]
    shares = shares.assign(n_respondents=shares["base"], n_councils=shares["n_councils"],
                           wave_label=shares["wave"].map(ctx.wave_labels), mean=shares["share"])
    rows = []
    order = {m.name: i for i, m in enumerate(measures)}
    both = pd.concat([traj, shares], ignore_index=True).sort_values("measure", key=lambda c: c.map(order), kind="stable")
    for r in both.itertuples():
        measure = ctx.study.measure(r.measure)
        hidden = ctx.threshold is not None and (r.n_councils < ctx.threshold or r.n_respondents < ctx.threshold)
        if measure.type == "binary":  # % yes beside the base: both counts follow, so both are protected
            hidden = hidden or bool(binary_mask(pd.Series([r.selected]), pd.Series([r.base]), ctx.threshold)[0])
            value, ci, scale = pct(r.mean), interval(r.ci_low, r.ci_high, 0, 100), "% answering yes (Wilson 95% CI)"
        else:
            value, ci = number(r.mean), interval(r.ci_low, r.ci_high)
            scale = (f"mean, {measure.levels[0]:g} = {measure.level_labels.get(measure.levels[0], '')} to "
                     f"{measure.levels[-1]:g} = {measure.level_labels.get(measure.levels[-1], '')}"
                     if measure.type == "likert" and measure.levels else "mean")
        rows.append({"Question": measure.label, "Wave": r.wave_label, "Value": MARK if hidden else value,
                     "95% CI": MARK if hidden else ci, "Councils": f"{int(r.n_councils):,}",
                     "Respondents": MARK if hidden else f"{int(r.n_respondents):,}", "Statistic": scale})
    shown = pd.DataFrame(rows)
    s.table(table(f"single-{s.id}", "Questions asked in one wave", shown,
                  numeric=["Value", "95% CI", "Councils", "Respondents"],
                  notes=["Means are means of council means (each council's respondents averaged first, so every "
                         "council counts once), with t intervals over councils; percentages are of respondents."]))


def _change(ctx: Context, s: Section, measures: list[Measure]) -> None:
    if not measures:
        return
    names = [m.name for m in measures]
    traj = ctx.trajectories[ctx.trajectories["measure"].isin(names)]
    noun = ctx.measures_noun(measures)
    trajectory_figure(ctx, s, traj, measures, [summaries.ALL], f"{s.id}_trajectories",
                      f"How {noun if noun == 'the measures' else _lower_first(noun)} moved across the waves")
    contrasts = ctx.inputs.contrasts
    if contrasts.empty:
        return
    mine = contrasts[contrasts["measure"].isin(names) & (contrasts["group"] == summaries.ALL)
                     & ~contrasts["model"].isin(findings.OTHER_ESTIMANDS)].copy()
    mine["withheld"] = count_mask(mine["n_councils"], ctx.threshold)
    # with few councils (the council-level rows exist) the chart shows what the key findings rest on
    few = bool((mine["model"] == findings.COUNCIL_LEVEL).any())
    primary = mine[mine["model"] == (findings.COUNCIL_LEVEL if few else "lmm")]
    method = "exact sign-flip test on council changes" if few else "linear mixed model"
    if not primary.empty:
        series = [(c, ctx.contrast_label(c)) for c in dict.fromkeys(primary["contrast"])]
        frame = pd.DataFrame({"row": primary["measure"], "series": primary["contrast"],
                              "estimate": primary["estimate"].where(~primary["withheld"]),
                              "ci_low": primary["ci_low"].where(~primary["withheld"]),
                              "ci_high": primary["ci_high"].where(~primary["withheld"])})
        rows = [(m.name, m.label) for m in measures]
        n_clear = int(((primary["ci_low"] > 0) | (primary["ci_high"] < 0))[~primary["withheld"]].sum())
        title = (f"{n_clear} of {len(primary)} changes have intervals that exclude zero" if n_clear
                 else "No change has an interval that excludes zero")
        compared = _compared(ctx, list(dict.fromkeys(primary["contrast"])))
        subtitle = ((f"Council-weighted change in mean score {compared} (exact sign-flip test on council changes), "
                     "with intervals at the highest level these councils allow (95% where reachable; the table says "
                     "which); dashed line: no change") if few else
                    f"Change in mean score {compared} (linear mixed model), with 95% confidence intervals; "
                    "dashed line: no change")
        data = contrast_data(ctx, primary)
        alt = (f"Forest plot of the change in each measure {compared}: {title.lower()}. "
               "The table below gives every estimate and interval.")
        fig = (figures.forest_chart, (frame, rows, series, title, subtitle, "Change in mean score",))
        s.figure(*ctx.chart(*fig, f"{s.id}_forest", title, subtitle, alt, data, f"Change {compared} ({method})",
                             numeric=["Estimate", "95% CI", "q-value", "In SDs (95% CI)", "Councils"]))
    _model_tables(ctx, s, mine)


def _compared(ctx: Context, contrasts: list[str]) -> str:
    """What the forest plot's series compare, in words: "from the first wave" only when every series
    starts there; a chart that also compares later waves with each other says its series name the waves."""
    first = ctx.study.wave_ids[0]
    earlier = {findings.contrast_waves(c)[1] for c in contrasts}
    if earlier == {first}:
        return "from the first wave"
    if len(contrasts) == 1:
        later, before = findings.contrast_waves(contrasts[0])
        return f"from {ctx.wave_labels.get(before, before)} to {ctx.wave_labels.get(later, later)}"
    return "between the waves each series names"


def _lower_first(text: str) -> str:
    """'Self-rated wellbeing' → 'self-rated wellbeing', but 'GCSE results' stays (an acronym)."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def _model_tables(ctx: Context, s: Section, rows: pd.DataFrame) -> None:
    """Each contrast's estimates from every model side by side: does the conclusion depend on the model?"""
    models = [m for m in MODEL_ORDER if m in set(rows["model"])] + sorted(set(rows["model"]) - set(MODEL_ORDER))
    for contrast in dict.fromkeys(rows["contrast"]):
        cell = rows[rows["contrast"] == contrast]
        found = {(r.measure, r.model): r for r in cell.itertuples()}
        measures = list(dict.fromkeys(cell["measure"]))
        out = {"Measure": [ctx.label(m) for m in measures]}
        for model in models:
            values = []
            for measure in measures:
                x = found.get((measure, model))
                if x is None or pd.isna(x.estimate):
                    values.append("–")
                elif x.withheld:
                    values.append(MARK)
                else:
                    ci = findings.ci_text(x.ci_low, x.ci_high, getattr(x, "warning", ""))
                    ci = "no interval" if ci == "–" else ci  # e.g. not available with so few councils
                    floor = getattr(x, "min_p_value", 0.0)
                    limit = f"; smallest possible p {findings.fmt_floor(floor)}" if floor and floor > 0 else ""
                    values.append(f"{number(x.estimate, signed=True)} ({ci}); q {findings.fmt_p(x.q_value)}{limit}")
            estimands = [e for e in cell.loc[cell["model"] == model, "estimand"].dropna()] if "estimand" in cell else []
            name = findings.MODEL_NAMES.get(model, model)
            out[f"{name}: {estimands[0]}" if estimands else name] = values
        shown = pd.DataFrame(out)
        not_95 = any(findings.NOT_95 in v for column in list(out)[1:] for v in out[column])
        floors = any("smallest possible p" in v for column in list(out)[1:] for v in out[column])
        s.table(table(f"models-{s.id}-{contrast.replace(' ', '')}", f"{ctx.contrast_label(contrast)}: estimate (95% CI) and q-value by model",
                      shown, numeric=list(shown.columns[1:]),
                      notes=["Each column says what its model estimates. Respondent-weighted models count every answer, "
                             "so councils with more respondents count more; council-weighted ones (paired tests, the "
                             "sign-flip test, the council-level regression) count each council once and use councils "
                             "present in both waves; the Wilcoxon test estimates a pseudo-median shift and the ordinal "
                             "model a council-weighted log odds ratio (councils in both waves). Compare conclusions only between columns that estimate the same "
                             "thing: there, agreement in sign and in whether the interval excludes zero means the "
                             "conclusion does not depend on the model.",
                             *([findings.FLOOR_NOTE] if floors else []),
                             *([findings.NOT_95_NOTE] if not_95 else [])]))


def build(ctx: Context, aim: Aim) -> Section:
    """One research aim's section: its option sets, change over time, single-wave measures and themes."""
    coded_text = {m.parent for m in ctx.study.measures if m.coding_frame_for}
    s = Section(f"aim-{aim.id}", aim.title, aim.intro)
    measures = [m for m in ctx.study.research_measures if m.aim == aim.id]
    parents = list(dict.fromkeys(m.parent for m in measures if m.parent))
    for parent in parents:
        members = ctx.study.set_members(parent)
        if members[0].type == "binary" and parent not in coded_text and not any(
                parent == p.achieved for p in ctx.study.expectations):
            _option_set(ctx, s, parent)
    _change(ctx, s, ctx.change_measures(aim.id))
    answers.build_blocks(ctx, s, ctx.change_measures(aim.id))
    single = [m for m in measures if m.type in ("likert", "numeric", "binary") and ctx.observed.get(m.name, 0) == 1
              and not (m.parent and m.type == "binary")]
    _single_wave(ctx, s, single)
    for parent in parents:
        if parent in coded_text:
            themes.build_blocks(ctx, s, parent, ctx.study.set_members(parent)[0].coding_frame_for)
    return s
