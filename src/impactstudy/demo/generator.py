"""Write a synthetic replica of the safeguarding peer-review impact study, with known true effects.

``impactstudy demo`` lets the whole pipeline (ingest → link → model → report) and its tests run on a
fresh clone without private data. :func:`generate` writes, for a study name and a seed:

* ``pipelines/<study>/study.toml`` — the packaged template ``impactstudy/demo/demo_study.toml``, its
  title naming the number of councils when that is not 40, and for ``extra_waves=K`` K more
  ``[[waves]]`` entries (``follow_up_2`` …, same layout as ``follow_up``) with the effectiveness
  measures' ``columns`` and ``reverse`` extended to them. The text is edited, not re-serialised, so
  its comments stay.
* ``data/raw/<study>/councils.csv`` — ``council`` (GSS code), ``name``, ``status``, ``review_date``.
* one raw file per wave, laid out as the config says (column names, formats, reversed scales), and
* ``data/raw/<study>/cin_outcomes.csv`` — when the config's ``[impact]`` names it: a yearly
  administrative outcome panel of every council in the DfE open-data layout (:mod:`.outcomes`);
* ``data/raw/<study>/coding/coding_AB.xlsx`` and ``coding_CD.xlsx`` — when the config has ``[[coding]]``
  sections: two coders' returned coding sheets for the free text of every wave (:mod:`.coding`), and
  ``.secrets/<study>.salt`` when the study has none (the answer ids on the sheets need the pseudonyms);
* ``data/raw/<study>/truth.json`` — the generating parameters and the true change in the expected
  observed effectiveness score for every contrast the model stage estimates (see :func:`impactstudy.demo.model.true_effects`).

Everything the waves contain is driven by the config: each measure asked in a wave gets a column named
by ``Measure.columns[wave]``, filled by the generator of its family (:data:`impactstudy.demo.answers._GENERATORS`), then written
as codes (SPSS) or answer texts (CSV). Nothing is declared twice.

The generating model
--------------------
Councils are a stratified sample (seeded systematic sample over authority type × region) of the
upper-tier councils live on 2013-04-01, City of London excluded. A quarter have the Ofsted status
"Notice to Improve" (NtI); the rest are split 45:40:15 over Adequate, Good and Outstanding. Each
council has 1–4 respondent "seats" (the first one the strategic lead); at each later wave a seat's
occupant is replaced by a new person (new ``resp_id``) with probability 0.12 and answers with a
probability that depends on the council's status (:data:`impactstudy.demo.model.RESPONSE_RATE`: NtI councils answer less),
so attrition is missing at random given status, not completely at random. Whole councils also leave
the study from the follow-up on, more often NtI councils (:data:`impactstudy.demo.model.COUNCIL_DROPOUT`); a council still in
keeps at least one respondent in every wave (its first seat answers if no one else does).

Self-rated effectiveness in domain d, for status s at wave w, is
``latent = base[d] + status_offset[s] + gain[d] × status_gain[s] × trajectory[w] + council + person +
noise`` with normal council, person and residual terms (ICCs 0.2 and 0.1 on the latent scale), and the
observed answer is ``clip(round(latent), 1, 5)``. NtI councils start lower and improve most; voice of
the child has no true change. Other measures follow simple models tied to the same councils and
people (expected outcomes predict achieved ones; the coded lesson themes are exactly the themes whose
phrases the free text uses; the coders' ticks follow :mod:`impactstudy.demo.coding`).

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
  text for about 10 % of respondents to each free-text question (their themes are then missing, "No answer").
* Coding: each coder leaves about 2 % of their answers uncoded, and one adds a column for a theme the
  frame lacks (``mess["unknown_theme"]``, ``mess["left_uncoded"]``).
* Free text and names carry ``<``, ``&``, straight and curly quotes and non-ASCII letters.

A small demo (few councils) keeps every wave and as much of the mess as it can; what it could not
produce (no sampled council with a known name variant, fewer than two councils for a conflicting
name) is listed in the summary's ``mess["not_produced"]``.

Determinism: each component draws from its own ``numpy.random.default_rng([seed, …])`` stream, so a
seed gives byte-identical files, and adding waves leaves the earlier waves unchanged. pyreadstat
stamps the write time into an SPSS file's header; :func:`impactstudy.demo.files._write_sav` overwrites that stamp with the
date of the wave's last submission, so the .sav files are byte-identical too.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime, time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.demo.answers import Context, wave_values
from impactstudy.demo.coding import returned_sheets, salt_for, save_workbook, wave_answers
from impactstudy.demo.config_text import MAX_EXTRA_WAVES, TEMPLATE, study_text
from impactstudy.demo.files import raw_frame, write_wave
from impactstudy.demo.mess import add_mess, with_source_rows
from impactstudy.demo.model import (
    DEFAULT_SEED, EffectModel, ITEM_MISSING, MODEL, REPLACEMENT_RATE, SENTINEL_REASONS, STATUSES,
    council_dropout, response_rate, stream, true_effects,
)
from impactstudy.demo.outcomes import FILE as OUTCOMES_FILE
from impactstudy.demo.outcomes import write_outcomes
from impactstudy.demo.people import draw_people, wave_rows
from impactstudy.demo.sample import live_register, sample_councils
from impactstudy.errors import ConfigError
from impactstudy.pipeline.atomic import dumps_json, write_bytes, write_text
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import Study, load_study, parse_study


@dataclass(frozen=True)
class Draw:
    """What a seed draws before any file is laid out: the sampled councils (and the unknown one), the
    people with who answers each wave, and the context the answer generators share."""

    councils: pd.DataFrame
    persons: pd.DataFrame
    answers: dict[str, pd.Series]
    context: Context


def _template() -> str:
    return resources.files("impactstudy.demo").joinpath(TEMPLATE).read_text(encoding="utf-8")


def study_config(councils: int = 40, extra_waves: int = 0, study: str = "demo") -> Study:
    """The demo's ``Study`` for ``councils`` councils, parsed from the packaged template without writing it."""
    return parse_study(tomllib.loads(study_text(_template(), councils, extra_waves)), study,
                       Path("pipelines") / study / "study.toml")


