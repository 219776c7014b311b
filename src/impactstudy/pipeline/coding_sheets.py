"""Coding sheets out (the layout :mod:`impactstudy.pipeline.coding` reads back): every free-text answer, one row per
answer, split among coders with an overlap, laid out as Excel workbooks.

Pure functions: :func:`answers_table` gathers the answers from the ingested waves, :func:`assign` gives
each answer a primary coder and a share of them a second coder, :func:`coding_workbook` lays one coder's
answers out as an Excel workbook in the layout :mod:`impactstudy.pipeline.coding` reads back.

Answers are respondent-level survey data: the workbook says so on its cover and in its document
properties, shows respondents only by their pseudonyms, and stores every answer as text (a cell starting
``=`` stays text, so a sheet cannot run an answer as a formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.errors import ConfigError
from impactstudy.pipeline.coding import (
    ANSWER_ID, CONTEXT_COLUMNS, COVER_SHEET, FORMAT_VERSION, META_SHEET, NO_THEME, NOTES, QUOTE, answer_ids,
    question_sheet_name, sheet_text, theme_header,
)
from impactstudy.study.config import Measure, Study

SENSITIVITY = "OFFICIAL-SENSITIVE"
ANSWER_COLUMNS = ("question", "wave", "wave_label", "source_row", "answer_id", "council", "role", "respondent", "answer")
CODER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def questions(study: Study) -> list[Measure]:
    """The free-text measures that get a coding sheet: every analysed text measure, in config order."""
    return [m for m in study.analysed_measures if m.type == "text"]


def frame_of(study: Study, question: str) -> list[Measure]:
    """The coding frame of ``question``: the options of its ``[[coding]]`` themes, else of a multi measure
    declaring ``coding_frame_for`` it, else none (the sheet then has quotes and notes only)."""
    coding = study.coding_of(question)
    if coding is not None:
        return list(study.set_members(coding.themes))
    parent = next((m.parent for m in study.measures if m.coding_frame_for == question and m.parent), None)
    return list(study.set_members(parent)) if parent else []


def answers_table(waves: Mapping[str, pd.DataFrame], study: Study,
                  council_names: Mapping[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """One row per non-blank answer to each free-text question in the ingested ``waves`` (wave id → rows of
    ``waves/<wave>.parquet``), with its id and what a coder may see: wave label, council (its register
    name from ``council_names`` keyed by (wave, council as given), else as given), role and pseudonym."""
    labels = {w.id: w.label for w in study.waves}
    order = {w.id: w.order for w in study.waves}
    names = council_names or {}
    rows = []
    for question in questions(study):
        for wave_id, frame in waves.items():
            if question.name not in frame.columns:
                continue
            text = frame[question.name].astype("string").str.strip()
            keep = text.notna() & (text != "")
            if not keep.any():
                continue
            part = frame.loc[keep]
            councils = [names.get((wave_id, str(c)), str(c)) for c in part["council_raw"]]
            rows.append(pd.DataFrame({
                "question": question.name, "wave": wave_id, "wave_label": labels.get(wave_id, wave_id),
                "source_row": part["source_row"].astype("int64").to_numpy(),
                "answer_id": answer_ids(part, study.name, question.name).astype(str).to_numpy(),
                "council": councils, "role": part["role"].astype(object).where(part["role"].notna(), "").to_numpy(),
                "respondent": part["respondent_id"].astype(object).where(part["respondent_id"].notna(), "").to_numpy(),
                "answer": text[keep].astype(str).to_numpy(), "_order": order.get(wave_id, 0),
            }))
    if not rows:
        return pd.DataFrame(columns=list(ANSWER_COLUMNS))
    table = pd.concat(rows, ignore_index=True)
    table["_q"] = table["question"].map({m.name: k for k, m in enumerate(questions(study))})
    table = table.sort_values(["_q", "_order", "answer_id"], kind="stable").drop(columns=["_q", "_order"])
    return table.reset_index(drop=True)[list(ANSWER_COLUMNS)]


def check_coders(coders: Sequence[str], overlap: float) -> list[str]:
    """The coders' names, checked: unique, letters, digits, '-' or '_' (they name files); an overlap
    between 0 and 1, above 0 only with two coders or more."""
    names = [c.strip() for c in coders]
    for name in names:
        if not name or not set(name) <= CODER_CHARS or len(name) > 30:
            raise ConfigError(f"--coders: '{name}' must be initials or a short name of letters, digits, '-' or '_'")
    if len(set(n.casefold() for n in names)) < len(names):
        raise ConfigError(f"--coders: a coder is named twice in {','.join(names)}")
    if not 0 <= overlap <= 1:
        raise ConfigError(f"--overlap must be a share between 0 and 1 (0.2 = a fifth double-coded), got {overlap:g}")
    if overlap > 0 and len(names) < 2:
        raise ConfigError("--overlap needs at least two --coders (e.g. --coders AB,CD) to double-code answers")
    return names


def assign(answers: pd.DataFrame, coders: Sequence[str], overlap: float, seed: int) -> pd.DataFrame:
    """Each answer to its coders: one row per answer × coder, with ``coder`` and ``coder_role``.

    Per question and wave, the answers are shuffled (``seed``) and dealt to the coders in turn, so each
    gets an equal share of every wave; ``round(overlap × n)`` of them, drawn at random, also go to a
    second coder, the pairs of coders rotating so that every pair double-codes about as many."""
    k = len(coders)
    parts = []
    for (question, wave), group in answers.groupby(["question", "wave"], sort=False):
        rng = np.random.default_rng([seed, *(ord(c) for c in f"{question}\0{wave}")])
        index = group.index.to_numpy()[rng.permutation(len(group))]
        primary = np.arange(len(index)) % k
        n_double = int(round(overlap * len(index))) if k > 1 else 0
        doubled = np.sort(rng.choice(len(index), size=n_double, replace=False)) if n_double else np.array([], int)
        first = pd.DataFrame({"_row": index, "coder": [coders[p] for p in primary], "coder_role": "primary"})
        second = pd.DataFrame({"_row": index[doubled],
                               "coder": [coders[(primary[j] + 1 + (n % (k - 1))) % k] for n, j in enumerate(doubled)],
                               "coder_role": "second"})
        parts += [first, second]
    if not parts:
        return pd.DataFrame(columns=[*ANSWER_COLUMNS, "coder", "coder_role"])
    roles = pd.concat(parts, ignore_index=True)
    out = answers.loc[roles["_row"].to_numpy()].reset_index(drop=True)
    out["coder"] = roles["coder"].to_numpy()
    out["coder_role"] = roles["coder_role"].to_numpy()
    return out.sort_values(["coder"], kind="stable").reset_index(drop=True)


def _text(cell: Any, value: Any) -> None:
    """Put ``value`` in ``cell`` as text, never a formula, without characters XML cannot hold."""
    text = sheet_text(value)
    cell.value = text
    cell.data_type = "s"
    if text[:1] in ("=", "+", "-", "@"):
        cell.quotePrefix = True  # Excel keeps it text when the cell is edited


def coding_workbook(rows: pd.DataFrame, study: Study, coder: str, written: datetime) -> Any:
    """One coder's workbook: a cover sheet, one sheet per free-text question (``rows``: this coder's rows
    of :func:`assign`, in order), and the very hidden record the ingest reads back."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    cover = wb.active
    cover.title = COVER_SHEET
    wb.properties.title = f"{SENSITIVITY}: coding sheet for {coder} ({study.title})"
    wb.properties.subject = "Respondent-level free-text survey answers for coding"
    wb.properties.keywords = SENSITIVITY
    wb.properties.category = SENSITIVITY
    wb.properties.creator = "impactstudy verbatims"
    wb.properties.description = (f"{SENSITIVITY}. Survey answers of study '{study.name}' for coder {coder}. "
                                 "Keep it on approved storage, share it only with the research team, return it to "
                                 "the researcher and delete your copy when coding is done.")
    wb.properties.created = written
    wb.properties.modified = written
    bold = Font(bold=True)
    taken = {COVER_SHEET.casefold(), META_SHEET.casefold()}
    sheets: dict[str, str] = {}
    counts: list[tuple[str, str, int, list[Measure]]] = []
    for question in questions(study):
        sheet_name = question_sheet_name(question.name, taken)
        sheets[question.name] = sheet_name
        ws = wb.create_sheet(sheet_name)
        frame = frame_of(study, question.name)
        themes = [theme_header(m) for m in frame]
        header = [ANSWER_ID, *CONTEXT_COLUMNS, *themes, *([NO_THEME] if frame else []), QUOTE, NOTES]
        for j, name in enumerate(header, start=1):
            cell = ws.cell(row=1, column=j)
            _text(cell, name)
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            cell.fill = PatternFill("solid", fgColor="DDDDDD")
        mine = rows[rows["question"] == question.name]
        for i, r in enumerate(mine.itertuples(index=False), start=2):
            for j, value in enumerate((r.answer_id, r.wave_label, r.council, r.role, r.respondent, r.answer), start=1):
                _text(ws.cell(row=i, column=j), value)
            ws.cell(row=i, column=6).alignment = Alignment(wrap_text=True, vertical="top")
            ws.row_dimensions[i].height = 15 * max(1, -(-len(str(r.answer)) // 60))  # wrapped in a column 70 wide
        first_tick, last_tick = len(CONTEXT_COLUMNS) + 2, len(header) - 1  # the themes, No theme and Quote
        if len(mine):
            check = DataValidation(type="list", formula1='"x"', allow_blank=True, showErrorMessage=True,
                                   errorTitle="Tick with x", error="Mark a theme with x; leave the cell blank otherwise.")
            ws.add_data_validation(check)
            check.add(f"{get_column_letter(first_tick)}2:{get_column_letter(last_tick)}{len(mine) + 1}")
        widths = [16, 22, 22, 18, 19, 70] + [14] * (len(header) - 7) + [40]
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = width
        ws.row_dimensions[1].height = 60
        ws.freeze_panes = "G2"
        _printable(ws)
        ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(len(mine), 1) + 1}"
        counts.append((question.label, sheet_name, len(mine), frame))
    _cover(cover, study, coder, written, counts, bold)
    meta = wb.create_sheet(META_SHEET)
    records: list[tuple[str, ...]] = [("format", FORMAT_VERSION), ("study", study.name), ("coder", coder),
                                      ("written", written.isoformat(timespec="seconds"))]
    records += [("question", q, s) for q, s in sheets.items()]
    records += [("answer", r.question, r.answer_id, r.coder_role) for r in rows.itertuples(index=False)]
    for i, record in enumerate(records, start=1):
        for j, value in enumerate(record, start=1):
            _text(meta.cell(row=i, column=j), value)
    meta.sheet_state = "veryHidden"
    return wb


def _cover(ws: Any, study: Study, coder: str, written: datetime, counts: list[tuple[str, str, int, list[Measure]]],
           bold: Any) -> None:
    from openpyxl.styles import Alignment, Font

    lines: list[tuple[str, Any]] = [
        (f"{SENSITIVITY}: respondent-level survey answers", Font(bold=True, size=14, color="B00000")),
        (f"Coding sheet for {coder}: {study.title}", Font(bold=True, size=12)),
        (f"Written {written:%d %B %Y} by impactstudy verbatims for study '{study.name}'.", None),
        ("Keep this file on approved storage, share it only with the research team, return it to the researcher "
         "and delete your copy when coding is done. Respondents are shown by pseudonym only; do not add names.", None),
        ("", None),
        ("How to code", bold),
        ("On each question's sheet, one row is one answer. Put x in the column of every theme the answer "
         f"expresses; put x in '{NO_THEME}' when none applies. Leave a row blank only if you have not coded it yet.", None),
        (f"Put x in '{QUOTE}' for an answer that would make a good quote, and anything else in '{NOTES}'.", None),
        ("Keep the sheets as they are: do not rename, move or delete columns or sheets, merge cells, or add rows "
         "(totals, headings). A theme missing from the frame goes in a new column at the right, headed with its "
         "name; it is reported, not lost.", None),
        ("", None),
        ("Questions", bold),
    ]
    for label, sheet, n, frame in counts:
        lines.append((f"Sheet '{sheet}': {label} ({n} answer{'s' if n != 1 else ''})", None))
        lines += [(f"    {theme_header(m)}", None) for m in frame]
    for i, (text, font) in enumerate(lines, start=1):
        cell = ws.cell(row=i, column=1)
        _text(cell, text)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if font is not None:
            cell.font = font
        ws.row_dimensions[i].height = 18 * max(1, -(-len(text) // 90))
    ws.column_dimensions["A"].width = 95
    _printable(ws)


def _printable(ws: Any) -> None:
    """Printed landscape, every column on one page's width."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def fill_sheet(workbook: Any, study: Study, question: str, ticks: Mapping[str, Sequence[str]],
               quotes: Sequence[str] = (), notes: Mapping[str, str] | None = None) -> None:
    """Code a workbook of :func:`coding_workbook` as a coder would: for each answer id in ``ticks``, an x
    under each of its themes (options of the frame; none: an x under ``No theme``), an x under ``Quote``
    for the ids in ``quotes``, and its note. Answers not in ``ticks`` are left uncoded. (The demo's
    returned sheets, and the tests' round trips, are made with it.)"""
    sheet = _meta_questions(workbook)[question]
    ws = workbook[sheet]
    header = [c.value for c in ws[1]]
    column = {name: j + 1 for j, name in enumerate(header)}
    headers = {m.option: theme_header(m) for m in frame_of(study, question)}
    notes = notes or {}
    quoted = set(quotes)
    for i in range(2, ws.max_row + 1):
        answer = ws.cell(row=i, column=column[ANSWER_ID]).value
        if answer not in ticks:
            continue
        themes = list(ticks[answer])
        for option in themes:
            _text(ws.cell(row=i, column=column[headers[option]]), "x")
        if not themes:
            _text(ws.cell(row=i, column=column[NO_THEME]), "x")
        if answer in quoted:
            _text(ws.cell(row=i, column=column[QUOTE]), "x")
        if answer in notes:
            _text(ws.cell(row=i, column=column[NOTES]), notes[answer])


def _meta_questions(workbook: Any) -> dict[str, str]:
    return {str(r[1]): str(r[2]) for r in workbook[META_SHEET].iter_rows(values_only=True) if r[0] == "question"}
