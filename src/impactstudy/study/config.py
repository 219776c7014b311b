"""Load and check a study's ``study.toml`` into typed, immutable objects.

The config is the only place a study is described: its waves (in order), how each wave's columns map
onto harmonised measures, the council key, covariates and model settings. Loading is strict: an unknown
key, a misspelt measure or wave, or a file path that leaves the study's raw folder is a
:class:`~impactstudy.errors.ConfigError` naming the key and the closest valid spelling, because a
silently ignored setting is worse than a refusal.

Measures with ``options`` (a multiple-response set, or a grid of Likert items) are expanded here into
one measure per option, named ``<name>_<option>``; everything downstream sees plain measures and keeps
the set name in :attr:`Measure.parent` for reporting.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from impactstudy.errors import ConfigError
from impactstudy.study.hints import closest
from impactstudy.study.hints import did_you_mean as _suggest  # config's wording: " (did you mean 'a', 'b'?)"
from impactstudy.study.names import check_names, check_personal_data

MEASURE_TYPES = ("likert", "numeric", "binary", "multi", "text")
MODEL_NAMES = ("lmm", "gee", "ordinal", "paired_t", "wilcoxon", "mcnemar", "cr2", "cr2_council", "sign_flip", "wild_bootstrap")
LMM_DF_METHODS = ("satterthwaite", "kenward-roger")  # as impactstudy.model.stats.lmm.DDF_METHODS
FORMATS = {
    ".sav": "sav",
    ".zsav": "sav",
    ".por": "por",
    ".dta": "dta",
    ".sas7bdat": "sas7bdat",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
DUPLICATE_RULES = ("latest", "most_complete")
COVARIATE_KINDS = ("category", "number", "date")
MERGER_RULES = ("separate", "successor")
DEFAULT_CAVEAT = (
    "These are changes over time in what councils reported, not proof that {name} caused them. "
    "Without a comparison group of councils that did not take part, the change cannot be separated from "
    "anything else that changed over the same period."
)


@dataclass(frozen=True)
class ReadOptions:
    """Reader options for one raw file; ``None`` means the reader's default."""

    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None
    header_row: int = 1  # 1-based row holding the column names (Excel / CSV)


@dataclass(frozen=True)
class Wave:
    """One survey wave: a raw file and where its identifying columns are."""

    id: str
    label: str
    order: int
    file: str  # relative to data/raw/<study>/
    format: str
    read: ReadOptions
    council: str
    council_check: str | None = None
    respondent: str | None = None
    role: str | None = None
    submitted: str | None = None
    fieldwork_start: date | None = None
    fieldwork_end: date | None = None

    @property
    def as_of(self) -> date | None:
        """The date council identifiers are resolved at: the end of fieldwork, else its start."""
        return self.fieldwork_end or self.fieldwork_start


@dataclass(frozen=True)
class Measure:
    """A harmonised measure, after expansion of option sets (see module docstring)."""

    name: str
    label: str
    type: str  # likert | numeric | binary | text  ("multi" options become binary measures)
    columns: Mapping[str, str]  # wave id -> raw column
    levels: tuple[float, ...] = ()
    level_labels: Mapping[float, str] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)  # raw code or label -> reason
    recode: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # wave -> raw -> code
    reverse: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    aim: str | None = None
    parent: str | None = None  # the option set this measure came from
    option: str | None = None
    option_label: str | None = None
    coding_frame_for: str | None = None
    coded_from: str | None = None  # a [[coding]] set: the text measure its codes come from (columns are that text's)
    pii: bool = False
    models: tuple[str, ...] | None = None  # override of the default models for this type
    share_from: float | None = None  # likert: answers at or above this level are "the share" readers quote
    share_label: str | None = None  # what that share is called ("agree or better")
    analyse: bool = True  # False: administrative (a [[coding]] consent question): kept and exported, never modelled

    @property
    def waves(self) -> tuple[str, ...]:
        """Waves in which this measure was asked."""
        return tuple(self.columns)

    @property
    def share_threshold(self) -> tuple[float, str] | None:
        """A likert measure's ``(level, label)``: the share of answers at or above ``level`` is reported
        per wave. Declared as ``share_from``/``share_label``; by default the top two levels, named by
        their labels ("Effective or Very effective")."""
        if self.type != "likert" or len(self.levels) < 2:
            return None
        level = self.share_from if self.share_from is not None else self.levels[-2]
        if self.share_label:
            return level, self.share_label
        above = [lv for lv in self.levels if lv >= level]
        names = [self.level_labels.get(lv, f"{lv:g}") for lv in above]
        return level, names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class CouncilsFile:
    """The ``[councils]`` section: an optional covariates file (a council key plus covariates such as
    status), extra aliases, and how reorganised councils are treated (``mergers``, see docs/councils.md)."""

    file: str | None
    key: str | None
    covariates: Mapping[str, str]  # column -> kind (category | number | date)
    group_by: tuple[str, ...] = ()
    aliases: str | None = None  # optional CSV alias,gss_code extending the shipped alias table
    date_format: str | None = None  # strftime format of non-ISO dates ("%d/%m/%Y"); ISO 8601 always reads
    mergers: str = "separate"  # or "successor": every wave mapped to the latest geography
    read: ReadOptions = field(default_factory=ReadOptions)  # the same reader options as a wave's


@dataclass(frozen=True)
class Aim:
    """A research aim: a report section with its title and introduction."""

    id: str
    title: str
    intro: str = ""


@dataclass(frozen=True)
class Expectation:
    """A baseline expected-outcome set paired option by option with a follow-up achieved set."""

    expected: str
    achieved: str


