"""The ingest stage's steps, declared (light: no pandas; the stage's code is imported when a step runs).

One step per wave (``ingest:<wave>``), so a new or replaced wave file is ingested alone, then ``ingest``,
which combines the waves' quarantine and report pieces (and their coded answers into ``codes.parquet``).
A wave step depends on its raw file, its wave's entry, the measures as asked in that wave (their
columns, recodes and reversals there, not other waves'), the duplicates rule, the salt, and the
``[[coding]]`` sections of the questions it asks with their returned coding files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from impactstudy.ingest.salt import load_salt
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, deferred
from impactstudy.study.config import Coding, Measure, Study, Wave
from impactstudy.study.keys import plain, settings

CODE = ("impactstudy.ingest",)


def codes_piece(paths: StudyPaths, wave: Wave) -> Path:
    """The wave's rows of ``codes.parquet`` (written by waves a ``[[coding]]`` question is asked in)."""
    return paths.wave_file(wave.id).with_suffix(".codes.parquet")


def coded_questions(study: Study, wave: Wave) -> list[Coding]:
    """The ``[[coding]]`` sections whose question ``wave`` asks."""
    return [c for c in study.coding if wave.id in study.measure(c.question).columns]


def coding_files(paths: StudyPaths, codings: list[Coding] | tuple[Coding, ...]) -> tuple[Path, ...]:
    """The returned coding files of ``codings``, each once."""
    return tuple(dict.fromkeys(paths.raw_file(f.file) for c in codings for f in c.files))


def measure_for_wave(measure: Measure, wave: Wave) -> dict[str, Any]:
    """The settings of ``measure`` that ingesting ``wave`` depends on (not other waves' columns)."""
    out = plain(measure)
    del out["analyse"]  # whether the measure is modelled: the model stage's and the report's concern
    out["columns"] = measure.columns[wave.id]
    out["recode"] = plain(measure.recode.get(wave.id, {}))
    out["reverse"] = wave.id in measure.reverse
    return out


def wave_settings(study: Study, wave: Wave, salt: bytes) -> dict[str, Any]:
    """What ingesting ``wave`` reads of the study, by key."""
    return {
        f"waves[{wave.id}]": {k: v for k, v in plain(wave).items() if k != "label"},  # the combining step writes it
        f"measures (as asked in {wave.id})": [measure_for_wave(m, wave) for m in study.measures if wave.id in m.columns],
        **settings(study, "duplicates"),
        "salt": hashlib.sha256(salt).hexdigest(),
        f"coding (of questions asked in {wave.id})": plain(coded_questions(study, wave)),
    }


def ingest_steps(study: Study, paths: StudyPaths) -> list[Step]:
    """One step per wave, then the step that combines their quarantine, reports and codes."""
    salt = load_salt(paths)
    steps = []
    for wave in study.waves:
        codings = coded_questions(study, wave)
        steps.append(Step(
            name=f"ingest:{wave.id}", inputs=(paths.raw_file(wave.file), *coding_files(paths, codings)),
            outputs=paths.wave_outputs(wave.id) + ((codes_piece(paths, wave),) if codings else ()),
            config=wave_settings(study, wave, salt), code=CODE,
            run=deferred("impactstudy.ingest.stage:ingest_wave", study, paths, wave, salt),
            parallel=True, about=f"wave “{wave.label}”, {wave.file}",  # waves are independent: one per core
            unit="waves"))
    pieces = tuple(p for wave in study.waves for p in paths.wave_outputs(wave.id)[1:])
    coded = tuple(p for w in study.waves if coded_questions(study, w) for p in (paths.wave_file(w.id), codes_piece(paths, w)))
    steps.append(Step(
        name="ingest", inputs=pieces + coded + coding_files(paths, study.coding),
        outputs=(paths.quarantine, paths.ingest_report) + ((paths.codes,) if study.coding else ()),
        config=settings(study, "name", "title", "waves.id", "waves.label", "coding"), code=CODE,
        run=deferred("impactstudy.ingest.stage:combine_wave_outputs", study, paths)))
    return steps
