"""The one list of names a study may not give its measures and covariates, the checks using it, and
the safe names its SPSS and Stata exports use.

Measure and covariate names become columns of the pipeline's outputs (``waves/*.parquet``, the
panels) and variables of ``panel_long.sav``. A name equal to one of the pipeline's own columns would
overwrite it silently (a measure called ``source_row`` replaced the source row numbers), a name with
``__`` would be read back as a measure's missing-reason column (``<measure>__missing``) or a wide
panel's ``<measure>__<wave>``, and ``=`` splits a group (``<covariate>=<level>``). :func:`check_names`
refuses these when the config is loaded, so ``validate`` reports them and no stage crashes after
``validate`` passed; so are two names equal apart from case (SPSS, Stata and case-insensitive file
systems cannot tell them apart).

What only SPSS or Stata cannot hold is not refused but mapped: a covariate is a column of the
councils file (raw data, never edited), so ``Inspection grade`` or ``2019 rate`` are fair names, and so
are a measure named ``ALL`` (an SPSS reserved word) or one longer than Stata's 32 characters.
:func:`export_names` gives every column a safe, unique variable name for ``.sav`` (SPSS's rules) or
``.dta`` (Stata's); the study's own name stays everywhere else (Parquet, CSV, reports) and becomes
the variable label where no label is declared. :func:`file_slug` is a name's form in file names and
page ids (figures, tables).

:func:`check_personal_data` refuses a ``pii = true`` column that the wave also reads as its council,
council check or role column, or as another measure's column: those are carried into processed data,
so the personal data would be too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from impactstudy.study.config import CouncilsFile, Measure, Wave

# every column the pipeline writes itself beside the measures and covariates (docs/data-contracts.md):
# waves/<wave>.parquet, panel_long, panel_wide and panel_long.sav
PIPELINE_COLUMNS = frozenset({
    "wave", "wave_order", "source_file", "source_row", "council_raw", "council_check_raw", "respondent_id",
    "role", "submitted_at", "council_code", "council_name", "measure", "value", "value_label", "missing_reason",
    "authority_type", "region", "months_since_intervention", "waves_present",
})
# SPSS's reserved words, which may not name a variable (any case)
SPSS_RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"})
# Stata's reserved names (case matters in Stata; compared in upper case here, so `Int` is avoided too)
STATA_RESERVED = frozenset(n.upper() for n in (
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n", "_N", "_pi",
    "_pred", "_rc", "_skip", "strL", "using", "with"))
SPSS_NAME_BYTES = 64
STATA_NAME_CHARS = 32
RESERVED_SEPARATOR = "__"
_NOT_IN_COVARIATE = "=;"  # '=' splits '<covariate>=<level>', ';' joins lists in the outputs


def name_problem(name: str, covariate: bool = False) -> str | None:
    """Why ``name`` cannot name a measure (or, ``covariate``, a councils-file covariate); None when it can.

    A measure's name is chosen in the config, so it is an identifier: letters, digits and underscores
    starting with a letter. A covariate's is the councils file's column header, so it may hold spaces,
    digits first, accents or hyphens: only what would break the outputs is refused.
    """
    if covariate:
        if not name.strip() or name != name.strip() or any(not c.isprintable() or c in _NOT_IN_COVARIATE for c in name):
            return "must be printable text without '=' or ';' and without spaces at either end"
    elif not name or not all(c.isalnum() or c == "_" for c in name) or not (name[0].isalpha()):
        return "must be letters, digits and underscores, starting with a letter"
    if name.lower() in PIPELINE_COLUMNS:
        return "is one of the pipeline's own column names"
    if RESERVED_SEPARATOR in name:
        return f"holds '{RESERVED_SEPARATOR}', which the pipeline uses for its own columns (<measure>__missing)"
    return None


def check_names(measures: Iterable[Measure], councils: CouncilsFile | None) -> list[str]:
    """Every problem with the names of the (expanded) measures and the councils file's covariates."""
    problems: list[str] = []
    named: dict[str, str] = {}  # lower-cased name -> what it names
    slugs: dict[str, str] = {}  # lower-cased file slug of a covariate -> what it names
    entries = [(m.name, f"measure '{m.name}'" + (f" (option '{m.option}' of '{m.parent}')" if m.parent else ""), False)
               for m in measures if not m.pii]
    if councils is not None:
        entries += [(column, f"councils covariate '{column}'", True) for column in councils.covariates]
    for name, what, covariate in entries:
        problem = name_problem(name, covariate)
        if problem:
            problems.append(f"{what}: the name {problem}; rename it")
            continue
        other = named.setdefault(name.lower(), what)
        if other != what:
            problems.append(f"{what}: the name is also used by {other} (SPSS, Stata and some file systems do not "
                            "tell case apart); rename one")
            continue
        other = slugs.setdefault(file_slug(name).lower(), what) if covariate else what
        if other != what:
            problems.append(f"{what}: the name gives the same file names as {other} ('{file_slug(name)}'); rename one")
    return problems