def draw(config: Study, councils: int, seed: int = DEFAULT_SEED, respondents: tuple[int, int] = (1, 4),
         model: EffectModel = MODEL, register: pd.DataFrame | None = None) -> Draw:
    """Councils, people and who answers each wave for ``seed``: what :func:`generate` writes files from
    and :func:`long_frames` makes frames from (one generator, two outputs)."""
    table = sample_councils(councils, seed, live_register() if register is None else register, model)
    persons, answers = draw_people(table, config.waves, respondents, seed, model)
    return Draw(table, persons, answers, Context(config, table, persons, seed, model))


def long_frames(config: Study, councils: int, seed: int = DEFAULT_SEED, respondents: tuple[int, int] = (1, 4),
                model: EffectModel = MODEL, measures: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The demo's answers to ``measures`` (default: the effect model's) in memory, as the model stage fits them.

    The same draws as :func:`generate` with the same arguments — the answers its raw files carry — without
    files or the deliberate mess: per measure a frame of ``council_code`` (GSS), ``respondent_id``,
    ``wave`` (categorical, in wave order), ``value`` and ``status``, one row per observed answer (no
    "Don't know", no "Not applicable", no council outside the register). Why: a simulation of thousands
    of studies (``impactstudy.coverage``) needs the data of each, not its files.
    """
    names = list(model.base if measures is None else measures)
    drawn = draw(config, councils, seed, respondents, model)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in names}
    for wave in config.waves:
        rows = wave_rows(wave, drawn.answers[wave.id], drawn.persons, drawn.councils, seed)
        values = wave_values(drawn.context, wave, rows, only=names)
        for name in names:
            if name not in values:
                continue
            value = np.asarray(values[name], dtype=float)
            keep = rows["in_register"].to_numpy(dtype=bool) & ~np.isnan(value) & ~np.isin(value, list(SENTINEL_REASONS))
            parts[name].append(pd.DataFrame({"council_code": rows["gss_code"].to_numpy()[keep],
                                             "respondent_id": rows["resp_id"].to_numpy()[keep],
                                             "wave": wave.id, "value": value[keep],
                                             "status": rows["status"].to_numpy()[keep]}))
    out = {}
    for name, frames in parts.items():
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["council_code", "respondent_id", "wave", "value", "status"])
        frame["wave"] = pd.Categorical(frame["wave"], categories=list(config.wave_ids))
        out[name] = frame
    return out


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
    register = live_register(all_authorities)
    if not 2 <= councils <= len(register):
        raise ConfigError(f"--councils must be between 2 and {len(register)}, got {councils}")
    if not 0 <= extra_waves <= MAX_EXTRA_WAVES:
        raise ConfigError(f"--extra-waves must be between 0 and {MAX_EXTRA_WAVES}, got {extra_waves}")
    if not 1 <= respondents[0] <= respondents[1]:
        raise ConfigError(f"respondents must be a range (low, high) with 1 <= low <= high, got {respondents}")

    write_text(paths.config, config_text if config_text is not None else study_text(_template(), councils, extra_waves))
    config = load_study(paths.config, study)

    drawn = draw(config, councils, seed, respondents, model, register)
    table, persons, answers, ctx = drawn.councils, drawn.persons, drawn.answers, drawn.context
    real = table[table["in_register"]]
    paths.raw.mkdir(parents=True, exist_ok=True)
    councils_csv = pd.DataFrame({"council": real["gss_code"], "name": real["name"], "status": real["status"],
                                 "review_date": [d.isoformat() for d in real["review_date"]]})
    write_bytes(paths.raw / config.councils.file, councils_csv.to_csv(index=False, lineterminator="\n").encode())

    mess: dict[str, Any] = {"not_produced": []}
    waves_summary = {}
    salt = salt_for(paths) if config.coding else b""
    coded = []
    for wave in config.waves:
        rows = wave_rows(wave, answers[wave.id], persons, table, seed)
        frame = raw_frame(config, wave, rows, wave_values(ctx, wave, rows))
        frame, records, skipped = add_mess(config, wave, frame, table, register["name"].tolist(),
                                            stream(seed, "mess", wave.order), model)
        frame = frame.sort_values(["_t", wave.respondent], kind="stable").reset_index(drop=True)
        mess.update({key: with_source_rows(record, frame) for key, record in records.items()})
        mess["not_produced"].extend(skipped)
        if config.coding:
            coded.append(wave_answers(config, wave, frame, salt))
        write_wave(paths.raw / wave.file, config, wave, frame)
        waves_summary[wave.id] = {"file": wave.file, "rows": len(frame),
                                  "respondents": int(frame[wave.respondent].nunique())}

    impact_truth = None
    if config.impact is not None and any(f.file == OUTCOMES_FILE for f in config.impact.files):
        impact_truth = write_outcomes(paths.raw, councils_csv, seed)

    coding_truth, coding_files = None, []
    if config.coding:
        written = datetime.combine(max(w.fieldwork_end or w.fieldwork_start for w in config.waves), time(17, 0))
        books, coding_truth = returned_sheets(config, pd.concat(coded, ignore_index=True), seed, written)
        for coder, book in books.items():
            coding_files.append(f"coding/coding_{coder}.xlsx")
            save_workbook(book, paths.raw / coding_files[-1], written)
        mess["unknown_theme"] = coding_truth["unknown_theme"]
        mess["left_uncoded"] = coding_truth["uncoded"]

    counts = real["status"].value_counts().reindex([s for s in STATUSES if s in set(real["status"])])
    status_counts = {s: int(n) for s, n in counts.items()}
    files = [config.councils.file, *[w.file for w in config.waves], *([OUTCOMES_FILE] if impact_truth else []),
             *coding_files, "truth.json"]
    truth = {
        "seed": seed,
        "study": study,
        "councils": councils,
        "status_counts": status_counts,
        "weighting": "group 'all' averages the statuses weighted by their number of sampled councils",
        "model": {
            "latent": "base[measure] + status_offset[status] + (gain[measure] * status_gain[status] + "
                      "council_change) * trajectory[wave] + council + respondent + residual",
            "observed": "clip(round(latent), 1, 5); follow-up files store 6 - observed (reversed scale)",
            "base": dict(model.base), "gain": dict(model.gain), "status_offset": dict(model.status_offset),
            "status_gain": dict(model.status_gain),
            "trajectory": {w.id: model.trajectory[w.order] for w in config.waves},
            "sd": {"council": model.council_sd, "respondent": model.respondent_sd,
                   "residual": model.residual_sd, "total": model.total_sd,
                   "council_change": model.council_change_sd},
            "council_change": "each council's own change by the first follow-up: Normal(0, sd.council_change) "
                              "per measure, times trajectory[wave] (tau)",
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
        "impact": impact_truth,
        "coding": coding_truth,
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


def _is_demo(paths: StudyPaths, fresh_config: str) -> bool:
    """Whether the study at ``paths`` was written by the demo: its raw folder (if any) holds the demo's
    truth.json and its config (if any) starts with the demo's header line."""
    raw_ok = not paths.raw.is_dir() or not any(paths.raw.iterdir()) or (paths.raw / "truth.json").is_file()
    header = fresh_config.splitlines()[0]
    config_ok = not paths.config.is_file() or paths.config.read_text(encoding="utf-8").startswith(header)
    return raw_ok and config_ok


