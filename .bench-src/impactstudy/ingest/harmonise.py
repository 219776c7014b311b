"""Map one raw wave onto the study's harmonised measures.

Pure functions over DataFrames: given the raw table of one wave and the study config, produce the
accepted rows (one column per measure, numeric codes as float, a ``<measure>__missing`` column with
the reason a value is missing) and the quarantine entries (rejected rows and rejected values), so that
rows read = rows accepted + rows quarantined, always.

The rules, applied to each distinct raw value of a measure's column (fast on large waves):
1. blank → missing, reason "No answer";
2. the wave's declared ``recode`` (raw value or label → code);
3. the measure's declared ``missing`` codes, labels or reasons → missing with that reason ("Don't know");
4. user-missing codes the SPSS/Stata file itself declares → missing, reason from the file's label;
5. text is matched to the measure's level labels (any case; "yes"/"no" for binary); numbers are read;
6. ``reverse`` flips a reversed scale (``min + max - value``);
7. a value outside the levels (or ``min``/``max``) → missing, reason "Out of range", and a quarantine
   entry naming column and value; text that is none of the above → "Unrecognised answer", likewise.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.pipeline.frames import QUARANTINE_COLUMNS, distinct, map_distinct, missing_column, sheet_rows, spread
from impactstudy.pipeline.identifiers import identifier_text, pseudonymiser, raw_key
from impactstudy.pipeline.readers import RawMeta
from impactstudy.study.config import Measure, Study, Wave

NO_ANSWER = "No answer"
OUT_OF_RANGE = "Out of range"
UNRECOGNISED = "Unrecognised answer"
BINARY_WORDS = {"yes": 1.0, "y": 1.0, "true": 1.0, "selected": 1.0, "no": 0.0, "n": 0.0, "false": 0.0,
                "not selected": 0.0}


@dataclass(frozen=True)
class HarmonisedWave:
    """The accepted rows of one wave and its quarantine entries."""

    data: pd.DataFrame
    quarantine: pd.DataFrame
    label_warnings: tuple[str, ...] = ()


def normalise_text(value: str) -> str:
    """Fold case, curly quotes, accents' composition and runs of spaces, for label matching."""
    text = unicodedata.normalize("NFKC", value).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip().casefold()


def pseudonymise(raw_id: str, salt: bytes) -> str:
    """One respondent id's pseudonym under ``salt`` (see :func:`pseudonymiser`)."""
    return pseudonymiser(salt)(raw_id)


# ------------------------------------------------------------------------------------ value mapping


@dataclass(frozen=True)
class _Outcome:
    value: float
    reason: str | None  # missing reason when value is NaN
    rejected: str | None  # quarantine reason when the value was rejected


def _file_missing(value: float, column: str, meta: RawMeta) -> str | None:
    for lo, hi in meta.user_missing.get(column, []):
        if lo <= value <= hi:
            label = meta.value_labels.get(column, {}).get(value) or meta.value_labels.get(column, {}).get(int(value))
            return str(label) if label else f"User-missing code {value:g}"
    return None


def _in_range(value: float, measure: Measure) -> bool:
    if measure.type in ("likert", "binary"):
        return value in measure.levels
    if measure.minimum is not None and value < measure.minimum:
        return False
    if measure.maximum is not None and value > measure.maximum:
        return False
    return True


def _map_value(raw: Any, measure: Measure, wave: Wave, column: str, meta: RawMeta) -> _Outcome:
    key = raw_key(raw)
    if key is None:
        return _Outcome(math.nan, NO_ANSWER, None)
    folded = normalise_text(key)
    recode = {normalise_text(k): v for k, v in measure.recode.get(wave.id, {}).items()}
    # a declared missing code matches by code ("8") or, in text exports, by its reason ("Don't know")
    missing = {normalise_text(v): v for v in measure.missing.values()}
    missing.update({normalise_text(k): v for k, v in measure.missing.items()})
    if folded in recode:
        number: float | None = recode[folded]
    elif folded in missing:
        return _Outcome(math.nan, missing[folded], None)
    else:
        number = None
        try:
            number = float(key)
        except ValueError:
            labels = {normalise_text(lb): lv for lv, lb in measure.level_labels.items()}
            if measure.type == "binary":
                labels = {**BINARY_WORDS, **labels}
            number = labels.get(folded)
            if number is None:
                return _Outcome(math.nan, UNRECOGNISED, UNRECOGNISED)
        if not math.isfinite(number):
            return _Outcome(math.nan, UNRECOGNISED, UNRECOGNISED)
        file_reason = _file_missing(number, column, meta)
        if file_reason is not None:
            return _Outcome(math.nan, file_reason, None)
    if wave.id in measure.reverse and number in measure.levels:
        number = min(measure.levels) + max(measure.levels) - number
    if not _in_range(number, measure):
        return _Outcome(math.nan, OUT_OF_RANGE, OUT_OF_RANGE)
    return _Outcome(float(number), None, None)


