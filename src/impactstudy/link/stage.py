"""The link stage: one panel per council across all waves.

Each wave's council identifiers are resolved against the council register as of that wave's
fieldwork date (:func:`impactstudy.councils.resolve`), then carried to the code the same authority has
on the study's reference date (the last wave's), so a council whose GSS code changed between waves
(Northumberland and Gateshead in 2013) is one council in the panel. A row whose council cannot be
resolved, or whose identifiers disagree (the code names one council, the name another), goes to
``quarantine_link.csv`` with the reason and is listed in ``linkage.csv``: every ingested row is in the
panel or in a quarantine.

Respondents link across waves by their (pseudonymised) respondent id where the study has one;
otherwise by council and role (``<council>:<role>:<n>``, the n-th such respondent in the wave).
"""

from __future__ import annotations

import contextlib
import faulthandler
import re
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from impactstudy.councils import councils_on, load_register, normalise, resolve
from impactstudy.errors import DataError
from impactstudy.link.exports import long_export, wide_export, write_exports
from impactstudy.pipeline.atomic import (
    atomic_path, read_parquet_metadata, write_csv, write_json, write_parquet,
)
from impactstudy.pipeline.councils_file import carry_code_changes, council_covariates, reference_date, reorganisations
from impactstudy.pipeline.frames import MONTHS_SINCE, QUARANTINE_COLUMNS, map_distinct, missing_column, sheet_rows
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.progress import Progress, progress
from impactstudy.study.config import Study
from impactstudy.study.metadata import measure_metadata

LINKAGE_COLUMNS = ["wave", "council_raw", "council_code", "council_name", "method", "score", "note", "n_rows"]
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class LinkResult:
    """Everything the link stage writes, as DataFrames and dicts (the stage only writes them)."""

    panel_long: pd.DataFrame
    panel_wide: pd.DataFrame
    person_wave: pd.DataFrame
    linkage: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]


# ----------------------------------------------------------------------------------------- councils


def resolve_wave(values: pd.Series, as_of: date | None, aliases: Any) -> pd.DataFrame:
    """Resolve the distinct identifiers in ``values``; one row per distinct value (``input``)."""
    distinct = pd.Series(values.dropna().unique(), dtype="object")
    return resolve(distinct.tolist(), as_of=as_of, aliases=aliases).drop_duplicates("input")


# ------------------------------------------------------------------------------------------- waves


def _quarantine(frame: pd.DataFrame, wave: Any, source_file: str, column: str, value: pd.Series,
                reason: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "wave": frame["wave"].to_numpy(),
            "source_file": source_file,
            "source_row": frame["source_row"].to_numpy(),
            "column": column,
            "value": value.astype("string").to_numpy(),
            "reason": reason.to_numpy(),
            "scope": "row",
            "sheet_row": sheet_rows(frame["source_row"].to_numpy(), wave.format, wave.read.header_row),
        },
        columns=QUARANTINE_COLUMNS,
    )