@dataclass(frozen=True)
class TimeSinceIntervention:
    """Settings for the optional LMM on months since each council's intervention date
    (``[models.time_since_intervention]``; ``time_since_review`` before the rename, still read)."""

    date: str
    knots: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelSettings:
    """Model-stage settings (see the design notes for the defaults)."""

    few_councils: int = 20
    flag_councils: int = 10
    time_since_intervention: TimeSinceIntervention | None = None
    workers: int | None = None
    ipw_truncate: tuple[float, float] = (1.0, 99.0)  # percentiles at which retention weights are truncated
    lmm_df: str = "kenward-roger"  # the LMM's degrees of freedom: LMM_DF_METHODS (docs/coverage.md: why this default)


CODING_RULES = ("primary", "either", "both")
DEFAULT_ALPHA_THRESHOLD = 0.67


@dataclass(frozen=True)
class CodingFile:
    """A returned coding sheet in ``data/raw/<study>/``: an Excel workbook written by ``impactstudy
    verbatims`` (it names its coder), or a case × code matrix (CSV or Excel, as NVivo exports it) whose
    ``coder`` the config names."""

    file: str
    coder: str | None = None
    sheet: str | None = None  # a matrix workbook's sheet (default: the first)


@dataclass(frozen=True)
class Coding:
    """A ``[[coding]]`` section: a free-text measure coded by hand against the options of a multi measure.

    ``resolve`` says which codes count for an answer that two coders coded: ``primary`` (the coder the
    answer was given to first, so double-coded answers are counted like the rest), ``either`` or
    ``both``; an ``adjudicator``'s codes, where it coded an answer, override the rule.
    """

    question: str
    themes: str
    files: tuple[CodingFile, ...] = ()
    alpha_threshold: float = DEFAULT_ALPHA_THRESHOLD
    consent: str | None = None
    resolve: str = "primary"
    adjudicator: str | None = None


IMPACT_LAYOUTS = ("dfe", "plain")
IMPACT_COMPARISONS = ("not_yet_treated", "never_treated")
BETTER = ("higher", "lower")


@dataclass(frozen=True)
class ImpactOutcome:
    """One administrative outcome: an indicator column of an outcome file."""

    name: str
    label: str
    column: str
    better: str = "higher"  # which direction is an improvement
    units: str = ""
    survey: str | None = None  # a survey measure whose council-level change is set beside this outcome's


@dataclass(frozen=True)
class OutcomeFile:
    """A council x year outcome file in ``data/raw/<study>/`` (see docs/impact.md)."""

    file: str
    outcomes: tuple[ImpactOutcome, ...]
    layout: str = "dfe"
    year_end: tuple[int, int] = (3, 31)  # (month, day) each reporting period ends
    filters: Mapping[str, str] = field(default_factory=dict)
    council: str = "council"  # plain layout's columns
    year: str = "year"


@dataclass(frozen=True)
class ImpactSettings:
    """The ``[impact]`` section: outcome files, treatment dates and the estimators' options."""

    files: tuple[OutcomeFile, ...]
    treatment: str
    comparison: str = "not_yet_treated"
    anticipation: int = 0
    covariates: tuple[str, ...] = ()
    window: tuple[int, int] | None = None
    bootstrap: int = 999
    permutations: int = 999
    seed: int = 20130401
    pretrend_alpha: float = 0.05
    min_breakdown: float = 0.5
    workers: int | None = None
    survey_waves: tuple[str, ...] = ()  # the two waves a survey measure's change is taken between

    @property
    def outcomes(self) -> tuple[ImpactOutcome, ...]:
        return tuple(o for f in self.files for o in f.outcomes)


@dataclass(frozen=True)
class Intervention:
    """What the study evaluates, and the words the report uses for it (``[intervention]`` in the config).

    Every default is neutral, so a study that declares nothing is never described in another study's
    terms: ``name`` is what the report calls the programme, ``caveat`` the design caveat at the top
    of the summary (``{name}`` in it is replaced), ``before``/``after`` the words for the waves an
    expected set and an achieved set were asked in (default: those waves' labels). ``date`` names the
    councils-file date covariate holding each council's intervention date, and ``before_waves`` the
    waves whose answers should precede it (answers given after it are warned about at link).
    """

    name: str = "the intervention"
    caveat: str = DEFAULT_CAVEAT
    before: str | None = None
    after: str | None = None
    date: str | None = None
    before_waves: tuple[str, ...] = ()

    @property
    def caveat_text(self) -> str:
        """The caveat with ``{name}`` filled in."""
        return self.caveat.replace("{name}", self.name)


@dataclass(frozen=True)
class Study:
    """A whole study config."""

    name: str
    title: str
    description: str
    waves: tuple[Wave, ...]
    measures: tuple[Measure, ...]
    councils: CouncilsFile | None
    aims: tuple[Aim, ...]
    expectations: tuple[Expectation, ...]
    models: ModelSettings
    duplicates: str = "latest"
    min_cell: int = 5
    redact_names: tuple[str, ...] = ()  # [report] redact_names: people, places, services taken out of public quotes
    intervention: Intervention = field(default_factory=Intervention)
    impact: ImpactSettings | None = None
    coding: tuple[Coding, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def wave_ids(self) -> tuple[str, ...]:
        """Wave ids in study order."""
        return tuple(w.id for w in self.waves)

    def wave(self, wave_id: str) -> Wave:
        """The wave with this id."""
        for w in self.waves:
            if w.id == wave_id:
                return w
        raise KeyError(wave_id)

    def measure(self, name: str) -> Measure:
        """The (expanded) measure with this name."""
        for m in self.measures:
            if m.name == name:
                return m
        raise KeyError(name)

    def set_members(self, parent: str) -> tuple[Measure, ...]:
        """The measures expanded from option set ``parent``, in declaration order."""
        return tuple(m for m in self.measures if m.parent == parent)

    def coding_of(self, question: str) -> Coding | None:
        """The ``[[coding]]`` section coding text measure ``question``, if any."""
        return next((c for c in self.coding if c.question == question), None)

    @property
    def analysed_measures(self) -> tuple[Measure, ...]:
        """Measures that reach processed data (personal data never do): the panels, exports and codebook."""
        return tuple(m for m in self.measures if not m.pii)

    @property
    def research_measures(self) -> tuple[Measure, ...]:
        """Measures the analysis is about: those of :attr:`analysed_measures` not declared ``analyse = false``
        (a ``[[coding]]`` consent question is administrative unless it says ``analyse = true``). Only these
        are modelled, tabulated by wave and stated in the key findings."""
        return tuple(m for m in self.analysed_measures if m.analyse)


# ------------------------------------------------------------------------------------------ helpers


class _Section:
    """A TOML table being read: tracks which keys were used so unknown keys can be reported."""

    def __init__(self, data: Any, where: str, source: Path):
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where} must be a table, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.source = source

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise self.error(f"missing required key '{key}'")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(f"'{key}' must be {names}, got {value!r}")
        return value

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(f"unknown key '{key}'{_suggest(key, allowed)}")


