"""The expectations section: outcomes respondents expected (an option set asked at one wave) against the
outcomes they reported achieving (a set asked at a later wave), worded from ``[intervention]``'s
``before``/``after`` or, by default, from those waves' labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import figures, findings, summaries
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import count_mask, interval, number, pct
from impactstudy.study.config import Study


def when_asked(study: Study, parent: str, words: str | None) -> str:
    """The words for when option set ``parent`` was asked: ``words`` when the config gives them, else
    the label of the (first) wave it was asked in, in brackets ("(Baseline survey)")."""
    if words:
        return words
    waves = [w for m in study.set_members(parent) for w in m.waves]
    labels = {w.id: w.label for w in study.waves}
    return f"({labels[waves[0]]})" if waves else ""


def build(ctx: Context) -> Section | None:
    """Expected outcomes against achieved outcomes; None when the study pairs none."""
    frame = ctx.inputs.expectations
    if not ctx.study.expectations or frame.empty:
        return None
    words = ctx.study.intervention
    first = ctx.study.expectations[0]
    s = Section("expectations", "Expectations against outcomes",
                f"Whether the outcomes respondents expected {when_asked(ctx.study, first.expected, words.before)} were "
                f"the ones they reported achieving {when_asked(ctx.study, first.achieved, words.after)}.")
    for pair in ctx.study.expectations:
        before = when_asked(ctx.study, pair.expected, words.before)
        after = when_asked(ctx.study, pair.achieved, words.after)
        names = {pair.expected, *(m.name for m in ctx.study.set_members(pair.expected))}
        cell = frame[frame["expected"].isin(names) & (frame["group"] == summaries.ALL)]
        met = cell[cell["model"] == "expectation_met"].set_index("option")
        diff = cell[cell["model"] == "mcnemar"].set_index("option")
        options = list(dict.fromkeys(cell["option"]))
        if not options:
            continue
        labels = [cell[cell["option"] == o]["option_label"].iloc[0] for o in options]

        def hidden(table_: pd.DataFrame, option: str) -> bool:
            if option not in table_.index:
                return True
            r = table_.loc[option]
            return ctx.threshold is not None and (r["n_obs"] < ctx.threshold or r["n_councils"] < ctx.threshold)

        expected = summaries.option_shares(ctx.inputs.panel, ctx.study, pair.expected)
        achieved = summaries.option_shares(ctx.inputs.panel, ctx.study, pair.achieved)
        share = {}
        for name, sh in (("expected", expected), ("achieved", achieved)):
            sh = sh[sh["group"] == summaries.ALL].set_index("option")
            small = count_mask(sh["selected"], ctx.threshold) | count_mask(sh["base"], ctx.threshold)
            share[name] = sh["share"].where(~small)
        data = pd.DataFrame({
            "Outcome": labels,
            f"Expected {before} (%)": [pct(share["expected"].get(o, np.nan)) if pd.notna(share["expected"].get(o, np.nan)) else MARK for o in options],
            f"Achieved {after} (%)": [pct(share["achieved"].get(o, np.nan)) if pd.notna(share["achieved"].get(o, np.nan)) else MARK for o in options],
            "Of those expecting it, % achieving it (95% CI)": [
                MARK if hidden(met, o) else f"{pct(met.loc[o, 'estimate'])} ({interval(met.loc[o, 'ci_low'], met.loc[o, 'ci_high'], 0, 100)})"
                for o in options],
            "Achieved − expected, points (95% CI); p": [
                MARK if hidden(diff, o) else (f"{number(100 * diff.loc[o, 'estimate'], 0, signed=True)} "
                                              f"({interval(diff.loc[o, 'ci_low'], diff.loc[o, 'ci_high'], 0, 100)}); "
                                              f"p {findings.fmt_p(diff.loc[o, 'p_value'])}")
                for o in options],
        })
        frame_ = pd.DataFrame({"label": labels, "first": [share["expected"].get(o, np.nan) for o in options],
                               "second": [share["achieved"].get(o, np.nan) for o in options]})
        title = f"Outcomes expected {before} against outcomes achieved {after}"
        subtitle = "Percentage of respondents selecting each outcome at each wave; McNemar's exact test in the table"
        fig = (figures.dumbbell_chart, (frame_, "Expected", "Achieved", title, subtitle,))
        alt = "Dot plot pairing, for each outcome, the percentage expecting it with the percentage achieving it. The table below gives the values."
        s.figure(*ctx.chart(*fig, f"expectations_{pair.expected}", title, subtitle, alt, data,
                             "Expected against achieved outcomes", numeric=list(data.columns[1:])))
    return s
