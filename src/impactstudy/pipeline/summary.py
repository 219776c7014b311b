"""The end-of-run summary: what was read, what was set aside and why, and what to look at.

A researcher must never learn from the report's attrition table that rows were lost: every run ends
with these lines on the console, built from the files the stages wrote (``ingest_report.json``,
``linkage_summary.json``), so the summary says exactly what the outputs hold. The command line prints
them; this module only builds them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from impactstudy.pipeline.paths import StudyPaths

SHOWN = 5  # answers, councils or warnings listed by name before "… and N more"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _counts(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason.lower() if reason[1:2].islower() else reason}" for reason, n in by_reason.items())


def _more(items: list[str], total: int) -> list[str]:
    return items + ([f"    … and {total - len(items)} more"] if total > len(items) else [])


def ingest_lines(report: dict[str, Any], study: str) -> list[str]:
    """Per wave: rows read, accepted and set aside by reason; the answers the config does not declare."""
    lines = []
    for wave in report.get("waves", []):
        aside = wave.get("rows_set_aside_by_reason", {})
        line = (f"ingest {wave['wave']}: {wave['rows_read']:,} rows read, {wave['rows_accepted']:,} accepted, "
                f"{wave['rows_quarantined']:,} set aside" + (f" ({_counts(aside)})" if aside else ""))
        lines.append(line)
        answers = wave.get("answers_not_declared", [])
        if answers:
            total = sum(a["n"] for a in answers)
            lines.append(f"  {total:,} answer(s) not among the declared levels, labels or missing codes (kept as missing):")
            lines += _more([f"    {a['column']} = '{a['value']}': {a['n']:,} ({a['reason'].lower()})" for a in answers[:SHOWN]],
                           len(answers))
        warnings = wave.get("warnings", [])
        lines += _more([f"  warning: {w}" for w in warnings[:SHOWN]], len(warnings))
    if report.get("totals", {}).get("rows_quarantined") or any(w.get("answers_not_declared") for w in report.get("waves", [])):
        lines.append(f"  every row and value set aside is in data/processed/{study}/quarantine.csv")
    for question, coding in report.get("coding", {}).items():
        lines += coding_lines(question, coding, study)
    return lines


def coding_lines(question: str, coding: dict[str, Any], study: str) -> list[str]:
    """One coded question: answers coded and left uncoded, double coded, and what the returned files
    hold that does not fit (answers that do not exist, columns that are not themes)."""
    files = coding.get("files", [])
    lines = [f"coding {question}: {coding['answers']:,} answers, {coding['coded']:,} coded "
             f"({coding['double_coded']:,} by two coders), {coding['uncoded']:,} not coded yet; "
             f"{len(files)} returned file{'s' if len(files) != 1 else ''}"]
    unknown = [u for u in coding.get("unknown_themes", [])]
    if unknown:
        lines.append(f"  {len(unknown)} column(s) that are not themes of '{coding['themes']}' (not counted; add the "
                     f"theme to its options to count it):")
        lines += _more([f"    {u['file']}: '{u['column']}' ({u['answers_ticked']} answer(s) ticked)" for u in unknown[:SHOWN]],
                       len(unknown))
    missing = coding.get("answers_not_found", [])
    if missing:
        lines.append(f"  {len(missing)} answer(s) on the returned sheets are not answers of study '{study}' (not counted):")
        lines += _more([f"    {m['file']}" + (f", row {m['sheet_row']}" if m.get("sheet_row") else "")
                        + f": {m['answer_id']}" for m in missing[:SHOWN]], len(missing))
    if coding.get("changed"):
        lines.append(f"  {coding['changed']} coded answer(s) differ from the text on the returned sheet (the raw answer "
                     f"was changed after the sheets were written): codes kept; check them (waves: coding: changed_ids)")
    if coding["uncoded"]:
        lines.append(f"  answers not coded are missing ('Not coded'); their ids are in data/processed/{study}/"
                     f"ingest_report.json (waves: coding: uncoded_ids)")
    return lines


def link_lines(summary: dict[str, Any], study: str) -> list[str]:
    """Rows linked and set aside per wave, unmatched councils with the closest register names, warnings."""
    quarantined = summary.get("rows_quarantined", {})
    linked = summary.get("rows_linked", {})
    lines = [f"link: {summary.get('councils', 0)} councils; rows linked "
             + ", ".join(f"{w} {n:,}" + (f" ({quarantined[w]:,} set aside)" if quarantined.get(w) else "")
                         for w, n in linked.items())]
    unmatched = summary.get("unmatched_councils", [])
    if unmatched:
        lines.append(f"  {len(unmatched)} council identifier(s) not found (rows set aside; add an alias or correct them):")
        lines += _more([f"    {u['wave']}: '{u['council_raw']}' ({u['rows']} row(s)); "
                        + (f"closest: {', '.join(u['closest'])}" if u["closest"] else u["note"] or "not in the register")
                        for u in unmatched[:SHOWN]], len(unmatched))
    if quarantined:
        lines.append(f"  rows set aside at link are in data/processed/{study}/quarantine_link.csv")
    for item in summary.get("reorganised", []):
        lines.append(f"  reorganised: {item['text']}")
    lines += [f"  note: {n}" for n in summary.get("covariate_notes", [])]
    lines += [f"  warning: {w}" for w in summary.get("warnings", [])]
    return lines


def run_summary(paths: StudyPaths) -> list[str]:
    """The summary lines of the study's current outputs (ingest and link, where they exist)."""
    lines: list[str] = []
    report = _read(paths.ingest_report)
    if report is not None:
        lines += ingest_lines(report, paths.study)
    summary = _read(paths.linkage_summary)
    if summary is not None:
        lines += link_lines(summary, paths.study)
    return lines
