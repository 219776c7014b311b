"""The demo's coded free text: two coders' returned coding sheets, with realistic disagreement.

For each ``[[coding]]`` section the demo writes what the coders would have returned: the workbooks
``impactstudy verbatims`` writes (:mod:`impactstudy.pipeline.coding_sheets`), coded as two people code.
Each answer was generated from the phrases of 1–3 themes (:mod:`impactstudy.demo.answers`), which are
the truth (``truth.json``: ``coding``). A coder ticks a theme the answer expresses with probability
``sensitivity`` and one it does not with probability ``false_positive``; clear themes are ticked
reliably, themes whose phrases overlap others (:data:`FUZZY`) much less so, so per-theme agreement
differs and for some themes falls below the usual 0.67. Each coder leaves about 2 % of their answers
uncoded, marks some long answers as quotes, and adds a note where unsure; one coder adds a column for
a theme the frame lacks (reported at ingest, not counted).

The answer ids on the sheets need the respondents' pseudonyms, so the demo uses a salt it knows: the
study's salt if one exists, else :data:`DEMO_SALT` (synthetic data: not a secret), written to
``.secrets/<study>.salt`` as ingest would.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.demo.model import ROLES, stream
from impactstudy.pipeline.atomic import write_bytes, write_text
from impactstudy.pipeline.coding import META_SHEET, answer_ids, theme_header
from impactstudy.pipeline.coding_sheets import assign, coding_workbook, fill_sheet
from impactstudy.pipeline.identifiers import identifier_text, pseudonymiser
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import Study, Wave

DEMO_SALT = hashlib.sha256(b"impactstudy demo salt: synthetic data, not a secret").hexdigest()
CODERS = ("AB", "CD")
OVERLAP = 0.3  # share of each question's answers (per wave) coded by both
FUZZY = frozenset({"method", "local_context", "findings", "challenge", "culture", "practice_change"})
RATES = {"clear": (0.95, 0.02), "fuzzy": (0.70, 0.12)}  # (sensitivity, false positive) per kind of theme
CODER_SENSITIVITY = {"AB": 1.0, "CD": 0.95}  # the second coder misses a little more
UNCODED = 0.02  # share of a coder's answers left uncoded
QUOTE = 0.25  # chance a coder marks an answer of more than 80 characters as a quote
NEW_THEME = {"coder": "CD", "question": "lessons", "column": "Resources and funding", "ticks": 2}
TRUTH_COLUMN = "_truth:"  # hidden columns of a raw frame: the themes each answer was generated from


def salt_for(paths: StudyPaths) -> bytes:
    """The salt ingest will pseudonymise respondents with: the study's, else the demo's, written (readable
    by its owner only) where ingest looks for it."""
    path = paths.secret_salt
    if path.is_file():
        return path.read_bytes().strip()
    write_text(path, DEMO_SALT + "\n")
    os.chmod(path, 0o600)
    return DEMO_SALT.encode("ascii")


def wave_answers(study: Study, wave: Wave, frame: pd.DataFrame, salt: bytes) -> pd.DataFrame:
    """The answers to the coded questions in one wave's raw ``frame`` (as written, after the mess), with
    the ids ingest will give them and the themes each was generated from (``themes``)."""
    pseudonym = pseudonymiser(salt)
    base = pd.DataFrame({
        "wave": wave.id, "source_row": np.arange(1, len(frame) + 1),
        "council_raw": [identifier_text(v) for v in frame[wave.council]],
        "respondent_id": [None if (t := identifier_text(v)) is None else pseudonym(t) for v in frame[wave.respondent]],
    }, index=frame.index)
    parts = []
    for coding in study.coding:
        question = study.measure(coding.question)
        if wave.id not in question.columns:
            continue
        text = frame[question.columns[wave.id]]
        answered = text.map(lambda v: isinstance(v, str) and bool(v.strip())).to_numpy(bool)
        part = base[answered]
        members = study.set_members(coding.themes)
        truth = frame.loc[answered, [f"{TRUTH_COLUMN}{m.name}" for m in members]].to_numpy(float)
        roles = frame.loc[answered, wave.role]
        parts.append(pd.DataFrame({
            "question": coding.question, "wave": wave.id, "wave_label": wave.label,
            "source_row": part["source_row"].to_numpy(), "answer_id": answer_ids(part, study.name, coding.question).to_numpy(),
            "council": part["council_raw"].to_numpy(object),
            "role": [r if isinstance(r, str) else ROLES.get(int(r), "") for r in roles],
            "respondent": part["respondent_id"].to_numpy(object), "answer": text[answered].str.strip().to_numpy(object),
            "themes": [[m.option for m, t in zip(members, row, strict=True) if t == 1.0] for row in truth],
        }))
    if not parts:
        return pd.DataFrame()
    # a duplicate submission is one answer (ingest keeps one copy): its id once
    return pd.concat(parts, ignore_index=True).drop_duplicates(["question", "answer_id"], keep="last")


def _code(rng: np.random.Generator, truth: list[str], options: list[str], coder: str) -> list[str] | None:
    """One coder's themes for an answer generated from ``truth`` (None: left uncoded)."""
    if rng.random() < UNCODED:
        return None
    ticked = []
    for option in options:
        sensitivity, false_positive = RATES["fuzzy" if option in FUZZY else "clear"]
        p = sensitivity * CODER_SENSITIVITY.get(coder, 1.0) if option in truth else false_positive
        if rng.random() < p:
            ticked.append(option)
    return ticked


