"""The panels for SPSS, PSPP and Stata: ``panel_long.sav``/``.dta`` (one row per council × respondent ×
wave) and ``panel_wide.sav``/``.dta`` (one row per council × respondent, ``<measure>__<wave>``).

:func:`long_export` and :func:`wide_export` are pure: they give the frame to write and its dictionary
(:class:`Export`); :func:`write_exports` is the one function writing an export as ``.sav`` and ``.dta``.
What the files record, as a researcher in SPSS or Stata expects:

* variable labels for every variable (the measure's label; in the wide files with the wave's label);
  covariates labelled with their header in the councils file (the study's own name for them);
* value labels: the measure's levels, ``wave`` numbered from 1 with the wave labels, and the categories
  of ``role``, ``authority_type``, ``region`` and each category covariate as labelled whole numbers
  (1, 2 … in alphabetical order), so they tabulate as SPSS users code categories;
* measurement levels: ordinal for Likert items and the wave, scale for numbers, dates and months since
  the intervention, nominal for yes/no items, categories and identifiers;
* whole-number formats for coded items (``F1.0`` for a 1–5 scale with 8/9 missing codes; ``%8.0f`` in
  Stata), and for numbers that are all whole;
* declared missing answers ("Don't know", "Not applicable") kept as their codes
  (:func:`impactstudy.study.codebook.missing_codes`): in SPSS user-missing values with value labels; in
  Stata, which has no user-missing values, extended missing values ``.a``, ``.b`` … with value labels.
  A blank answer or one set aside (out of range, unrecognised) is system-missing (``.``).

Names are the study's where SPSS or Stata takes them, else the safe names of
:func:`impactstudy.study.names.export_names`, with the study's name in the variable label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.pipeline.atomic import fix_dta_timestamp, fix_sav_timestamp
from impactstudy.pipeline.frames import MONTHS_SINCE, map_distinct, missing_column
from impactstudy.study.codebook import MEASUREMENT_LEVELS, MissingCode, missing_codes, spss_missing
from impactstudy.study.config import Measure, Study
from impactstudy.study.names import export_labels, export_names

CATEGORIES = ("role", "authority_type", "region")  # text the panel carries as categories: labelled codes
TEXTS = ("council_code", "council_name", "respondent_id")  # identifiers: kept as text


@dataclass(frozen=True)
class Export:
    """A frame for SPSS/Stata (measure columns holding the missing codes) and its dictionary, by column."""

    frame: pd.DataFrame
    labels: dict[str, str]
    value_labels: dict[str, dict[float, str]]
    levels: dict[str, str]  # SPSS measurement level: nominal, ordinal, scale
    formats: dict[str, int] = field(default_factory=dict)  # whole-number columns: their width in digits
    missing: dict[str, tuple[MissingCode, ...]] = field(default_factory=dict)
    waves: dict[str, tuple[str, str]] = field(default_factory=dict)  # wide columns: (wave id, wave label)
    dates: tuple[str, ...] = ()  # columns of dates (datetime.date or None)


def _codes(person_wave: pd.DataFrame, measure: Measure) -> tuple[MissingCode, ...]:
    """The measure's missing codes, with the reasons found in the data (a raw file's own user-missing labels)."""
    values = person_wave[measure.name].to_numpy(dtype="float64")
    column = missing_column(measure.name)
    reasons = pd.unique(person_wave[column].to_numpy(dtype=object)) if column in person_wave else []
    found = sorted(str(r) for r in reasons if isinstance(r, str))
    top = float(np.nanmax(values)) if np.isfinite(values).any() else None
    return missing_codes(measure, top, found)


def _coded(person_wave: pd.DataFrame, measure: Measure, codes: tuple[MissingCode, ...]) -> pd.Series:
    """The measure's values with each declared missing reason as its code."""
    values = person_wave[measure.name].astype("float64")
    if not codes:
        return values
    lookup = {c.reason: c.code for c in codes}
    code = map_distinct(person_wave[missing_column(measure.name)], lambda r: lookup.get(r, np.nan), "float64")
    return values.where(values.notna(), code)


def _width(values: pd.Series, extra: list[float]) -> int | None:
    """Digits of a whole-number format for ``values`` (and ``extra`` codes), or None if some are fractional."""
    numbers = np.concatenate([values.dropna().to_numpy(dtype="float64"), np.asarray(extra, dtype="float64")])
    if not len(numbers) or not np.all(np.mod(numbers, 1) == 0) or np.abs(numbers).max() >= 1e15:
        return None
    return max(len(f"{int(v)}") for v in (numbers.min(), numbers.max()))


