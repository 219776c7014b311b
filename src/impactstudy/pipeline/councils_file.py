"""The study's councils file (``[councils]``) and council identity over time, below the stages.

Shared by the link stage (covariates joined to the survey panel, reorganisations reported) and the
impact stage (each council's intervention date and pre-treatment covariates): the keys are resolved
at whichever wave's date they were valid on and carried to the council's panel code on the study's
reference date (code changes and replacements always; mergers only with ``mergers = "successor"``;
splits never). Dates are ISO 8601 first, then the declared ``date_format``; never guessed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.councils import load_register, normalise, resolve, same_authority_code
from impactstudy.errors import DataError
from impactstudy.pipeline.frames import map_distinct
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.readers import read_raw
from impactstudy.study.config import Study


def reference_date(study: Study) -> date | None:
    """The date panel council codes are expressed at: the last wave's fieldwork date."""
    dates = [w.as_of for w in study.waves if w.as_of]
    return max(dates) if dates else None


def carry_code_changes(codes: pd.Series, as_of: date | None, follow_mergers: bool = False) -> pd.Series:
    """Map each GSS code to the code its council has in the panel: the code the same authority has on
    ``as_of`` (code changes), and with ``follow_mergers`` (``[councils] mergers = "successor"``) the
    authority it merged into by then. A split is never followed: its successors are other councils.
    """
    mapping = {code: panel_code(code, as_of, follow_mergers) for code in codes.dropna().unique()}
    return map_distinct(codes, mapping.get)


def _successors(code: str) -> tuple[tuple[str, ...], pd.Timestamp | None]:
    """A register code's successor codes and the day it ended (``((), None)`` while it lasts or is unknown)."""
    register = load_register().set_index("gss_code")
    if code not in register.index:
        return (), None
    row = register.loc[code]
    if pd.isna(row["valid_to"]) or not isinstance(row["successor_codes"], str):
        return (), None
    return tuple(row["successor_codes"].split(";")), pd.Timestamp(row["valid_to"])


def _name(code: str) -> str:
    names = load_register().set_index("gss_code")["name"]
    return str(names.get(code, code))


def panel_code(code: str, as_of: date | None, follow_mergers: bool = False) -> str:
    """One code's panel identity (see :func:`carry_code_changes`): code changes and replacements (one
    successor of the same name, as Buckinghamshire's county by its unitary council in 2020) are always
    followed, mergers only with ``follow_mergers``."""
    seen: set[str] = set()
    while code not in seen:
        seen.add(code)
        code = same_authority_code(code, as_of)
        successors, ended = _successors(code)
        if len(successors) != 1 or (as_of is not None and ended >= pd.Timestamp(as_of)):
            break
        if follow_mergers or normalise(_name(successors[0])) == normalise(_name(code)):
            code = successors[0]
    return code


def reorganisations(study: Study, codes: set[str]) -> list[dict[str, Any]]:
    """Every council of the study (as resolved at some wave, or in the councils file) the register
    reorganised by the reference date, what happened to it and how the panel treats it."""
    as_of = reference_date(study)
    follow = study.councils is not None and study.councils.mergers == "successor"
    names = load_register().set_index("gss_code")["name"]
    out = []
    for code in sorted(codes):
        successors, ended = _successors(code)
        if not successors or (as_of is not None and ended >= pd.Timestamp(as_of)):
            continue
        now = panel_code(code, as_of, follow)
        later = ", ".join(f"{names.get(c, c)} ({c})" for c in successors)
        day = f"{(ended + pd.Timedelta(days=1)).date()}"
        if same_authority_code(code, as_of) != code:
            kind, treatment = "code change", f"one council throughout: its code changed on {day}, so {code} is read as {now}"
        elif len(successors) == 1 and normalise(_name(successors[0])) == normalise(_name(code)):
            kind, treatment = "replacement", (f"replaced on {day} by {later}; one council throughout, read as {now} "
                                              "in every wave")
        elif len(successors) > 1:
            kind, treatment = "split", (f"split on {day} into {later}; kept as its own council in the waves before, "
                                        "never mapped to a successor (each successor is a council of its own)")
        elif follow:
            kind, treatment = "merger", (f"merged into {later} on {day}; mapped to it in every wave "
                                         "(mergers = “successor”), with the successor's covariates")
        else:
            kind, treatment = "merger", (f"merged into {later} on {day}; kept as its own council in the waves before, "
                                         "the successor a separate council (mergers = “separate”)")
        out.append({"council_code": code, "council_name": str(names.get(code, code)), "kind": kind,
                    "successor_codes": list(successors), "panel_code": now, "treatment": treatment,
                    "text": f"{names.get(code, code)} ({code}): {treatment}"})
    return out