def _identifier(value: str, what: str, section: _Section) -> str:
    if not value or not all(c.isalnum() or c == "_" for c in value) or value[0].isdigit():
        raise section.error(f"{what} '{value}' must be letters, digits and underscores, not starting with a digit")
    return value


def _relative_file(value: str, section: _Section) -> str:
    if "\0" in value:
        raise section.error(f"file {value!r} holds a NUL character; name the file without it")
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise section.error(
            f"file '{value}' must be a path inside the study's raw folder (no '..', not absolute)"
        )
    return str(path)


def _date(value: Any, key: str, section: _Section) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise section.error(f"'{key}' must be a date such as 2013-06-30, got {value!r}")


# -------------------------------------------------------------------------------------------- waves


def _read_options(data: Any, section: _Section) -> ReadOptions:
    sub = _Section(data or {}, f"{section.where}.read", section.source)
    sub.check_keys(("encoding", "delimiter", "sheet", "header_row"))
    header_row = sub.get("header_row", int, 1)
    if header_row < 1:
        raise sub.error("'header_row' is 1-based and must be at least 1")
    delimiter = sub.get("delimiter", str)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in "\"\r\n\0"):
        raise sub.error(f"'delimiter' must be one character (such as \",\", \";\" or \"\\t\"), got {delimiter!r}")
    return ReadOptions(
        encoding=sub.get("encoding", str),
        delimiter=delimiter,
        sheet=sub.get("sheet", (str, int)),
        header_row=header_row,
    )


def _wave(data: Any, order: int, source: Path) -> Wave:
    sec = _Section(data, f"waves[{order}]", source)
    sec.check_keys(
        (
            "id", "label", "file", "format", "read", "council", "council_check", "respondent", "role",
            "submitted", "fieldwork_start", "fieldwork_end",
        )
    )
    wave_id = _identifier(sec.get("id", str, required=True), "wave id", sec)
    sec.where = f"wave '{wave_id}'"
    file = _relative_file(sec.get("file", str, required=True), sec)
    fmt = sec.get("format", str)
    if fmt is None:
        suffix = PurePosixPath(file).suffix.lower()
        if suffix not in FORMATS:
            raise sec.error(
                f"cannot tell the format of '{file}' from its extension; set format to one of "
                f"{', '.join(sorted(set(FORMATS.values())))}"
            )
        fmt = FORMATS[suffix]
    elif fmt not in set(FORMATS.values()):
        raise sec.error(f"unknown format '{fmt}'{_suggest(fmt, sorted(set(FORMATS.values())))}")
    start = _date(sec.get("fieldwork_start", (date, str)), "fieldwork_start", sec)
    end = _date(sec.get("fieldwork_end", (date, str)), "fieldwork_end", sec)
    if start and end and end < start:
        raise sec.error("fieldwork_end is before fieldwork_start")
    return Wave(
        id=wave_id,
        label=sec.get("label", str, wave_id),
        order=order,
        file=file,
        format=fmt,
        read=_read_options(sec.get("read", dict), sec),
        council=sec.get("council", str, required=True),
        council_check=sec.get("council_check", str),
        respondent=sec.get("respondent", str),
        role=sec.get("role", str),
        submitted=sec.get("submitted", str),
        fieldwork_start=start,
        fieldwork_end=end,
    )


# ----------------------------------------------------------------------------------------- measures

_MEASURE_KEYS = (
    "name", "label", "type", "aim", "levels", "labels", "missing", "columns", "recode", "reverse", "min",
    "max", "options", "coding_frame_for", "pii", "models", "share_from", "share_label", "analyse",
)


def code_key(key: str) -> str:
    """Normalise a missing-code or recode key: numeric keys compare as numbers ('8' == '8.0')."""
    try:
        number = float(key)
    except ValueError:
        return key.strip()
    return repr(float(number))


