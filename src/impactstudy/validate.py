"""Check a study config against its raw files without running a stage, reporting every problem at once."""

from __future__ import annotations

import difflib

from impactstudy.config import Study, Wave
from impactstudy.errors import UserError
from impactstudy.harmonise import harmonise_measure
from impactstudy.io import RawTable, read_raw
from impactstudy.paths import StudyPaths


def _closest(name: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.4)
    return f"; closest: {', '.join(repr(c) for c in close)}" if close else ""


def wave_columns(wave: Wave, study: Study) -> dict[str, str]:
    """Every raw column the config reads from ``wave``, with what it is used for."""
    used = {wave.council: "council", **({wave.council_check: "council_check"} if wave.council_check else {})}
    for key in ("respondent", "role", "submitted"):
        column = getattr(wave, key)
        if column:
            used[column] = key
    for measure in study.measures:
        if wave.id in measure.columns:
            used[measure.columns[wave.id]] = f"measure '{measure.name}'"
    return used


def check_columns(columns: list[str], wave: Wave, study: Study, source: str) -> list[str]:
    """Problems with the columns ``wave`` needs from a file that has ``columns``."""
    present = set(columns)
    return [
        f"{source}: column '{column}' ({use}, wave '{wave.id}') is not in the file{_closest(column, columns)}"
        for column, use in wave_columns(wave, study).items()
        if column not in present
    ]


def check_types(table: RawTable, wave: Wave, study: Study, source: str) -> list[str]:
    """Measures whose column holds mostly answers that cannot be read as the declared type."""
    problems = []
    for measure in study.analysed_measures:
        column = measure.columns.get(wave.id)
        if column is None or measure.type == "text" or column not in table.data.columns:
            continue
        values, _, rejected = harmonise_measure(table.data[column], measure, wave, table.meta)
        answered = int(values.notna().sum() + rejected.notna().sum())
        bad = int(rejected.notna().sum())
        if answered and bad / answered > 0.5:
            examples = ", ".join(repr(v) for v in table.data.loc[rejected.notna(), column].astype(str).unique()[:3])
            problems.append(
                f"{source}: column '{column}' does not look like {measure.type} measure '{measure.name}': "
                f"{bad} of {answered} answers rejected (e.g. {examples}); check its type, labels or recode"
            )
    return problems


def validate_study(study: Study, paths: StudyPaths) -> list[str]:
    """Every problem found in the raw files named by ``study`` (empty when all is well)."""
    problems: list[str] = []
    for wave in study.waves:
        try:
            path = paths.raw_file(wave.file)
            table = read_raw(path, wave.format, wave.read)
        except UserError as err:
            problems.append(str(err))
            continue
        source = str(path)
        column_problems = check_columns(list(table.data.columns), wave, study, source)
        problems.extend(column_problems)
        if not column_problems:
            problems.extend(check_types(table, wave, study, source))
    if study.councils is not None:
        try:
            path = paths.raw_file(study.councils.file)
            table = read_raw(path, "csv" if path.suffix.lower() != ".xlsx" else "xlsx")
            columns = list(table.data.columns)
            for column in [study.councils.key, *study.councils.covariates]:
                if column not in columns:
                    problems.append(f"{path}: council covariates file has no column '{column}'{_closest(column, columns)}")
        except UserError as err:
            problems.append(str(err))
    return problems