def _category(column: pd.Series) -> tuple[pd.Series, dict[float, str]]:
    """Text categories as labelled codes 1, 2 … in alphabetical order (blank: system-missing)."""
    text = column.astype("string")
    levels = sorted(text.dropna().unique().tolist())
    lookup = {v: float(i) for i, v in enumerate(levels, start=1)}
    return text.map(lookup).astype("float64"), {code: label for label, code in lookup.items()}


def _common(person_wave: pd.DataFrame, study: Study, covariates: list[str]) -> tuple[pd.DataFrame, Export]:
    """The identifying, council and covariate columns of every export, person-wave rows."""
    kinds = dict(study.councils.covariates) if study.councils else {}
    frame = pd.DataFrame(index=person_wave.index)
    labels = {"council_code": "Council GSS code", "council_name": "Council", "respondent_id": "Respondent (pseudonymised)",
              "role": "Respondent role", "authority_type": "Authority type", "region": "Region",
              MONTHS_SINCE: f"Months since {study.intervention.name}"}
    value_labels: dict[str, dict[float, str]] = {}
    levels = {c: "nominal" for c in (*TEXTS, *CATEGORIES)}
    for column in (*TEXTS, *CATEGORIES, *covariates):
        kind = "category" if column in CATEGORIES else kinds.get(column, "category")
        values = person_wave[column]
        if column in TEXTS:
            frame[column] = values.astype(object).where(values.notna(), "")
        elif kind == "category" and not pd.api.types.is_numeric_dtype(values):
            frame[column], value_labels[column] = _category(values)
            levels[column] = "nominal"
        elif kind == "date":  # dates as dates (SPSS DATE11, Stata %td), not date-times
            when = pd.to_datetime(values)
            frame[column] = pd.Series([d.date() if pd.notna(d) else None for d in when], index=frame.index, dtype=object)
            levels[column] = "scale"
        else:
            frame[column] = values.astype("float64")
            levels[column] = "nominal" if kind == "category" else "scale"
        if column in covariates:
            labels[column] = column  # the councils file's header, as the study names it
    frame[MONTHS_SINCE] = person_wave[MONTHS_SINCE].astype("float64")
    levels[MONTHS_SINCE] = "scale"
    formats = {c: len(str(len(v))) for c, v in value_labels.items()}
    dates = tuple(c for c in covariates if kinds.get(c) == "date")
    return frame, Export(frame, labels, value_labels, levels, formats, dates=dates)


def _measure_dictionary(measure: Measure, codes: tuple[MissingCode, ...]) -> tuple[dict[float, str], str]:
    labels = dict(measure.level_labels)
    labels.update({c.code: c.reason for c in codes})
    return labels, MEASUREMENT_LEVELS.get(measure.type, "nominal")


def long_export(person_wave: pd.DataFrame, study: Study, covariates: list[str]) -> Export:
    """One row per council × respondent × wave: ``wave`` (1, 2 … labelled) and one variable per measure."""
    frame, base = _common(person_wave, study, covariates)
    frame.insert(2, "wave", person_wave["wave_order"].astype("float64") + 1)
    labels, value_labels, levels = dict(base.labels), dict(base.value_labels), dict(base.levels)
    labels["wave"] = "Survey wave"
    value_labels["wave"] = {float(w.order + 1): w.label for w in study.waves}
    levels["wave"] = "ordinal"
    formats = {**base.formats, "wave": len(str(len(study.waves)))}
    missing = {}
    for m in study.analysed_measures:
        if m.name not in person_wave:
            continue
        labels[m.name] = m.label
        if m.type == "text":
            frame[m.name] = person_wave[m.name].astype(object).where(person_wave[m.name].notna(), "")
            levels[m.name] = "nominal"
            continue
        codes = _codes(person_wave, m)
        frame[m.name] = _coded(person_wave, m, codes)
        value_labels[m.name], levels[m.name] = _measure_dictionary(m, codes)
        missing[m.name] = codes
        width = _width(frame[m.name], [*m.levels, *(c.code for c in codes)])
        if width is not None:
            formats[m.name] = width
    return Export(frame.reset_index(drop=True), labels, {k: v for k, v in value_labels.items() if v}, levels,
                  formats, missing, dates=base.dates)