def harmonise_measure(
    raw: pd.Series, measure: Measure, wave: Wave, meta: RawMeta
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Values, missing reasons and rejection reasons for one measure's raw column.

    Works on the distinct raw values, so a large wave costs little more than its number of distinct
    answers.
    """
    column = measure.columns[wave.id]
    codes, distinct_values = distinct(raw)
    outcomes = [_map_value(v, measure, wave, column, meta) for v in distinct_values]
    values = pd.Series(np.array([o.value for o in outcomes], dtype="float64")[codes], index=raw.index)
    reasons = spread([o.reason for o in outcomes], codes, raw.index, "string")
    rejected = spread([o.rejected for o in outcomes], codes, raw.index, "string")
    return values, reasons, rejected


def harmonise_text(raw: pd.Series) -> pd.Series:
    """Free text as stripped strings, blanks as missing."""
    return map_distinct(raw, lambda v: None if raw_key(v) is None else str(v).strip())


def label_warnings(measure: Measure, wave: Wave, meta: RawMeta) -> list[str]:
    """Where the file's value labels disagree with the measure's labels after recode and reverse."""
    column = measure.columns[wave.id]
    file_labels = meta.value_labels.get(column)
    if not file_labels or not measure.level_labels:
        return []
    out = []
    for code, label in file_labels.items():
        try:
            outcome = _map_value(code, measure, wave, column, meta)
        except (TypeError, ValueError):
            continue
        if math.isnan(outcome.value):
            continue
        expected = measure.level_labels.get(outcome.value)
        if expected and normalise_text(expected) != normalise_text(str(label)):
            out.append(
                f"wave '{wave.id}' column '{column}': the file labels code {code} '{label}', which becomes "
                f"{outcome.value:g} '{expected}' for measure '{measure.name}'; check recode/reverse"
            )
    return out


# --------------------------------------------------------------------------------------- the wave


def _quarantine_rows(wave: Wave, source_file: str, rows: pd.Series, reason: pd.Series | str,
                     column: str = "", value: pd.Series | str = "", scope: str = "row") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "wave": wave.id,
            "source_file": source_file,
            "source_row": rows.to_numpy(dtype="int64"),
            "column": column,
            "value": value.astype("string").to_numpy() if isinstance(value, pd.Series) else value,
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason,
            "scope": scope,
            "sheet_row": sheet_rows(rows.to_numpy(dtype="int64"), wave.format, wave.read.header_row),
        },
        columns=QUARANTINE_COLUMNS,
    )


def _duplicates(frame: pd.DataFrame, measures: list[str], rule: str) -> pd.Series:
    """Reason for each row dropped as a duplicate submission (NA for rows kept)."""
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    # a respondent id is unique within its council: the same id given for another council is another person
    ids = frame["respondent_id"]
    if ids.isna().all():
        return reasons
    ids = frame["council_raw"].str.casefold() + "\0" + ids
    answered = frame[measures].notna().sum(axis=1) if measures else pd.Series(0, index=frame.index)
    order = pd.DataFrame(
        {
            "id": ids,
            "submitted": frame["submitted_at"] if "submitted_at" in frame else pd.NaT,
            "answered": answered,
            "row": frame["source_row"],
        }
    ).dropna(subset=["id"])
    sort_keys = ["submitted", "row"] if rule == "latest" else ["answered", "submitted", "row"]
    order = order.sort_values(sort_keys, na_position="first")
    kept = order.groupby("id", sort=False).tail(1)
    kept_row = kept.set_index("id")["row"]
    for index in order.index.difference(kept.index):
        rid = order.at[index, "id"]
        reasons.at[index] = (
            f"Duplicate submission by the same respondent; kept source row {int(kept_row[rid])} "
            f"({'latest submission' if rule == 'latest' else 'most complete'})"
        )
    return reasons


def harmonise_wave(raw: pd.DataFrame, meta: RawMeta, wave: Wave, study: Study, source_file: str,
                   salt: bytes) -> HarmonisedWave:
    """Harmonise one wave's raw rows onto the study's measures (see the module docstring).

    ``source_file`` is recorded in the quarantine; ``salt`` pseudonymises respondent ids.
    Columns named in the config must exist (check with :func:`impactstudy.validate.check_columns`).
    """
    frame = pd.DataFrame(index=raw.index)
    frame["wave"] = wave.id
    frame["source_row"] = np.arange(1, len(raw) + 1, dtype="int64")
    frame["council_raw"] = map_distinct(raw[wave.council], identifier_text)
    if wave.council_check:
        frame["council_check_raw"] = map_distinct(raw[wave.council_check], identifier_text)
    if wave.respondent:
        pseudonym = pseudonymiser(salt)
        frame["respondent_id"] = map_distinct(
            raw[wave.respondent], lambda v: None if (text := identifier_text(v)) is None else pseudonym(text))
    else:
        frame["respondent_id"] = pd.Series(pd.NA, index=raw.index, dtype="string")
    if wave.role:
        labels = meta.value_labels.get(wave.role, {})
        frame["role"] = map_distinct(
            raw[wave.role], lambda v: None if raw_key(v) is None else str(labels.get(v, labels.get(_as_int(v), v))).strip())
    else:
        frame["role"] = pd.Series(pd.NA, index=raw.index, dtype="string")
    value_quarantine = []
    if wave.submitted:
        submitted = _parse_times(raw[wave.submitted])
        unparsed = submitted.isna()  # of those, the cells that were not blank could not be read
        bad = map_distinct(raw.loc[unparsed, wave.submitted], lambda v: raw_key(v) is not None, "bool").reindex(
            raw.index, fill_value=False)
        if bad.any():
            value_quarantine.append(
                _quarantine_rows(wave, source_file, frame.loc[bad, "source_row"], "Unreadable date and time",
                                 wave.submitted, raw.loc[bad, wave.submitted], scope="value")
            )
        frame["submitted_at"] = submitted

    measure_names, warnings = [], []
    for measure in study.analysed_measures:
        if wave.id not in measure.columns or measure.coded_from:  # coded sets: from the returned sheets
            continue
        column = measure.columns[wave.id]
        measure_names.append(measure.name)
        if measure.type == "text":
            frame[measure.name] = harmonise_text(raw[column])
            continue
        values, reasons, rejected = harmonise_measure(raw[column], measure, wave, meta)
        frame[measure.name] = values
        frame[missing_column(measure.name)] = reasons
        bad = rejected.notna()
        if bad.any():
            value_quarantine.append(
                _quarantine_rows(wave, source_file, frame.loc[bad, "source_row"], rejected[bad], column,
                                 raw.loc[bad, column], scope="value")
            )
        warnings.extend(label_warnings(measure, wave, meta))

    no_council = frame["council_raw"].isna()
    dup = _duplicates(frame.loc[~no_council], [m for m in measure_names if study.measure(m).type != "text"],
                      study.duplicates)
    row_reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    row_reasons[no_council] = "No council identifier; add the council's code or name to this row"
    row_reasons.loc[dup.index] = row_reasons.loc[dup.index].fillna(dup)
    rejected_rows = row_reasons.notna()
    quarantine = [
        _quarantine_rows(wave, source_file, frame.loc[rejected_rows, "source_row"], row_reasons[rejected_rows],
                         wave.council, frame.loc[rejected_rows, "council_raw"].fillna(""))
    ]
    kept_rows = set(frame.loc[~rejected_rows, "source_row"])
    quarantine += [q[q["source_row"].isin(kept_rows)] for q in value_quarantine]
    data = frame.loc[~rejected_rows].reset_index(drop=True)
    quarantine_frame = pd.concat([q for q in quarantine if len(q)], ignore_index=True) if any(
        len(q) for q in quarantine) else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return HarmonisedWave(data, quarantine_frame, tuple(dict.fromkeys(warnings)))


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _parse_times(raw: pd.Series) -> pd.Series:
    """Submission times: datetimes as they are; text in ISO or day-first UK style."""
    if pd.api.types.is_datetime64_any_dtype(raw):  # outside pandas' range (an SPSS zero date, 1582): unreadable
        return raw.where(raw.between(pd.Timestamp.min, pd.Timestamp.max)).astype("datetime64[ns]")
    text = raw.map(lambda v: None if raw_key(v) is None else str(v).strip())
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601")
    uk = pd.to_datetime(text, errors="coerce", dayfirst=True, format="mixed")
    return iso.fillna(uk).astype("datetime64[ns]")