def returned_sheets(study: Study, answers: pd.DataFrame, seed: int, written: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The coders' returned workbooks (coder → openpyxl workbook) and what truth.json records of them."""
    rows = assign(answers.drop(columns="themes"), list(CODERS), OVERLAP, seed)
    truth_themes = {(r.question, r.answer_id): r.themes for r in answers.itertuples()}
    books, uncoded = {}, {}
    for coder in CODERS:
        mine = rows[rows["coder"] == coder]
        wb = coding_workbook(mine, study, coder, written)
        uncoded[coder] = 0
        for coding in study.coding:
            members = study.set_members(coding.themes)
            options = [m.option for m in members]
            labels = {m.option: theme_header(m) for m in members}
            rng = stream(seed, "coding", coder, coding.question)
            ticks, quotes, notes = {}, [], {}
            for r in mine[mine["question"] == coding.question].itertuples():
                coded = _code(rng, truth_themes[(coding.question, r.answer_id)], options, coder)
                if coded is None:
                    uncoded[coder] += 1
                    continue
                ticks[r.answer_id] = coded
                if len(r.answer) > 80 and rng.random() < QUOTE:
                    quotes.append(r.answer_id)
                unsure = [o for o in coded if o in FUZZY and o not in truth_themes[(coding.question, r.answer_id)]]
                if unsure and rng.random() < 0.4:
                    notes[r.answer_id] = f"Unsure about '{labels[unsure[0]]}'"
            fill_sheet(wb, study, coding.question, ticks, quotes, notes)
            if coder == NEW_THEME["coder"] and coding.question == NEW_THEME["question"] and ticks:
                _add_theme(wb, coding.question, NEW_THEME["column"], list(ticks)[: NEW_THEME["ticks"]])
        books[coder] = wb
    record = {
        "coders": list(CODERS), "overlap": OVERLAP, "seed": seed,
        "coder_model": {"themes_ticked_with": {"clear": {"sensitivity": RATES["clear"][0], "false_positive": RATES["clear"][1]},
                                               "fuzzy": {"sensitivity": RATES["fuzzy"][0], "false_positive": RATES["fuzzy"][1]}},
                        "fuzzy_themes": sorted(FUZZY), "coder_sensitivity": dict(CODER_SENSITIVITY),
                        "left_uncoded": UNCODED, "quote": QUOTE},
        "uncoded": uncoded,
        "unknown_theme": dict(NEW_THEME),
        "questions": {c.question: {"themes": c.themes, "answers": [
            {"wave": r.wave, "source_row": int(r.source_row), "answer_id": r.answer_id, "themes": list(r.themes)}
            for r in answers[answers["question"] == c.question].itertuples()]} for c in study.coding},
    }
    return books, record


def _add_theme(wb: Any, question: str, column: str, answers: list[str]) -> None:
    """A coder's new column for a theme the frame lacks, ticked for ``answers``."""
    sheet = next(str(r[2]) for r in wb[META_SHEET].iter_rows(values_only=True) if r[0] == "question" and r[1] == question)
    ws = wb[sheet]
    j = ws.max_column + 1
    ws.cell(row=1, column=j).value = column
    ids = [c.value for c in ws["A"]]
    for answer in answers:
        ws.cell(row=ids.index(answer) + 1, column=j).value = "x"


def save_workbook(wb: Any, path: Any, stamp: datetime) -> None:
    """Save ``wb`` byte for byte reproducibly: every zip member and the modified time stamped ``stamp``."""
    buffer = io.BytesIO()
    wb.save(buffer)
    out = io.BytesIO()
    when = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + when + rb"\g<2>", data)
            zout.writestr(zipfile.ZipInfo(item.filename, date_time=stamp.timetuple()[:6]), data,
                          compress_type=zipfile.ZIP_DEFLATED)
    write_bytes(path, out.getvalue())