def _measures(data: Any, index: int, waves: tuple[str, ...], aims: tuple[str, ...], source: Path,
              coded: frozenset[str] = frozenset(), consent: frozenset[str] = frozenset()) -> list[Measure]:
    sec = _Section(data, f"measures[{index}]", source)
    sec.check_keys(_MEASURE_KEYS)
    name = _identifier(sec.get("name", str, required=True), "measure name", sec)
    sec.where = f"measure '{name}'"
    mtype = sec.get("type", str, required=True)
    if name in coded:
        if mtype != "multi":
            raise sec.error(f"[[coding]] names it as 'themes', so it must be type = \"multi\" (its options are the coding frame)")
        if "columns" in sec.data:
            raise sec.error("its codes come from the returned coding sheets ([[coding]] names it as 'themes'): "
                            "remove its 'columns'")
    if mtype not in MEASURE_TYPES:
        raise sec.error(f"unknown type '{mtype}'{_suggest(mtype, MEASURE_TYPES)}; use one of {', '.join(MEASURE_TYPES)}")
    aim = sec.get("aim", str)
    if aim is not None and aim not in aims:
        raise sec.error(f"unknown aim '{aim}'{_suggest(aim, aims)}")

    levels: tuple[float, ...] = ()
    level_labels: dict[float, str] = {}
    if mtype == "likert":
        raw_levels = sec.get("levels", list, required=True)
        if len(raw_levels) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw_levels):
            raise sec.error("'levels' must list at least two numeric codes in order")
        levels = tuple(float(v) for v in raw_levels)
        if len(set(levels)) != len(levels):
            raise sec.error(f"'levels' lists a code more than once: {raw_levels}")
        labels = sec.get("labels", list, [])
        if labels and len(labels) != len(levels):
            raise sec.error(f"'labels' has {len(labels)} entries but 'levels' has {len(levels)}")
        level_labels = {lv: str(lb) for lv, lb in zip(levels, labels, strict=False)}
    elif mtype in ("binary", "multi"):
        levels = (0.0, 1.0)
        level_labels = {0.0: "No", 1.0: "Yes"}
        for key in ("levels", "labels"):
            if key in sec.data:
                raise sec.error(f"'{key}' does not apply to {mtype} measures (they are coded 0 = no, 1 = yes)")

    missing = {code_key(str(k)): str(v) for k, v in sec.get("missing", dict, {}).items()}
    recode_sec = sec.get("recode", dict, {})
    recode: dict[str, dict[str, float]] = {}
    for wave_id, mapping in recode_sec.items():
        if wave_id not in waves:
            raise sec.error(f"recode names unknown wave '{wave_id}'{_suggest(wave_id, waves)}")
        if not isinstance(mapping, dict):
            raise sec.error(f"recode.{wave_id} must be a table of raw value = code")
        for key, target in mapping.items():
            if not isinstance(target, (int, float)) or isinstance(target, bool):
                raise sec.error(f"recode.{wave_id}: '{key}' must be recoded to a number, got {target!r}")
        recode[wave_id] = {code_key(str(k)): float(v) for k, v in mapping.items()}
    reverse = tuple(sec.get("reverse", list, []))
    for wave_id in reverse:
        if wave_id not in waves:
            raise sec.error(f"reverse names unknown wave '{wave_id}'{_suggest(wave_id, waves)}")
    if reverse and mtype != "likert":
        raise sec.error("'reverse' applies to likert measures only")
    models = sec.get("models", list)
    if models is not None:
        for model in models:
            if model not in MODEL_NAMES:
                raise sec.error(f"unknown model '{model}'{_suggest(model, MODEL_NAMES)}")
        models = tuple(models)
    minimum = sec.get("min", float)
    maximum = sec.get("max", float)
    if (minimum is not None or maximum is not None) and mtype != "numeric":
        raise sec.error("'min' and 'max' apply to numeric measures (likert ranges come from 'levels')")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise sec.error(f"'min' ({minimum:g}) is above 'max' ({maximum:g})")

    share_from = sec.get("share_from", float)
    share_label = sec.get("share_label", str)
    if (share_from is not None or share_label is not None) and mtype != "likert":
        raise sec.error("'share_from' and 'share_label' apply to likert measures")
    if share_from is not None and share_from not in levels:
        raise sec.error(f"share_from = {share_from:g} is not one of the levels ({', '.join(f'{v:g}' for v in levels)})")

    if "columns" not in sec.data and mtype == "multi" and name not in coded:
        hint = "".join(f"; [[coding]] names themes '{c}': did you mean '{name}'?"
                       for c in coded if closest(c, [name], cutoff=0.6))
        raise sec.error(f"missing required key 'columns' (each option's raw column per wave), unless a [[coding]] "
                        f"section names it as 'themes'{hint}")
    columns = sec.get("columns", dict, required=name not in coded)
    if columns is None:  # a coded set: filled in with its text's columns once [[coding]] is read
        columns = {}
    for wave_id in columns:
        if wave_id not in waves:
            raise sec.error(f"columns names unknown wave '{wave_id}'{_suggest(wave_id, waves)}")
    options = sec.get("options", dict)
    common = dict(
        levels=levels, level_labels=level_labels, missing=missing, recode=recode, reverse=reverse,
        minimum=minimum, maximum=maximum, aim=aim, coding_frame_for=sec.get("coding_frame_for", str),
        pii=sec.get("pii", bool, False), models=models, share_from=share_from, share_label=share_label,
        analyse=sec.get("analyse", bool, name not in consent),  # a consent question is administrative unless declared
    )
    label = sec.get("label", str, name)
    if mtype == "multi" and not options:
        raise sec.error("a multi measure needs 'options' (option = label) and per-wave columns per option")
    if not options:
        for wave_id, column in columns.items():
            if not isinstance(column, str):
                raise sec.error(f"columns.{wave_id} must be a column name (measures without options)")
        return [Measure(name=name, label=label, type=mtype, columns=dict(columns), **common)]

    expanded: list[Measure] = []
    for option, option_label in options.items():
        _identifier(option, "option", sec)
        per_wave: dict[str, str] = {}
        for wave_id, mapping in columns.items():
            if not isinstance(mapping, dict):
                raise sec.error(f"columns.{wave_id} must map each option to a column")
            for key in mapping:
                if key not in options:
                    raise sec.error(f"columns.{wave_id} names unknown option '{key}'{_suggest(key, list(options))}")
            if option in mapping:
                per_wave[wave_id] = mapping[option]
        expanded.append(
            Measure(
                name=f"{name}_{option}",
                label=f"{label}: {option_label}",
                type="binary" if mtype == "multi" else mtype,
                columns=per_wave,
                parent=name,
                option=option,
                option_label=str(option_label),
                **common,
            )
        )
    return expanded