def run(root: Path, study: str = "demo", councils: int = 40, seed: int = DEFAULT_SEED, extra_waves: int = 0,
        force: bool = False) -> dict[str, Any]:
    """The ``impactstudy demo`` command: :func:`generate`, refusing to overwrite a study unless ``force``.

    With ``force``, files a previous demo wrote (listed in its ``truth.json``) that this one does not
    write are removed, so no stale extra wave is left behind.
    """
    paths = StudyPaths(Path(root), study)
    fresh_config = study_text(_template(), councils, extra_waves)
    config_differs = paths.config.is_file() and paths.config.read_text(encoding="utf-8") != fresh_config
    existing = [p for p in (paths.raw,) if p.is_dir() and any(p.iterdir())] + ([paths.config] if config_differs else [])
    if existing and not force:
        raise ConfigError(f"{existing[0]}: study '{study}' already exists; pass --force to replace it with a fresh demo")
    if existing and not _is_demo(paths, fresh_config):
        raise ConfigError(f"{existing[0]}: study '{study}' is not a demo study (no truth.json from `impactstudy demo` "
                          "beside its raw files): the demo never writes over or beside real data; choose another --study")
    previous = paths.raw / "truth.json"
    old_files = json.loads(previous.read_text(encoding="utf-8")).get("files", []) if previous.is_file() else []
    summary = generate(root, study, councils, seed, extra_waves)
    for name in set(old_files) - set(summary["files"]):
        (paths.raw / name).unlink(missing_ok=True)
    return summary
