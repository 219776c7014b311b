"""The study's codebook, and the missing-value codes the SPSS and Stata exports declare.

Both are derived from the config alone (plus, optionally, what ingest recorded about the raw files and
what the panel holds), so the report's codebook and the ``.sav``/``.dta`` files cannot disagree:

* :func:`missing_codes` gives each *declared* missing reason of a measure ("Don't know", "Not applicable")
  one numeric code for SPSS (a user-missing value) and one Stata extended missing value (``.a``, ``.b``
  …), each with the reason as its label. A reason declared under a numeric raw code (``8 = "Don't
  know"``) keeps that code; a reason declared only by its text gets the next free code of nines above
  every valid value (9, 8 … for a 1–5 scale; 99, 98 … for 0–10). Reasons the pipeline itself gives
  (``No answer``: left blank; ``Out of range`` and ``Unrecognised answer``: an answer set aside in the
  quarantine) are system-missing (``.``) in both.
* :func:`codebook` is the codebook: per measure its label, type with its SPSS measurement level, values and their
  labels, missing codes and reversed waves (``measures``); and per measure and wave the raw
  column it was read from, the question text the raw file gave that column, the wave's recodes and
  whether the scale was reversed there (``sources``).
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from impactstudy.study.config import Measure, Study

NO_ANSWER = "No answer"
OUT_OF_RANGE = "Out of range"
UNRECOGNISED = "Unrecognised answer"
SYSTEM_MISSING = (NO_ANSWER, OUT_OF_RANGE, UNRECOGNISED)  # the pipeline's reasons: system-missing in SPSS/Stata
STATA_TAGS = string.ascii_lowercase  # Stata's extended missing values .a to .z
SPSS_DISCRETE_MISSING = 3  # SPSS holds at most three discrete user-missing values (else a range)

MEASUREMENT_LEVELS = {"likert": "ordinal", "numeric": "scale", "binary": "nominal", "text": "nominal"}
TYPE_NAMES = {"likert": "Likert scale", "numeric": "Number", "binary": "Yes/No", "text": "Free text"}


@dataclass(frozen=True)
class MissingCode:
    """One declared missing reason of a measure, as SPSS and Stata record it."""

    reason: str
    code: float  # the SPSS user-missing value
    tag: str  # the Stata extended missing value's letter ('a' for .a)
    declared: tuple[str, ...]  # the raw codes or texts the config maps to this reason ('8', "Don't know")


def _numeric(key: str) -> float | None:
    try:
        value = float(key)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _valid_maximum(measure: Measure, observed_max: float | None) -> float:
    values = [*measure.levels, *(v for v in (measure.maximum, observed_max) if v is not None)]
    values += [code for mapping in measure.recode.values() for code in mapping.values()]
    return max(values, default=0.0)


def _valid(value: float, measure: Measure) -> bool:
    """Whether ``value`` can be a valid answer of ``measure`` after ingest (so it cannot be a missing code):
    a level, or a code a recode maps to. A declared missing raw code is read as missing before anything
    else, so as a number it is never a valid answer."""
    return value in measure.levels or any(value in mapping.values() for mapping in measure.recode.values())


def missing_codes(measure: Measure, observed_max: float | None = None, extra: Iterable[str] = ()) -> tuple[MissingCode, ...]:
    """The measure's declared missing reasons (then ``extra`` reasons, such as a raw SPSS file's own
    user-missing labels found in the data) with their SPSS codes and Stata tags, in declaration order.

    ``observed_max`` is the largest valid answer in the data, for a numeric measure without a declared
    ``max``: assigned codes lie above it. Text measures have none (they have no numeric codes).
    """
    if measure.type == "text":
        return ()
    by_reason: dict[str, list[str]] = {}
    for key, reason in measure.missing.items():
        by_reason.setdefault(reason, []).append(key)
    for reason in extra:
        if reason not in SYSTEM_MISSING:
            by_reason.setdefault(reason, [])
    taken: set[float] = set()
    chosen: dict[str, float | None] = {}
    for reason, keys in by_reason.items():
        numbers = [n for n in map(_numeric, keys) if n is not None and not _valid(n, measure) and n not in taken]
        chosen[reason] = numbers[0] if numbers else None
        if numbers:
            taken.add(numbers[0])
    top = _valid_maximum(measure, observed_max)
    digits = max(1, len(str(int(abs(top)))))
    free = [c for c in _nines(digits) if c > top and c not in taken]
    while len(free) < sum(c is None for c in chosen.values()):
        digits += 1
        free = [c for c in _nines(digits) if c > top and c not in taken]
    out = []
    for k, (reason, code) in enumerate(chosen.items()):
        if code is None:
            code = free.pop(0)
        tag = STATA_TAGS[k] if k < len(STATA_TAGS) else ""
        out.append(MissingCode(reason=reason, code=float(code), tag=tag, declared=tuple(
            f"{n:g}" if (n := _numeric(key)) is not None else key for key in by_reason[reason])))
    return tuple(out)


def _nines(digits: int) -> list[float]:
    """9, 8, 7 … 1 for one digit; 99, 98 … 90 for two: the codes surveys use for missing answers."""
    top = 10 ** digits - 1
    return [float(top - k) for k in range(10 if digits > 1 else 9)]


def spss_missing(codes: Iterable[MissingCode]) -> list[Any]:
    """pyreadstat's ``missing_ranges`` entry: up to three discrete values, else one range holding them all."""
    values = sorted(c.code for c in codes)
    if len(values) <= SPSS_DISCRETE_MISSING:
        return values
    return [{"lo": values[0], "hi": values[-1]}]