def file_slug(name: str) -> str:
    """``name`` as it appears in file names and page ids: letters, digits, ``_`` and ``-`` (others become ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()) or "x"


def export_names(names: Sequence[str], style: Literal["spss", "stata"] = "spss") -> dict[str, str]:
    """A safe, unique variable name for each of ``names`` in an SPSS (``.sav``) or Stata (``.dta``) file.

    A name SPSS or Stata accepts as it is keeps it. Others are mapped, in order: accents folded and
    every run of characters other than ASCII letters, digits and ``_`` made one ``_`` (``Inspection
    grade`` → ``Inspection_grade``); ``v`` put before a name not starting with a letter (``2019 rate`` →
    ``v2019_rate``); ``_`` after a reserved word (``ALL`` → ``ALL_``); cut to 64 bytes (SPSS) or 32
    characters (Stata); and ``_2``, ``_3`` … appended while the name is taken by another (compared
    without case, as SPSS does), names kept as they are taking precedence. Pure, so the same columns
    always get the same names; callers put the original name into the variable label.
    """
    reserved, limit = (SPSS_RESERVED, SPSS_NAME_BYTES) if style == "spss" else (STATA_RESERVED, STATA_NAME_CHARS)

    def fits(text: str) -> bool:
        return len(text.encode("utf-8")) <= limit if style == "spss" else len(text) <= limit

    def safe(text: str) -> bool:
        return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text)) and text.upper() not in reserved and fits(text)

    mapped: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:  # names the format takes keep them, the first of two equal apart from case
        if safe(name) and name.lower() not in taken:
            mapped[name] = name
            taken.add(name.lower())
    for name in names:
        if name in mapped:
            continue
        base = re.sub(r"[^A-Za-z0-9_]+", "_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
        base = base if base[:1].isalpha() else "v" + base
        base = (base + "_" if base.upper() in reserved else base)[:limit]
        candidate, n = base, 2
        while candidate.lower() in taken or candidate.upper() in reserved:
            suffix = f"_{n}"
            candidate, n = base[: limit - len(suffix)] + suffix, n + 1
        mapped[name] = candidate
        taken.add(candidate.lower())
    return {name: mapped[name] for name in names}


def export_labels(mapped: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """Variable labels keyed by export name: the declared label, or the study's own name where it was mapped."""
    return {new: labels.get(old) or old for old, new in mapped.items() if old in labels or old != new}


def check_personal_data(measures: Iterable[Measure], waves: Iterable[Wave]) -> list[str]:
    """Every ``pii = true`` column that a wave also reads into processed data."""
    measures = list(measures)
    problems = []
    for wave in waves:
        carried = {wave.council: "its council column", wave.council_check: "its council_check column",
                   wave.role: "its role column"}
        carried.update({m.columns[wave.id]: f"the column of measure '{m.name}'"
                        for m in measures if not m.pii and wave.id in m.columns})
        for m in measures:
            column = m.columns.get(wave.id) if m.pii else None
            if column is not None and column in carried:
                problems.append(f"measure '{m.name}' is personal data (pii = true) but its column '{column}' in wave "
                                f"'{wave.id}' is also {carried[column]}, which is carried into processed data; "
                                "read the personal data from no other key")
    return problems
