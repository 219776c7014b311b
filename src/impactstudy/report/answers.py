"""What readers quote, per Likert measure of an aim: how answers were spread at each wave (a stacked bar
chart and its table), the share answering at or above the measure's declared level with its interval
and change, and a warning where the proportional-odds model's assumption fails (with the cut-by-cut
odds ratios that do not need it). Called by the aim sections (:mod:`impactstudy.report.sections.aim`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import figures, findings, summaries
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK, protect_distribution, small
from impactstudy.report.tables import interval, number, pct, table
from impactstudy.study.config import Measure

ALPHA = 0.05


def _rows_of(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    if frame.empty or "measure" not in frame:
        return frame.iloc[:0]
    return frame[frame["measure"].isin(names)]


def answer_plan(ctx: Context, measure: Measure) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """One measure's answers by wave and level for all councils, and what the public report withholds of
    them: ``(counts, base, level_mask, share_mask)``, rows the waves in order, columns the levels.

    The distribution table and the share table are two views of the same counts, so both read this one
    plan (:func:`impactstudy.report.disclosure.protect_distribution`): a level withheld in one is never
    worked out from the other.
    """
    dist = _rows_of(ctx.inputs.distributions, [measure.name])
    dist = dist[dist["group"] == summaries.ALL] if len(dist) else dist
    waves = list(dict.fromkeys(dist["wave"])) if len(dist) else []
    counts = (dist.pivot_table(index="wave", columns="level", values="n", aggfunc="sum", fill_value=0)
              .reindex(index=waves, columns=list(measure.levels), fill_value=0).astype(float) if waves else
              pd.DataFrame(columns=list(measure.levels), dtype=float))
    base = dist.groupby("wave", sort=False)["n_wave"].first().reindex(waves).astype(float) if waves else pd.Series(dtype=float)
    if ctx.threshold is None:
        return counts, base, pd.DataFrame(False, index=counts.index, columns=counts.columns), pd.Series(False, index=counts.index)
    top = [lv for lv in measure.levels if measure.share_threshold is not None and lv >= measure.share_threshold[0]]
    levels, shares = protect_distribution(counts, base, ctx.threshold, top)
    return counts, base, levels, shares


def distribution_block(ctx: Context, s: Section, measures: list[Measure]) -> None:
    """A 100% stacked bar chart of each measure's answers by wave, and the table behind it."""
    names = [m.name for m in measures]
    dist = _rows_of(ctx.inputs.distributions, names)
    dist = dist[dist["group"] == summaries.ALL] if len(dist) else dist
    if dist.empty:
        return
    s.heading("How answers were spread")
    for measure in measures:
        counts, base, withheld, _ = answer_plan(ctx, measure)
        if counts.empty:
            continue
        labels = [measure.level_labels.get(lv, f"{lv:g}") for lv in measure.levels]
        shares, cells = [], []
        for wave in counts.index:
            n = float(base[wave])
            row = {"label": ctx.wave_labels.get(wave, wave)}
            text = {"Wave": ctx.wave_labels.get(wave, wave)}
            for lv, lab in zip(measure.levels, labels):
                hidden = bool(withheld.loc[wave, lv])
                share = counts.loc[wave, lv] / n if n > 0 else np.nan
                row[lab] = np.nan if hidden else share
                text[lab] = MARK if hidden else pct(share)
            text["Answers"] = MARK if ctx.threshold is not None and small(n, ctx.threshold) else f"{int(n):,}"
            shares.append(row)
            cells.append(text)
        frame, data = pd.DataFrame(shares), pd.DataFrame(cells)
        threshold = measure.share_threshold
        title = f"{measure.label}: answers by wave"
        if threshold is not None:
            top = [lab for lv, lab in zip(measure.levels, labels) if lv >= threshold[0]]
            first, last = frame.iloc[0][top].sum(min_count=len(top)), frame.iloc[-1][top].sum(min_count=len(top))
            if np.isfinite(first) and np.isfinite(last) and len(frame) > 1:
                title = f"“{threshold[1]}”: {pct(first)} at the first wave, {pct(last)} at the last"
        subtitle = f"{measure.label}: percentage of answers at each level of the scale, every answer counted once"
        if ctx.threshold is not None:
            subtitle += (f"; levels with 1 to {ctx.threshold - 1} answers, and levels that would reveal them, "
                         "are left blank")
        alt = (f"Stacked bar chart of the answers to {measure.label.lower()} at each wave. "
               "The table below gives every percentage.")
        fig = (figures.stacked_bar_chart, (frame, labels, title, subtitle))
        s.figure(*ctx.chart(*fig, f"distribution_{measure.name}", title, subtitle, alt, data,
                             f"{measure.label}: answers at each level by wave (%)", numeric=list(data.columns[1:])))


