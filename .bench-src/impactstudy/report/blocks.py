"""Blocks more than one section draws: trajectory small multiples and their data table, and the table of
contrasts behind a forest plot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from impactstudy.report import design_blocks, figures, findings, summaries
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import count_mask, counts_text, interval, number, partition_mask
from impactstudy.study.config import Measure

PANELS_PER_CHART = 6  # trajectory small multiples per chart: readable, and charts render in parallel
TRAJECTORY_NUMERIC = ("Mean", "95% CI", "Councils", "Respondents")


def trajectory_figure(ctx: Context, s: Section, traj: pd.DataFrame, measures: list[Measure], groups: list[str], name: str,
                       title: str, notes: Sequence[str] = ()) -> None:
    """Small multiples of trajectories, at most :data:`PANELS_PER_CHART` measures per chart."""
    chunks = [measures[i:i + PANELS_PER_CHART] for i in range(0, len(measures), PANELS_PER_CHART)]
    for k, chunk in enumerate(chunks):
        names = {m.name for m in chunk}
        _trajectory_chunk(ctx, s, traj[traj["measure"].isin(names)], chunk, groups,
                               name if len(chunks) == 1 else f"{name}_{k + 1}",
                               title if len(chunks) == 1 else f"{title} ({k + 1} of {len(chunks)})", notes)


def _trajectory_chunk(ctx: Context, s: Section, traj: pd.DataFrame, measures: list[Measure], groups: list[str], name: str,
                      title: str, notes: Sequence[str] = ()) -> None:
    traj = traj[traj["group"].isin(groups)].reset_index(drop=True)
    if traj.empty:
        return
    plotted, data = trajectory_data(ctx, traj)
    # one y scale for the panels only when they share a scale: a 0-100 amount beside a 1-5 rating would flatten it
    scales = {m.levels for m in measures}
    levels = next(iter(scales)) if len(scales) == 1 else ()
    ylim = (min(levels) - 0.2, max(levels) + 0.2) if levels and all(m.type == "likert" for m in measures) else None
    series = [(g, ctx.group_label(g)) for g in groups if g in set(traj["group"])]
    waves = [(w.id, w.label) for w in ctx.study.waves if w.id in set(traj["wave"])]
    subtitle = ("Mean of council means at each wave, with 95% confidence intervals"
                + (f"; points resting on fewer than {ctx.threshold} councils or respondents are not shown" if ctx.threshold else ""))
    fig = (figures.trajectory_chart, (plotted, [(m.name, m.label) for m in measures], series, waves, title, subtitle, ylim,))
    alt = (f"Line charts, one per measure, of the mean score at each wave for {', '.join(lbl for _, lbl in series)}. "
           "The table below gives every mean and interval.")
    s.figure(*ctx.chart(*fig, name, title, subtitle, alt, data, f"{title}: the data",
                         numeric=list(TRAJECTORY_NUMERIC), notes=notes))


def trajectory_data(ctx: Context, traj: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trajectory rows as plotted (withheld points NaN) and as published (withheld cells [c])."""
    # respondents answering are answer counts (groups add up to all councils: secondary suppression);
    # councils taking part are not disclosive (docs/report.md) and are always shown
    mask = partition_mask(traj, ["measure", "wave"], "group", summaries.ALL, "n_respondents", ctx.threshold)
    small_base = count_mask(traj["n_councils"], ctx.threshold) | count_mask(traj["n_respondents"], ctx.threshold)
    plotted = traj.assign(mean=traj["mean"].where(~small_base), ci_low=traj["ci_low"].where(~small_base),
                          ci_high=traj["ci_high"].where(~small_base))
    data = pd.DataFrame({
        "Measure": [ctx.label(m) for m in traj["measure"]], "Group": [ctx.group_label(g) for g in traj["group"]],
        "Wave": traj["wave_label"],
        "Mean": [MARK if b else number(v) for v, b in zip(traj["mean"], small_base)],
        "95% CI": [MARK if b else interval(lo, hi) for lo, hi, b in zip(traj["ci_low"], traj["ci_high"], small_base)],
        "Councils": counts_text(traj["n_councils"], np.zeros(len(traj), dtype=bool)),
        "Respondents": counts_text(traj["n_respondents"], mask | small_base),
    })
    return plotted, data


def contrast_data(ctx: Context, rows: pd.DataFrame) -> pd.DataFrame:
    hidden = rows["withheld"].to_numpy()
    return pd.DataFrame({
        "Measure": [ctx.label(m) for m in rows["measure"]],
        "Comparison": [ctx.contrast_label(c) for c in rows["contrast"]],
        "Group": [ctx.group_label(g) for g in rows["group"]],
        "Estimate": [MARK if h else number(v, signed=True) for v, h in zip(rows["estimate"], hidden)],
        # an interval below 95% (an exact test on few councils) says its level: findings.ci_text
        "95% CI": [MARK if h else findings.ci_text(lo, hi, w) for lo, hi, w, h in
                   zip(rows["ci_low"], rows["ci_high"], rows.get("warning", pd.Series([""] * len(rows))), hidden)],
        "q-value": [MARK if h else findings.fmt_p(q) for q, h in zip(rows["q_value"], hidden)],
        "In SDs (95% CI)": [MARK if h else v for v, h in zip(design_blocks.standardised(ctx, rows), hidden)],
        "Councils": counts_text(rows["n_councils"], np.zeros(len(rows), dtype=bool)),
        "Note": [str(f) for f in rows.get("flag", pd.Series([""] * len(rows)))],
    })