def _fmt(value: float) -> str:
    return f"{value:g}".replace("-", "\u2212")


def _values_text(measure: Measure) -> str:
    if measure.level_labels:
        return "; ".join(f"{_fmt(v)} = {measure.level_labels[v]}" if v in measure.level_labels else _fmt(v)
                         for v in measure.levels)
    if measure.levels:
        return "; ".join(_fmt(v) for v in measure.levels)
    if measure.type == "numeric":
        low, high = measure.minimum, measure.maximum
        if low is not None and high is not None:
            return f"{_fmt(low)} to {_fmt(high)}"
        if low is not None:
            return f"{_fmt(low)} or more"
        if high is not None:
            return f"up to {_fmt(high)}"
        return "any number"
    return "text"


def _type_text(measure: Measure) -> str:
    """The measure's type with its SPSS measurement level: "Likert scale, 5 points (ordinal)"."""
    name = TYPE_NAMES.get(measure.type, measure.type)
    if measure.type == "likert":
        name += f", {len(measure.levels)} points"
    name += f" ({MEASUREMENT_LEVELS.get(measure.type, 'nominal')})"
    if measure.parent:
        name += f"; an option of the set {measure.parent}" if measure.type == "binary" else \
            f"; an item of the grid {measure.parent}"
    if not measure.analyse:
        name += "; not analysed (administrative: kept in the data, not modelled or reported as a finding)"
    return name


def _missing_text(codes: Iterable[MissingCode]) -> str:
    shown = "; ".join(f"{_fmt(c.code)} (Stata .{c.tag}) = {c.reason}" if c.tag else f"{_fmt(c.code)} = {c.reason}"
                      for c in codes)
    return shown or "none declared"


def _recode_text(mapping: Mapping[str, float]) -> str:
    return "; ".join(f"{_fmt(n) if (n := _numeric(raw)) is not None else repr(raw)} \u2192 {_fmt(code)}"
                     for raw, code in mapping.items())


def codebook(study: Study, column_labels: Mapping[str, Mapping[str, str]] | None = None,
             observed_max: Mapping[str, float] | None = None,
             extra_missing: Mapping[str, Iterable[str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The codebook of ``study``'s analysed measures as two frames of display text: ``measures`` (one
    row per measure) and ``sources`` (one row per measure and wave it was asked in).

    ``column_labels`` (wave id → raw column → the raw file's own label for it, as ingest records in
    ``ingest_report.json``) adds the question text each wave's file gave; ``observed_max`` and
    ``extra_missing`` (measure → largest valid answer; → further missing reasons in the data) make the
    missing codes those of the ``.sav``/``.dta`` exports (:func:`missing_codes`).
    """
    labels = column_labels or {}
    waves = {w.id: w.label for w in study.waves}
    measures, sources = [], []
    for m in study.analysed_measures:
        codes = missing_codes(m, (observed_max or {}).get(m.name), (extra_missing or {}).get(m.name, ()))
        measures.append({
            "Variable": m.name, "Label": m.label, "Type": _type_text(m),
            "Values and labels": _values_text(m),
            "Missing codes": _missing_text(codes) if m.type != "text" else "–",
            "Reversed in": "; ".join(waves[w] for w in study.wave_ids if w in m.reverse) or "none",
        })
        for wave_id in study.wave_ids:
            if wave_id not in m.columns:
                continue
            column = m.columns[wave_id]
            reversed_ = wave_id in m.reverse
            sources.append({
                "Variable": m.name, "Wave": waves[wave_id],
                "Source column": f"{column}, coded by hand (coding sheets)" if m.coded_from else column,
                "Question in the file": labels.get(wave_id, {}).get(column) or "–",
                "Recodes": _recode_text(m.recode.get(wave_id, {})) or "none",
                "Reversed": (f"yes: read as {_fmt(min(m.levels) + max(m.levels))} \u2212 answer"
                             if reversed_ else "no"),
            })
    return pd.DataFrame(measures), pd.DataFrame(sources)
