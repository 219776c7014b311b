"""The expectations section: outcomes councils expected (an option set asked at one wave) against the
outcomes they reported achieving (a set asked at a later wave), worded from ``[intervention]``'s
``before``/``after`` or, by default, from those waves' labels.

The unit is the council throughout (see :mod:`impactstudy.model.expectations`): a council expected
(achieved) an outcome when most of its respondents said so; councils whose respondents split evenly
are left out and counted. The difference between the shares of councils achieving and expecting an
outcome comes with the interval that inverts the same exact test as its p-value, so they never disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import figures, findings, summaries
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import interval, number, pct
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
                f"Whether the outcomes councils expected {when_asked(ctx.study, first.expected, words.before)} were "
                f"the ones they reported achieving {when_asked(ctx.study, first.achieved, words.after)}.")
    s.text("Each council counts once. A council is taken to have expected (or achieved) an outcome when more than half "
           "of its respondents said so; a council whose respondents split evenly has no majority either way and is "
           "left out of that outcome's comparison (the table says how many). The p-value is McNemar's exact test of "
           "whether as many councils achieved the outcome as expected it; its interval is the one that inverts the same "
           "test, so the interval excludes zero exactly when p is below 0.05.")
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

        def share(option: str, column: str) -> float:
            return float(diff.loc[option, column]) if option in diff.index and column in diff else np.nan

        split = [int(diff.loc[o, "n_split"]) if o in diff.index and "n_split" in diff and pd.notna(diff.loc[o, "n_split"])
                 else 0 for o in options]
        data = pd.DataFrame({
            "Outcome": labels,
            "Councils compared": [MARK if hidden(diff, o) else f"{int(diff.loc[o, 'n_obs']):,}" for o in options],
            "Left out (respondents split)": [f"{n:,}" for n in split],
            f"Expected it {before} (% of councils)": [MARK if hidden(diff, o) else pct(share(o, "expected_share")) for o in options],
            f"Achieved it {after} (% of councils)": [MARK if hidden(diff, o) else pct(share(o, "achieved_share")) for o in options],
            "Achieved − expected, points (95% CI); p": [
                MARK if hidden(diff, o) else (f"{number(100 * diff.loc[o, 'estimate'], 0, signed=True)} "
                                              f"({interval(diff.loc[o, 'ci_low'], diff.loc[o, 'ci_high'], 0, 100)}); "
                                              f"p {findings.fmt_p(diff.loc[o, 'p_value'])}")
                for o in options],
            "Of councils expecting it, % achieving it (95% CI)": [
                MARK if hidden(met, o) or pd.isna(met.loc[o, "estimate"]) else
                f"{pct(met.loc[o, 'estimate'])} ({interval(met.loc[o, 'ci_low'], met.loc[o, 'ci_high'], 0, 100)})"
                for o in options],
        })
        frame_ = pd.DataFrame({"label": labels,
                               "first": [np.nan if hidden(diff, o) else share(o, "expected_share") for o in options],
                               "second": [np.nan if hidden(diff, o) else share(o, "achieved_share") for o in options]})
        title = f"Outcomes councils expected {before} against outcomes achieved {after}"
        subtitle = "Percentage of councils (most respondents agreeing) expecting and achieving each outcome"
        fig = (figures.dumbbell_chart, (frame_, "Expected", "Achieved", title, subtitle, "Percentage of councils"))
        alt = ("Dot plot pairing, for each outcome, the percentage of councils expecting it with the percentage "
               "achieving it. The table below gives the values.")
        s.figure(*ctx.chart(*fig, f"expectations_{pair.expected}", title, subtitle, alt, data,
                             "Expected against achieved outcomes (councils)", numeric=list(data.columns[1:])))
    return s