# ---------------------------------------------------------------------------------------- the rest


def _councils(data: Any, source: Path) -> CouncilsFile | None:
    if data is None:
        return None
    sec = _Section(data, "councils", source)
    sec.check_keys(("file", "key", "covariates", "group_by", "aliases", "date_format", "mergers", "read"))
    file = sec.get("file", str)
    covariates = sec.get("covariates", dict, {})
    if file is None:
        for key in ("key", "covariates", "group_by", "date_format"):
            if key in sec.data:
                raise sec.error(f"'{key}' needs 'file' (the councils file it describes)")
    mergers = sec.get("mergers", str, "separate")
    if mergers not in MERGER_RULES:
        raise sec.error(f"'mergers' must be one of {', '.join(MERGER_RULES)}, got '{mergers}'{_suggest(mergers, MERGER_RULES)}")
    for column, kind in covariates.items():
        if kind not in COVARIATE_KINDS:
            raise sec.error(f"covariate '{column}' has unknown kind '{kind}'; use one of {', '.join(COVARIATE_KINDS)}")
    group_by = tuple(sec.get("group_by", list, []))
    for column in group_by:
        if column not in covariates:
            raise sec.error(f"group_by names '{column}', which is not a declared covariate{_suggest(column, list(covariates))}")
    aliases = sec.get("aliases", str)
    return CouncilsFile(
        file=_relative_file(file, sec) if file is not None else None,
        key=sec.get("key", str, required=True) if file is not None else None,
        covariates=dict(covariates),
        group_by=group_by,
        aliases=_relative_file(aliases, sec) if aliases else None,
        date_format=_date_format(sec.get("date_format", str), sec),
        mergers=mergers,
        read=_read_options(sec.get("read", dict), sec),
    )


def _date_format(value: str | None, section: _Section) -> str | None:
    """A strftime format with a day, a month and a year in it, or None."""
    if value is None:
        return None
    has = [any(f"%{c}" in value for c in codes) for codes in ("d", "mbB", "Yy")]
    if not all(has):
        raise section.error(f"date_format '{value}' must contain %d, %m (or %b/%B) and %Y, e.g. \"%d/%m/%Y\"")
    return value


def _model_settings(data: Any, councils: CouncilsFile | None, source: Path) -> ModelSettings:
    sec = _Section(data or {}, "models", source)
    sec.check_keys(("few_councils", "flag_councils", "time_since_intervention", "time_since_review", "workers",
                    "ipw_truncate", "lmm_df"))
    lmm_df = sec.get("lmm_df", str, "kenward-roger")
    if lmm_df not in LMM_DF_METHODS:
        raise sec.error(f"lmm_df = '{lmm_df}'{_suggest(lmm_df, LMM_DF_METHODS)}; use one of {', '.join(LMM_DF_METHODS)}")
    # `time_since_review` is the section's name before the rename (docs/data-contracts.md, "Renamed"): still read
    key = "time_since_review" if "time_since_review" in sec.data else "time_since_intervention"
    if key == "time_since_review" and "time_since_intervention" in sec.data:
        raise sec.error("give 'time_since_intervention' only: 'time_since_review' is its name before the rename")
    tsr_data = sec.get(key, dict)
    tsr = None
    if tsr_data is not None:
        sub = _Section(tsr_data, f"models.{key}", source)
        sub.check_keys(("date", "knots"))
        column = sub.get("date", str, required=True)
        if councils is None or councils.covariates.get(column) != "date":
            raise sub.error(f"'date' must name a date covariate of the councils file, got '{column}'")
        knots = sub.get("knots", list, [])
        if not all(isinstance(k, (int, float)) and not isinstance(k, bool) for k in knots):
            raise sub.error(f"'knots' must list numbers of months, got {knots}")
        tsr = TimeSinceIntervention(date=column, knots=tuple(float(k) for k in knots))
    truncate = sec.get("ipw_truncate", list, [1.0, 99.0])
    if (len(truncate) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in truncate)
            or not 0 <= truncate[0] < truncate[1] <= 100):
        raise sec.error(f"'ipw_truncate' must be two percentiles, lower then upper, within 0-100 (e.g. [1, 99]), got {truncate!r}")
    settings = ModelSettings(
        few_councils=sec.get("few_councils", int, 20),
        flag_councils=sec.get("flag_councils", int, 10),
        time_since_intervention=tsr,
        workers=sec.get("workers", int),
        ipw_truncate=(float(truncate[0]), float(truncate[1])),
        lmm_df=lmm_df,
    )
    for key in ("few_councils", "flag_councils", "workers"):
        value = getattr(settings, key)
        if value is not None and value < 1:
            raise sec.error(f"'{key}' must be at least 1, got {value}")
    return settings


def _intervention(data: Any, waves: tuple[str, ...], councils: CouncilsFile | None, source: Path) -> Intervention:
    sec = _Section(data or {}, "intervention", source)
    sec.check_keys(("name", "caveat", "before", "after", "date", "before_waves"))
    date_column = sec.get("date", str)
    if date_column is not None and (councils is None or councils.covariates.get(date_column) != "date"):
        raise sec.error(f"'date' must name a date covariate of the councils file, got '{date_column}'")
    before_waves = tuple(sec.get("before_waves", list, []))
    for wave_id in before_waves:
        if wave_id not in waves:
            raise sec.error(f"before_waves names unknown wave '{wave_id}'{_suggest(str(wave_id), waves)}")
    if before_waves and date_column is None:
        raise sec.error("'before_waves' needs 'date' (the covariate holding each council's intervention date)")
    return Intervention(
        name=sec.get("name", str, Intervention.name),
        caveat=" ".join(sec.get("caveat", str, DEFAULT_CAVEAT).split()),
        before=sec.get("before", str),
        after=sec.get("after", str),
        date=date_column,
        before_waves=before_waves,
    )
