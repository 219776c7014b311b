"""Check a study config against its raw files without running a stage, reporting every problem at once.

:func:`validate_study` lists the problems that stop a run (missing files and columns, wrong types);
:func:`set_aside_preview` then does what ingest and link would do to every row, in memory and writing
nothing: it resolves every council identifier and checks every answer against the levels, labels,
missing codes and recodes, and lists each row and value that a run would set aside, and why.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from impactstudy.errors import UserError
from impactstudy.impact.outcomes import read_outcome_table
from impactstudy.ingest.columns import check_columns, closest, header_hint, read_wave
from impactstudy.ingest.harmonise import UNRECOGNISED, harmonise_measure, harmonise_wave
from impactstudy.pipeline.coding import read_returned
from impactstudy.pipeline.councils_file import parse_dates
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import RawTable, first_rows, read_raw, unnamed_data_problem
from impactstudy.study.config import Study, Wave


def check_types(table: RawTable, wave: Wave, study: Study, source: str) -> list[str]:
    """Measures whose column holds mostly answers that cannot be read as the declared type."""
    problems = []
    for measure in study.analysed_measures:
        column = measure.columns.get(wave.id)
        if column is None or measure.type == "text" or measure.coded_from or column not in table.data.columns:
            continue
        values, _, rejected = harmonise_measure(table.data[column], measure, wave, table.meta)
        answered = int(values.notna().sum() + rejected.notna().sum())
        # answers of another type only: an out-of-range number is a bad answer, listed with the set-asides
        rejected = rejected.where(rejected == UNRECOGNISED)
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
            table = read_wave(path, wave, study)
        except UserError as err:
            problems.append(str(err))
            continue
        source = str(path)
        column_problems = check_columns(list(table.data.columns), wave, study, source)
        problems.extend(column_problems)
        if column_problems:
            problems.append(f"{source}: " + header_hint(list(table.data.columns),
                                                        first_rows(path, wave.format, wave.read), wave, study).lstrip("; "))
        if not column_problems:
            problems.extend(filter(None, [unnamed_data_problem(table, path)]))
            problems.extend(check_types(table, wave, study, source))
    if study.councils is not None and study.councils.file is not None:
        try:
            path = paths.raw_file(study.councils.file)
            table = read_raw(path, "csv" if path.suffix.lower() != ".xlsx" else "xlsx", study.councils.read)
            columns = list(table.data.columns)
            for column in [study.councils.key, *study.councils.covariates]:
                if column not in columns:
                    problems.append(f"{path}: council covariates file has no column '{column}'{closest(column, columns)}")
            for column, kind in study.councils.covariates.items():
                if kind == "date" and column in columns:  # unreadable, ambiguous or out-of-range dates: link refuses them
                    try:
                        parse_dates(table.data[column].replace("", None), study.councils.date_format, path.name, column)
                    except UserError as err:
                        problems.append(str(err))
        except UserError as err:
            problems.append(str(err))
    for spec in study.impact.files if study.impact else ():
        try:
            path = paths.raw_file(spec.file)
            table = read_raw(path, "xlsx" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv").data.astype(str)
            read_outcome_table(table, source=str(path), layout=spec.layout, year_end=spec.year_end,
                               indicators={o.name: o.column for o in spec.outcomes}, filters=spec.filters,
                               council=spec.council, year=spec.year)
        except UserError as err:
            problems.append(str(err))
    for coding in study.coding:  # the returned coding sheets, read as ingest reads them
        for entry in coding.files:
            try:
                read_returned(paths.raw_file(entry.file), f"data/raw/{study.name}/{entry.file}", entry, coding, study)
            except UserError as err:
                problems.append(str(err))
    return problems


def _entry(q: Any) -> str:
    """One set-aside entry; in a CSV or Excel file, with the row number a spreadsheet shows."""
    value = "" if q.value is None or str(q.value) in ("", "<NA>", "nan") else f" '{q.value}'"
    where = f"case {q.source_row}" if pd.isna(q.sheet_row) else f"row {q.source_row} (spreadsheet row {q.sheet_row})"
    return f"  {q.wave} {where} {q.column}{value}: {q.reason}"


def set_aside_preview(study: Study, paths: StudyPaths) -> list[str]:
    """Each row and value a run would set aside (ingest's checks of every answer, link's resolution of
    every council identifier and of the councils file), as lines; empty when nothing would be.

    Waves that cannot be read or lack columns are skipped: :func:`validate_study` reports them.
    """
    from impactstudy.link.stage import council_covariates, link_wave, reference_date

    aliases = paths.raw_file(study.councils.aliases) if study.councils and study.councils.aliases else None
    lines: list[str] = []
    for wave in study.waves:
        try:
            path = paths.raw_file(wave.file)
            table = read_raw(path, wave.format, wave.read)
        except UserError:
            continue
        if check_columns(list(table.data.columns), wave, study, str(path)):
            continue
        result = harmonise_wave(table.data, table.meta, wave, study, wave.file, b"validate")
        try:
            _, _, unlinked = link_wave(result.data, study, wave.id, wave.file, aliases, reference_date(study))
        except UserError as err:
            lines.append(f"  {wave.id}: {err}")
            unlinked = result.quarantine.iloc[:0]
        entries = pd.concat([result.quarantine, unlinked], ignore_index=True)
        if len(entries):
            rows = entries.loc[entries["scope"] == "row", "source_row"].nunique()
            lines.append(f"{wave.file}: {rows} of {len(table.data)} rows and "
                         f"{int((entries['scope'] == 'value').sum())} answers would be set aside:")
            lines += [_entry(q) for q in entries.sort_values("source_row", kind="stable").itertuples()]
    try:
        _, notes = council_covariates(study, paths, aliases)
        lines += [f"  {note}" for note in notes]
    except UserError as err:
        lines.append(f"  {err}")
    return lines