def link_wave(frame: pd.DataFrame, study: Study, wave_id: str, source_file: str, aliases: Any,
              as_of: date | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Resolve one ingested wave's councils: (linked rows with ``council_code``, linkage rows, quarantine)."""
    wave = study.wave(wave_id)
    primary = resolve_wave(frame["council_raw"], wave.as_of, aliases).set_index("input")
    codes = map_distinct(frame["council_raw"], primary["gss_code"].get)
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    unmatched = codes.isna()
    reasons[unmatched] = (
        "Council '" + frame.loc[unmatched, "council_raw"] + "' not found in the register as of "
        + str(wave.as_of) + ": " + frame.loc[unmatched, "council_raw"].map(primary["note"]).fillna("")
        + "; correct it or add an alias"
    )
    if "council_check_raw" in frame:
        check = resolve_wave(frame["council_check_raw"], wave.as_of, aliases).set_index("input")
        check_codes = map_distinct(frame["council_check_raw"], check["gss_code"].get)
        disagree = codes.notna() & check_codes.notna() & (codes != check_codes)
        reasons[disagree] = (
            "Identifiers disagree: " + wave.council + " '" + frame.loc[disagree, "council_raw"] + "' is "
            + codes[disagree] + " but " + str(wave.council_check) + " '" + frame.loc[disagree, "council_check_raw"]
            + "' is " + check_codes[disagree] + "; correct one of them"
        )
    rejected = reasons.notna()
    quarantine = _quarantine(frame[rejected], wave, source_file, wave.council, frame.loc[rejected, "council_raw"], reasons[rejected])
    counts = frame["council_raw"].value_counts()
    linkage = primary.reset_index().rename(columns={"input": "council_raw", "gss_code": "council_code", "name": "council_name"})
    linkage.insert(0, "wave", wave_id)
    linkage["n_rows"] = linkage["council_raw"].map(counts).astype("int64")
    linked = frame[~rejected].copy()
    follow = study.councils is not None and study.councils.mergers == "successor"
    linked["council_code"] = carry_code_changes(codes[~rejected], as_of, follow_mergers=follow)
    return linked, linkage[LINKAGE_COLUMNS], quarantine


def _respondent_keys(frame: pd.DataFrame) -> pd.Series:
    """Respondent ids where given, else council:role:n within the wave."""
    if frame["respondent_id"].notna().all():
        return frame["respondent_id"].astype("string")
    role = frame["role"].fillna("unknown role").astype(str)
    n = frame.groupby(["wave", "council_code", role], sort=False).cumcount() + 1
    fallback = frame["council_code"].astype(str) + ":" + role + ":" + n.astype(str)
    return frame["respondent_id"].fillna(fallback).astype("string")


def months_since(when: pd.Series, start: pd.Series) -> pd.Series:
    """Months (average length) from each council's intervention date ``start`` to each response."""
    return ((when - start).dt.days / DAYS_PER_MONTH).astype("float64")


def _response_dates(frame: pd.DataFrame, study: Study) -> pd.Series:
    """When each response was made: its submission time, else the middle of its wave's fieldwork."""
    middle = {}
    for wave in study.waves:
        start, end = wave.fieldwork_start or wave.fieldwork_end, wave.fieldwork_end or wave.fieldwork_start
        middle[wave.id] = pd.Timestamp(start) + (pd.Timestamp(end) - pd.Timestamp(start)) / 2 if start else pd.NaT
    fallback = map_distinct(frame["wave"], middle.get, "object")
    when = frame["submitted_at"] if "submitted_at" in frame else pd.Series(pd.NaT, index=frame.index)
    return pd.to_datetime(when).fillna(pd.to_datetime(fallback)).astype("datetime64[ns]")


# ------------------------------------------------------------------------------------------ panels


def value_labels(meta: dict[str, Any]) -> dict[str, dict[float, str]]:
    """{measure: {code: label}} from ingest's Parquet metadata."""
    return {name: {float(k): v for k, v in m["level_labels"].items()} for name, m in meta["measures"].items()}


class _Vocabulary:
    """Distinct texts of many short columns, so a long text column is one gather over small codes."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, column: pd.Series, labels: Any = None) -> np.ndarray:
        """Each value's code, or its label's if ``labels`` maps values to texts (-1 for missing or unlabelled)."""
        codes, distinct = pd.factorize(column)
        texts = distinct if labels is None else [labels.get(v) for v in distinct]
        lookup = np.array([-1 if t is None else self.codes.setdefault(t, len(self.codes)) for t in texts] + [-1],
                          dtype=np.int64)
        return lookup[codes]

    def decode(self, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """The ``string`` array of ``codes`` (built as large_string, pandas' own type, so it is not copied again)."""
        return pd.array(pa.array(list(self.codes), type=pa.large_string()).take(pa.array(codes, mask=codes < 0)),
                        dtype="string")


def _categorical(column: pd.Series, rows: np.ndarray, used: np.ndarray) -> pd.Categorical:
    """``column.take(rows).astype("category")``, factorizing the short column rather than the long one
    (``used`` marks the rows ``rows`` takes, so the categories are the values the long column holds)."""
    codes, distinct = column.factorize()
    taken = np.flatnonzero(np.bincount(codes[used] + 1, minlength=len(distinct) + 1)[1:])
    dtype = pd.Series(distinct.take(taken), dtype=column.dtype).astype("category").dtype
    position = np.append(dtype.categories.get_indexer(distinct), -1)
    return pd.Categorical.from_codes(position[codes[rows]], dtype=dtype)


def to_long(person_wave: pd.DataFrame, study: Study, covariate_columns: list[str]) -> pd.DataFrame:
    """One row per council × wave × respondent × measure asked in that wave.

    Rows are ordered by council, wave, respondent and measure name. ``person_wave`` is already in that
    order but for the measure, so the long frame is gathered once from (person-wave row, measure)
    pairs put in order by a stable integer sort, and its text columns are built from their distinct
    values: stacking a copy per measure and sorting millions of text keys took most of the link stage.
    """
    wave_codes, wave_ids = person_wave["wave"].factorize()
    asked = {m.name: np.flatnonzero(np.isin(wave_codes, np.flatnonzero(wave_ids.isin(m.waves))))
             for m in study.analysed_measures if m.name in person_wave.columns}
    measures = [m for m in study.analysed_measures if len(asked.get(m.name, ()))]
    n = len(person_wave)
    vocabulary = _Vocabulary()
    values = np.full((n, len(measures)), np.nan)
    labels = np.full((n, len(measures)), -1, dtype=np.int64)
    reasons = np.full((n, len(measures)), -1, dtype=np.int64)
    for j, m in enumerate(measures):
        if m.type == "text":
            text = person_wave[m.name].astype("string")
            labels[:, j] = vocabulary.encode(text)
            reasons[:, j] = vocabulary.encode(pd.Series(np.where(text.isna().to_numpy(), "No answer", None)))
        else:
            column = person_wave[m.name].astype("float64")
            values[:, j] = column.to_numpy()
            if m.level_labels:
                labels[:, j] = vocabulary.encode(column, m.level_labels)
            reasons[:, j] = vocabulary.encode(person_wave[missing_column(m.name)])
    rows = np.concatenate([asked[m.name] for m in measures])
    which = np.repeat(np.arange(len(measures)), [len(asked[m.name]) for m in measures])
    names = pd.Index([m.name for m in measures], dtype="str")
    rank = np.argsort(np.argsort(names.to_numpy(), kind="stable"), kind="stable")
    group = person_wave.groupby(["council_code", "wave_order", "respondent_id"], sort=False, dropna=False).ngroup()
    order = np.argsort(group.to_numpy()[rows] * len(measures) + rank[which], kind="stable")
    rows, which = rows[order], which[order]
    used = np.zeros(n, dtype=bool)
    used[rows] = True

    plain = ["wave_order", "respondent_id", *covariate_columns, MONTHS_SINCE, "source_row"]
    long = person_wave[plain].take(rows).reset_index(drop=True)
    for column in ("council_code", "council_name", "wave", "role", "authority_type", "region"):
        long[column] = _categorical(person_wave[column], rows, used)
    long["measure"] = pd.Categorical.from_codes(rank[which], categories=names.sort_values())
    long["value"] = values[rows, which]
    long["value_label"] = vocabulary.decode(labels[rows, which])
    long["missing_reason"] = vocabulary.decode(reasons[rows, which])
    return long[["council_code", "council_name", "wave", "wave_order", "respondent_id", "role", "measure", "value",
                 "value_label", "missing_reason", "authority_type", "region", *covariate_columns,
                 MONTHS_SINCE, "source_row"]]


def to_wide(person_wave: pd.DataFrame, study: Study, covariate_columns: list[str]) -> pd.DataFrame:
    """One row per council and respondent, columns ``<measure>__<wave>``."""
    measures = [m.name for m in study.analysed_measures if m.name in person_wave.columns]
    keys = ["council_code", "respondent_id"]
    values = person_wave.set_index(keys + ["wave"])[measures].unstack("wave")
    columns = [(m, w) for m in measures for w in study.wave_ids if (m, w) in values.columns and w in study.measure(m).waves]
    values = values[columns]
    values.columns = [f"{m}__{w}" for m, w in columns]
    static = (person_wave.sort_values("wave_order").groupby(keys, sort=True)
              [["council_name", "role", "authority_type", "region", *covariate_columns]].last())
    present = person_wave.pivot_table(index=keys, columns="wave", values="source_row", aggfunc="size", observed=True)
    waves = [w for w in study.wave_ids if w in present.columns]
    pattern = present[waves].notna().to_numpy() @ (1 << np.arange(len(waves)))  # bit i: in wave i
    texts = {p: ";".join(w for i, w in enumerate(waves) if p >> i & 1) for p in np.unique(pattern).tolist()}
    static["waves_present"] = pd.Series([texts[p] for p in pattern.tolist()], index=present.index)
    return static.join(values).reset_index()


@dataclass(frozen=True)
class LinkedRows:
    """The linked person-wave rows (in panel order) and the stage's bookkeeping, before the panels."""

    person_wave: pd.DataFrame
    linkage: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]
    covariate_columns: list[str]


def link_rows(study: Study, waves: dict[str, pd.DataFrame], covariates: pd.DataFrame, covariate_notes: list[str],
              aliases: Any, source_files: dict[str, str]) -> LinkedRows:
    """Resolve every wave's councils and key its respondents: the person-wave rows the panels are built from."""
    as_of = reference_date(study)
    linked, linkages, quarantines = [], [], []
    for wave_id, frame in waves.items():
        rows, linkage, quarantine = link_wave(frame, study, wave_id, source_files[wave_id], aliases, as_of)
        linked.append(rows)
        linkages.append(linkage)
        quarantines.append(quarantine)
    person_wave = pd.concat(linked, ignore_index=True)
    person_wave["wave_order"] = map_distinct(person_wave["wave"], {w.id: w.order for w in study.waves}.get, "int64")
    register = load_register().set_index("gss_code")
    person_wave["council_name"] = map_distinct(person_wave["council_code"], register["name"].get)
    person_wave["authority_type"] = map_distinct(person_wave["council_code"], register["authority_type"].get)
    person_wave["region"] = map_distinct(person_wave["council_code"], register["region"].get)
    covariate_columns = [c for c in covariates.columns if c != "council_code"]
    person_wave = person_wave.merge(covariates, on="council_code", how="left", validate="many_to_one")
    person_wave["respondent_id"] = _respondent_keys(person_wave)
    tsr = study.models.time_since_intervention
    if tsr is not None and tsr.date in person_wave:
        person_wave[MONTHS_SINCE] = months_since(_response_dates(person_wave, study), person_wave[tsr.date])
    else:
        person_wave[MONTHS_SINCE] = np.nan
    person_wave = person_wave.sort_values(["council_code", "wave_order", "respondent_id"], kind="stable").reset_index(drop=True)

    linkage = pd.concat(linkages, ignore_index=True)
    quarantine = pd.concat(quarantines, ignore_index=True) if quarantines else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    summary = linkage_summary(study, person_wave, linkage, quarantine, covariates, covariate_notes)
    summary["unmatched_councils"] = unmatched_councils(study, linkage)
    summary["reorganised"] = reorganisations(study, set(linkage["council_code"].dropna()))
    summary["warnings"] = missing_covariate_warnings(study, person_wave) + before_warnings(study, person_wave)
    return LinkedRows(person_wave, linkage, quarantine, summary, covariate_columns)


def unmatched_councils(study: Study, linkage: pd.DataFrame) -> list[dict[str, Any]]:
    """Each identifier no council was found for, per wave: its rows and the three closest register names
    (councils live at the wave's date; none for a code), so a user can tell a typo from a council the
    register lacks."""
    from rapidfuzz import fuzz, process

    out = []
    for wave_id, cell in linkage[linkage["method"] == "unmatched"].groupby("wave", sort=False):
        live = councils_on(study.wave(str(wave_id)).as_of)
        names = live["name"].tolist()
        keys = [normalise(n) for n in names]
        for r in cell.itertuples():
            code = re.fullmatch(r"\s*(\d+|[EWSN]\d{8})\s*", str(r.council_raw), flags=re.I) is not None
            closest = [] if code else process.extract(normalise(str(r.council_raw)), keys, scorer=fuzz.WRatio, limit=3)
            out.append({"wave": str(wave_id), "council_raw": str(r.council_raw), "rows": int(r.n_rows),
                        "note": "" if pd.isna(r.note) else str(r.note),
                        "closest": [names[i] for _, _, i in closest]})
    return out


def _names(councils: list[str], limit: int = 5) -> str:
    shown = ", ".join(councils[:limit])
    return shown + (f" and {len(councils) - limit} more" if len(councils) > limit else "")


def missing_covariate_warnings(study: Study, person_wave: pd.DataFrame) -> list[str]:
    """One warning per ``group_by`` covariate some panel councils have no value for (not in the councils
    file, or a blank cell): the report shows them as "not recorded" and the models by that covariate
    leave them out."""
    if study.councils is None:
        return []
    councils = person_wave.drop_duplicates("council_code")
    out = []
    for covariate in study.councils.group_by:
        lacking = councils.loc[councils[covariate].isna(), "council_name"].astype(str).tolist()
        if lacking:
            out.append(f"{len(lacking)} council(s) have no {covariate} in {study.councils.file} ({_names(sorted(lacking))}): "
                       f"shown as \"not recorded\" and left out of the models by {covariate}")
    return out


def before_warnings(study: Study, person_wave: pd.DataFrame) -> list[str]:
    """Answers at a wave declared to come before the intervention (``[intervention] before_waves``) that
    were given after the council's intervention date: one warning per wave, naming the councils."""
    spec = study.intervention
    if not spec.before_waves or spec.date not in person_wave:
        return []
    when = _response_dates(person_wave, study)
    late = person_wave["wave"].isin(spec.before_waves).to_numpy() & (when > person_wave[spec.date]).to_numpy()
    out = []
    for wave_id in spec.before_waves:
        rows = person_wave[late & (person_wave["wave"] == wave_id).to_numpy()]
        if len(rows):
            names = sorted(rows["council_name"].astype(str).unique())
            out.append(f"wave '{wave_id}': {len(rows)} answer(s) from {len(names)} council(s) ({_names(names)}) were "
                       f"given after the council's {spec.date}, though the wave is declared as before {spec.name}")
    return out


def panels(study: Study, rows: LinkedRows) -> LinkResult:
    """The long and wide panels of linked rows, with everything else the stage writes."""
    return LinkResult(
        panel_long=to_long(rows.person_wave, study, rows.covariate_columns),
        panel_wide=to_wide(rows.person_wave, study, rows.covariate_columns),
        person_wave=rows.person_wave,
        linkage=rows.linkage,
        quarantine=rows.quarantine,
        summary=rows.summary,
    )


def link(study: Study, waves: dict[str, pd.DataFrame], covariates: pd.DataFrame, covariate_notes: list[str],
         aliases: Any, source_files: dict[str, str]) -> LinkResult:
    """Link ingested waves into panels (pure: the stage reads inputs and writes the result)."""
    return panels(study, link_rows(study, waves, covariates, covariate_notes, aliases, source_files))


def linkage_summary(study: Study, person_wave: pd.DataFrame, linkage: pd.DataFrame, quarantine: pd.DataFrame,
                    covariates: pd.DataFrame, covariate_notes: list[str]) -> dict[str, Any]:
    """Rows matched by each method, unmatched rows, councils per wave and participation patterns."""
    rows_by_method = linkage.groupby("method")["n_rows"].sum().astype(int).to_dict()
    councils = sorted(person_wave["council_code"].unique())
    pairs = person_wave[["council_code", "wave"]].drop_duplicates()
    present = set(zip(pairs["council_code"], pairs["wave"], strict=True))
    patterns = {c: "".join("X" if (c, w) in present else "-" for w in study.wave_ids) for c in councils}
    register = load_register().set_index("gss_code")
    panel_councils = register.loc[councils]
    as_of = reference_date(study)
    live = load_register()
    if as_of:
        day = pd.Timestamp(as_of)
        live = live[(live["valid_from"] <= day) & (live["valid_to"].isna() | (live["valid_to"] >= day))]
    return {
        "rows_by_method": {k: rows_by_method.get(k, 0) for k in ("code", "exact", "alias", "fuzzy", "unmatched")},
        "rows_quarantined": {str(k): int(v) for k, v in quarantine.groupby("wave").size().items()},
        "rows_linked": {w: int((person_wave["wave"] == w).sum()) for w in study.wave_ids},
        "councils_per_wave": {w: int(person_wave.loc[person_wave["wave"] == w, "council_code"].nunique()) for w in study.wave_ids},
        "respondents_per_wave": {w: int(person_wave.loc[person_wave["wave"] == w, "respondent_id"].nunique()) for w in study.wave_ids},
        "councils": len(councils),
        "participation": patterns,
        "participation_counts": dict(sorted(Counter(patterns.values()).items(), key=lambda kv: (-kv[1], kv[0]))),
        "sample_vs_register": {
            "reference_date": str(as_of) if as_of else None,
            "authority_type": _compare(panel_councils["authority_type"], live["authority_type"]),
            "region": _compare(panel_councils["region"], live["region"]),
        },
        "councils_without_covariates": sorted(set(councils) - set(covariates["council_code"])) if len(covariates.columns) > 1 else [],
        "covariate_notes": covariate_notes,
    }


def _compare(sample: pd.Series, register: pd.Series) -> dict[str, dict[str, int]]:
    counts = register.value_counts()
    in_sample = sample.value_counts()
    return {k: {"sample": int(in_sample.get(k, 0)), "register": int(counts[k])} for k in sorted(counts.index)}


# -------------------------------------------------------------------------------------- SPSS, Stata


def write_exports_in_place(targets: tuple[Path, ...], person_wave: pd.DataFrame, study: Study,
                           covariate_columns: list[str]) -> None:
    """The long and wide panels as ``.sav`` and ``.dta`` (:mod:`impactstudy.link.exports`) at ``targets``
    (long .sav, wide .sav, long .dta, wide .dta), written in place: :func:`exports_aside` gives temporary files."""
    long_sav, wide_sav, long_dta, wide_dta = targets
    write_exports(long_export(person_wave, study, covariate_columns), long_sav, long_dta)
    write_exports(wide_export(person_wave, study, covariate_columns), wide_sav, wide_dta)


_EXPORT_ARGS: list[Any] = []  # write_exports_in_place's arguments, for the forked child that writes the files


def _write_exports_in_child() -> None:
    write_exports_in_place(*_EXPORT_ARGS)


@contextlib.contextmanager
def exports_aside(paths: tuple[Path, ...], person_wave: pd.DataFrame, study: Study, covariate_columns: list[str],
                  bar: Progress | None = None) -> Iterator[None]:
    """Write the SPSS and Stata files atomically in a child process while the ``with`` body runs; wait for
    them on leaving.

    Writing them (readstat, one Python call per cell) takes as long as building and writing both
    Parquet panels, and nothing else uses a second core meanwhile. The child is forked, as
    :func:`impactstudy.pipeline.readers.read_raw` does for readstat, and finds its arguments in memory it shares
    with this process (pickling the person-wave rows to it took a second). Forking is safe whatever this
    process has imported: the writer runs no thread pool (it hands pyreadstat typed pandas columns, see
    :mod:`impactstudy.link.exports`; polars, which deadlocked in a child forked after it had run, is not
    used). Where the platform cannot fork, the files are written here after the body. This process owns
    the temporary files, so they appear only once the child succeeded and the body finished. ``bar``
    advances by the files once written.
    """
    global _EXPORT_ARGS
    with contextlib.ExitStack() as stack:
        tmp = tuple(stack.enter_context(atomic_path(p)) for p in paths)
        if "fork" not in multiprocessing.get_all_start_methods():
            yield
            write_exports_in_place(tmp, person_wave, study, covariate_columns)
            if bar is not None:
                bar.advance(len(tmp))
            return
        _EXPORT_ARGS = [tmp, person_wave, study, covariate_columns]
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                     initializer=faulthandler.disable) as pool:
                written = pool.submit(_write_exports_in_child)
                if bar is not None:
                    written.add_done_callback(lambda _f: bar.advance(len(tmp)))
                yield
                try:
                    written.result()
                except BrokenProcessPool:
                    raise DataError(f"{paths[0].parent}: the SPSS/Stata writer stopped unexpectedly (out of memory?); "
                                    "run link again") from None
        finally:
            _EXPORT_ARGS = []