def share_block(ctx: Context, s: Section, measures: list[Measure]) -> None:
    """Per measure the share at or above its declared level at each wave, and its change from the first
    wave to the last (points, 95% CI, q)."""
    names = [m.name for m in measures]
    shares = _rows_of(ctx.inputs.shares, names)
    shares = shares[shares["group"] == summaries.ALL] if len(shares) else shares
    if shares.empty:
        return
    waves = [w for w in ctx.study.wave_ids if w in set(shares["wave"])]
    contrasts = ctx.inputs.contrasts
    last = f"{waves[-1]} - {waves[0]}" if len(waves) >= 2 else ""
    change = contrasts[(contrasts["model"] == "share") & (contrasts["group"] == summaries.ALL)
                       & (contrasts["contrast"] == last)].set_index("measure") if len(contrasts) else pd.DataFrame()
    rows = []
    for measure in measures:
        mine = shares[shares["measure"] == measure.name].set_index("wave")
        if mine.empty:
            continue
        planned = answer_plan(ctx, measure)[3]  # the same counts as the distribution table: one plan
        row = {"Question": measure.label, "Share counted": str(mine["share_label"].iloc[0])}
        for wave in waves:
            if wave not in mine.index:
                row[ctx.wave_labels.get(wave, wave)] = "–"
                continue
            r = mine.loc[wave]
            hidden = ctx.threshold is not None and (r["n_obs"] < ctx.threshold or r["n_councils"] < ctx.threshold
                                                    or bool(planned.get(wave, True)))
            ci = "" if pd.isna(r["ci_low"]) else f" ({interval(r['ci_low'], r['ci_high'], 0, 100)})"
            row[ctx.wave_labels.get(wave, wave)] = MARK if hidden else f"{pct(r['estimate'])}{ci}"
        c = change.loc[measure.name] if measure.name in change.index else None
        if c is None or pd.isna(c["estimate"]):
            row["Change, points (95% CI); q"] = "–"
        elif ctx.threshold is not None and (c["n_councils"] < ctx.threshold
                                            or bool(planned.get(waves[0], True)) or bool(planned.get(waves[-1], True))):
            row["Change, points (95% CI); q"] = MARK  # with one end's share it would give the other
        else:
            row["Change, points (95% CI); q"] = (f"{number(100 * c['estimate'], 0, signed=True)} "
                                                 f"({interval(c['ci_low'], c['ci_high'], 0, 100)}); "
                                                 f"q {findings.fmt_p(c['q_value'])}")
        rows.append(row)
    if not rows:
        return
    shown = pd.DataFrame(rows)
    s.heading("The share giving the top answers")
    s.text("The figure most often quoted from a survey is the share of people giving one of the top answers. Each "
           "answer counts once, so these are shares of respondents; the intervals allow for answers from the same "
           "council being alike, so they are wider than a simple percentage's interval would be.")
    s.table(table(f"shares-{s.id}", "Share of answers at or above the stated level, by wave (%, 95% CI)", shown,
                  numeric=list(shown.columns[2:]),
                  notes=["Intervals are council-clustered (CR1); the change is between the first and last wave, in "
                         "percentage points, with its Benjamini–Hochberg q-value across measures."]))


def po_block(ctx: Context, s: Section, measures: list[Measure]) -> None:
    """A warning, and the cut-by-cut log odds ratios, for measures where proportional odds fails."""
    names = [m.name for m in measures]
    check = _rows_of(ctx.inputs.ordinal_check, names)
    if check.empty:
        return
    failing = []
    for measure in measures:
        mine = check[(check["measure"] == measure.name) & (check["kind"] == "brant")]
        mine = mine[mine["p_value"] < ALPHA]
        if len(mine):
            failing.append((measure, mine))
    if not failing:
        s.text("The proportional-odds model (the ordinal rows of the model tables) assumes a change moves answers "
               "up or down the whole scale alike; a check of that assumption found no measure here where it clearly fails.")
        return
    s.heading("Where the ordinal model's assumption fails")
    listed = "; ".join(f"{m.label} ({', '.join(ctx.contrast_label(c) for c in rows['contrast'])})" for m, rows in failing)
    s.text("The ordinal model summarises a change by one odds ratio, assuming answers moved by the same amount at "
           f"every point of the scale. For {listed} the answers moved differently at different points (council-"
           "clustered Brant-type test, p < 0.05), so the single ordinal odds ratio is not a fair summary there: read "
           "the odds ratios of answering at or above each point of the scale below, or the change in mean score.")
    rows = []
    for measure, failed in failing:
        cuts = check[(check["measure"] == measure.name) & (check["kind"] == "cut") & check["contrast"].isin(failed["contrast"])]
        for r in cuts.itertuples():
            hidden = ctx.threshold is not None and r.n_councils < ctx.threshold
            value = ("–" if pd.isna(r.estimate) else
                     f"{np.exp(r.estimate):.2f} ({np.exp(r.ci_low):.2f} to {np.exp(r.ci_high):.2f})")
            rows.append({"Question": measure.label, "Comparison": ctx.contrast_label(r.contrast),
                         "Answer at or above": r.cut_label.replace(" or above", ""),
                         "Odds ratio (95% CI)": MARK if hidden else value})
    shown = pd.DataFrame(rows)
    s.table(table(f"ordinal-cuts-{s.id}", "Odds ratios of answering at or above each point of the scale, later against earlier wave",
                  shown, numeric=["Odds ratio (95% CI)"],
                  notes=["Above 1: more answers at or above that point at the later wave. If proportional odds held, "
                         "these would all be about equal. Council-clustered intervals; '–' where every answer at one "
                         "of the waves lies on one side of the point."]))


def build_blocks(ctx: Context, s: Section, measures: list[Measure]) -> None:
    """Every block of this module for the Likert ``measures`` of a section."""
    likert = [m for m in measures if m.type == "likert"]
    if not likert:
        return
    share_block(ctx, s, likert)
    distribution_block(ctx, s, likert)
    po_block(ctx, s, likert)
