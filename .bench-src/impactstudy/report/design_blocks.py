"""How precise the study can be: the intraclass correlations and the minimum detectable effect, for
the methods section, and the standardised effect size of a contrast for the contrast tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import interval, number, table


def standardised(ctx: Context, rows: pd.DataFrame) -> list[str]:
    """Per contrast row (``measure, model, contrast, group``): its change in SDs of first-wave answers
    with the interval (``effect_sizes.csv``), '–' where there is none."""
    sizes = ctx.inputs.effect_sizes
    if sizes.empty or rows.empty:
        return ["–"] * len(rows)
    keyed = sizes.set_index(["measure", "model", "contrast", "group"])
    out = []
    for r in rows.itertuples():
        key = (r.measure, r.model, r.contrast, r.group)
        if key not in keyed.index or pd.isna(keyed.loc[key, "estimate"]):
            out.append("–")
            continue
        e = keyed.loc[key]
        out.append(f"{number(e['estimate'], signed=True)} ({interval(e['ci_low'], e['ci_high'])})")
    return out


def precision_block(ctx: Context, s: Section) -> None:
    """ICCs with intervals and the minimum detectable effect, in words."""
    design = ctx.inputs.models.get("design") or {}
    icc = ctx.inputs.icc
    s.heading("How alike answers are within a council, and what the study can detect")
    if len(icc):
        first = icc.drop_duplicates("measure")
        hidden = ctx.threshold is not None and ctx.inputs.linkage_summary.get("councils", 0) < ctx.threshold
        shown = pd.DataFrame({
            "Question": [ctx.label(m) for m in first["measure"]],
            "Wave": [ctx.wave_labels.get(w, w) for w in first["wave"]],
            "ICC (95% CI)": [MARK if hidden else f"{v:.2f} ({lo:.2f} to {hi:.2f})" if np.isfinite(v) else "–"
                             for v, lo, hi in zip(first["icc"], first["ci_low"], first["ci_high"])],
            "Councils": [f"{int(v):,}" for v in first["n_councils"]],
            "Answers per council": [f"{v:.1f}" for v in first["mean_per_council"]],
        })
        s.text("The intraclass correlation (ICC) is the share of the variation in answers that lies between councils: "
               "0 means a council's respondents are no more alike than any two people, 1 that they always agree. The "
               "higher it is, the less each extra respondent from the same council adds, and the more the number of "
               "councils limits what the study can show.")
        s.table(table("icc", "Intraclass correlation of the first wave's answers", shown,
                      numeric=["ICC (95% CI)", "Councils", "Answers per council"],
                      notes=["One-way analysis of variance with Searle's F-based interval (exact with equal council "
                             "sizes); tables/icc.csv has every wave."]))
    mde = design.get("minimum_detectable_effect")
    if mde is not None and np.isfinite(mde):
        s.text(f"With {design['councils']} councils, about {design['respondents_per_council']:.1f} respondents per council "
               f"in a wave and a typical ICC of {design['icc']:.2f}, the smallest change between two waves this study "
               f"would detect 8 times in 10 (80% power, 5% two-sided test) is {mde:.2f} standard deviations of the answers "
               "(0.2 is conventionally a small change, 0.5 medium, 0.8 large). Smaller real changes may well be missed: "
               "an interval that includes zero is then 'not shown', not 'no change'. This assumes different people "
               "answer each wave and councils' levels do not persist, the cautious case; the models' own intervals "
               "use the data's actual structure.")