def resolve_keys(keys: pd.Series, study: Study, aliases: Any) -> tuple[pd.Series, pd.Series]:
    """The councils file's keys resolved at whichever wave's date they were valid on (each wave's date in
    study order: a file keyed as the councils were when the study began resolves at the first wave, one
    keyed by today's codes at the last), with the register's note for keys valid on none."""
    codes = pd.Series(None, index=keys.index, dtype="object")
    notes = pd.Series("", index=keys.index, dtype="object")
    for as_of in dict.fromkeys(w.as_of for w in study.waves):
        todo = codes.isna()
        if not todo.any():
            break
        found = resolve(keys[todo].tolist(), as_of=as_of, aliases=aliases)
        codes[todo] = found["gss_code"].to_numpy()
        notes[todo] = found["note"].fillna("").to_numpy()
    return codes, notes


def council_covariates(study: Study, paths: StudyPaths, aliases: Any) -> tuple[pd.DataFrame, list[str]]:
    """The study's council covariates by panel council code, and notes on rows that did not resolve or
    were not used (a predecessor's row when mergers map every wave to the successor)."""
    spec = study.councils
    if spec is None or spec.file is None:
        return pd.DataFrame(columns=["council_code"]), []
    path = paths.raw_file(spec.file)
    table = read_raw(path, "xlsx" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv", spec.read).data
    for column in [spec.key, *spec.covariates]:
        if column not in table.columns:
            raise DataError(f"{path}: no column '{column}'; the [councils] section of study.toml names it")
    as_of = reference_date(study)
    own, unresolved = resolve_keys(table[spec.key], study, aliases)
    notes = [f"{path.name} row {i + 2}: council '{raw}' not resolved ({note})"
             for i, (raw, code, note) in enumerate(zip(table[spec.key], own, unresolved)) if pd.isna(code)]
    codes = carry_code_changes(own, as_of, follow_mergers=spec.mergers == "successor")
    merged = codes.notna() & (codes != carry_code_changes(own, as_of))
    notes += [f"{path.name} row {i + 2}: '{table[spec.key].iloc[i]}' merged into {codes.iloc[i]}; its row is not used "
              "(mergers = \"successor\" takes the successor's covariates)" for i in np.flatnonzero(merged.to_numpy())]
    out = pd.DataFrame({"council_code": codes.where(~merged)})
    for column, kind in spec.covariates.items():
        values = table[column].replace("", None)
        if kind == "date":
            out[column] = parse_dates(values, spec.date_format, path.name, column)
        elif kind == "number":
            out[column] = pd.to_numeric(values, errors="coerce")
            unread = values.notna() & out[column].isna() & values.astype("string").str.strip().ne("").fillna(False)
            notes += [f"{path.name} row {i + 2}: {column} '{values.iloc[i]}' is not a number; taken as not recorded"
                      for i in np.flatnonzero(unread.to_numpy())]
        else:
            out[column] = values.astype("string")
    out = out.dropna(subset=["council_code"])
    repeated = out["council_code"][out["council_code"].duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"{path}: councils {', '.join(repeated)} appear more than once; keep one row per council")
    return out.reset_index(drop=True), notes


def parse_dates(values: pd.Series, date_format: str | None, file: str, column: str) -> pd.Series:
    """A date covariate: ISO 8601 (``2013-06-04``, with or without a time) first, then ``date_format``
    when the config gives one; dates a spreadsheet stored as dates are taken as they are.

    Never guesses: ``04/06/2013`` is 4 June or 6 April depending on who typed it, so without a
    ``date_format`` any other form is a :class:`DataError` naming the file, the row (as the user sees it,
    the header being row 1) and the value.
    """
    # parsed at the resolution pandas picks (microseconds reach year 1066 or 2300), checked, then nanoseconds
    stored = pd.to_datetime(values.where(values.map(lambda v: isinstance(v, (date, pd.Timestamp)))), errors="coerce")
    text = values.where(stored.isna()).astype("string").str.strip().replace("", pd.NA)
    out = stored.astype("datetime64[us]")
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601")
    out = out.fillna(iso.astype("datetime64[us]"))
    left = text.notna() & iso.isna()
    if left.any() and date_format:
        out = out.fillna(pd.to_datetime(text.where(left), errors="coerce", format=date_format).astype("datetime64[us]"))
    bad = text.notna() & out.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        how = (f"it does not match date_format '{date_format}'" if date_format else
               "write dates as YYYY-MM-DD, or set date_format in [councils] (e.g. \"%d/%m/%Y\")")
        raise DataError(f"{file} row {i + 2}: {column} '{text.iloc[i]}' is not a date in ISO 8601 form; {how}"
                        + (f" ({int(bad.sum()) - 1} more such value(s))" if bad.sum() > 1 else ""))
    beyond = out.notna() & ((out < pd.Timestamp.min) | (out > pd.Timestamp.max))
    if beyond.any():  # 1066 for 2016, an SPSS zero date (1582-10-14), 9999-12-31 for "no date"
        i = int(np.flatnonzero(beyond.to_numpy())[0])
        raise DataError(f"{file} row {i + 2}: {column} '{out.iloc[i].date()}' is outside the dates the pipeline holds "
                        f"({pd.Timestamp.min.date() + pd.Timedelta(days=1)} to {pd.Timestamp.max.date()}); correct it, "
                        "or leave the cell blank if the date is not known"
                        + (f" ({int(beyond.sum()) - 1} more such value(s))" if beyond.sum() > 1 else ""))
    return out.astype("datetime64[ns]")