def _coding_file(entry: Any, where: str, source: Path) -> CodingFile:
    if isinstance(entry, str):
        entry = {"file": entry}
    sec = _Section(entry, where, source)
    sec.check_keys(("file", "coder", "sheet"))
    file = _relative_file(sec.get("file", str, required=True), sec)
    coder = sec.get("coder", str)
    if coder is not None and not coder.strip():
        raise sec.error("'coder' is empty; give the coder's initials or name")
    return CodingFile(file=file, coder=coder.strip() if coder else None, sheet=sec.get("sheet", str))


def _coding(entries: list[Any], measures: list[Measure], source: Path) -> tuple[Coding, ...]:
    """The ``[[coding]]`` sections, checked against the measures (see :class:`Coding`)."""
    by_name = {m.name: m for m in measures}
    sets = {m.parent: m for m in measures if m.parent}
    texts = sorted(n for n, m in by_name.items() if m.type == "text" and not m.pii)
    out: list[Coding] = []
    for i, entry in enumerate(entries):
        sec = _Section(entry, f"coding[{i}]", source)
        sec.check_keys(("question", "themes", "files", "alpha_threshold", "consent", "resolve", "adjudicator"))
        question = sec.get("question", str, required=True)
        sec.where = f"coding of '{question}'"
        if question not in by_name or by_name[question].type != "text" or by_name[question].pii:
            raise sec.error(f"'question' must name a free-text measure (type = \"text\", not pii), got '{question}'"
                            f"{_suggest(question, texts)}")
        themes = sec.get("themes", str, required=True)
        if themes not in sets:
            raise sec.error(f"'themes' must name the multi measure whose options are the coding frame, got '{themes}'"
                            f"{_suggest(themes, sorted(sets))}")
        frame_for = sets[themes].coding_frame_for
        if frame_for is not None and frame_for != question:
            raise sec.error(f"measure '{themes}' declares coding_frame_for = '{frame_for}', not '{question}'")
        files = sec.get("files", list, [])
        parsed = tuple(_coding_file(f, f"coding of '{question}': files[{j}]", source) for j, f in enumerate(files))
        repeated = sorted({f.file for f in parsed if [g.file for g in parsed].count(f.file) > 1})
        if repeated:
            raise sec.error(f"files lists '{repeated[0]}' twice")
        threshold = sec.get("alpha_threshold", float, DEFAULT_ALPHA_THRESHOLD)
        if not 0 < threshold <= 1:
            raise sec.error(f"'alpha_threshold' must be above 0 and at most 1 (usually 0.67 or 0.8), got {threshold:g}")
        resolve = sec.get("resolve", str, "primary")
        if resolve not in CODING_RULES:
            raise sec.error(f"'resolve' must be one of {', '.join(CODING_RULES)}, got '{resolve}'{_suggest(resolve, CODING_RULES)}")
        consent = sec.get("consent", str)
        if consent is not None:
            binaries = sorted(n for n, m in by_name.items() if m.type == "binary" and not m.pii)
            asked = set(by_name[question].columns)
            if consent not in by_name or by_name[consent].type != "binary":
                raise sec.error(f"'consent' must name a binary measure (1 = the respondent agreed to be quoted), got "
                                f"'{consent}'{_suggest(consent, binaries)}")
            if not asked & set(by_name[consent].columns):
                raise sec.error(f"consent measure '{consent}' is asked in none of the waves '{question}' is asked in")
        adjudicator = sec.get("adjudicator", str)
        out.append(Coding(question=question, themes=themes, files=parsed, alpha_threshold=threshold,
                          consent=consent, resolve=resolve, adjudicator=adjudicator.strip() if adjudicator else None))
    for key in ("question", "themes"):
        values = [getattr(c, key) for c in out]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"{source}: coding: '{repeated[0]}' is named as '{key}' by more than one [[coding]] section")
    return tuple(out)


def _with_coded_columns(measures: list[Measure], coding: tuple[Coding, ...]) -> list[Measure]:
    """Each coded set's measures asked wherever its text is, their columns the text's, marked ``coded_from``."""
    texts = {c.themes: c.question for c in coding}
    by_name = {m.name: m for m in measures}
    return [
        dataclasses.replace(m, columns=dict(by_name[texts[m.parent]].columns), coded_from=texts[m.parent],
                            coding_frame_for=texts[m.parent])
        if m.parent in texts else m
        for m in measures
    ]


def _year_end(value: str, section: _Section) -> tuple[int, int]:
    try:
        month, day = (int(p) for p in value.split("-"))
        date(2001, month, day)
    except ValueError:
        raise section.error(f"'year_end' must be a month and day such as \"03-31\", got {value!r}") from None
    return month, day


