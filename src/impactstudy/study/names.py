"""The one list of names a study may not give its measures and covariates, and the checks using it.

Measure and covariate names become columns of the pipeline's outputs (``waves/*.parquet``, the
panels) and variables of ``panel_long.sav``. A name equal to one of the pipeline's own columns would
overwrite it silently (a measure called ``source_row`` replaced the source row numbers), a name with
``__`` would be read back as a measure's missing-reason column (``<measure>__missing``) or a wide
panel's ``<measure>__<wave>``, and SPSS refuses its reserved words and names longer than 64 bytes, or
two names equal apart from case. :func:`check_names` refuses them all when the config is loaded, so
``validate`` reports them and no stage crashes after ``validate`` passed.

:func:`check_personal_data` refuses a ``pii = true`` column that the wave also reads as its council,
council check or role column, or as another measure's column: those are carried into processed data,
so the personal data would be too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from impactstudy.study.config import CouncilsFile, Measure, Wave

# every column the pipeline writes itself beside the measures and covariates (docs/data-contracts.md):
# waves/<wave>.parquet, panel_long, panel_wide and panel_long.sav
PIPELINE_COLUMNS = frozenset({
    "wave", "wave_order", "source_file", "source_row", "council_raw", "council_check_raw", "respondent_id",
    "role", "submitted_at", "council_code", "council_name", "measure", "value", "value_label", "missing_reason",
    "authority_type", "region", "months_since_review", "waves_present",
})
# SPSS's reserved words, which may not name a variable (any case)
SPSS_RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"})
SPSS_NAME_BYTES = 64
RESERVED_SEPARATOR = "__"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a measure or covariate (None when it can)."""
    if not name or not all(c.isalnum() or c == "_" for c in name) or not (name[0].isalpha()):
        return "must be letters, digits and underscores, starting with a letter"
    if name.lower() in PIPELINE_COLUMNS:
        return "is one of the pipeline's own column names"
    if RESERVED_SEPARATOR in name:
        return f"holds '{RESERVED_SEPARATOR}', which the pipeline uses for its own columns (<measure>__missing)"
    if name.upper() in SPSS_RESERVED:
        return "is a reserved word in SPSS"
    if len(name.encode("utf-8")) > SPSS_NAME_BYTES:
        return f"is longer than {SPSS_NAME_BYTES} bytes, the most SPSS allows"
    return None


def check_names(measures: Iterable[Measure], councils: CouncilsFile | None) -> list[str]:
    """Every problem with the names of the (expanded) measures and the councils file's covariates."""
    problems: list[str] = []
    named: dict[str, str] = {}  # lower-cased name -> what it names
    entries = [(m.name, f"measure '{m.name}'" + (f" (option '{m.option}' of '{m.parent}')" if m.parent else ""))
               for m in measures if not m.pii]
    if councils is not None:
        entries += [(column, f"councils covariate '{column}'") for column in councils.covariates]
    for name, what in entries:
        problem = name_problem(name)
        if problem:
            problems.append(f"{what}: the name {problem}; rename it")
            continue
        other = named.setdefault(name.lower(), what)
        if other != what:
            problems.append(f"{what}: the name is also used by {other} (SPSS does not tell case apart); rename one")
    return problems


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
