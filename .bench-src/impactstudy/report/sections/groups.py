"""The groups section: change by each ``group_by`` covariate (trajectories and forest plots).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import figures, findings, group_tests, summaries
from impactstudy.report.blocks import (
    PANELS_PER_CHART, TRAJECTORY_NUMERIC, contrast_data, trajectory_data, trajectory_figure,
)
from impactstudy.report.context import Context, Section
from impactstudy.report.tables import count_mask, table
from impactstudy.study.config import Measure
from impactstudy.study.names import file_slug


def headline_measures(ctx: Context, measures: list[Measure], groups: list[str]) -> list[Measure]:
    """At most :data:`PANELS_PER_CHART` measures whose groups' LMM changes from the first wave to the last
    differ most (published estimates only), in study order; the first ones when there are no contrasts."""
    if len(measures) <= PANELS_PER_CHART:
        return measures
    contrasts = ctx.inputs.contrasts
    spread = pd.Series(dtype=float)
    if not contrasts.empty:
        last = f"{ctx.study.wave_ids[-1]} - {ctx.study.wave_ids[0]}"
        rows = contrasts[(contrasts["model"] == "lmm") & (contrasts["contrast"] == last)
                         & contrasts["group"].isin([g for g in groups if g != summaries.ALL])]
        rows = rows[~count_mask(rows["n_councils"], ctx.threshold) & rows["estimate"].notna()]
        spread = rows.groupby("measure")["estimate"].agg(lambda e: e.max() - e.min())
    order = {m.name: i for i, m in enumerate(measures)}
    ranked = sorted(measures, key=lambda m: (-spread.get(m.name, -np.inf), order[m.name]))
    keep = {m.name for m in ranked[:PANELS_PER_CHART]}
    return [m for m in measures if m.name in keep]


def not_recorded(ctx: Context, covariate: str) -> int:
    """How many councils in the panel have no value for ``covariate``."""
    councils = ctx.inputs.panel[["council_code", covariate]].drop_duplicates("council_code")
    return int(councils[covariate].isna().sum())


def unrecorded_notes(ctx: Context, covariate: str) -> list[str]:
    """The table note saying how many councils have no value for ``covariate`` (none when every council has one)."""
    n = not_recorded(ctx, covariate)
    if not n:
        return []
    return [f"{n} council{'s have' if n > 1 else ' has'} no recorded {covariate}: shown as “{summaries.NOT_RECORDED}” "
            f"in the charts and left out of the models by {covariate}."]


def build(ctx: Context) -> Section | None:
    """Change by each ``group_by`` covariate: trajectories and forest plots; None without groups."""
    if not ctx.group_by:
        return None
    measures = ctx.change_measures()
    if not measures:
        return None
    s = Section("groups", "Differences by group",
                f"Change broken down by {', '.join(ctx.group_by)}. Groups are small, so each group's interval is wide; "
                "whether groups changed by different amounts is answered by the tests and differences in change below, "
                "not by whether their intervals overlap.")
    names = [m.name for m in measures]
    traj = ctx.trajectories[ctx.trajectories["measure"].isin(names)]
    for covariate in ctx.group_by:
        groups = [summaries.ALL] + sorted(g for g in set(traj["group"]) if g.startswith(f"{covariate}="))
        headline = headline_measures(ctx, measures, groups)
        noun = ctx.measures_noun(headline)
        title = f"{noun[:1].upper() + noun[1:]} over time by {covariate}"
        if len(headline) < len(measures):
            s.text(f"With {len(measures)} measures, the chart shows the {len(headline)} whose change from the first "
                   f"wave to the last differs most between groups of {covariate}; the table after it gives every "
                   "measure's group means, and the forest plot below every measure's change by group.")
            title += f": the {len(headline)} measures whose groups differ most"
        notes = unrecorded_notes(ctx, covariate)
        slug = file_slug(covariate)  # a covariate is a councils-file header: 'Inspection grade' names no file
        trajectory_figure(ctx, s, traj, headline, groups, f"trajectories_by_{slug}", title, notes)
        if len(headline) < len(measures):
            every = traj[traj["group"].isin(groups)].reset_index(drop=True)
            s.table(table(f"trajectories-by-{slug}-all", f"Mean of council means by {covariate}, every measure",
                          trajectory_data(ctx, every)[1], numeric=list(TRAJECTORY_NUMERIC), notes=notes))
        contrasts = ctx.inputs.contrasts
        if contrasts.empty:
            continue
        last = f"{ctx.study.wave_ids[-1]} - {ctx.study.wave_ids[0]}"
        # with few councils (council-level rows exist) a group's change rests on its councils, as the key findings
        few = bool(((contrasts["model"] == findings.COUNCIL_LEVEL) & contrasts["measure"].isin(names)).any())
        rows = contrasts[contrasts["measure"].isin(names) & (contrasts["contrast"] == last)
                         & (contrasts["model"] == (findings.COUNCIL_LEVEL if few else "lmm"))
                         & contrasts["group"].isin(groups)].copy()
        if rows.empty:
            continue
        rows["withheld"] = count_mask(rows["n_councils"], ctx.threshold)
        frame = pd.DataFrame({"row": rows["measure"], "series": rows["group"],
                              "estimate": rows["estimate"].where(~rows["withheld"]),
                              "ci_low": rows["ci_low"].where(~rows["withheld"]), "ci_high": rows["ci_high"].where(~rows["withheld"])})
        title = f"Change from {ctx.wave_labels[ctx.study.wave_ids[0]].lower()} to the last wave, by {covariate}"
        subtitle = (("Council-weighted change in mean score (exact sign-flip test on each group's council changes), "
                     "intervals at the highest level the councils allow; none for a group with fewer than 3 councils "
                     "at both waves") if few else
                    "Change in mean score (linear mixed model with a wave × group interaction), 95% confidence intervals")
        data = contrast_data(ctx, rows)
        fig = (figures.forest_chart, (frame, [(m.name, m.label) for m in measures],
                                   [(g, ctx.group_label(g)) for g in groups if g in set(rows["group"])], title, subtitle,
                                   "Change in mean score",))
        alt = f"Forest plot of the change in each measure by {covariate}. The table below gives every estimate."
        s.figure(*ctx.chart(*fig, f"forest_by_{slug}", title, subtitle, alt, data, f"Change by {covariate}",
                             numeric=["Estimate", "95% CI", "q-value", "In SDs (95% CI)", "Councils"], notes=notes))
        group_tests.build_blocks(ctx, s, covariate, measures, notes)
    return s