def wide_export(person_wave: pd.DataFrame, study: Study, covariates: list[str]) -> Export:
    """One row per council × respondent: their council and covariates (as at their latest wave), the waves
    they answered, and ``<measure>__<wave>`` for each wave a measure was asked in, coded as in the long file."""
    long = long_export(person_wave, study, covariates)
    keys = ["council_code", "respondent_id"]
    measures = [m for m in study.analysed_measures if m.name in long.frame]
    frame = long.frame.assign(_wave=person_wave["wave"].astype(str).to_numpy(),
                              _order=person_wave["wave_order"].to_numpy())
    static = [c for c in long.frame.columns if c not in keys and c != "wave" and c not in {m.name for m in measures}]
    ordered = frame.sort_values("_order", kind="stable")
    grouped = ordered.groupby(keys, sort=True)
    wide = grouped[static].last()
    bits = grouped["_order"].agg(lambda o: int(np.bitwise_or.reduce(1 << o.to_numpy())))  # bit i: in wave i
    texts = {b: ";".join(w for i, w in enumerate(study.wave_ids) if b >> i & 1) for b in bits.unique().tolist()}
    wide["waves_present"] = bits.map(texts)
    values = ordered.set_index([*keys, "_wave"])[[m.name for m in measures]].unstack("_wave")
    labels = {c: long.labels[c] for c in (*keys, *static) if c in long.labels}
    labels["waves_present"] = "Waves answered (wave ids)"
    value_labels = {c: v for c, v in long.value_labels.items() if c in static}
    levels = {c: long.levels[c] for c in (*keys, *static) if c in long.levels}
    levels["waves_present"] = "nominal"
    formats = {c: w for c, w in long.formats.items() if c in static}
    missing: dict[str, tuple[MissingCode, ...]] = {}
    waves = {w.id: w.label for w in study.waves}
    of_wave: dict[str, tuple[str, str]] = {}
    columns = {}
    for m in measures:
        for wave_id in study.wave_ids:
            if wave_id not in m.columns or (m.name, wave_id) not in values.columns:
                continue
            name = f"{m.name}__{wave_id}"
            column = values[(m.name, wave_id)]
            columns[name] = column.astype(object).where(column.notna(), "") if m.type == "text" else column
            labels[name] = f"{m.label} ({waves[wave_id]})"
            of_wave[name] = (wave_id, waves[wave_id])
            levels[name] = long.levels[m.name]
            for source, target in ((long.value_labels, value_labels), (long.missing, missing), (long.formats, formats)):
                if m.name in source:
                    target[name] = source[m.name]  # type: ignore[index]
    out = pd.concat([wide, pd.DataFrame(columns, index=values.index).reindex(wide.index)], axis=1)
    return Export(out.reset_index(), labels, value_labels, levels, formats, missing, of_wave, long.dates)


def _dta_frame(export: Export, names: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, dict[Any, str]], dict[str, list[str]]]:
    """The frame with Stata's extended missing values (``'a'`` for .a) in place of the codes."""
    frame = export.frame.copy()
    value_labels: dict[str, dict[Any, str]] = {}
    tags: dict[str, list[str]] = {}
    for column, labels in export.value_labels.items():
        codes = {c.code: c for c in export.missing.get(column, ()) if c.tag}
        kept: dict[Any, str] = {int(k): v for k, v in labels.items() if k not in codes and float(k).is_integer()}
        if codes:
            values = frame[column]
            tagged = values.map({k: c.tag for k, c in codes.items()})
            frame[column] = values.astype(object).where(tagged.isna(), tagged)
            kept.update({c.tag: c.reason for c in codes.values()})
            tags[names[column]] = [c.tag for c in codes.values()]
        if kept:
            value_labels[names[column]] = kept
    frame.columns = [names[c] for c in frame.columns]
    return frame, value_labels, tags


STATA_VARIABLE_LABEL = 80  # characters Stata keeps of a variable label


def _stata_label(export: Export, column: str, label: str) -> str:
    """``label`` cut to Stata's 80 characters; a wide column's keeps its wave (its label, or its id if that is long)."""
    if len(label) <= STATA_VARIABLE_LABEL:
        return label
    if column not in export.waves:
        return label[:STATA_VARIABLE_LABEL - 1] + "\u2026"
    wave_id, wave_label = export.waves[column]
    suffix = f" ({wave_label})" if len(wave_label) <= 30 else f" [{wave_id}]"
    head = export.labels.get(column, column)[: -len(f" ({wave_label})")] if column in export.labels else column
    return head[:STATA_VARIABLE_LABEL - len(suffix) - 1] + "\u2026" + suffix


STATA_LABEL_CHARS = 32  # a value-label set's name: pyreadstat names it after the variable and its position


