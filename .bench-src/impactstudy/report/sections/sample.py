"""The sample section: responses and retention by wave, the councils' flow through the waves, the sample
against the register of English upper-tier councils, and who stayed in the study (:mod:`impactstudy.report.retention`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import figures, retention, summaries
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import counts_text, pct, table


def build(ctx: Context) -> Section:
    """Responses and retention by wave, the councils' flow through the waves, the sample against the
    register, and the attrition model."""
    s = Section("sample", "The sample", "Who answered each wave, how many councils stayed in the study, and "
                "how the councils compare with all English upper-tier councils.")
    part = summaries.participation(ctx.inputs.panel, ctx.study)
    # who took part is not disclosive (docs/report.md: counts of councils and respondents taking part,
    # unlike counts of answers): shown in both bundles
    shown = pd.DataFrame({
        "Wave": part["wave_label"],
        "Councils": [f"{int(v):,}" for v in part["councils"]],
        "Respondents": [f"{int(v):,}" for v in part["respondents"]],
        "Councils also in the first wave": [f"{int(v):,}" for v in part["councils_retained"]],
        "Council retention": [pct(v) for v in part["council_retention"]],
        "Respondents also in the first wave": [f"{int(v):,}" for v in part["respondents_retained"]],
        "Respondent retention": [pct(v) for v in part["respondent_retention"]],
    })
    s.table(table("responses", "Responses and retention by wave", shown, numeric=list(shown.columns[1:])))

    flow = summaries.flow(ctx.inputs.linkage_summary.get("participation", {}), ctx.study)
    flow_text = flow.astype(object)
    flow_text["councils"] = [f"{int(v):,}" for v in flow["councils"]]
    for k in range(len(flow)):  # councils taking part: not disclosive, shown in both bundles
        for column in ("stayed", "left", "joined"):
            flow_text.loc[k, column] = "–" if k == 0 else f"{int(flow.loc[k, column]):,}"
    data = flow_text.rename(columns={"wave_label": "Wave", "councils": "Councils", "stayed": "Stayed from the previous wave",
                                     "left": "Left after the previous wave", "joined": "Joined"}).drop(columns="wave")
    title, subtitle = ("How councils moved through the waves",
                       "Councils present at each wave; stayed, left and joined relative to the previous wave")
    fig = (figures.flow_chart, (flow_text, title, subtitle))
    first, last = flow_text.iloc[0], flow_text.iloc[-1]
    alt = (f"Flow diagram: {first['councils']} councils at {first['wave_label']}, {last['councils']} at "
           f"{last['wave_label']}. The table below gives every number.")
    s.figure(*ctx.chart(*fig, "council_flow", title, subtitle, alt,
                         data, "Councils through the waves", numeric=list(data.columns[1:])))

    register = summaries.sample_vs_register(ctx.inputs.linkage_summary)
    for dimension, title in (("authority_type", "authority type"), ("region", "region")):
        sub = register[register["dimension"] == dimension].reset_index(drop=True)
        if sub.empty:
            continue
        full = pd.DataFrame({"sample": sub["sample"].to_numpy(dtype=float)}, index=sub["category"])
        full.loc["Total"] = full["sample"].sum()  # councils taking part: not disclosive
        sample_mask = np.zeros(len(full), dtype=bool)
        reg = np.append(sub["register"].to_numpy(dtype=float), sub["register"].sum())
        shown = pd.DataFrame({
            title.capitalize(): [str(c).replace("_", " ") for c in full.index],
            "Councils in the study": counts_text(full["sample"], sample_mask),
            "Councils in England": [f"{int(v):,}" for v in reg],
            "Share of councils in the study": [MARK if m else pct(a / b if b else np.nan)
                                               for a, b, m in zip(full["sample"], reg, sample_mask)],
        })
        s.table(table(f"sample-{dimension}", f"The sample against the register of English upper-tier councils, by {title}",
                      shown, numeric=list(shown.columns[1:])))

    retention.build_blocks(ctx, s)
    return s
