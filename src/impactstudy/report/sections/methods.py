"""The methods and data quality section: models fitted, missing answers, rows set aside, linkage, codebook.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import design_blocks, findings, summaries
from impactstudy.report.codebook import codebook_block
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import TOTAL, protect_counts, with_totals
from impactstudy.report.tables import counts_text, table


def build(ctx: Context) -> Section:
    """Models fitted, missing answers, rows set aside and how responses were linked to councils."""
    s = Section("methods", "Methods and data quality",
                "How the results were produced, what is missing and why, and which rows the pipeline set aside.")
    settings = ctx.inputs.models.get("settings", {})
    s.heading("Models")
    records = ctx.inputs.models.get("fits", [])
    records = list(records.values()) if isinstance(records, dict) else records
    ddf = next((str(f["correction"]) for f in records if f.get("model") == "lmm" and f.get("correction")),
               "Satterthwaite df (as lmerTest)")
    s.text("Change over time is estimated with a linear mixed model (random intercepts for councils, for each "
           "council at each wave, so that councils may change by different amounts, and for respondents who "
           "answered more than once; each comparison of two waves fitted to those two waves, so that its "
           f"council-level spread is its own; {ddf}), with a GEE (exchangeable "
           "correlation within councils, robust errors), a proportional-odds model for Likert items and paired "
           "council-level tests as checks. Binary items use McNemar's exact test. q-values are Benjamini–Hochberg "
           "adjusted across measures within each model, comparison and group. Shares of answers at or above a level "
           "have council-clustered intervals; the proportional-odds assumption is checked for every Likert measure; "
           "differences between groups are tested directly (wave × group interaction) and shown adjusted for where "
           "councils started; who stayed is modelled with Firth-penalised logistic regression, and the retention-"
           "weighted model (gee_ipw) uses stabilised, truncated weights with small-sample (CR2) errors. "
           "docs/secondary-analyses.md gives the details and the R code that reproduces each number.")
    if settings:
        s.items([f"{k.replace('_', ' ')}: {v}" for k, v in sorted(settings.items()) if not isinstance(v, (dict, list))])
    fits = ctx.inputs.models.get("fits", [])
    if isinstance(fits, dict):
        fits = [{"key": k, **v} for k, v in fits.items()]
    if fits:
        frame = pd.DataFrame(fits)
        keep = [c for c in ("measure", "model", "group_by", "formula", "n_councils", "converged", "correction", "error") if c in frame]
        shown = frame[keep].copy()
        if "n_councils" in shown:
            shown["n_councils"] = counts_text(shown["n_councils"], np.zeros(len(shown), dtype=bool))
        if "measure" in shown:
            shown["measure"] = [ctx.label(str(m)) for m in shown["measure"]]
        if "model" in shown:  # the model's name as the findings give it, not its code
            shown["model"] = [_first_upper(findings.MODEL_NAMES.get(str(m), str(m))) for m in shown["model"]]
        shown = shown.astype(object).where(shown.notna(), "")
        shown.columns = [c.replace("_", " ").capitalize() for c in shown.columns]
        s.table(table("model-fits", "Models fitted", shown, numeric=["N councils"]))

    design_blocks.precision_block(ctx, s)

    s.heading("Missing answers")
    missing = summaries.missing_reasons(ctx.inputs.panel, ctx.study)
    if missing.empty:
        s.text("No answers are missing.")
    else:
        pivot = missing.groupby(["measure", "reason"])["n"].sum().unstack(fill_value=0)
        pivot = pivot.loc[:, pivot.sum() > 0].astype(float)
        # answer counts: primary and secondary suppression with both margins published, so the totals by
        # question and by reason show what can be shown and no withheld cell follows from them; zeros are
        # published (a row leaves out the respondents who answered, so a zero never tells everyone's answer)
        full, hidden = (protect_counts(pivot, ctx.threshold) if ctx.threshold is not None else
                        (with_totals(pivot), pd.DataFrame(False, index=with_totals(pivot).index,
                                                          columns=with_totals(pivot).columns)))
        shown = pd.DataFrame({"Question": [ctx.label(m) if m != TOTAL else "All questions" for m in full.index]})
        for reason in full.columns:
            shown["All reasons" if reason == TOTAL else reason] = counts_text(full[reason], hidden[reason].to_numpy())
        s.table(table("missing", "Missing answers by question and reason (all waves)", shown, numeric=list(shown.columns[1:]),
                      notes=["'No answer' is an item left blank; other reasons are the survey's own answer options "
                             "or values the pipeline could not accept (quarantined below)."]))

    s.heading("Rows and values set aside")
    waves = ctx.inputs.ingest_report.get("waves", [])
    if waves:
        counts = pd.DataFrame({"accepted": [w["rows_accepted"] for w in waves],
                               "quarantined": [w["rows_quarantined"] for w in waves]},
                              index=[ctx.wave_labels.get(w["wave"], w["wave"]) for w in waves]).astype(float)
        # rows of the files, not answers: not disclosive (docs/report.md), shown in both bundles
        full = with_totals(counts)
        hidden = pd.DataFrame(False, index=full.index, columns=full.columns)
        shown = pd.DataFrame({"Wave": list(full.index),
                              "Rows accepted": counts_text(full["accepted"], hidden["accepted"].to_numpy()),
                              "Rows set aside": counts_text(full["quarantined"], hidden["quarantined"].to_numpy()),
                              "Rows read": counts_text(full["Total"], hidden["Total"].to_numpy())})
        s.table(table("ingest", "Rows read from each raw file", shown, numeric=list(shown.columns[1:])))
    quarantine = summaries.quarantine_summary(ctx.inputs.quarantine, ctx.inputs.link_quarantine)
    if not quarantine.empty:
        shown = pd.DataFrame({"Wave": [ctx.wave_labels.get(w, w) for w in quarantine["wave"]],
                              "What": ["Whole row" if sc == "row" else "Single answer" for sc in quarantine["scope"]],
                              "Reason": quarantine["reason"],
                              "Number": [f"{int(v):,}" for v in quarantine["n"]]})
        s.table(table("quarantine", "Rows and answers set aside, by reason", shown, numeric=["Number"],
                      notes=["Set-aside rows are listed one by one in quarantine.csv and quarantine_link.csv for the research team."]))
    methods = ctx.inputs.linkage_summary.get("rows_by_method", {})
    if methods:
        names = {"code": "GSS or DfE code", "exact": "Exact name", "alias": "Known alternative name",
                 "fuzzy": "Close spelling (checked)", "unmatched": "Not matched (set aside)"}
        values = pd.Series([float(methods[k]) for k in methods])
        full = pd.DataFrame({"n": np.append(values.to_numpy(), values.sum())})  # rows, not answers
        mask = np.zeros(len(full), dtype=bool)
        shown = pd.DataFrame({"How the council was identified": [names.get(k, k) for k in methods] + ["Total"],
                              "Rows": counts_text(full["n"], mask)})
        s.table(table("linkage", "How each response was linked to its council", shown, numeric=["Rows"]))
    _reorganised(ctx, s)
    codebook_block(ctx, s)
    return s


def _first_upper(text: str) -> str:
    """The text with its first letter a capital, the rest as written ("GEE", "McNemar's" keep theirs)."""
    return text[:1].upper() + text[1:]


def _reorganised(ctx: Context, s: Section) -> None:
    """Councils the register reorganised during the study, and how the panel treats them (named in the
    internal report only: which councils took part is not published)."""
    items = ctx.inputs.linkage_summary.get("reorganised", [])
    if not items:
        return
    s.heading("Councils reorganised during the study")
    if ctx.public:
        kinds = pd.Series([i["kind"] for i in items]).value_counts()
        s.text("Councils reorganised between the waves, by kind: " + "; ".join(f"{k} {n}" for k, n in kinds.items())
               + ". Code changes and same-name replacements are one council throughout; merged councils are treated as "
               "the study’s “mergers” setting says, and a split council is never mapped to one of its parts "
               "(docs/councils.md).")
    else:
        s.items([i["text"] for i in items])
