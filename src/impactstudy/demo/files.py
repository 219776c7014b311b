"""The demo's raw files: each wave laid out as its config says (column names, codes or answer texts,
reversed scales, SPSS metadata) and written as .sav or CSV, byte for byte reproducible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat

from impactstudy.demo.answers import is_reversed, missing_key, numeric_missing
from impactstudy.demo.coding import TRUTH_COLUMN
from impactstudy.demo.model import ROLES, SENTINEL_REASONS
from impactstudy.pipeline.atomic import atomic_path, write_bytes
from impactstudy.study.config import Measure, Study, Wave


# How each template wave names councils: GSS code, register name or DfE number; extra waves copy the last.
COUNCIL_KEYS = {"baseline": "gss", "early_impact": "name", "follow_up": "dfe"}


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_SAV_STAMP = slice(92, 109)  # creation date (9 bytes) and time (8 bytes) in the SPSS file header


def _council_key(wave: Wave) -> str:
    return COUNCIL_KEYS.get(wave.id, "dfe")


def raw_frame(study: Study, wave: Wave, rows: pd.DataFrame, values: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The wave as its raw file holds it: configured column names, codes or answer texts.

    Hidden helper columns ``_t`` (submission time, for sorting), ``_tag`` (which mess a row carries) and
    ``_truth:<measure>`` (a coded set's themes, which the coders' sheets carry, not the raw file) are
    dropped before writing.
    """
    csv = wave.format == "csv"
    council = {"gss": rows["gss_code"], "name": rows["name"], "dfe": rows["dfe"]}[_council_key(wave)]
    frame = pd.DataFrame({wave.council: council.to_numpy(dtype=object if csv else None)})
    if wave.council_check:
        frame[wave.council_check] = rows["name"].to_numpy(dtype=object)
    frame[wave.respondent] = rows["resp_id"].to_numpy(dtype=object)
    frame[wave.role] = rows["role"].map(ROLES).to_numpy(dtype=object) if csv else rows["role"].astype(float)
    frame[wave.submitted] = (rows["submitted_at"].dt.strftime("%d/%m/%Y %H:%M").to_numpy(dtype=object)
                             if csv else rows["submitted_at"])
    for m in study.measures:
        if wave.id in m.columns and m.coded_from:  # coded by hand: the themes an answer was made of, hidden
            frame[f"{TRUTH_COLUMN}{m.name}"] = values[m.name]
        elif wave.id in m.columns:
            frame[m.columns[wave.id]] = _encode(values[m.name], m, wave, csv)
    frame["_t"] = rows["submitted_at"]
    frame["_tag"] = ""
    return frame


def _encode(values: np.ndarray, measure: Measure, wave: Wave, csv: bool) -> np.ndarray:
    """Codes → the wave's codes (reversed scale, declared missing codes) or, for a CSV, answer texts."""
    if measure.type == "text":
        return values.astype(object)
    values = values.astype(float)
    out: list[Any] = []
    lo, hi = (measure.levels[0], measure.levels[-1]) if measure.levels else (0.0, 0.0)
    for v in values:
        if np.isnan(v):
            out.append("" if csv else np.nan)
        elif v in SENTINEL_REASONS:
            out.append(SENTINEL_REASONS[v] if csv else float(missing_key(measure, v)))
        elif csv:
            out.append(measure.level_labels.get(v, f"{v:g}"))
        else:
            out.append(lo + hi - v if is_reversed(measure, wave) else v)
    return np.array(out, dtype=object if csv else float)


def _sav_metadata(study: Study, wave: Wave) -> dict[str, Any]:
    """Variable labels, value labels, user-missing codes, measurement levels and formats for pyreadstat."""
    labels = {wave.council: {"gss": "Council (GSS code)", "dfe": "Council (DfE LA code)",
                             "name": "Council name"}[_council_key(wave)],
              wave.respondent: "Respondent ID", wave.role: "Respondent's role", wave.submitted: "Submitted at"}
    if wave.council_check:
        labels[wave.council_check] = "Council name"
    value_labels: dict[str, dict[float, str]] = {wave.role: {float(k): v for k, v in ROLES.items()}}
    missing: dict[str, list[float]] = {}
    measure_levels = {wave.council: "nominal", wave.respondent: "nominal", wave.role: "nominal",
                      wave.submitted: "scale"}
    formats = {wave.role: "F1.0"}
    if _council_key(wave) == "dfe":
        formats[wave.council] = "F3.0"
    if wave.council_check:
        measure_levels[wave.council_check] = "nominal"
    kinds = {"likert": "ordinal", "binary": "nominal", "numeric": "scale", "text": "nominal"}
    for m in study.measures:
        if wave.id not in m.columns or m.coded_from:
            continue
        column = m.columns[wave.id]
        labels[column] = m.label
        measure_levels[column] = kinds[m.type]
        if m.type == "text":
            continue
        coded = m.level_labels
        if is_reversed(m, wave):
            lo, hi = m.levels[0], m.levels[-1]
            coded = {lo + hi - v: label for v, label in m.level_labels.items()}
        user_missing = numeric_missing(m)
        value_labels[column] = {**dict(sorted(coded.items())), **user_missing}
        if user_missing:
            missing[column] = sorted(user_missing)
        widest = max([*coded, *user_missing, m.maximum or 1.0])
        formats[column] = f"F{len(str(int(widest)))}.0"
    return {"column_labels": labels, "variable_value_labels": value_labels, "missing_ranges": missing,
            "variable_measure": measure_levels, "variable_format": formats, "file_label": wave.label}


def _write_sav(path: Path, frame: pd.DataFrame, metadata: Mapping[str, Any], stamp: datetime) -> None:
    """pyreadstat.write_sav, with the header's write-time stamp replaced by ``stamp`` (determinism)."""
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(frame, tmp, **metadata)
        data = bytearray(tmp.read_bytes())
        if not re.fullmatch(rb"\d\d \w{3} \d\d\d\d:\d\d:\d\d", bytes(data[_SAV_STAMP])):
            raise RuntimeError(f"{path}: unexpected SPSS header layout, cannot fix its creation stamp")
        data[_SAV_STAMP] = f"{stamp:%d} {_MONTHS[stamp.month - 1]} {stamp:%y}{stamp:%H:%M:%S}".encode("ascii")
        tmp.write_bytes(bytes(data))


def write_wave(path: Path, study: Study, wave: Wave, frame: pd.DataFrame) -> None:
    data = frame.drop(columns=[c for c in frame.columns if c in ("_t", "_tag") or c.startswith(TRUTH_COLUMN)])
    if wave.format == "csv":
        text = data.to_csv(index=False, lineterminator="\r\n")
        write_bytes(path, text.encode(wave.read.encoding or "utf-8"))
    else:
        last = frame["_t"].max().to_pydatetime()
        _write_sav(path, data, _sav_metadata(study, wave), last.replace(hour=18, minute=0, second=0))
