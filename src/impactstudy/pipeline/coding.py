"""Coding sheets: the layout ``impactstudy verbatims`` writes, reading returned sheets back, resolving codes.

Free-text answers are coded by hand outside the pipeline. ``impactstudy verbatims`` writes each coder an
Excel workbook (one sheet per question, the coding frame's themes as tick columns); the coders return
them, the researcher puts them in ``data/raw/<study>/`` and names them in a ``[[coding]]`` section, and
the ingest stage reads them back here. A returned file is either such a workbook (it names its study
and coder in a very hidden sheet, ``_impactstudy``) or a case × code matrix as NVivo exports it (CSV or
Excel: the first column names the case, which must hold the answer id, the other columns are codes
holding counts of coding references or ticks), whose coder the config names.

Each answer has an :func:`answer_ids` id, printed on the sheet: a hash of the study, question, wave and
the pseudonymised respondent (the source row where a wave has no respondent id), so it is stable
across reruns and late returns and carries no respondent identity. Everything here is a pure function
over DataFrames or one file; a bad returned sheet is a :class:`~impactstudy.errors.DataError` naming
file, sheet, row and column and what to do.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from impactstudy.errors import DataError
from impactstudy.study.config import Coding, CodingFile, Measure, Study
from impactstudy.study.hints import did_you_mean

FORMAT_VERSION = "1"
META_SHEET = "_impactstudy"  # very hidden: study, coder, and each answer's role (primary or second coder)
COVER_SHEET = "Read me"
ANSWER_ID = "Answer ID"
CONTEXT_COLUMNS = ("Wave", "Council", "Role", "Respondent", "Answer")  # shown to the coder, not read back
NO_THEME = "No theme"
QUOTE = "Quote"
NOTES = "Notes"
ANSWER = CONTEXT_COLUMNS[-1]
ROLES = ("primary", "second", "adjudicator")
CODES_COLUMNS = ("question", "wave", "source_row", "answer_id", "coder", "coder_role", "theme", "coded", "quote", "note")
NOT_CODED = "Not coded"
ID_PATTERN = re.compile(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}")
TICKS = frozenset({"x", "1", "1.0", "yes", "y", "true", "\u2713", "\u2714", "\u2612", "\u2611"})
BLANKS = frozenset({"", "0", "0.0", "no", "n", "false"})
XML_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")  # as openpyxl's ILLEGAL_CHARACTERS_RE


# -------------------------------------------------------------------------------------------- answer ids


def answer_ids(frame: pd.DataFrame, study: str, question: str) -> pd.Series:
    """The stable id of each answer (row of an ingested wave: ``wave``, ``source_row``, ``council_raw``,
    ``respondent_id``) to ``question``: ``XXXX-XXXX-XXXX`` in base32 (60 bits of SHA-256)."""
    def one(wave: str, council: Any, respondent: Any, row: int) -> str:
        who = (f"respondent\0{str(council).casefold()}\0{respondent}" if isinstance(respondent, str) and respondent
               else f"row\0{int(row)}")
        digest = hashlib.sha256(f"impactstudy answer\0{study}\0{question}\0{wave}\0{who}".encode()).digest()
        text = base64.b32encode(digest[:10]).decode("ascii")[:12]
        return f"{text[:4]}-{text[4:8]}-{text[8:]}"

    respondents = frame["respondent_id"].astype(object).where(frame["respondent_id"].notna(), None)
    ids = [one(w, c, r, s) for w, c, r, s in zip(frame["wave"], frame["council_raw"], respondents,
                                                  frame["source_row"], strict=True)]
    return pd.Series(ids, index=frame.index, dtype="string")


def question_sheet_name(question: str, taken: set[str]) -> str:
    """A question's sheet name: the measure name cut to Excel's 31 characters, made unique."""
    name, k = question[:31], 2
    while name.casefold() in taken:
        suffix = f"~{k}"
        name, k = question[: 31 - len(suffix)] + suffix, k + 1
    taken.add(name.casefold())
    return name


def sheet_text(value: Any) -> str:
    """An answer as a coding sheet holds it: text, characters XML cannot hold as U+FFFD."""
    return XML_ILLEGAL.sub("\ufffd", "" if value is None else str(value))


def theme_header(measure: Measure) -> str:
    """The heading of a theme's tick column: the option's label."""
    return measure.option_label or measure.option or measure.name


# ------------------------------------------------------------------------------------------------- ticks


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def tick(value: Any, *, counts: bool = False) -> bool | None:
    """Whether a cell ticks its column: True, False, or None when it is neither (a coder's initials, a
    word). ``counts``: a case × code matrix, where a positive number of coding references is a tick."""
    text = _cell_text(value).casefold()
    if text in TICKS:
        return True
    if text in BLANKS:
        return False
    if counts:
        try:
            number = float(text)
        except ValueError:
            return None
        if number >= 0 and number.is_integer():
            return number > 0
    return None


# ------------------------------------------------------------------------------------------ reading back


@dataclass(frozen=True)
class Returned:
    """One returned file's codes for one question.

    ``codes``: one row per coded answer × theme (``answer_id, coder, coder_role, theme, coded, quote,
    note, sheet_row``); ``uncoded``: answer ids on the sheet with no tick (left uncoded); ``unknown_themes``:
    columns that are not in the coding frame, with how many answers tick them; ``roles``: answer id →
    the role the sheet was written with (empty for a matrix)."""

    file: str
    coder: str
    kind: str  # "sheet" (written by impactstudy verbatims) or "matrix"
    codes: pd.DataFrame
    uncoded: dict[str, int] = field(default_factory=dict)  # answer id -> sheet row
    unknown_themes: tuple[dict[str, Any], ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # answer id -> the answer as the sheet shows it


def _closest(name: str, names: list[str]) -> str:
    return did_you_mean(name, names, n=1, cutoff=0.5, wording=" (closest: {})")


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip().casefold()


def _meta(workbook: Any) -> dict[str, Any] | None:
    """A verbatims workbook's record: ``study``, ``coder``, ``questions`` (question → sheet) and
    ``roles`` (question → answer id → role); None for any other workbook."""
    if META_SHEET not in workbook.sheetnames:
        return None
    out: dict[str, Any] = {"questions": {}, "roles": {}}
    for row in workbook[META_SHEET].iter_rows(values_only=True):
        cells = [_cell_text(v) for v in row[:4]] + [""] * max(0, 4 - len(row))
        if cells[0] == "answer" and len(cells) >= 4:
            out["roles"].setdefault(cells[1], {})[cells[2]] = cells[3]
        elif cells[0] == "question":
            out["questions"][cells[1]] = cells[2]
        elif cells[0]:
            out[cells[0]] = cells[1]
    return out


def read_returned(path: Path, shown: str, entry: CodingFile, coding: Coding, study: Study) -> Returned:
    """The codes for ``coding.question`` in the returned file at ``path`` (``shown`` names it in errors)."""
    if not path.is_file():
        raise DataError(f"{shown}: returned coding file not found; put it in the study's raw folder or remove it "
                        f"from [[coding]] files for '{coding.question}'")
    if path.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (UnicodeDecodeError, pd.errors.ParserError) as err:
            raise DataError(f"{shown}: cannot be read as a UTF-8 CSV case × code matrix ({err}); export it again "
                            f"as CSV (UTF-8)") from None
        return _matrix(table, shown, entry, coding, study, first_row=2)
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise DataError(f"{shown}: a returned coding file must be .xlsx (as written by `impactstudy verbatims`) "
                        f"or a case × code matrix in .csv or .xlsx")
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a damaged or mislabelled file
        raise DataError(f"{shown}: cannot be opened as an Excel workbook ({type(err).__name__}); save it again "
                        f"as .xlsx") from None
    meta = _meta(workbook)
    if meta is None:
        sheet = entry.sheet or workbook.sheetnames[0]
        if sheet not in workbook.sheetnames:
            raise DataError(f"{shown}: has no sheet '{sheet}'{_closest(sheet, workbook.sheetnames)}")
        ws = workbook[sheet]
        _no_merged(ws, f"{shown}, sheet '{sheet}'")
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        table = pd.DataFrame(rows[1:], columns=[_cell_text(c) for c in rows[0]]) if rows else pd.DataFrame()
        return _matrix(table, f"{shown}, sheet '{sheet}'", entry, coding, study, first_row=2)
    return _sheet(workbook, meta, shown, entry, coding, study)


def _no_merged(ws: Any, where: str) -> None:
    merged = sorted(str(r) for r in ws.merged_cells.ranges)
    if merged:
        more = f" (and {len(merged) - 1} more)" if len(merged) > 1 else ""
        raise DataError(f"{where}: cells {merged[0]} are merged{more}; unmerge them so that every answer keeps its own "
                        f"row and every column its own cell, then save and rerun")


def _sheet(workbook: Any, meta: dict[str, Any], shown: str, entry: CodingFile, coding: Coding,
           study: Study) -> Returned:
    if meta.get("study") != study.name:
        raise DataError(f"{shown}: is a coding sheet of study '{meta.get('study')}', not '{study.name}'; return the "
                        f"sheet written for this study, or remove the file from [[coding]] files")
    if meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{shown}: written in coding-sheet format {meta.get('format')!r}, this version reads "
                        f"{FORMAT_VERSION!r}; write the sheets again with `impactstudy verbatims`")
    coder = meta.get("coder") or ""
    if entry.coder is not None and entry.coder != coder:
        raise DataError(f"{shown}: the sheet was written for coder '{coder}', but the config names coder "
                        f"'{entry.coder}'; remove 'coder' for this file (a verbatims sheet names its coder)")
    sheet = meta["questions"].get(coding.question)
    if sheet is None:
        raise DataError(f"{shown}: has no sheet for question '{coding.question}' (it codes "
                        f"{', '.join(sorted(meta['questions'])) or 'nothing'}); list it only under the questions it codes")
    if sheet not in workbook.sheetnames:
        raise DataError(f"{shown}: sheet '{sheet}' (question '{coding.question}') is missing or renamed"
                        f"{_closest(sheet, workbook.sheetnames)}; restore its name")
    ws = workbook[sheet]
    where = f"{shown}, sheet '{sheet}'"
    _no_merged(ws, where)
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    if not rows:
        raise DataError(f"{where}: is empty; return the sheet as written, with its header row")
    header = [_cell_text(c) for c in rows[0]]
    themes = {theme_header(m): m.option for m in study.set_members(coding.themes)}
    fixed = (ANSWER_ID, NO_THEME, QUOTE, NOTES)
    expected = [ANSWER_ID, *themes, NO_THEME, QUOTE, NOTES]
    position: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            continue
        if name in position:
            raise DataError(f"{where}: column '{name}' appears twice (columns {position[name] + 1} and {i + 1}); "
                            f"delete one")
        position[name] = i
    known = set(expected) | set(CONTEXT_COLUMNS)
    extra = [n for n in position if n not in known]
    for name in expected:
        if name not in position:
            hint = _closest(name, extra)
            raise DataError(f"{where}: column '{name}' is missing{hint}; restore its heading as written "
                            f"(a new theme goes in a new column of its own)")
    extra_cols = {n: position[n] for n in extra}
    for i, name in enumerate(header):  # a heading deleted over a column that holds data
        if not name and any(_cell_text(r[i] if i < len(r) else None) for r in rows[1:]):
            raise DataError(f"{where}: column {i + 1} holds data but has no heading; give it one (a new theme) or "
                            f"clear it")
    return _parse_rows(rows[1:], position, themes, extra_cols, where, shown, coder,
                       meta["roles"].get(coding.question, {}), kind="sheet", fixed=fixed)


def _row_text(row: list[Any], skip: set[int]) -> str:
    return next((_cell_text(v) for i, v in enumerate(row) if i not in skip and _cell_text(v)), "")


def _parse_rows(rows: list[list[Any]], position: dict[str, int], themes: dict[str, str], extra: dict[str, int],
                where: str, shown: str, coder: str, roles: dict[str, str], *, kind: str,
                fixed: tuple[str, ...] = (), first_row: int = 2) -> Returned:
    """The answer rows of a sheet or matrix (``position``: heading → column; ``themes``: heading → option)."""
    id_col = position[ANSWER_ID]
    seen: dict[str, int] = {}
    codes: list[dict[str, Any]] = []
    uncoded: dict[str, int] = {}
    texts: dict[str, str] = {}
    extra_ticks = {name: 0 for name in extra}
    counts = kind == "matrix"

    def cell(row: list[Any], name: str) -> Any:
        i = position.get(name)
        return row[i] if i is not None and i < len(row) else None

    for offset, row in enumerate(rows):
        number = first_row + offset
        raw_id = _cell_text(row[id_col] if id_col < len(row) else None)
        found = ID_PATTERN.search(raw_id.upper()) if raw_id else None
        if not raw_id or found is None:
            content = _row_text(row, set()) if not raw_id else raw_id
            if not content:
                continue  # a blank row
            raise DataError(f"{where}, row {number}: '{content[:40]}' is not an answer id ({ANSWER_ID} reads like "
                            f"ABCD-EFGH-2345); delete rows that are not answers (totals, notes, headings)")
        answer = found.group(0)
        if answer in seen:
            raise DataError(f"{where}: answer {answer} is in rows {seen[answer]} and {number}; keep one row per answer")
        seen[answer] = number
        if ANSWER in position:
            texts[answer] = _cell_text(cell(row, ANSWER))
        ticked: dict[str, bool] = {}
        for heading, option in themes.items():
            value = cell(row, heading)
            result = tick(value, counts=counts)
            if result is None:
                raise DataError(f"{where}, row {number}, column '{heading}': '{_cell_text(value)[:30]}' is not a tick; "
                                f"mark a theme with x (or 1) and leave the cell blank otherwise (the coder is named on "
                                f"the sheet, not in cells)")
            ticked[option] = result
        for heading in extra:
            result = tick(cell(row, heading), counts=True)
            extra_ticks[heading] += bool(result) or (result is None and bool(_cell_text(cell(row, heading))))
        none = tick(cell(row, NO_THEME)) if NO_THEME in position else False
        quote = tick(cell(row, QUOTE)) if QUOTE in position else False
        for heading, value in ((NO_THEME, none), (QUOTE, quote)):
            if value is None:
                raise DataError(f"{where}, row {number}, column '{heading}': '{_cell_text(cell(row, heading))[:30]}' is "
                                f"not a tick; use x (or 1) or leave it blank")
        if none and any(ticked.values()):
            raise DataError(f"{where}, row {number}: ticks '{NO_THEME}' and a theme; untick one")
        note = _cell_text(cell(row, NOTES)) if NOTES in position else ""
        if not none and not any(ticked.values()):
            uncoded[answer] = number
            continue
        role = roles.get(answer, "")
        for option, value in ticked.items():
            codes.append({"answer_id": answer, "coder": coder, "coder_role": role, "theme": option,
                          "coded": int(value), "quote": bool(quote), "note": note, "sheet_row": number})
    frame = pd.DataFrame(codes, columns=["answer_id", "coder", "coder_role", "theme", "coded", "quote", "note",
                                         "sheet_row"])
    unknown = tuple({"file": shown, "coder": coder, "column": name, "answers_ticked": int(n)}
                    for name, n in extra_ticks.items())
    return Returned(file=shown, coder=coder, kind=kind, codes=frame.astype({"coded": "int64", "quote": "bool"}),
                    uncoded=uncoded, unknown_themes=unknown, roles=dict(roles), texts=texts)


NVIVO_PREFIX = re.compile(r"^\s*[A-Z]{1,3}\s*:\s*")


def _matrix(table: pd.DataFrame, where: str, entry: CodingFile, coding: Coding, study: Study,
            first_row: int) -> Returned:
    """A case × code matrix: the first column names the answer, each other column is a code."""
    if entry.coder is None:
        raise DataError(f"{where}: is not a coding sheet written by `impactstudy verbatims` (it has no "
                        f"'{META_SHEET}' sheet); if it is a case × code matrix, name its coder in the config: "
                        f"files = [{{ file = \"{entry.file}\", coder = \"AB\" }}]")
    if table.shape[1] < 2:
        raise DataError(f"{where}: a case × code matrix needs the answer id in its first column and one column per "
                        f"code; this file has {table.shape[1]} column(s)")
    members = study.set_members(coding.themes)
    by_name = {}
    for m in members:
        by_name[_fold(theme_header(m))] = m.option
        by_name[_fold(m.option or "")] = m.option
    headers = [str(c) for c in table.columns]
    position = {ANSWER_ID: 0}
    themes: dict[str, str] = {}
    extra: dict[str, int] = {}
    for i, name in enumerate(headers[1:], start=1):
        folded = _fold(NVIVO_PREFIX.sub("", name))
        if folded in (_fold(NO_THEME), "none"):
            position[NO_THEME] = i
        elif folded in by_name:
            if by_name[folded] in themes.values():
                raise DataError(f"{where}: two columns are code '{by_name[folded]}' (one is '{name}'); keep one")
            themes[name] = by_name[folded]
            position[name] = i
        elif name.strip():
            extra[name] = i
            position[name] = i
    missing = [theme_header(m) for m in members if m.option not in themes.values()]
    if missing:
        raise DataError(f"{where}: no column for theme '{missing[0]}'{_closest(missing[0], list(extra))}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + "; name each code as the coding frame does (its label or option name)")
    rows = table.astype(object).where(table.notna(), None).values.tolist()
    return _parse_rows(rows, position, themes, extra, where, where, entry.coder, {}, kind="matrix",
                       first_row=first_row)


# ------------------------------------------------------------------------------------------- resolution


def resolve_codes(codes: pd.DataFrame, answers: pd.Index, options: list[str], rule: str,
                  adjudicator: str | None = None, coder_order: list[str] | None = None) -> pd.DataFrame:
    """The codes that count for each answer in ``answers``: one row per answer, one 0/1 column per option,
    NaN where no coder coded the answer.

    ``codes`` has one row per answer × coder × theme (``answer_id, coder, coder_role, theme, coded``).
    An answer coded by one coder takes that coder's codes. Where the ``adjudicator`` coded it, its codes
    count. Otherwise, for an answer two or more coders coded, ``rule``: ``primary`` takes the coder whose
    role is ``primary`` (else the first of ``coder_order`` that coded it), ``either`` ticks a theme any of
    them ticked, ``both`` one all of them ticked.
    """
    out = pd.DataFrame(float("nan"), index=pd.Index(answers, name="answer_id"), columns=list(options))
    if codes.empty or not len(answers):
        return out
    use = codes[codes["answer_id"].isin(answers) & codes["theme"].isin(options)]
    wide = use.pivot_table(index=["answer_id", "coder"], columns="theme", values="coded", aggfunc="max")
    wide = wide.reindex(columns=list(options))
    order = {c: k for k, c in enumerate(coder_order or [])}
    roles = use.drop_duplicates(["answer_id", "coder"]).set_index(["answer_id", "coder"])["coder_role"]
    for answer, block in wide.groupby(level="answer_id", sort=False):
        coders = list(block.index.get_level_values("coder"))
        if adjudicator is not None and adjudicator in coders:
            chosen = block.xs(adjudicator, level="coder")
            out.loc[answer] = chosen.iloc[0].to_numpy(float)
            continue
        if adjudicator is not None:
            block = block[block.index.get_level_values("coder") != adjudicator]
            coders = [c for c in coders if c != adjudicator]
        if len(coders) == 1 or rule == "primary":
            primary = [c for c in coders if roles.get((answer, c)) == "primary"]
            coder = primary[0] if primary else min(coders, key=lambda c: (order.get(c, len(order)), c))
            out.loc[answer] = block.xs(coder, level="coder").iloc[0].to_numpy(float)
        elif rule == "either":
            out.loc[answer] = block.max(axis=0).to_numpy(float)
        else:
            out.loc[answer] = block.min(axis=0).to_numpy(float)
    return out
