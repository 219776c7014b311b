"""The deliberate mess in the demo's raw files: a duplicate submission, an unknown council, an
out-of-range code, a conflicting name check, name variants and a typo (see :mod:`impactstudy.demo.generator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz

from impactstudy.councils import FUZZY_CUTOFF, FUZZY_MARGIN, normalise
from impactstudy.demo.model import MODEL, EffectModel
from impactstudy.demo.sample import UNKNOWN_DFE
from impactstudy.study.config import Study, Wave


# Variants that name normalisation resolves, and (last four) ones only the shipped alias table knows.
NAME_VARIANTS = {
    "Bristol, City of": "Bristol",
    "St. Helens": "St Helens",
    "County Durham": "Durham",
    "Telford and Wrekin": "Telford & Wrekin",
    "Kingston upon Hull, City of": "Kingston upon Hull",
    "Herefordshire, County of": "Herefordshire",
    "Brighton and Hove": "Brighton",
    "Southend-on-Sea": "Southend",
    "Stockton-on-Tees": "Stockton",
    "Bath and North East Somerset": "B&NES",
}


OUT_OF_RANGE_CODE = 7


def _inject_duplicate(frame: pd.DataFrame, wave: Wave, column: str, rng: np.random.Generator) -> pd.DataFrame:
    """An earlier draft of one submission, 1–3 days before the final copy, one answer different."""
    earliest = pd.Timestamp(wave.fieldwork_start) + pd.Timedelta(days=3)
    candidates = np.flatnonzero((frame["_t"] >= earliest).to_numpy() & (frame["_tag"] == "").to_numpy())
    i = int(rng.choice(candidates))
    draft = frame.iloc[[i]].copy()
    draft["_t"] = draft["_t"] - pd.Timedelta(days=int(rng.integers(1, 4)), minutes=int(rng.integers(1, 300)))
    draft[wave.submitted] = draft["_t"].dt.strftime("%d/%m/%Y %H:%M") if wave.format == "csv" else draft["_t"]
    value = draft[column].iloc[0]
    draft[column] = value + 1.0 if value in (1.0, 2.0, 3.0) else value - 1.0 if value in (4.0, 5.0) else 3.0
    frame.loc[frame.index[i], "_tag"] = "duplicate_final"
    draft["_tag"] = "duplicate_draft"
    return pd.concat([frame, draft], ignore_index=True)


def _inject_conflict(frame: pd.DataFrame, wave: Wave, councils: pd.DataFrame, rng: np.random.Generator
                     ) -> pd.DataFrame | None:
    """One row's check column names another sampled council; ``None`` when there is only one council."""
    names = councils.loc[councils["in_register"], "name"].tolist()
    if len(names) < 2:
        return None
    i = int(rng.choice(np.flatnonzero((frame["_tag"] == "").to_numpy())))
    own = frame.at[i, wave.council_check]
    frame.loc[i, wave.council_check] = names[(names.index(own) + 1) % len(names)]
    frame.loc[i, "_tag"] = "conflicting_check"
    return frame


def _inject_out_of_range(frame: pd.DataFrame, column: str, rng: np.random.Generator) -> pd.DataFrame:
    i = int(rng.choice(np.flatnonzero((frame["_tag"] == "").to_numpy())))
    frame.loc[i, column] = float(OUT_OF_RANGE_CODE)
    frame.loc[i, "_tag"] = "out_of_range"
    return frame


def _typo(name: str) -> str:
    """Drop the second-to-last letter: 'Hartlepool' → 'Hartlepol', 'Manchester' → 'Manchestr'."""
    return name[:-2] + name[-1]


def _fuzzy_only(typo: str, target: str, names: list[str]) -> bool:
    """True when ``typo`` is no register name or variant after normalisation but fuzzy-matches ``target``."""
    keys = {normalise(n) for n in [*names, *NAME_VARIANTS.values()]}
    key = normalise(typo)
    if key in keys:
        return False
    scores = {normalise(n): fuzz.token_sort_ratio(key, normalise(n)) for n in names}
    best = scores.pop(normalise(target))
    return best >= FUZZY_CUTOFF and best - max(scores.values()) > FUZZY_MARGIN