def _impact(data: Any, councils: CouncilsFile | None, intervention: Intervention, source: Path) -> ImpactSettings | None:
    if data is None:
        return None
    sec = _Section(data, "impact", source)
    sec.check_keys(("files", "treatment", "comparison", "anticipation", "covariates", "window",
                    "bootstrap", "permutations", "seed", "pretrend_alpha", "min_breakdown", "workers",
                    "survey_waves"))
    treatment = sec.get("treatment", str, intervention.date)
    if treatment is None:
        raise sec.error("missing 'treatment': the date covariate of [councils] holding each council's intervention "
                        "date (or declare it as [intervention] date)")
    if councils is None:
        raise sec.error("needs a [councils] file with each council's intervention date")
    if councils.covariates.get(treatment) != "date":
        dates = [c for c, k in councils.covariates.items() if k == "date"]
        raise sec.error(f"'treatment' must name a date covariate of [councils], got '{treatment}'"
                        f"{_suggest(treatment, dates)}")
    comparison = sec.get("comparison", str, "not_yet_treated")
    if comparison not in IMPACT_COMPARISONS:
        raise sec.error(f"'comparison' must be one of {', '.join(IMPACT_COMPARISONS)}, got '{comparison}'"
                        f"{_suggest(comparison, IMPACT_COMPARISONS)}")
    covariates = tuple(sec.get("covariates", list, []))
    for column in covariates:
        if column not in councils.covariates or councils.covariates[column] == "date":
            raise sec.error(f"covariate '{column}' must be a number or category covariate of [councils]"
                            f"{_suggest(column, list(councils.covariates))}")
    window = sec.get("window", list)
    if window is not None:
        if len(window) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in window) \
                or not window[0] < 0 <= window[1]:
            raise sec.error(f"'window' must be two whole numbers [first, last] event times with first < 0 <= last, "
                            f"got {window!r}")
        window = (int(window[0]), int(window[1]))
    numbers = {key: sec.get(key, int, default) for key, default in
               (("anticipation", 0), ("bootstrap", 999), ("permutations", 999), ("seed", 20130401))}
    if not 0 <= numbers["anticipation"] <= 3:
        raise sec.error(f"'anticipation' must be 0 to 3 years, got {numbers['anticipation']}")
    if numbers["bootstrap"] < 99 or numbers["permutations"] < 0:
        raise sec.error("'bootstrap' must be at least 99 draws and 'permutations' at least 0")
    files = []
    for i, f in enumerate(sec.get("files", list, required=True)):
        sub = _Section(f, f"impact.files[{i}]", source)
        sub.check_keys(("file", "layout", "year_end", "filters", "council", "year", "outcomes"))
        layout = sub.get("layout", str, "dfe")
        if layout not in IMPACT_LAYOUTS:
            raise sub.error(f"'layout' must be one of {', '.join(IMPACT_LAYOUTS)}, got '{layout}'"
                            f"{_suggest(layout, IMPACT_LAYOUTS)}")
        outcomes = []
        for j, o in enumerate(sub.get("outcomes", list, required=True)):
            osec = _Section(o, f"impact.files[{i}].outcomes[{j}]", source)
            osec.check_keys(("name", "label", "column", "better", "units", "survey"))
            better = osec.get("better", str, "higher")
            if better not in BETTER:
                raise osec.error(f"'better' must be 'higher' or 'lower', got '{better}'{_suggest(better, BETTER)}")
            name = _identifier(osec.get("name", str, required=True), "outcome name", osec)
            outcomes.append(ImpactOutcome(name=name, label=osec.get("label", str, name),
                                          column=osec.get("column", str, required=True), better=better,
                                          units=osec.get("units", str, ""), survey=osec.get("survey", str)))
        if not outcomes:
            raise sub.error("declare at least one [[impact.files.outcomes]] entry")
        filters = sub.get("filters", dict, {})
        files.append(OutcomeFile(
            file=_relative_file(sub.get("file", str, required=True), sub), outcomes=tuple(outcomes), layout=layout,
            year_end=_year_end(sub.get("year_end", str, "03-31"), sub),
            filters={str(k): str(v) for k, v in filters.items()},
            council=sub.get("council", str, "council"), year=sub.get("year", str, "year")))
    if not files:
        raise sec.error("declare at least one [[impact.files]] entry")
    names = [o.name for f in files for o in f.outcomes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise sec.error(f"outcome names must be unique, repeated: {', '.join(repeated)}")
    pretrend_alpha = sec.get("pretrend_alpha", float, 0.05)
    min_breakdown = sec.get("min_breakdown", float, 0.5)
    if not 0 < pretrend_alpha < 1 or min_breakdown < 0:
        raise sec.error("'pretrend_alpha' must be between 0 and 1 and 'min_breakdown' at least 0")
    return ImpactSettings(
        files=tuple(files), treatment=treatment,
        comparison=comparison, covariates=covariates, window=window, pretrend_alpha=pretrend_alpha,
        min_breakdown=min_breakdown, workers=sec.get("workers", int),
        survey_waves=tuple(str(w) for w in sec.get("survey_waves", list, [])), **numbers)


def _check_impact_survey(impact: ImpactSettings | None, measures: Sequence[Measure], wave_ids: Sequence[str],
                         source: Path) -> None:
    """Each outcome's ``survey`` names a non-text measure; ``survey_waves`` two of its waves, in order."""
    if impact is None:
        return
    by_name = {m.name: m for m in measures if m.type != "text"}
    waves = impact.survey_waves
    if waves and (len(waves) != 2 or any(w not in wave_ids for w in waves)
                  or wave_ids.index(waves[0]) >= wave_ids.index(waves[1])):
        raise _Section({}, "impact", source).error(
            f"'survey_waves' must name two waves, earlier first, of {', '.join(wave_ids)}; got {list(waves)}")
    for outcome in impact.outcomes:
        if outcome.survey is None:
            continue
        where = _Section({}, f"impact outcome '{outcome.name}'", source)
        measure = by_name.get(outcome.survey)
        if measure is None:
            raise where.error(f"'survey' must name a number, rating or yes/no measure, got '{outcome.survey}'"
                              f"{_suggest(outcome.survey, list(by_name))}")
        if not measure.analyse:
            raise where.error(f"survey measure '{measure.name}' is not analysed (analyse = false, or a [[coding]] "
                              "consent question); name an analysed measure, or set analyse = true on it")
        missing = [w for w in waves if w not in measure.waves]
        if missing:
            raise where.error(f"survey measure '{measure.name}' is not asked at {', '.join(missing)} "
                              f"(impact survey_waves); it is asked at {', '.join(measure.waves)}")


def parse_study(data: Mapping[str, Any], name: str, source: Path) -> Study:
    """Build a :class:`Study` from parsed TOML, checking every key; ``source`` names it in errors."""
    top = _Section(dict(data), "top level", source)
    top.check_keys(
        ("title", "description", "ingest", "councils", "waves", "aims", "measures", "models", "report", "expectations",
         "intervention", "impact", "coding")
    )
    raw_waves = top.get("waves", list, required=True)
    if not raw_waves:
        raise top.error("declare at least one [[waves]] entry")
    waves = tuple(_wave(w, i, source) for i, w in enumerate(raw_waves))
    wave_ids = tuple(w.id for w in waves)
    if len(set(wave_ids)) != len(wave_ids):
        raise top.error(f"wave ids must be unique, got {list(wave_ids)}")

    aims = []
    for i, a in enumerate(top.get("aims", list, [])):
        sec = _Section(a, f"aims[{i}]", source)
        sec.check_keys(("id", "title", "intro"))
        aims.append(Aim(id=_identifier(sec.get("id", str, required=True), "aim id", sec),
                        title=sec.get("title", str, required=True), intro=sec.get("intro", str, "")))
    aim_ids = tuple(a.id for a in aims)

    raw_coding = top.get("coding", list, [])
    coded = frozenset(c["themes"] for c in raw_coding if isinstance(c, dict) and isinstance(c.get("themes"), str))
    consent = frozenset(c["consent"] for c in raw_coding if isinstance(c, dict) and isinstance(c.get("consent"), str))
    measures: list[Measure] = []
    for i, m in enumerate(top.get("measures", list, required=True)):
        measures.extend(_measures(m, i, wave_ids, aim_ids, source, coded, consent))
    names = [m.name for m in measures]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise top.error(f"measure names must be unique after expanding options, repeated: {', '.join(duplicated)}")
    coding = _coding(raw_coding, measures, source)
    measures = _with_coded_columns(measures, coding)
    parents = {m.parent for m in measures if m.parent} | set(names)
    for m in measures:
        if m.coding_frame_for and m.coding_frame_for not in parents:
            raise top.error(f"measure '{m.name}': coding_frame_for names unknown measure '{m.coding_frame_for}'")

    councils = _councils(top.get("councils", dict), source)
    ingest = _Section(top.get("ingest", dict, {}), "ingest", source)
    ingest.check_keys(("duplicates",))
    duplicates = ingest.get("duplicates", str, "latest")
    if duplicates not in DUPLICATE_RULES:
        raise ingest.error(f"'duplicates' must be one of {', '.join(DUPLICATE_RULES)}, got '{duplicates}'")
    report = _Section(top.get("report", dict, {}), "report", source)
    report.check_keys(("min_cell", "redact_names"))
    if report.get("min_cell", int, 5) < 1:
        raise report.error(f"'min_cell' must be at least 1 (the fewest councils or respondents a published figure rests on), "
                           f"got {report.get('min_cell', int)}")
    redact_names = report.get("redact_names", list, [])
    if not all(isinstance(n, str) and n.strip() for n in redact_names):
        raise report.error("'redact_names' must be a list of names (text), e.g. [\"Jane Smith\", \"Westfield\"]")
    problems = check_names(measures, councils) + check_personal_data(measures, waves)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise top.error(problems[0] + more)

    expectations = []
    sets = {m.parent for m in measures if m.parent}
    for i, e in enumerate(top.get("expectations", list, [])):
        sec = _Section(e, f"expectations[{i}]", source)
        sec.check_keys(("expected", "achieved"))
        pair = Expectation(sec.get("expected", str, required=True), sec.get("achieved", str, required=True))
        for key in ("expected", "achieved"):
            value = getattr(pair, key)
            if value not in sets:
                raise sec.error(f"'{key}' names '{value}', which is not an option set{_suggest(value, sorted(sets))}")
            if not all(m.analyse for m in measures if m.parent == value):
                raise sec.error(f"'{key}' names '{value}', which is not analysed (analyse = false); set analyse = true "
                                "on it or remove the pair")
        expected_opts = {m.option for m in measures if m.parent == pair.expected}
        achieved_opts = {m.option for m in measures if m.parent == pair.achieved}
        if not expected_opts & achieved_opts:
            raise sec.error(f"'{pair.expected}' and '{pair.achieved}' share no options to pair")
        expectations.append(pair)

    intervention = _intervention(top.get("intervention", dict), wave_ids, councils, source)
    impact = _impact(top.get("impact", dict), councils, intervention, source)
    _check_impact_survey(impact, measures, wave_ids, source)
    return Study(
        name=name,
        title=top.get("title", str, name),
        description=top.get("description", str, "").strip(),
        waves=waves,
        measures=tuple(measures),
        councils=councils,
        aims=tuple(aims),
        expectations=tuple(expectations),
        models=_model_settings(top.get("models", dict), councils, source),
        duplicates=duplicates,
        min_cell=report.get("min_cell", int, 5),
        redact_names=tuple(n.strip() for n in redact_names),
        intervention=intervention,
        impact=impact,
        coding=coding,
        raw=dict(data),
    )


def load_study(path: Path, name: str | None = None) -> Study:
    """Read ``study.toml`` at ``path``; the study's name defaults to its folder's name."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no study config here; create one with `impactstudy init <study>`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    return parse_study(data, name or path.parent.name, path)