def _stata_names(export: Export) -> dict[str, str]:
    """Stata names (:func:`export_names`), shortened where a variable carries value labels so that its
    label set's name (the variable's name followed by its position: ``eff0``) fits Stata's 32 characters."""
    names = export_names(list(export.frame.columns), "stata")
    taken = {n.lower() for n in names.values()}
    for position, column in enumerate(export.frame.columns):
        limit = STATA_LABEL_CHARS - len(str(position))
        name = names[column]
        if column not in export.value_labels or len(name) <= limit:
            continue
        candidate, k = name[:limit], 2
        while candidate.lower() in taken:
            candidate, k = f"{name[:limit - 1 - len(str(k))]}_{k}", k + 1
        taken.add(candidate.lower())
        names[column] = candidate
    return names


SPSS_EPOCH = date(1582, 10, 14)  # an SPSS date is seconds since this day
STATA_EPOCH = date(1960, 1, 1)  # a Stata %td date is days since this day
DATE_FORMATS = {"spss": "DATE11", "stata": "%td"}


def _dates_as_numbers(frame: pd.DataFrame, columns: list[str], style: str) -> pd.DataFrame:
    """``frame`` with its date ``columns`` as the numbers SPSS or Stata stores (float, NaN for none), given
    the format :data:`DATE_FORMATS` by the writer: typed columns, so pyreadstat need not guess (a column of
    date objects whose first 100 rows were blank was taken for text; see :func:`_tagged_column`)."""
    frame = frame.copy()
    epoch, scale = (SPSS_EPOCH, 86400.0) if style == "spss" else (STATA_EPOCH, 1.0)
    for column in columns:
        frame[column] = pd.Series([float((d - epoch).days) * scale if isinstance(d, date) else np.nan
                                   for d in frame[column]], index=frame.index, dtype="float64")
    return frame


def _tagged_column(values: pd.Series, tags: list[str]) -> pd.Series:
    """A Stata column holding numbers and tags (``'a'`` for .a), as a categorical whose categories are its
    numbers first, then its tags.

    pyreadstat takes a column's type from what narwhals makes of it, and narwhals guesses an object
    column's type from its first 100 values: a column whose first 100 answers were blank or tagged was
    taken for text and its numbers refused (found on the national benchmark). A categorical's type is
    its categories', so a number among the first categories makes the column numeric whatever order its
    rows come in (a column with no number at all is all missing, which pyreadstat writes as numeric)."""
    objects = [None if isinstance(v, float) and np.isnan(v) else (v if isinstance(v, str) else float(v))
               for v in values.tolist()]
    numbers = sorted({v for v in objects if isinstance(v, float)})
    return pd.Series(pd.Categorical(objects, categories=[*numbers, *tags]), index=values.index,
                     name=values.name)


def write_exports(export: Export, sav: Path, dta: Path) -> None:
    """Write ``export`` as an SPSS ``.sav`` and a Stata ``.dta`` (the one writer of both; paths written in place)."""
    import pyreadstat

    for path, style in ((sav, "spss"), (dta, "stata")):
        names = export_names(list(export.frame.columns), "spss") if style == "spss" else _stata_names(export)
        labels = export_labels(names, export.labels)
        formats = {names[c]: f"F{max(width, 1)}.0" if style == "spss" else f"%{max(width + 1, 2)}.0f"
                   for c, width in export.formats.items()}
        if style == "spss":
            frame = _dates_as_numbers(export.frame, list(export.dates), style)
            frame.columns = [names[c] for c in frame.columns]
            pyreadstat.write_sav(
                frame, str(path), column_labels=labels,
                variable_value_labels={names[c]: v for c, v in export.value_labels.items()},
                missing_ranges={names[c]: spss_missing(codes) for c, codes in export.missing.items() if codes},
                variable_measure={names[c]: level for c, level in export.levels.items() if c in names},
                variable_format={**formats, **{names[c]: DATE_FORMATS[style] for c in export.dates}},
                variable_display_width={names[c]: max(width, 8) for c, width in export.formats.items()})
            fix_sav_timestamp(path)
        else:
            frame, value_labels, tags = _dta_frame(export, names)
            frame = _dates_as_numbers(frame, [names[c] for c in export.dates], style)
            for column, column_tags in tags.items():
                frame[column] = _tagged_column(frame[column], column_tags)
            old = {new: original for original, new in names.items()}
            pyreadstat.write_dta(
                frame, str(path), version=14,
                column_labels={k: _stata_label(export, old.get(k, k), v) for k, v in labels.items()},
                variable_value_labels=value_labels, missing_user_values=tags,
                variable_format={**formats, **{names[c]: DATE_FORMATS[style] for c in export.dates}})
            fix_dta_timestamp(path)
