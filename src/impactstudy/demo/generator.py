"""Write a synthetic replica of the safeguarding peer-review impact study, with known true effects.

``impactstudy demo`` lets the whole pipeline (ingest → link → model → report) and its tests run on a
fresh clone without private data. :func:`generate` writes, for a study name and a seed:

* ``pipelines/<study>/study.toml`` — the packaged template ``impactstudy/data/demo_study.toml``, its
  title naming the number of councils when that is not 40, and for ``extra_waves=K`` K more
  ``[[waves]]`` entries (``follow_up_2`` …, same layout as ``follow_up``) with the effectiveness
  measures' ``columns`` and ``reverse`` extended to them. The text is edited, not re-serialised, so
  its comments stay.
* ``data/raw/<study>/councils.csv`` — ``council`` (GSS code), ``name``, ``status``, ``review_date``.
* one raw file per wave, laid out as the config says (column names, formats, reversed scales), and
* ``data/raw/<study>/truth.json`` — the generating parameters and the true change in the expected
  observed effectiveness score for every contrast the model stage estimates (see :func:`true_effects`).

Everything the waves contain is driven by the config: each measure asked in a wave gets a column named
by ``Measure.columns[wave]``, filled by the generator of its family (:data:`_GENERATORS`), then written
as codes (SPSS) or answer texts (CSV). Nothing is declared twice.

The generating model
--------------------
Councils are a stratified sample (seeded systematic sample over authority type × region) of the
upper-tier councils live on 2013-04-01, City of London excluded. A quarter have the Ofsted status
"Notice to Improve" (NtI); the rest are split 45:40:15 over Adequate, Good and Outstanding. Each
council has 1–4 respondent "seats" (the first one the strategic lead); at each later wave a seat's
occupant is replaced by a new person (new ``resp_id``) with probability 0.12 and answers with a
probability that depends on the council's status (:data:`RESPONSE_RATE`: NtI councils answer less),
so attrition is missing at random given status, not completely at random. Whole councils also leave
the study from the follow-up on, more often NtI councils (:data:`COUNCIL_DROPOUT`); a council still in
keeps at least one respondent in every wave (its first seat answers if no one else does).

Self-rated effectiveness in domain d, for status s at wave w, is
``latent = base[d] + status_offset[s] + gain[d] × status_gain[s] × trajectory[w] + council + person +
noise`` with normal council, person and residual terms (ICCs 0.2 and 0.1 on the latent scale), and the
observed answer is ``clip(round(latent), 1, 5)``. NtI councils start lower and improve most; voice of
the child has no true change. Other measures follow simple models tied to the same councils and
people (expected outcomes predict achieved ones; the coded lesson themes are exactly the themes whose
phrases the free text uses).

The mess real data have (each listed in the summary's ``mess`` entry, with 1-based ``source_row``
numbers counted in data rows of the raw file, as the ingest stage counts them)
---------------------------------------------------------------------------------------------------
* ``duplicate``: one baseline respondent submitted twice, an earlier draft and a final copy 1–3 days
  later; the draft differs in one effectiveness answer. ``duplicates = "latest"`` keeps the final copy,
  which is the one the generating model produced.
* ``unknown_council``: one follow-up row from a council that is not in the register (``dfe_la`` 999).
* ``out_of_range``: one follow-up effectiveness answer coded 7, which is neither a level nor a
  declared missing code.
* ``conflicting_check``: one baseline row whose ``la_name`` names a different sampled council from its
  ``la_code``; every other ``la_name`` is the register name.
* ``name_variants``: in the early-impact CSV councils are named by their register names, except known
  variants for every row of a sampled council that has one: ``Bristol``, ``St Helens``, ``Durham``,
  ``Telford & Wrekin``, ``Kingston upon Hull``, ``Herefordshire`` (resolved by name normalisation) and
  ``Brighton``, ``Southend``, ``Stockton``, ``B&NES`` (only the shipped alias table knows them).
  Bristol, Brighton and Hove, St. Helens and County Durham are always sampled when ``councils >= 12``
  (the first ``councils // 3`` of them below that).
* ``typo``: one early-impact row names its council with a typo (a letter dropped) that only a fuzzy
  match resolves, checked against :func:`impactstudy.councils.normalise` and the fuzzy thresholds.
* Item non-response: about 3 % "Don't know" and 1 % "Not applicable" on the items that declare them
  (user-missing 8/9, or 999 for attribution, in SPSS files; the answer text in the CSV); blank free
  text for about 10 % of follow-up respondents (their theme codes are then system-missing).
* Free text and names carry ``<``, ``&``, straight and curly quotes and non-ASCII letters.

A small demo (few councils) keeps every wave and as much of the mess as it can; what it could not
produce (no sampled council with a known name variant, fewer than two councils for a conflicting
name) is listed in the summary's ``mess["not_produced"]``.

Determinism: each component draws from its own ``numpy.random.default_rng([seed, …])`` stream, so a
seed gives byte-identical files, and adding waves leaves the earlier waves unchanged. pyreadstat
stamps the write time into an SPSS file's header; :func:`_write_sav` overwrites that stamp with the
date of the wave's last submission, so the .sav files are byte-identical too.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
from rapidfuzz import fuzz
from scipy.stats import norm

from impactstudy.atomic import atomic_path, dumps_json, write_bytes, write_text
from impactstudy.config import Measure, Study, Wave, load_study
from impactstudy.councils import FUZZY_CUTOFF, FUZZY_MARGIN, normalise
from impactstudy.errors import ConfigError
from impactstudy.paths import StudyPaths

DEFAULT_SEED = 20130401
CENSUS_DATE = date(2013, 4, 1)
REVIEW_WINDOW = (date(2012, 7, 1), date(2013, 6, 30))
TEMPLATE = "data/demo_study.toml"
REGISTER = "data/councils.csv"
MAX_EXTRA_WAVES = 3

NTI = "Notice to Improve"
STATUSES = (NTI, "Adequate", "Good", "Outstanding")
OTHER_STATUS_SHARES = {"Adequate": 0.45, "Good": 0.40, "Outstanding": 0.15}
ROLES = {
    1: "Director of Children's Services / strategic lead",
    2: "Frontline manager",
    3: "Lead member",
    4: "Partner agency",
}
# How each template wave names councils: GSS code, register name or DfE number; extra waves copy the last.
COUNCIL_KEYS = {"baseline": "gss", "early_impact": "name", "follow_up": "dfe"}
# Days from a council's review to its respondents' submissions (uniform range) at wave order 0, 1, 2;
# an extra follow-up k years after the review is 365 k ± 30 days.
TIMING_DAYS = ((-120, -60), (70, 110), (335, 395))
REPLACEMENT_RATE = 0.12
# Probability that a seat answers at wave order 1, 2; later waves lose another 0.05 each.
RESPONSE_RATE = {NTI: (0.60, 0.50), "Adequate": (0.82, 0.72), "Good": (0.85, 0.76), "Outstanding": (0.85, 0.76)}
# Probability that a whole council has dropped out by wave order 2 (the follow-up); each later wave adds
# half as much again. Councils in the early-impact wave all stay, so its name variants are all present.
COUNCIL_DROPOUT = {NTI: 0.30, "Adequate": 0.12, "Good": 0.08, "Outstanding": 0.05}
SMALL_STUDY = 12  # below this many councils no council drops out
DONT_KNOW, NOT_APPLICABLE = -8.0, -9.0  # internal sentinels, written as the measure's declared code
SENTINEL_REASONS = {DONT_KNOW: "Don't know", NOT_APPLICABLE: "Not applicable"}
ITEM_MISSING = {DONT_KNOW: 0.03, NOT_APPLICABLE: 0.01}
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
# Always sampled, so linkage meets known variants: the first n // 3 of them (all four from 12 councils).
ALWAYS_SAMPLED = ("Bristol, City of", "Brighton and Hove", "St. Helens", "County Durham")
UNKNOWN_DFE = 999
OUT_OF_RANGE_CODE = 7

FIRST_NAMES = (
    "Aisha", "Ben", "Chloé", "Dafydd", "Eleanor", "Femi", "Gráinne", "Hannah", "Imran", "Joanna",
    "Kieran", "Lucía", "Marek", "Niamh", "Oliver", "Priya", "Rhys", "Siân", "Tomasz", "Zoë",
)
SURNAMES = (
    "Adeyemi", "Bennett", "Chowdhury", "D’Souza", "Evans", "Fitzgerald", "Gómez", "Hughes", "Iqbal",
    "Jones", "Khan", "Lefèvre", "Morgan", "Nowak", "O’Brien", "Patel", "Quinn", "Roberts", "Wójcik",
)
# Phrases per lesson theme (the options of the coding frame in the config); a lesson joins 1–3 of them.
LESSON_PHRASES = {
    "who_took_part": (
        "Involve partners & schools from the start.",
        "Make sure the lead member and the DCS both take part.",
        "Get health colleagues in the room – their “view from outside” helped.",
    ),
    "team_makeup": (
        "A peer team with a serving DCS made the findings credible.",
        "Include a practitioner from a council of similar size (< 200 social workers) on the team.",
        "The team’s mix of regions & backgrounds mattered.",
    ),
    "method": (
        "Keep the scope focused: ask for three \"key lines of enquiry\" at most.",
        "Case-file audits gave the review real depth.",
        "Be flexible – the focus can change on day two.",
    ),
    "staff_engagement": (
        "Brief frontline staff beforehand so they don't feel inspected.",
        "Social workers’ focus groups were the most valuable part.",
        "Staff morale rose once they saw their views in the report.",
    ),
    "findings": (
        "Ask for detailed recommendations, not just headlines.",
        "The feedback presentation was frank; the written report was less so.",
        "Recommendations with timescales (< 6 months) were the easiest to act on.",
    ),
    "monitoring": (
        "Build the recommendations into the improvement plan & monitor them at the LSCB.",
        "Schedule a follow-up visit after six months.",
        "A simple RAG tracker kept the action plan \"live\".",
    ),
    "local_context": (
        "Time it before Ofsted, not in the middle of a restructure.",
        "Our résumé of local issues helped the team understand the context.",
        "Rural districts need a different approach from the towns – café-style drop-ins worked.",
    ),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SAV_STAMP = slice(92, 109)  # creation date (9 bytes) and time (8 bytes) in the SPSS file header


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class EffectModel:
    """The latent normal model of self-rated effectiveness (see the module docstring)."""

    base: Mapping[str, float]  # measure -> latent mean at baseline of an Adequate council
    gain: Mapping[str, float]  # measure -> latent change by the first follow-up of an Adequate council
    status_offset: Mapping[str, float]
    status_gain: Mapping[str, float]  # multiplies the gain
    trajectory: tuple[float, ...]  # share of the gain reached at wave order 0, 1, 2, ...
    total_sd: float
    icc_council: float
    icc_respondent: float

    @property
    def council_sd(self) -> float:
        return self.total_sd * math.sqrt(self.icc_council)

    @property
    def respondent_sd(self) -> float:
        return self.total_sd * math.sqrt(self.icc_respondent)

    @property
    def residual_sd(self) -> float:
        return self.total_sd * math.sqrt(1.0 - self.icc_council - self.icc_respondent)

    def change(self, measure: str, status: str, order: int) -> float:
        """Latent change from baseline at wave ``order``."""
        return self.gain[measure] * self.status_gain[status] * self.trajectory[order]

    def mean(self, measure: str, status: str, order: int) -> float:
        """Marginal latent mean (council, person and noise terms average zero)."""
        return self.base[measure] + self.status_offset[status] + self.change(measure, status, order)


MODEL = EffectModel(
    base={"eff_leadership": 3.5, "eff_performance": 3.3, "eff_partnership": 3.6, "eff_practice": 3.4,
          "eff_voice": 3.2, "eff_workforce": 3.1},
    gain={"eff_leadership": 0.50, "eff_performance": 0.45, "eff_partnership": 0.30, "eff_practice": 0.35,
          "eff_voice": 0.0, "eff_workforce": 0.25},
    status_offset={NTI: -0.8, "Adequate": 0.0, "Good": 0.4, "Outstanding": 0.7},
    status_gain={NTI: 1.8, "Adequate": 1.0, "Good": 0.6, "Outstanding": 0.3},
    trajectory=(0.0, 0.4, 1.0, 1.15, 1.25, 1.3),
    total_sd=0.8,
    icc_council=0.2,
    icc_respondent=0.1,
)


def expected_observed(mean: float, sd: float, levels: tuple[float, ...]) -> float:
    """E[clip(round(X), lo, hi)] for X ~ Normal(mean, sd) and consecutive integer ``levels``.

    The observed answer is at least ``lo`` plus one for each threshold ``k + 0.5`` (k = lo … hi-1)
    that X exceeds, so its expectation is ``lo + Σ P(X > k + 0.5)``.
    """
    thresholds = np.asarray(levels[:-1], dtype=float) + 0.5
    return float(levels[0] + norm.sf(thresholds, loc=mean, scale=sd).sum())


def response_rate(status: str, order: int) -> float:
    """Probability that a seat of a council with ``status`` answers at wave ``order`` (≥ 1)."""
    rates = RESPONSE_RATE[status]
    return rates[min(order, len(rates)) - 1] - 0.05 * max(0, order - len(rates))


def council_dropout(status: str, order: int) -> float:
    """Probability that a council with ``status`` has left the study by wave ``order`` (0 before order 2)."""
    if order < 2:
        return 0.0
    return min(COUNCIL_DROPOUT[status] * (1 + 0.5 * (order - 2)), 0.9)


def true_effects(
    study: Study, status_counts: Mapping[str, int], model: EffectModel = MODEL
) -> list[dict[str, Any]]:
    """True change in the expected observed score of each effectiveness measure, per contrast and group.

    Contrasts are ``<wave> - baseline`` for every later wave and ``<wave> - <previous wave>`` from the
    third wave on; groups are ``all`` and ``status=<level>`` for each status present. ``all`` weights
    the statuses by their number of councils in the sample (each council counts once, whatever its
    number of respondents), which is the population the council-level random intercept targets.
    """
    waves = study.waves
    total = sum(status_counts.values())
    rows = []
    for name in model.base:
        measure = study.measure(name)
        expected = {
            status: [expected_observed(model.mean(name, status, w.order), model.total_sd, measure.levels)
                     for w in waves]
            for status in status_counts
        }
        expected["all"] = [
            sum(expected[s][w.order] * n for s, n in status_counts.items()) / total for w in waves
        ]
        pairs = [(w, waves[0]) for w in waves[1:]] + [(w, waves[w.order - 1]) for w in waves[2:]]
        for later, earlier in pairs:
            for group, means in expected.items():
                rows.append({
                    "measure": name,
                    "contrast": f"{later.id} - {earlier.id}",
                    "group": group if group == "all" else f"status={group}",
                    "estimate": round(means[later.order] - means[earlier.order], 6),
                    "mean_earlier": round(means[earlier.order], 6),
                    "mean_later": round(means[later.order], 6),
                })
    return rows


# --------------------------------------------------------------------------------------- small helpers


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent stream per component, so adding a wave or a measure leaves the others unchanged."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([seed, *words])


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(text.split(",")[0]).lower())


def _likert(latent: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    return np.clip(np.round(latent), levels[0], levels[-1])


def _with_missing(values: np.ndarray, rng: np.random.Generator, rates: Mapping[float, float]) -> np.ndarray:
    """Replace a share of ``values`` by the missing sentinels (one uniform draw per value)."""
    u = rng.random(len(values))
    out = values.astype(float).copy()
    low = 0.0
    for sentinel, rate in rates.items():
        out[(u >= low) & (u < low + rate)] = sentinel
        low += rate
    return out


def _declared(measure: Measure) -> dict[float, float]:
    """Missing sentinels this measure can carry: those whose reason it declares."""
    reasons = set(measure.missing.values())
    return {s: r for s, r in ITEM_MISSING.items() if SENTINEL_REASONS[s] in reasons}


def _missing_key(measure: Measure, sentinel: float) -> str:
    for key, reason in measure.missing.items():
        if reason == SENTINEL_REASONS[sentinel]:
            return key
    raise ValueError(f"measure {measure.name} declares no missing code for {SENTINEL_REASONS[sentinel]!r}")


def _numeric_missing(measure: Measure) -> dict[float, str]:
    """Declared missing codes that are numbers (SPSS user-missing values) -> reason."""
    out = {}
    for key, reason in measure.missing.items():
        try:
            out[float(key)] = reason
        except ValueError:
            continue
    return out


def _reversed(measure: Measure, wave: Wave) -> bool:
    return wave.id in measure.reverse


# -------------------------------------------------------------------------------------------- councils


def _register(all_authorities: bool = False) -> pd.DataFrame:
    """Councils live on the census date, from the packaged register (City of London excluded unless
    ``all_authorities``: the national benchmark samples every authority)."""
    with resources.files("impactstudy").joinpath(REGISTER).open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    census = CENSUS_DATE.isoformat()
    live = (table["valid_from"] <= census) & ((table["valid_to"] == "") | (table["valid_to"] >= census))
    return table[live & (all_authorities | (table["authority_type"] != "other"))].reset_index(drop=True)


def _sample(register: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Stratified sample: systematic over councils sorted by authority type, region and a random key."""
    forced = register["name"].isin(ALWAYS_SAMPLED[: min(len(ALWAYS_SAMPLED), n // 3)])
    pool = register[~forced].assign(_key=rng.random(int((~forced).sum())))
    pool = pool.sort_values(["authority_type", "region", "_key"]).reset_index(drop=True)
    k = n - int(forced.sum())
    step = len(pool) / k
    picks = np.floor(rng.random() * step + step * np.arange(k)).astype(int)
    chosen = pd.concat([register[forced], pool.iloc[picks].drop(columns="_key")])
    return chosen.sort_values("gss_code").reset_index(drop=True)


def _status_counts(n: int) -> dict[str, int]:
    """A quarter NtI (at least one), the rest by :data:`OTHER_STATUS_SHARES`, largest remainder."""
    nti = max(1, round(n / 4))
    rest = n - nti
    quotas = {s: share * rest for s, share in OTHER_STATUS_SHARES.items()}
    counts = {s: int(q) for s, q in quotas.items()}
    for s in sorted(quotas, key=lambda s: -(quotas[s] - counts[s]))[: rest - sum(counts.values())]:
        counts[s] += 1
    return {NTI: nti, **counts}


def _councils(n: int, seed: int, register: pd.DataFrame, model: EffectModel = MODEL) -> pd.DataFrame:
    """Sampled councils with status, review date and council random effect, plus the unknown council."""
    sample = _sample(register, n, _rng(seed, "sample"))
    rng = _rng(seed, "councils")
    counts = _status_counts(n)
    statuses = np.repeat(list(counts), list(counts.values()))
    span = (REVIEW_WINDOW[1] - REVIEW_WINDOW[0]).days
    sample["status"] = rng.permutation(statuses)
    sample["review_date"] = [REVIEW_WINDOW[0] + timedelta(days=int(d)) for d in rng.integers(0, span + 1, n)]
    sample["dfe"] = sample["dfe_la_code"].astype(float)
    sample["in_register"] = True
    unknown = {"gss_code": "", "name": "Unknown council", "authority_type": "", "region": "",
               "dfe_la_code": str(UNKNOWN_DFE), "status": "Adequate", "review_date": sample["review_date"].iloc[0],
               "dfe": float(UNKNOWN_DFE), "in_register": False}
    table = pd.concat([sample, pd.DataFrame([unknown])], ignore_index=True)
    table["council_re"] = rng.normal(0.0, model.council_sd, len(table))
    return table[["gss_code", "name", "authority_type", "region", "dfe", "status", "review_date",
                  "in_register", "council_re"]]


# --------------------------------------------------------------------------------------------- people


def _people(councils: pd.DataFrame, waves: tuple[Wave, ...], respondents: tuple[int, int], seed: int,
            model: EffectModel = MODEL) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Persons, and who answers each wave: seats, replacements and status-dependent attrition."""
    persons: list[dict[str, Any]] = []

    def new_person(council: int, role: int) -> int:
        persons.append({"council": council, "role": role})
        return len(persons) - 1

    real = np.flatnonzero(councils["in_register"].to_numpy())
    rng = _rng(seed, "people", 0)
    seats: list[tuple[int, list[int]]] = []  # (council, occupants over waves)
    for c in real:
        size = int(rng.integers(respondents[0], respondents[1] + 1))
        roles = [1, *rng.choice([2, 3, 4], size=size - 1, replace=size - 1 > 3).tolist()]
        seats.extend((int(c), [new_person(int(c), int(r))]) for r in roles)
    answers = {waves[0].id: [occupants[0] for _, occupants in seats]}
    # One draw per council, so dropout is monotone. A demo as small as the original study (which kept
    # all six councils for its year) loses no council.
    leaves = _rng(seed, "council-dropout").random(len(councils))
    if len(real) < SMALL_STUDY:
        leaves[:] = 1.0
    for wave in waves[1:]:
        rng = _rng(seed, "people", wave.order)
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
    draws = _rng(seed, "names").random((len(table), 3))
    first = np.array(FIRST_NAMES)[(draws[:, 0] * len(FIRST_NAMES)).astype(int)]
    last = np.array(SURNAMES)[(draws[:, 1] * len(SURNAMES)).astype(int)]
    table["name"] = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    domains = [_slug(n) or "example" for n in councils["name"].iloc[table["council"]]]
    table["email"] = [f"{_slug(f)}.{_slug(s)}@{d}.gov.uk" for f, s, d in zip(first, last, domains, strict=True)]
    table["resp_re"] = norm.ppf(draws[:, 2]) * model.respondent_sd
    return table, {w: pd.Series(ids, dtype=int) for w, ids in answers.items()}


def _wave_rows(wave: Wave, person_ids: pd.Series, persons: pd.DataFrame, councils: pd.DataFrame,
               seed: int) -> pd.DataFrame:
    """One row per answering person: council facts, person facts and a submission time."""
    rows = persons.loc[person_ids.to_numpy()].reset_index(names="person")
    facts = councils.loc[rows["council"], ["gss_code", "name", "dfe", "status", "review_date", "in_register",
                                           "council_re"]].reset_index(drop=True)
    rows = pd.concat([rows.rename(columns={"name": "person_name"}), facts], axis=1)
    rng = _rng(seed, "timing", wave.order)
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


# ------------------------------------------------------------------------------------------ measures


@dataclass
class _Context:
    """What the measure generators share: the study, councils, persons and the seed."""

    study: Study
    councils: pd.DataFrame
    persons: pd.DataFrame
    seed: int
    model: EffectModel = MODEL
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def person_set(self, parent: str, base_rates: np.ndarray) -> np.ndarray:
        """A person-level 0/1 set (persons × options) drawn once, so later waves can depend on it."""
        if parent not in self._cache:
            rng = _rng(self.seed, "person_set", parent)
            nti = (self.councils["status"].to_numpy()[self.persons["council"]] == NTI)[:, None]
            self._cache[parent] = (rng.random((len(self.persons), len(base_rates)))
                                   < base_rates[None, :] + 0.1 * nti).astype(float)
        return self._cache[parent]

    def plan(self) -> np.ndarray:
        """Whether each council has an improvement plan at each wave order (councils × waves)."""
        if "plan" not in self._cache:
            rng = _rng(self.seed, "plan", 0)
            nti = (self.councils["status"] == NTI).to_numpy()
            state = rng.random(len(self.councils)) < np.where(nti, 0.40, 0.60)
            columns = [state]
            for order in range(1, len(self.study.waves)):
                gained = _rng(self.seed, "plan", order).random(len(self.councils)) < np.where(nti, 0.55, 0.35)
                state = state | gained
                columns.append(state)
            self._cache["plan"] = np.column_stack(columns).astype(float)
        return self._cache["plan"]


MeasureGenerator = Callable[[_Context, Wave, pd.DataFrame, list[Measure], np.random.Generator], dict[str, np.ndarray]]


def _nti(rows: pd.DataFrame) -> np.ndarray:
    return (rows["status"] == NTI).to_numpy()


def _effectiveness_of(model: EffectModel) -> MeasureGenerator:
    """Self-rated effectiveness under ``model``: one Likert measure from the latent normal model."""
    def generate(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        (measure,) = measures
        mean = rows["status"].map({s: model.mean(measure.name, s, wave.order) for s in STATUSES}).to_numpy(float)
        latent = mean + rows["council_re"].to_numpy() + rows["resp_re"].to_numpy() + rng.normal(
            0.0, model.residual_sd, len(rows))
        return {measure.name: _with_missing(_likert(latent, measure.levels), rng, _declared(measure))}
    return generate


_effectiveness = _effectiveness_of(MODEL)


def _improvement_plan(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    truth = ctx.plan()[rows["council"].to_numpy(), wave.order]
    reported = np.where(rng.random(len(rows)) < 0.1, 1.0 - truth, truth)
    return {measure.name: _with_missing(reported, rng, {DONT_KNOW: 0.04})}


def _option_set(rates_from: float, rates_to: float) -> MeasureGenerator:
    """A 0/1 set answered in this wave only, NtI councils 0.1 likelier to tick each option."""
    def generate(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        rates = np.linspace(rates_from, rates_to, len(measures))[None, :] + 0.1 * _nti(rows)[:, None]
        ticks = (rng.random((len(rows), len(measures))) < rates).astype(float)
        return {m.name: ticks[:, i] for i, m in enumerate(measures)}
    return generate


EXPECTED_RATES = np.linspace(0.6, 0.3, 6)


def _expected(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    ticks = ctx.person_set(measures[0].parent or measures[0].name, EXPECTED_RATES[: len(measures)])
    return {m.name: ticks[rows["person"].to_numpy(), i] for i, m in enumerate(measures)}


def _achieved(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Achieved outcomes: 0.70 when the person expected the outcome, else 0.25 (+0.05 for NtI)."""
    pairs = {e.achieved: e.expected for e in ctx.study.expectations}
    expected_set = ctx.study.set_members(pairs[measures[0].parent])
    options = [m.option for m in expected_set]
    expected = ctx.person_set(expected_set[0].parent, EXPECTED_RATES[: len(options)])[rows["person"].to_numpy()]
    out = {}
    for m in measures:
        hoped = expected[:, options.index(m.option)] if m.option in options else np.zeros(len(rows))
        rate = 0.25 + 0.45 * hoped + 0.05 * _nti(rows)
        out[m.name] = (rng.random(len(rows)) < rate).astype(float)
    return out


def _usefulness(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    latent = 3.2 + 0.4 * _nti(rows) + rows["council_re"].to_numpy() + rng.normal(0.0, 0.8, len(rows))
    return {measure.name: _with_missing(_likert(latent, measure.levels), rng, _declared(measure))}


def _contribution(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Contribution per domain grows with the domain's true change so far (grid option = eff_<option>)."""
    out = {}
    for m in measures:
        domain = f"eff_{m.option}"
        change = rows["status"].map({s: MODEL.change(domain, s, max(wave.order, 1)) for s in STATUSES}).to_numpy(float)
        latent = 1.6 + 2.5 * change + 0.3 * _nti(rows) + rng.normal(0.0, 0.7, len(rows))
        out[m.name] = _with_missing(_likert(latent, m.levels), rng, _declared(m))
    return out


def _attribution(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    share = 5.0 * np.round(20.0 * rng.beta(2.5, 3.0, len(rows)))
    return {measure.name: _with_missing(share, rng, {DONT_KNOW: 0.08})}


def _recommend(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    return {measure.name: (rng.random(len(rows)) < 0.88 + 0.07 * _nti(rows)).astype(float)}


def _lessons(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
             rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Free text built from theme phrases, and the theme dichotomies coded from the phrases used."""
    text = next(m for m in measures if m.type == "text")
    themes = [m for m in measures if m.type != "text"]
    texts = np.full(len(rows), "", dtype=object)
    codes = np.full((len(rows), len(themes)), np.nan)
    for i in range(len(rows)):
        if rng.random() < 0.10:
            continue
        chosen = sorted(rng.choice(len(themes), size=rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]), replace=False))
        texts[i] = " ".join(str(rng.choice(LESSON_PHRASES[themes[j].option])) for j in chosen)
        codes[i] = 0.0
        codes[i, chosen] = 1.0
    return {text.name: texts, **{m.name: codes[:, j] for j, m in enumerate(themes)}}


def _personal(ctx: _Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    return {measure.name: rows[_PERSONAL[measure.name]].to_numpy(dtype=object)}


_PERSONAL = {"respondent_name": "person_name", "respondent_email": "email"}
_GENERATORS: dict[str, MeasureGenerator] = {
    "improvement_plan": _improvement_plan,
    "reason": _option_set(0.55, 0.25),
    "expected": _expected,
    "achieved": _achieved,
    "usefulness": _usefulness,
    "early_contribution": _contribution,
    "longer_contribution": _contribution,
    "attribution": _attribution,
    "other_factor": _option_set(0.5, 0.3),
    "recommend": _recommend,
    "lessons": _lessons,
    "respondent_name": _personal,
    "respondent_email": _personal,
}


def _family(measure: Measure) -> str:
    """Measures generated together: an option set, a text with its coding frame, or a single measure."""
    return measure.coding_frame_for or measure.parent or measure.name


def _generator(family: str, model: EffectModel) -> MeasureGenerator:
    if family in model.base:
        return _effectiveness_of(model)
    if family not in _GENERATORS:
        raise ValueError(f"demo has no generator for measure family '{family}'; add one to _GENERATORS")
    return _GENERATORS[family]


def _values(ctx: _Context, wave: Wave, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every measure asked in ``wave``, as codes (floats with missing sentinels) or texts."""
    families: dict[str, list[Measure]] = {}
    for m in ctx.study.measures:
        if wave.id in m.columns:
            families.setdefault(_family(m), []).append(m)
    values: dict[str, np.ndarray] = {}
    for family, members in families.items():
        values.update(_generator(family, ctx.model)(ctx, wave, rows, members, _rng(ctx.seed, "measure", family, wave.order)))
    return values


# ---------------------------------------------------------------------------------------- raw layout


def _council_key(wave: Wave) -> str:
    return COUNCIL_KEYS.get(wave.id, "dfe")


def _raw_frame(study: Study, wave: Wave, rows: pd.DataFrame, values: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The wave as its raw file holds it: configured column names, codes or answer texts.

    Hidden helper columns ``_t`` (submission time, for sorting) and ``_tag`` (which mess a row
    carries) are dropped before writing.
    """
    csv = wave.format == "csv"
    council = {"gss": rows["gss_code"], "name": rows["name"], "dfe": rows["dfe"]}[_council_key(wave)]
    frame = pd.DataFrame({wave.council: council.to_numpy(dtype=object if csv else None)})
    if wave.council_check:
        frame[wave.council_check] = rows["name"].to_numpy(dtype=object)
    frame[wave.respondent] = rows["resp_id"].to_numpy(dtype=object)
    frame[wave.role] = rows["role"].map(ROLES).to_numpy(dtype=object) if csv else rows["role"].astype(float)
    frame[wave.submitted] = (rows["submitted_at"].dt.strftime("%d/%m/%Y %H:%M").to_numpy(dtype=object)
                             if csv else rows["submitted_at"])
    for m in study.measures:
        if wave.id in m.columns:
            frame[m.columns[wave.id]] = _encode(values[m.name], m, wave, csv)
    frame["_t"] = rows["submitted_at"]
    frame["_tag"] = ""
    return frame


def _encode(values: np.ndarray, measure: Measure, wave: Wave, csv: bool) -> np.ndarray:
    """Codes → the wave's codes (reversed scale, declared missing codes) or, for a CSV, answer texts."""
    if measure.type == "text":
        return values.astype(object)
    values = values.astype(float)
    out: list[Any] = []
    lo, hi = (measure.levels[0], measure.levels[-1]) if measure.levels else (0.0, 0.0)
    for v in values:
        if np.isnan(v):
            out.append("" if csv else np.nan)
        elif v in SENTINEL_REASONS:
            out.append(SENTINEL_REASONS[v] if csv else float(_missing_key(measure, v)))
        elif csv:
            out.append(measure.level_labels.get(v, f"{v:g}"))
        else:
            out.append(lo + hi - v if _reversed(measure, wave) else v)
    return np.array(out, dtype=object if csv else float)


def _sav_metadata(study: Study, wave: Wave) -> dict[str, Any]:
    """Variable labels, value labels, user-missing codes, measurement levels and formats for pyreadstat."""
    labels = {wave.council: {"gss": "Council (GSS code)", "dfe": "Council (DfE LA code)",
                             "name": "Council name"}[_council_key(wave)],
              wave.respondent: "Respondent ID", wave.role: "Respondent's role", wave.submitted: "Submitted at"}
    if wave.council_check:
        labels[wave.council_check] = "Council name"
    value_labels: dict[str, dict[float, str]] = {wave.role: {float(k): v for k, v in ROLES.items()}}
    missing: dict[str, list[float]] = {}
    measure_levels = {wave.council: "nominal", wave.respondent: "nominal", wave.role: "nominal",
                      wave.submitted: "scale"}
    formats = {wave.role: "F1.0"}
    if _council_key(wave) == "dfe":
        formats[wave.council] = "F3.0"
    if wave.council_check:
        measure_levels[wave.council_check] = "nominal"
    kinds = {"likert": "ordinal", "binary": "nominal", "numeric": "scale", "text": "nominal"}
    for m in study.measures:
        if wave.id not in m.columns:
            continue
        column = m.columns[wave.id]
        labels[column] = m.label
        measure_levels[column] = kinds[m.type]
        if m.type == "text":
            continue
        coded = m.level_labels
        if _reversed(m, wave):
            lo, hi = m.levels[0], m.levels[-1]
            coded = {lo + hi - v: label for v, label in m.level_labels.items()}
        user_missing = _numeric_missing(m)
        value_labels[column] = {**dict(sorted(coded.items())), **user_missing}
        if user_missing:
            missing[column] = sorted(user_missing)
        widest = max([*coded, *user_missing, m.maximum or 1.0])
        formats[column] = f"F{len(str(int(widest)))}.0"
    return {"column_labels": labels, "variable_value_labels": value_labels, "missing_ranges": missing,
            "variable_measure": measure_levels, "variable_format": formats, "file_label": wave.label}


# ----------------------------------------------------------------------------------------------- mess


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


def _add_mess(study: Study, wave: Wave, frame: pd.DataFrame, councils: pd.DataFrame, register: list[str],
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


def _with_rows(record: Any, frame: pd.DataFrame) -> Any:
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


# ------------------------------------------------------------------------------------------- writing


def _write_sav(path: Path, frame: pd.DataFrame, metadata: Mapping[str, Any], stamp: datetime) -> None:
    """pyreadstat.write_sav, with the header's write-time stamp replaced by ``stamp`` (determinism)."""
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(frame, tmp, **metadata)
        data = bytearray(tmp.read_bytes())
        if not re.fullmatch(rb"\d\d \w{3} \d\d\d\d:\d\d:\d\d", bytes(data[_SAV_STAMP])):
            raise RuntimeError(f"{path}: unexpected SPSS header layout, cannot fix its creation stamp")
        data[_SAV_STAMP] = f"{stamp:%d} {_MONTHS[stamp.month - 1]} {stamp:%y}{stamp:%H:%M:%S}".encode("ascii")
        tmp.write_bytes(bytes(data))


def _write_wave(path: Path, study: Study, wave: Wave, frame: pd.DataFrame) -> None:
    data = frame.drop(columns=["_t", "_tag"])
    if wave.format == "csv":
        text = data.to_csv(index=False, lineterminator="\r\n")
        write_bytes(path, text.encode(wave.read.encoding or "utf-8"))
    else:
        last = frame["_t"].max().to_pydatetime()
        _write_sav(path, data, _sav_metadata(study, wave), last.replace(hour=18, minute=0, second=0))


def _title(title: str, councils: int) -> str:
    """'… (synthetic demo)' → '… (synthetic demo, 6 councils)'; a title without brackets gets its own."""
    return f"{title[:-1]}, {councils} councils)" if title.endswith(")") else f"{title} ({councils} councils)"


def study_text(template: str, councils: int, extra_waves: int) -> str:
    """The demo's study.toml: the template with its title and extra follow-up waves edited in.

    Extra wave k (1-based) is ``follow_up_<k+1>``, a copy of the ``follow_up`` block with its id,
    label, file and fieldwork window (moved k years on) replaced; each effectiveness measure gets the
    same column as in ``follow_up`` and the new wave in ``reverse``. Comments are kept.
    """
    text = template
    if councils != 40:
        text = re.sub(r'^title = "(.*)"$', lambda m: f'title = "{_title(m.group(1), councils)}"', text, count=1,
                      flags=re.M)
    if not extra_waves:
        return text
    blocks = re.split(r"(?m)^(?=\[\[)", text)
    follow = next(i for i, b in enumerate(blocks) if b.startswith("[[waves]]") and re.search(r'^id = "follow_up"$', b, re.M))
    body, tail = re.match(r"(?s)(.*?\n)(\n*(?:#[^\n]*\n)*\n*)$", blocks[follow]).groups()
    ordinals, numbers = ("Second", "Third", "Fourth"), ("two", "three", "four")
    added = []
    for k in range(1, extra_waves + 1):
        block = body
        for key, value in (("id", f"follow_up_{k + 1}"),
                           ("label", f"{ordinals[k - 1]} follow-up (about {numbers[k - 1]} years after)"),
                           ("file", f"wave{3 + k}_follow_up_{k + 1}.sav")):
            block = re.sub(rf'^{key} = "[^"]*"', f'{key} = "{value}"', block, count=1, flags=re.M)
        for key in ("fieldwork_start", "fieldwork_end"):
            block = re.sub(rf"^{key} = (\d{{4}})", lambda m: f"{key} = {int(m.group(1)) + k}", block, count=1, flags=re.M)
        added.append(block)
    blocks[follow] = body + "\n" + "\n".join(added) + tail
    new_waves = [f"follow_up_{k + 1}" for k in range(1, extra_waves + 1)]
    for i, block in enumerate(blocks):
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        if not (block.startswith("[[measures]]") and name and name.group(1) in MODEL.base):
            continue
        column = re.search(r'^columns = \{.*\bfollow_up = ("[^"]*").*\}$', block, re.M)
        if not column:
            raise ValueError(f"template measure {name.group(1)}: expected an inline 'columns' table with follow_up")
        extra = "".join(f", {w} = {column.group(1)}" for w in new_waves)
        block = re.sub(r"^(columns = \{.*?) \}$", lambda m: f"{m.group(1)}{extra} }}", block, count=1, flags=re.M)
        block = re.sub(r"^(reverse = \[.*?)\]$", lambda m: m.group(1) + "".join(f', "{w}"' for w in new_waves) + "]",
                       block, count=1, flags=re.M)
        blocks[i] = block
    return "".join(blocks)


# ------------------------------------------------------------------------------------------ generate


def generate(
    root: Path,
    study: str = "demo",
    councils: int = 40,
    seed: int = DEFAULT_SEED,
    extra_waves: int = 0,
    respondents: tuple[int, int] = (1, 4),
    *,
    config_text: str | None = None,
    model: EffectModel = MODEL,
    all_authorities: bool = False,
) -> dict[str, Any]:
    """Write the demo study's config and raw files under ``root`` and return a summary.

    The summary names the files written, rows per wave, status counts and, under ``mess``, every
    deliberate data problem with its wave, column, value and 1-based source rows (module docstring).

    Other layouts (the national benchmark, ``bench/national.py``) pass their own ``config_text``
    (a study.toml with the demo's wave ids and council columns) and an effect ``model`` naming their
    Likert measures; ``all_authorities`` samples from every authority, City of London included.
    """
    paths = StudyPaths(Path(root), study)
    register = _register(all_authorities)
    if not 2 <= councils <= len(register):
        raise ConfigError(f"--councils must be between 2 and {len(register)}, got {councils}")
    if not 0 <= extra_waves <= MAX_EXTRA_WAVES:
        raise ConfigError(f"--extra-waves must be between 0 and {MAX_EXTRA_WAVES}, got {extra_waves}")
    if not 1 <= respondents[0] <= respondents[1]:
        raise ConfigError(f"respondents must be a range (low, high) with 1 <= low <= high, got {respondents}")

    template = resources.files("impactstudy").joinpath(TEMPLATE).read_text(encoding="utf-8")
    write_text(paths.config, config_text if config_text is not None else study_text(template, councils, extra_waves))
    config = load_study(paths.config, study)

    table = _councils(councils, seed, register, model)
    persons, answers = _people(table, config.waves, respondents, seed, model)
    ctx = _Context(config, table, persons, seed, model)
    real = table[table["in_register"]]
    paths.raw.mkdir(parents=True, exist_ok=True)
    councils_csv = pd.DataFrame({"council": real["gss_code"], "name": real["name"], "status": real["status"],
                                 "review_date": [d.isoformat() for d in real["review_date"]]})
    write_bytes(paths.raw / config.councils.file, councils_csv.to_csv(index=False, lineterminator="\n").encode())

    mess: dict[str, Any] = {"not_produced": []}
    waves_summary = {}
    for wave in config.waves:
        rows = _wave_rows(wave, answers[wave.id], persons, table, seed)
        frame = _raw_frame(config, wave, rows, _values(ctx, wave, rows))
        frame, records, skipped = _add_mess(config, wave, frame, table, register["name"].tolist(),
                                            _rng(seed, "mess", wave.order), model)
        frame = frame.sort_values(["_t", wave.respondent], kind="stable").reset_index(drop=True)
        mess.update({key: _with_rows(record, frame) for key, record in records.items()})
        mess["not_produced"].extend(skipped)
        _write_wave(paths.raw / wave.file, config, wave, frame)
        waves_summary[wave.id] = {"file": wave.file, "rows": len(frame),
                                  "respondents": int(frame[wave.respondent].nunique())}

    counts = real["status"].value_counts().reindex([s for s in STATUSES if s in set(real["status"])])
    status_counts = {s: int(n) for s, n in counts.items()}
    files = [config.councils.file, *[w.file for w in config.waves], "truth.json"]
    truth = {
        "seed": seed,
        "study": study,
        "councils": councils,
        "status_counts": status_counts,
        "weighting": "group 'all' averages the statuses weighted by their number of sampled councils",
        "model": {
            "latent": "base[measure] + status_offset[status] + gain[measure] * status_gain[status] * "
                      "trajectory[wave] + council + respondent + residual",
            "observed": "clip(round(latent), 1, 5); follow-up files store 6 - observed (reversed scale)",
            "base": dict(model.base), "gain": dict(model.gain), "status_offset": dict(model.status_offset),
            "status_gain": dict(model.status_gain),
            "trajectory": {w.id: model.trajectory[w.order] for w in config.waves},
            "sd": {"council": model.council_sd, "respondent": model.respondent_sd,
                   "residual": model.residual_sd, "total": model.total_sd},
            "icc": {"council": model.icc_council, "respondent": model.icc_respondent},
        },
        "attrition": {
            "response_probability": {s: {w.id: (1.0 if w.order == 0 else round(response_rate(s, w.order), 6))
                                         for w in config.waves} for s in STATUSES},
            "replacement_probability": REPLACEMENT_RATE,
            "council_dropout_probability": {s: {w.id: round(council_dropout(s, w.order), 6) for w in config.waves}
                                            for s in STATUSES},
            "rule": "a council leaves the study for good with the council dropout probability (from the follow-up "
                    "on); a council still in keeps at least one respondent per wave (its first seat answers if no "
                    "one else does)",
        },
        "item_missing": {SENTINEL_REASONS[s]: p for s, p in ITEM_MISSING.items()},
        "effects": true_effects(config, status_counts, model),
        "files": files,
    }
    write_text(paths.raw / "truth.json", dumps_json(truth))
    return {
        "study": study,
        "seed": seed,
        "config": str(paths.config),
        "raw": str(paths.raw),
        "files": files,
        "councils": councils,
        "status_counts": status_counts,
        "waves": waves_summary,
        "mess": mess,
    }


def run(root: Path, study: str = "demo", councils: int = 40, seed: int = DEFAULT_SEED, extra_waves: int = 0,
        force: bool = False) -> dict[str, Any]:
    """The ``impactstudy demo`` command: :func:`generate`, refusing to overwrite a study unless ``force``.

    With ``force``, files a previous demo wrote (listed in its ``truth.json``) that this one does not
    write are removed, so no stale extra wave is left behind.
    """
    paths = StudyPaths(Path(root), study)
    fresh_config = study_text(resources.files("impactstudy").joinpath(TEMPLATE).read_text(encoding="utf-8"), councils, extra_waves)
    config_differs = paths.config.is_file() and paths.config.read_text(encoding="utf-8") != fresh_config
    existing = [p for p in (paths.raw,) if p.is_dir() and any(p.iterdir())] + ([paths.config] if config_differs else [])
    if existing and not force:
        raise ConfigError(f"{existing[0]}: study '{study}' already exists; pass --force to replace it with a fresh demo")
    previous = paths.raw / "truth.json"
    old_files = json.loads(previous.read_text(encoding="utf-8")).get("files", []) if previous.is_file() else []
    summary = generate(root, study, councils, seed, extra_waves)
    for name in set(old_files) - set(summary["files"]):
        (paths.raw / name).unlink(missing_ok=True)
    return summary