def _inject_names(frame: pd.DataFrame, wave: Wave, councils: pd.DataFrame, register: list[str],
                  rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any] | None]:
    """Known variants for every row of councils that have one, and one fuzzy-only typo."""
    variants = []
    for name, variant in NAME_VARIANTS.items():
        hit = frame[wave.council] == name
        if hit.any():
            frame.loc[hit, wave.council] = variant
            code = councils.loc[councils["name"] == name, "gss_code"].iloc[0]
            variants.append({"wave": wave.id, "column": wave.council, "value": variant, "register_name": name,
                             "gss_code": code, "rows": int(hit.sum())})
    sampled = councils.loc[councils["in_register"] & ~councils["name"].isin(NAME_VARIANTS), "name"].tolist()
    for name in rng.permutation(sampled):
        rows = np.flatnonzero((frame[wave.council] == name).to_numpy())
        if len(rows) and len(name) >= 8 and _fuzzy_only(_typo(name), name, register):
            i = int(rows[0])
            frame.loc[i, wave.council] = _typo(name)
            frame.loc[i, "_tag"] = "typo"
            code = councils.loc[councils["name"] == name, "gss_code"].iloc[0]
            return frame, variants, {"wave": wave.id, "column": wave.council, "value": _typo(name),
                                     "register_name": name, "gss_code": code}
    return frame, variants, None


def add_mess(study: Study, wave: Wave, frame: pd.DataFrame, councils: pd.DataFrame, register: list[str],
              rng: np.random.Generator, model: EffectModel = MODEL) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """The wave's deliberate problems: the frame, a record per problem (rows still as tags), what was skipped."""
    eff = [study.measure(name).columns.get(wave.id) for name in model.base]
    records: dict[str, Any] = {}
    skipped: list[str] = []
    if wave.id == "baseline":
        frame = _inject_duplicate(frame, wave, eff[0], rng)
        draft, final = (frame.index[frame["_tag"] == tag][0] for tag in ("duplicate_draft", "duplicate_final"))
        records["duplicate"] = {"wave": wave.id, "respondent_id": frame.at[final, wave.respondent],
                                "tags": ["duplicate_draft", "duplicate_final"], "column": eff[0],
                                "values": [float(frame.at[draft, eff[0]]), float(frame.at[final, eff[0]])]}
        conflicted = _inject_conflict(frame, wave, councils, rng)
        if conflicted is None:
            skipped.append("conflicting_check: needs at least two councils")
        else:
            frame = conflicted
            row = frame.index[frame["_tag"] == "conflicting_check"][0]
            records["conflicting_check"] = {"wave": wave.id, "tag": "conflicting_check", "column": wave.council_check,
                                            "value": frame.at[row, wave.council_check],
                                            "council": frame.at[row, wave.council]}
    elif wave.id == "early_impact":
        frame, variants, typo = _inject_names(frame, wave, councils, register, rng)
        records["name_variants"] = variants
        if not variants:
            skipped.append("name_variants: no sampled council has a known name variant")
        if typo is None:
            skipped.append("typo: no sampled council name gives a fuzzy-only typo")
        else:
            records["typo"] = {**typo, "tag": "typo"}
    elif wave.id == "follow_up":
        frame["_tag"] = np.where(frame[wave.council] == UNKNOWN_DFE, "unknown_council", frame["_tag"])
        row = frame.index[frame["_tag"] == "unknown_council"][0]
        records["unknown_council"] = {"wave": wave.id, "tag": "unknown_council", "column": wave.council,
                                      "value": UNKNOWN_DFE, "respondent_id": frame.at[row, wave.respondent]}
        frame = _inject_out_of_range(frame, eff[1], rng)
        row = frame.index[frame["_tag"] == "out_of_range"][0]
        records["out_of_range"] = {"wave": wave.id, "tag": "out_of_range", "column": eff[1],
                                   "value": OUT_OF_RANGE_CODE, "respondent_id": frame.at[row, wave.respondent]}
    return frame, records, skipped


def with_source_rows(record: Any, frame: pd.DataFrame) -> Any:
    """A mess record with its row tags replaced by 1-based source rows of the sorted frame."""
    def row(tag: str) -> int:
        return int(np.flatnonzero((frame["_tag"] == tag).to_numpy())[0]) + 1
    if not isinstance(record, dict):
        return record
    out = {k: v for k, v in record.items() if k not in ("tag", "tags")}
    if "tag" in record:
        out["source_row"] = row(record["tag"])
    if "tags" in record:
        out["source_rows"] = [row(t) for t in record["tags"]]
        out["kept_if_latest"] = out["source_rows"][-1]
    return out
