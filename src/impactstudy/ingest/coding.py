"""Codes from returned coding sheets into a wave: the ``[[coding]]`` sections (docs/data-contracts.md).

For each coded question asked in a wave, the answers' ids (:func:`impactstudy.pipeline.coding.answer_ids`)
are matched to the returned files' codes; the codes that count (:func:`~impactstudy.pipeline.coding.resolve_codes`)
become the binary measures of the coding frame's multi measure, missing with the reason ``Not coded``
where no coder coded an answer and ``No answer`` where there is no answer. Every code read is kept in
``codes.parquet`` (one row per answer × coder × theme), and what does not fit — answers on a sheet that
do not exist, columns that are not themes, answers left uncoded — is counted in ``ingest_report.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactstudy.errors import DataError
from impactstudy.ingest.harmonise import NO_ANSWER
from impactstudy.pipeline.coding import (
    CODES_COLUMNS, NOT_CODED, Returned, answer_ids, read_returned, resolve_codes, sheet_text,
)
from impactstudy.pipeline.frames import missing_column
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import Coding, Study, Wave


def read_coding(study: Study, paths: StudyPaths, coding: Coding) -> list[Returned]:
    """Every returned file of ``coding``, read for its question, in the order the config lists them."""
    out = []
    for entry in coding.files:
        path = paths.raw_file(entry.file)
        shown = f"data/raw/{study.name}/{entry.file}"
        out.append(read_returned(path, shown, entry, coding, study))
    coders = [r.coder for r in out]
    if len(set(coders)) < len(coders):
        repeated = next(c for c in coders if coders.count(c) > 1)
        first, second = [r.file for r in out if r.coder == repeated][:2]
        raise DataError(f"{second}: coder '{repeated}' has already returned {first} for '{coding.question}'; list "
                        f"each coder's sheet once (merge two halves into one file)")
    return out


def with_roles(returned: list[Returned], adjudicator: str | None) -> pd.DataFrame:
    """All returned codes, each answer × coder with its role: ``adjudicator`` for the adjudicator; the role
    the sheet was written with (``primary`` or ``second``); else ``primary`` for the first coder (in the
    config's file order) that coded the answer and ``second`` for the others."""
    frames = [r.codes for r in returned if len(r.codes)]
    if not frames:
        return pd.DataFrame(columns=["answer_id", "coder", "coder_role", "theme", "coded", "quote", "note", "sheet_row"])
    codes = pd.concat(frames, ignore_index=True)
    order = {r.coder: k for k, r in enumerate(returned)}
    pairs = codes.drop_duplicates(["answer_id", "coder"])[["answer_id", "coder", "coder_role"]]
    roles: dict[tuple[str, str], str] = {}
    for answer, group in pairs.groupby("answer_id", sort=False):
        coders = sorted(group.itertuples(index=False), key=lambda r: order[r.coder])
        coders_only = [r for r in coders if r.coder != adjudicator]
        has_primary = any(r.coder_role == "primary" for r in coders_only)
        for k, r in enumerate(coders_only):
            roles[(answer, r.coder)] = r.coder_role or ("primary" if k == 0 and not has_primary else "second")
        roles.update({(answer, r.coder): "adjudicator" for r in coders if r.coder == adjudicator})
    codes["coder_role"] = [roles[(a, c)] for a, c in zip(codes["answer_id"], codes["coder"], strict=True)]
    return codes


def code_wave(data: pd.DataFrame, study: Study, wave: Wave,
              returned: dict[str, list[Returned]]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fill the coded sets of ``wave`` into its harmonised rows ``data``.

    ``returned``: per coded question, its returned files. Gives the rows with the coded measures and
    their ``__missing`` reasons, this wave's rows of ``codes.parquet``, and per question the counts for
    the wave's report: answers, coded, uncoded (and their ids), double coded, coded per coder.
    """
    data = data.copy()
    pieces, report = [], {}
    for coding in study.coding:
        if wave.id not in study.measure(coding.question).columns:
            continue
        members = study.set_members(coding.themes)
        options = [m.option for m in members]
        text = data[coding.question]
        answered = text.notna() & (text.astype("string").str.strip() != "")
        ids = answer_ids(data, study.name, coding.question)
        answered_ids = pd.Index(ids[answered].astype(str))
        files = returned.get(coding.question, [])
        codes = with_roles(files, coding.adjudicator)
        codes = codes[codes["answer_id"].isin(answered_ids)]
        resolved = resolve_codes(codes, answered_ids, options, coding.resolve, coding.adjudicator,
                                 [r.coder for r in files])
        by_id = resolved.reindex(ids.astype(str).to_numpy())
        coded = by_id.notna().any(axis=1).to_numpy()
        for m in members:
            data[m.name] = by_id[m.option].to_numpy(float)
            data[missing_column(m.name)] = pd.array(
                np.where(~answered.to_numpy(), NO_ANSWER, np.where(coded, None, NOT_CODED)), dtype="string")
        source_rows = pd.Series(data["source_row"].to_numpy(), index=ids.astype(str).to_numpy())
        piece = codes.assign(question=coding.question, wave=wave.id,
                             source_row=codes["answer_id"].map(source_rows).astype("int64"))
        pieces.append(piece[list(CODES_COLUMNS)])
        coders = codes.drop_duplicates(["answer_id", "coder"])
        double = coders[coders["coder_role"] != "adjudicator"].groupby("answer_id").size()
        uncoded_ids = sorted(set(answered_ids) - set(resolved.index[resolved.notna().any(axis=1)]))
        now = dict(zip(ids[answered].astype(str), text[answered].astype(str), strict=True))
        changed = sorted({a for r in files for a, shown in r.texts.items()
                          if a in now and a in set(codes["answer_id"]) and sheet_text(now[a]).strip() != shown})
        report[coding.question] = {
            "answers": int(answered.sum()),
            "coded": int(answered.sum()) - len(uncoded_ids),
            "uncoded": len(uncoded_ids),
            "uncoded_ids": uncoded_ids,
            "double_coded": int((double >= 2).sum()),
            "adjudicated": int((coders["coder_role"] == "adjudicator").sum()),
            "coded_by": {str(k): int(v) for k, v in coders["coder"].value_counts().sort_index().items()},
            "changed": len(changed),
            "changed_ids": changed,
        }
    codes_frame = (pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=list(CODES_COLUMNS)))
    return data, codes_typed(codes_frame), report


def codes_typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``codes.parquet``'s column types, whatever the frame came from (an empty one included)."""
    return frame.reindex(columns=list(CODES_COLUMNS)).astype({
        "question": "string", "wave": "string", "source_row": "int64", "answer_id": "string", "coder": "string",
        "coder_role": "string", "theme": "string", "coded": "int64", "quote": "bool", "note": "string"})


def not_found(returned: list[Returned], answered: set[str]) -> list[dict[str, Any]]:
    """Answers on the returned files (coded or not) that are no answer of the study: their file, coder,
    id and sheet row."""
    out = []
    for r in returned:
        rows = r.codes.drop_duplicates("answer_id")
        for a in rows.itertuples():
            if a.answer_id not in answered:
                out.append({"file": r.file, "coder": r.coder, "answer_id": a.answer_id, "sheet_row": int(a.sheet_row)})
        out += [{"file": r.file, "coder": r.coder, "answer_id": a, "sheet_row": row}
                for a, row in r.uncoded.items() if a not in answered]
    return out
