"""Do groups of councils change by different amounts? The blocks of the groups section that answer it:
the wave x group interaction test per measure, the difference in change between each group and the
largest one (with its interval and q-value), and, where a group started lower (or higher) and gained
more (or less), the regression-to-the-mean caution with the change adjusted for where councils started.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from impactstudy.report import findings
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import interval, number, table
from impactstudy.study.config import Measure


def _difference_label(ctx: Context, group: str) -> str:
    mine, _, reference = group.partition(" - ")
    return f"{ctx.group_label(mine)} against {ctx.group_label(reference)}"


def interaction_block(ctx: Context, s: Section, covariate: str, measures: list[Measure], notes: Sequence[str] = ()) -> None:
    """Per measure the joint test that change is the same in every group (models.json ``interaction``)."""
    fits = [f for f in ctx.inputs.models.get("fits", []) if isinstance(f, dict) and f.get("model") == "lmm"
            and f.get("group_by") == covariate and isinstance(f.get("interaction"), dict)]
    by_measure = {f["measure"]: f["interaction"] for f in fits}
    rows = [(m, by_measure[m.name]) for m in measures if m.name in by_measure and by_measure[m.name].get("p_value") is not None]
    rows = [(m, t) for m, t in rows if np.isfinite(t["p_value"])]
    if not rows:
        return
    q = multipletests([t["p_value"] for _, t in rows], method="fdr_bh")[1]
    shown = pd.DataFrame({
        "Question": [m.label for m, _ in rows],
        "F (df)": [f"{t['F']:.2f} ({t['num_df']:.0f}, {t['den_df']:.1f})" for _, t in rows],
        "p-value": [findings.fmt_p(t["p_value"]) for _, t in rows],
        "q-value": [findings.fmt_p(v) for v in q],
    })
    hidden = ctx.threshold is not None and ctx.inputs.linkage_summary.get("councils", 0) < ctx.threshold
    if hidden:
        shown.iloc[:, 1:] = MARK
    s.text(f"Does change differ between groups of {covariate.replace('_', ' ')}? Comparing the groups' intervals by eye "
           "does not answer that (two intervals can overlap while the groups clearly differ), so each measure has a "
           "test that the change across the waves is the same in every group. A small q-value says the groups changed "
           "by different amounts.")
    s.table(table(f"interaction-{covariate}", f"Test that change is the same in every group of {covariate.replace('_', ' ')}",
                  shown, numeric=["F (df)", "p-value", "q-value"],
                  notes=["Wave × group interaction in the linear mixed model, F test with "
                         f"{_df_method(t for _, t in rows)}; q-values Benjamini–Hochberg across measures.", *notes]))


DF_METHODS = {"satterthwaite": "Satterthwaite denominator degrees of freedom (as lmerTest)",
              "kenward-roger": "Kenward–Roger scaling and denominator degrees of freedom (as pbkrtest)"}


def _df_method(tests: object) -> str:
    """The df method(s) of the interaction tests (``models.json``'s ``method``; Satterthwaite before it was recorded)."""
    methods = sorted({str(t.get("method", "satterthwaite")) for t in tests})  # type: ignore[attr-defined]
    return " / ".join(DF_METHODS.get(m, m) for m in methods)


def difference_block(ctx: Context, s: Section, covariate: str, measures: list[Measure], notes: Sequence[str] = ()) -> None:
    """Each group's change minus the largest group's, first wave to last: raw and adjusted for the start."""
    contrasts = ctx.inputs.contrasts
    if contrasts.empty:
        return
    waves = ctx.study.wave_ids
    last = f"{waves[-1]} - {waves[0]}"
    names = [m.name for m in measures]
    pick = (contrasts["measure"].isin(names) & (contrasts["contrast"] == last)
            & contrasts["group"].str.startswith(f"{covariate}=") & contrasts["group"].str.contains(" - ", regex=False))
    raw = contrasts[pick & (contrasts["model"] == "lmm")]
    adjusted = contrasts[pick & (contrasts["model"] == "change_adjusted")].set_index(["measure", "group"])
    if raw.empty:
        return
    traj = ctx.trajectories
    start = traj[(traj["wave"] == waves[0])].set_index(["measure", "group"])["mean"] if len(traj) else pd.Series(dtype=float)
    # a group's own councils (its within-group row): a difference is withheld when either group is small
    sizes = contrasts[(contrasts["model"] == "lmm") & (contrasts["contrast"] == last)].set_index(["measure", "group"])["n_councils"]
    rows, caution = [], []
    for r in raw.itertuples():
        mine, _, reference = r.group.partition(" - ")
        smallest = min(sizes.get((r.measure, mine), 0), sizes.get((r.measure, reference), 0))
        hidden = ctx.threshold is not None and smallest < ctx.threshold
        adj = adjusted.loc[(r.measure, r.group)] if (r.measure, r.group) in adjusted.index else None
        gap = start.get((r.measure, mine), np.nan) - start.get((r.measure, reference), np.nan)
        if not hidden and np.isfinite(gap) and np.isfinite(r.estimate) and gap * r.estimate < 0:
            clear = bool(r.ci_low > 0 or r.ci_high < 0)
            caution.append((ctx.label(r.measure), _difference_label(ctx, r.group), clear))
        rows.append({
            "Question": ctx.label(r.measure), "Groups": _difference_label(ctx, r.group),
            "Difference at the first wave": MARK if hidden or not np.isfinite(gap) else number(gap, signed=True),
            "Difference in change (95% CI); q": MARK if hidden else (
                "–" if pd.isna(r.estimate) else
                f"{number(r.estimate, signed=True)} ({interval(r.ci_low, r.ci_high)}); q {findings.fmt_p(r.q_value)}"),
            "Adjusted for the start (95% CI)": MARK if hidden else (
                "–" if adj is None or pd.isna(adj["estimate"]) else
                f"{number(adj['estimate'], signed=True)} ({interval(adj['ci_low'], adj['ci_high'])})"),
        })
    shown = pd.DataFrame(rows)
    s.table(table(f"group-differences-{covariate}", f"Change from the first wave to the last: each group against the largest "
                  f"({ctx.contrast_label(last)})", shown, numeric=list(shown.columns[2:]),
                  notes=["Difference in change: the group's change minus the largest group's, from the linear mixed "
                         f"model with a wave × group interaction ({'; '.join(sorted(set(raw['correction'].dropna()) - {''})) or 'Satterthwaite df'}); q-values across measures. Adjusted: "
                         "the same difference in council means, allowing for each council's mean at the first wave "
                         "(ordinary least squares over councils answering both waves).", *notes]))
    if caution:
        clear = [c for c in caution if c[2]]
        shown_cases = clear or caution[:3]
        examples = "; ".join(f"{q}: {g}" for q, g, _ in shown_cases)
        more = len(caution) - len(shown_cases)
        s.text("Regression to the mean: a group that starts lower tends to rise at the next measurement even if nothing "
               "acts on it, because part of any low score is chance that does not repeat (and a high start tends to fall). "
               f"{'Here a group that started lower gained clearly more, or started higher and gained clearly less' if clear else 'Here some groups that started lower gained more, or started higher and gained less'} "
               f"({examples}{f'; and {more} more' if more > 0 else ''}): the pattern regression to the mean produces. The "
               "adjusted column allows for each council's start; where it is much closer to zero than the difference in "
               "change, the groups' different gains may be mostly regression to the mean.")


def build_blocks(ctx: Context, s: Section, covariate: str, measures: list[Measure], notes: Sequence[str] = ()) -> None:
    """Both blocks for one grouping covariate; ``notes`` are added to both tables' notes."""
    interaction_block(ctx, s, covariate, measures, notes)
    difference_block(ctx, s, covariate, measures, notes)
