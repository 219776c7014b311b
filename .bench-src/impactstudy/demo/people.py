"""The demo's respondents: seats per council, replacements, status-dependent attrition, names and
submission times.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactstudy.demo.model import (
    EffectModel, MODEL, REPLACEMENT_RATE, SMALL_STUDY, TIMING_DAYS, council_dropout, response_rate, stream,
)
from impactstudy.study.config import Wave


FIRST_NAMES = (
    "Aisha", "Ben", "Chloé", "Dafydd", "Eleanor", "Femi", "Gráinne", "Hannah", "Imran", "Joanna",
    "Kieran", "Lucía", "Marek", "Niamh", "Oliver", "Priya", "Rhys", "Siân", "Tomasz", "Zoë",
)


SURNAMES = (
    "Adeyemi", "Bennett", "Chowdhury", "D’Souza", "Evans", "Fitzgerald", "Gómez", "Hughes", "Iqbal",
    "Jones", "Khan", "Lefèvre", "Morgan", "Nowak", "O’Brien", "Patel", "Quinn", "Roberts", "Wójcik",
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(text.split(",")[0]).lower())


def draw_people(councils: pd.DataFrame, waves: tuple[Wave, ...], respondents: tuple[int, int], seed: int,
            model: EffectModel = MODEL) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Persons, and who answers each wave: seats, replacements and status-dependent attrition."""
    persons: list[dict[str, Any]] = []

    def new_person(council: int, role: int) -> int:
        persons.append({"council": council, "role": role})
        return len(persons) - 1

    real = np.flatnonzero(councils["in_register"].to_numpy())
    rng = stream(seed, "people", 0)
    seats: list[tuple[int, list[int]]] = []  # (council, occupants over waves)
    for c in real:
        size = int(rng.integers(respondents[0], respondents[1] + 1))
        roles = [1, *rng.choice([2, 3, 4], size=size - 1, replace=size - 1 > 3).tolist()]
        seats.extend((int(c), [new_person(int(c), int(r))]) for r in roles)
    answers = {waves[0].id: [occupants[0] for _, occupants in seats]}
    # One draw per council, so dropout is monotone. A demo as small as the original study (which kept
    # all six councils for its year) loses no council.
    leaves = stream(seed, "council-dropout").random(len(councils))
    if len(real) < SMALL_STUDY:
        leaves[:] = 1.0
    for wave in waves[1:]:
        rng = stream(seed, "people", wave.order)
        replace = rng.random(len(seats)) < REPLACEMENT_RATE
        u = rng.random(len(seats))
        answered: list[int] = []
        by_council: dict[int, list[int]] = {}
        for i, (c, occupants) in enumerate(seats):
            role = persons[occupants[-1]]["role"]
            occupants.append(new_person(c, role) if replace[i] else occupants[-1])
            if u[i] < response_rate(councils.at[c, "status"], wave.order):
                by_council.setdefault(c, []).append(occupants[-1])
        for c in real:  # a council still in the study keeps its first seat when no one else answers
            if leaves[c] < council_dropout(councils.at[c, "status"], wave.order):
                continue
            first = next(occupants for cc, occupants in seats if cc == c)
            answered.extend(by_council.get(int(c)) or [first[-1]])
        if wave.id == "follow_up":  # one respondent from a council that is not in the register
            answered.append(new_person(int(np.flatnonzero(~councils["in_register"].to_numpy())[0]), 2))
        answers[wave.id] = answered

    table = pd.DataFrame(persons)
    table["resp_id"] = [f"R{i + 1:04d}" for i in range(len(table))]
    # One row of draws per person, so adding people (later waves) leaves earlier people unchanged.
    draws = stream(seed, "names").random((len(table), 3))
    first = np.array(FIRST_NAMES)[(draws[:, 0] * len(FIRST_NAMES)).astype(int)]
    last = np.array(SURNAMES)[(draws[:, 1] * len(SURNAMES)).astype(int)]
    table["name"] = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    domains = [_slug(n) or "example" for n in councils["name"].iloc[table["council"]]]
    table["email"] = [f"{_slug(f)}.{_slug(s)}@{d}.gov.uk" for f, s, d in zip(first, last, domains, strict=True)]
    table["resp_re"] = norm.ppf(draws[:, 2]) * model.respondent_sd
    return table, {w: pd.Series(ids, dtype=int) for w, ids in answers.items()}


def wave_rows(wave: Wave, person_ids: pd.Series, persons: pd.DataFrame, councils: pd.DataFrame,
               seed: int) -> pd.DataFrame:
    """One row per answering person: council facts, person facts and a submission time."""
    rows = persons.loc[person_ids.to_numpy()].reset_index(names="person")
    facts = councils.loc[rows["council"], ["gss_code", "name", "dfe", "status", "review_date", "in_register",
                                           "council_re"]].reset_index(drop=True)
    rows = pd.concat([rows.rename(columns={"name": "person_name"}), facts], axis=1)
    rng = stream(seed, "timing", wave.order)
    low, high = TIMING_DAYS[wave.order] if wave.order < len(TIMING_DAYS) else (
        365 * (wave.order - 1) - 30, 365 * (wave.order - 1) + 30)
    shares = rng.random(len(rows))
    minutes = rng.integers(8 * 60, 19 * 60, len(rows))
    stamps = []
    for review, share, minute in zip(rows["review_date"], shares, minutes, strict=True):
        latest = min(wave.fieldwork_end, review - timedelta(days=1)) if wave.order == 0 else wave.fieldwork_end
        first = min(max(review + timedelta(days=low), wave.fieldwork_start), latest)
        last = min(max(review + timedelta(days=high), first), latest)
        day = first + timedelta(days=int(share * ((last - first).days + 1)))
        stamps.append(datetime.combine(day, datetime.min.time()) + timedelta(minutes=int(minute)))
    rows["submitted_at"] = pd.to_datetime(stamps)
    return rows
