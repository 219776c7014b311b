"""Check a study config against its raw files without running a stage, reporting every problem at once."""

from __future__ import annotations

from impactstudy.errors import UserError
from impactstudy.ingest.columns import check_columns, closest
from impactstudy.ingest.harmonise import harmonise_measure
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import RawTable, read_raw
from impactstudy.study.config import Study, Wave


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
    if study.councils is not None and study.councils.file is not None:
        try:
            path = paths.raw_file(study.councils.file)
            table = read_raw(path, "csv" if path.suffix.lower() != ".xlsx" else "xlsx")
            columns = list(table.data.columns)
            for column in [study.councils.key, *study.councils.covariates]:
                if column not in columns:
                    problems.append(f"{path}: council covariates file has no column '{column}'{closest(column, columns)}")
        except UserError as err:
            problems.append(str(err))
    return problems