# ------------------------------------------------------------------------------------------- stage


def _aliases(study: Study, paths: StudyPaths) -> Any:
    return paths.raw_file(study.councils.aliases) if study.councils and study.councils.aliases else None


def run_link(study: Study, paths: StudyPaths) -> LinkResult:
    """Read ingest's outputs, link, and write every link output."""
    with progress("link", "parts") as bar:
        return _run_link(study, paths, bar)


LINK_PARTS = ("the waves read", "councils resolved and respondents keyed", "panel_long.parquet",
              "panel_wide.parquet", "linkage.csv", "quarantine_link.csv", "linkage_summary.json")


def _run_link(study: Study, paths: StudyPaths, bar: Progress) -> LinkResult:
    bar.expect(len(LINK_PARTS) + len(paths.exports))  # and the SPSS/Stata files, written beside the panels
    waves, sources = {}, {}
    for wave in study.waves:
        path = paths.wave_file(wave.id)
        if not path.is_file():
            raise DataError(f"{path}: not found; run `impactstudy ingest --study {paths.study}` first")
        waves[wave.id] = pd.read_parquet(path)
        sources[wave.id] = read_parquet_metadata(path)["wave"]["source_file"]
    bar.advance()
    aliases = _aliases(study, paths)
    covariates, notes = council_covariates(study, paths, aliases)
    rows = link_rows(study, waves, covariates, notes, aliases, sources)
    bar.advance()
    if rows.person_wave.empty:
        columns = ", ".join(sorted({f"'{w.council}' ({w.id})" for w in study.waves}))
        raise DataError(f"{paths.processed}: no row of any wave could be linked to a council ({len(rows.quarantine)} set "
                        f"aside): check that each wave's council column ({columns}) holds council names or GSS codes, "
                        "or add the study's spellings as [councils] aliases")
    # wave labels are wording, kept in the .sav and the report: not here, so relabelling a wave refits no model
    meta = {"measures": measure_metadata(study), "waves": {w.id: {"order": w.order} for w in study.waves},
            "covariates": rows.covariate_columns}
    with exports_aside(paths.exports, rows.person_wave, study, rows.covariate_columns, bar):
        long = to_long(rows.person_wave, study, rows.covariate_columns)
        write_parquet(paths.panel_long, long, meta)
        bar.advance()
        wide = to_wide(rows.person_wave, study, rows.covariate_columns)
        write_parquet(paths.panel_wide, wide, meta)
        bar.advance()
        write_csv(paths.linkage, rows.linkage)
        write_csv(paths.link_quarantine, rows.quarantine)
        write_json(paths.linkage_summary, rows.summary)
        bar.advance(3)
    return LinkResult(long, wide, rows.person_wave, rows.linkage, rows.quarantine, rows.summary)
