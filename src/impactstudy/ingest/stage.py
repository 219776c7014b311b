"""The ingest stage: each wave's raw file to ``waves/<wave>.parquet``, plus the quarantine and a report.

Each wave is its own step, so a new or replaced wave file is ingested alone and the others are reused.
A wave step writes its Parquet file and, beside it, that wave's quarantine entries and report; the
``ingest`` step then combines them into ``quarantine.csv`` and ``ingest_report.json``. Personal data
columns (``pii = true``) are never read into the output, and respondent ids are pseudonymised with
the study's secret salt (kept in ``.secrets/``, outside processed data and reports).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pandas as pd

from impactstudy.errors import ConfigError, DataError
from impactstudy.ingest.coding import code_wave, codes_typed, not_found, read_coding
from impactstudy.ingest.columns import check_columns, header_hint, read_wave, wave_columns
from impactstudy.ingest.harmonise import OUT_OF_RANGE, UNRECOGNISED, harmonise_wave
from impactstudy.pipeline.atomic import write_csv, write_json, write_parquet
from impactstudy.pipeline.frames import QUARANTINE_COLUMNS, missing_column
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import first_rows, unnamed_data_problem
from impactstudy.pipeline.coding import answer_ids
from impactstudy.ingest.steps import codes_piece, coded_questions
from impactstudy.pipeline.hashing import sha256_file
from impactstudy.study.config import Coding, Study, Wave
from impactstudy.study.metadata import measure_metadata


def ingest_wave(study: Study, paths: StudyPaths, wave: Wave, salt: bytes) -> dict[str, Any]:
    """Read, harmonise, code and write one wave; return its report entry."""
    path = paths.raw_file(wave.file)
    table = read_wave(path, wave, study)
    source = paths.raw_file(wave.file).relative_to(paths.root.resolve()).as_posix()
    problems = check_columns(list(table.data.columns), wave, study, str(path))
    if problems:
        hint = header_hint(list(table.data.columns), first_rows(path, wave.format, wave.read), wave, study)
        raise ConfigError(problems[0] + (f" (and {len(problems) - 1} more: run `impactstudy validate`)" if len(problems) > 1 else "")
                          + hint)
    if unnamed := unnamed_data_problem(table, path):
        raise DataError(unnamed)
    result = harmonise_wave(table.data, table.meta, wave, study, source, salt)
    codings = coded_questions(study, wave)
    data, codes, coding_report = code_wave(
        result.data, study, wave, {c.question: read_coding(study, paths, c) for c in codings})
    result = dataclasses.replace(result, data=data)
    rows_read = len(table.data)
    rejected_rows = result.quarantine.loc[result.quarantine["scope"] == "row", "source_row"].nunique()
    if len(result.data) + rejected_rows != rows_read:  # the conservation invariant; a bug if broken
        raise AssertionError(f"{source}: {rows_read} rows read but {len(result.data)} accepted + {rejected_rows} quarantined")
    used = wave_columns(wave, study)
    sha = sha256_file(path)
    measures = [m for m in study.analysed_measures if wave.id in m.columns]
    missing_reasons = {
        m.name: {str(k): int(v) for k, v in sorted(result.data[missing_column(m.name)].value_counts().items())}
        for m in measures if m.type != "text"
    }
    report = {
        "wave": wave.id,
        "order": wave.order,
        "source_file": source,
        "sha256": sha,
        "format": wave.format,
        "encoding": table.meta.encoding,
        "delimiter": table.meta.delimiter,
        "rows_read": rows_read,
        "rows_accepted": len(result.data),
        "rows_quarantined": int(rejected_rows),
        "values_quarantined": int((result.quarantine["scope"] == "value").sum()),
        "quarantine_reasons": dict(sorted(Counter(result.quarantine["reason"]).items())),
        "measures": [m.name for m in measures],
        "missing_reasons": missing_reasons,
        "unused_columns": [c for c in table.data.columns if c not in used],
        "column_labels": {c: table.meta.column_labels[c] for c in used if c in table.meta.column_labels},
        "warnings": list(result.label_warnings),
    }
    if codings:
        report["coding"] = coding_report
    if rows_read and not len(result.data):
        report["warnings"].append(f"no row of {source} was accepted: see quarantine.csv")
    answered = [m.name for m in measures if result.data[m.name].notna().any()]
    if rows_read and measures and not answered:
        report["warnings"].append(f"every answer in {source} is missing")
    metadata = {
        "wave": {"id": wave.id, "order": wave.order, "source_file": source, "sha256": sha},
        "measures": measure_metadata(study, wave),
        "column_labels": report["column_labels"],
    }
    parquet, quarantine, report_path = paths.wave_outputs(wave.id)
    write_parquet(parquet, result.data, metadata)
    if codings:
        write_parquet(codes_piece(paths, wave), codes)
    write_csv(quarantine, result.quarantine)
    write_json(report_path, report)
    return report


def combine_wave_outputs(study: Study, paths: StudyPaths) -> None:
    """Write ``quarantine.csv`` and ``ingest_report.json`` from every wave's pieces, in wave order."""
    pieces, reports = [], []
    for wave in study.waves:
        _, quarantine, report = paths.wave_outputs(wave.id)
        pieces.append(pd.read_csv(quarantine, dtype={"value": "string", "column": "string", "reason": "string",
                                                     "sheet_row": "Int64"},
                                  keep_default_na=False))
        # the label is wording: added here, so a relabelled wave is not read again (nor its panel refitted)
        reports.append({**json.loads(report.read_text(encoding="utf-8")), "label": wave.label})
    quarantine_frame = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    write_csv(paths.quarantine, quarantine_frame[QUARANTINE_COLUMNS])
    totals = {
        key: sum(r[key] for r in reports)
        for key in ("rows_read", "rows_accepted", "rows_quarantined", "values_quarantined")
    }
    for report in reports:
        report.update(set_aside(quarantine_frame[quarantine_frame["wave"] == report["wave"]]))
    out = {"study": study.name, "title": study.title, "waves": reports, "totals": totals}
    if study.coding:
        codes = [pd.read_parquet(codes_piece(paths, w)) for w in study.waves if coded_questions(study, w)]
        write_parquet(paths.codes, codes_typed(pd.concat(codes, ignore_index=True) if codes else pd.DataFrame()))
        out["coding"] = {c.question: coding_summary(study, paths, c, reports) for c in study.coding}
    write_json(paths.ingest_report, out)


