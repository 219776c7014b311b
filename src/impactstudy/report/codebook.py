"""The codebook in the methods section: what each variable of the panels and of ``panel_long.sav`` /
``.dta`` holds (:func:`impactstudy.study.codebook.codebook`), as two report tables, so it is on the page,
in ``tables/codebook.csv`` and ``tables/codebook-sources.csv``, in the workbook and in Word.

The missing codes are those of the SPSS and Stata exports: the internal codebook also lists the reasons
the raw files declared themselves (their own user-missing labels found in the data); the public one lists
the study's declared reasons only, since a reason found in the data says that someone gave it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from impactstudy.report.context import Context, Section
from impactstudy.report.tables import table
from impactstudy.study.codebook import codebook


def observed(panel: pd.DataFrame) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per measure in the long panel: the largest valid answer, and every missing reason given."""
    if panel.empty:
        return {}, {}
    by_measure = panel.groupby("measure", observed=True, sort=False)
    maxima = by_measure["value"].max().dropna().to_dict()
    reasons = panel.loc[panel["missing_reason"].notna(), ["measure", "missing_reason"]].drop_duplicates()
    extra = reasons.groupby("measure", observed=True)["missing_reason"].agg(lambda r: sorted(map(str, r))).to_dict()
    return {str(k): float(v) for k, v in maxima.items()}, {str(k): v for k, v in extra.items()}


def column_labels(ingest_report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Wave id → raw column → the label the raw file gave it (``ingest_report.json``)."""
    return {w["wave"]: dict(w.get("column_labels", {})) for w in ingest_report.get("waves", [])}


def codebook_block(ctx: Context, s: Section) -> None:
    """The codebook's two tables under their own heading."""
    maxima, extra = observed(ctx.inputs.panel)
    measures, sources = codebook(ctx.study, column_labels(ctx.inputs.ingest_report), maxima,
                                 None if ctx.public else extra)
    if measures.empty:
        return
    s.heading("Codebook")
    s.text("What each variable of the panels (panel_long.parquet, panel_wide.parquet) and of the SPSS and Stata files "
           "(panel_long.sav, panel_wide.sav, panel_long.dta, panel_wide.dta) holds. Missing codes are SPSS user-missing "
           "values and Stata extended missing values (.a, .b …), each labelled with its reason; an item left blank, or an "
           "answer set aside (out of range or not recognised; see below), is system-missing (.).")
    s.table(table("codebook", "Codebook: the measures", measures,
                  notes=["In brackets after each type, its measurement level as the SPSS files record it: ordinal for "
                         "scales, scale for numbers, nominal for categories."]))
    s.table(table("codebook-sources", "Codebook: where each measure comes from in each wave", sources,
                  notes=["Recodes map a wave's raw answer to the measure's code before anything else; a reversed "
                         "wave asked the scale the other way round, and its answers are turned round to match "
                         "the other waves."]))