def coding_summary(study: Study, paths: StudyPaths, coding: Coding, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One coded question over every wave: its files and coders, the answers coded and left uncoded,
    double coded, and what the returned files hold that does not fit: answers that do not exist and
    columns that are not themes of the coding frame."""
    returned = read_coding(study, paths, coding)
    waves = [w for w in study.waves if w.id in study.measure(coding.question).columns]
    answered: set[str] = set()
    for wave in waves:
        frame = pd.read_parquet(paths.wave_file(wave.id),
                                columns=["wave", "source_row", "council_raw", "respondent_id", coding.question])
        ids = answer_ids(frame, study.name, coding.question)
        answered |= set(ids[frame[coding.question].notna()].astype(str))
    per_wave = {r["wave"]: r["coding"][coding.question] for r in reports if coding.question in r.get("coding", {})}
    return {
        "themes": coding.themes,
        "resolve": coding.resolve,
        "adjudicator": coding.adjudicator,
        "alpha_threshold": coding.alpha_threshold,
        "files": [{"file": r.file, "coder": r.coder, "kind": r.kind, "answers_coded": int(r.codes["answer_id"].nunique()),
                   "answers_left_uncoded": len(r.uncoded)} for r in returned],
        "answers": sum(w["answers"] for w in per_wave.values()),
        "coded": sum(w["coded"] for w in per_wave.values()),
        "uncoded": sum(w["uncoded"] for w in per_wave.values()),
        "double_coded": sum(w["double_coded"] for w in per_wave.values()),
        "changed": sum(w["changed"] for w in per_wave.values()),
        "by_wave": {w: {k: v for k, v in counts.items() if not k.endswith("_ids")} for w, counts in per_wave.items()},
        "unknown_themes": [u for r in returned for u in r.unknown_themes],
        "answers_not_found": not_found(returned, answered),
    }


def reason_kind(reason: str) -> str:
    """A quarantine reason without its particulars ("Duplicate submission …; kept source row 4" → its
    first clause), so reasons can be counted."""
    return reason.split(";", 1)[0].split(" (", 1)[0].strip()


def set_aside(quarantine: pd.DataFrame) -> dict[str, Any]:
    """One wave's quarantine, counted: rows set aside by reason, values set aside by reason, and each
    distinct answer that is not one the config declares (column, value, count), most frequent first."""
    rows = quarantine[quarantine["scope"] == "row"].drop_duplicates("source_row")
    values = quarantine[quarantine["scope"] == "value"]
    unknown = values[values["reason"].isin([UNRECOGNISED, OUT_OF_RANGE])]
    counted = (unknown.groupby(["column", "value", "reason"], sort=False).size().rename("n").reset_index()
               .sort_values(["n", "column", "value"], ascending=[False, True, True], kind="stable"))
    return {
        "rows_set_aside_by_reason": {str(k): int(v) for k, v in rows["reason"].map(reason_kind).value_counts().items()},
        "values_set_aside_by_reason": {str(k): int(v) for k, v in values["reason"].map(reason_kind).value_counts().items()},
        "answers_not_declared": [{"column": r.column, "value": r.value, "reason": r.reason, "n": int(r.n)}
                                 for r in counted.itertuples()],
    }


def read_wave_output(paths: StudyPaths, wave_id: str) -> pd.DataFrame:
    """An ingested wave, or a clear error if ingest has not produced it."""
    path = paths.wave_file(wave_id)
    if not path.is_file():
        raise DataError(f"{path}: not found; run `impactstudy ingest --study {paths.study}` first")
    return pd.read_parquet(path)
