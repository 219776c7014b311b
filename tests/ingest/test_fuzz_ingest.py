"""Property-based fuzzing of ingest over mutated raw files: never a traceback, rows always conserved.

A small valid wave is mutated (truncated, delimiters, quotes and random bytes inserted, empty lines,
columns swapped, bytes flipped in an SPSS file); ingesting it must either succeed with
``rows_read == rows_accepted + rows_quarantined`` (and the files saying the same) or stop with a
:class:`~impactstudy.errors.UserError`. Any other exception is a bug.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impactstudy.errors import UserError
from impactstudy.ingest.salt import load_salt
from impactstudy.ingest.stage import ingest_wave
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import load_study

from conftest import write_mini_study

# IMPACTSTUDY_FUZZ_EXAMPLES=N runs a long, randomised fuzzing session (the suite runs 50 fixed examples);
# IMPACTSTUDY_FUZZ_MINUTES=M (`make fuzz-ingest`) runs random batches of 200 for M minutes, half per format
MINUTES = float(os.environ.get("IMPACTSTUDY_FUZZ_MINUTES", "0"))
LONG_RUN = int(os.environ.get("IMPACTSTUDY_FUZZ_EXAMPLES", "0")) or (200 if MINUTES else 0)
FUZZ = settings(max_examples=LONG_RUN or 50, deadline=None, derandomize=not LONG_RUN, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def study():
    root = Path(tempfile.mkdtemp(prefix="fuzz-ingest-"))
    write_mini_study(root)
    paths = StudyPaths(root.resolve(), "mini")
    yield load_study(paths.config, "mini"), paths, load_salt(paths)
    shutil.rmtree(root)


def _fuzz(prop, study, name: str) -> None:
    """Run the hypothesis property ``prop`` once, or in a timed session in batches until its share of time is spent."""
    if not MINUTES:
        prop(study)
        return
    started, batches = time.monotonic(), 0
    while time.monotonic() - started < 60 * MINUTES / 2:
        prop(study)
        batches += 1
    pytest.skip(f"fuzz {name}: {batches * LONG_RUN} mutated files in {MINUTES / 2:g} minutes, none failing")


def _check_ingest(study, paths: StudyPaths, wave_id: str, data: bytes) -> None:
    config = study[0]
    wave = config.wave(wave_id)
    for path in paths.wave_outputs(wave.id):
        path.unlink(missing_ok=True)
    (paths.raw / wave.file).write_bytes(data)
    try:
        report = ingest_wave(config, paths, wave, study[2])
    except UserError as err:
        assert "\n" not in str(err).strip()
        assert not any(path.exists() for path in paths.wave_outputs(wave.id)), "a failed wave left outputs"
        return
    assert report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"]
    parquet, quarantine, _ = paths.wave_outputs(wave.id)
    assert len(pd.read_parquet(parquet)) == report["rows_accepted"]
    rejected = pd.read_csv(quarantine, keep_default_na=False)
    assert rejected.loc[rejected["scope"] == "row", "source_row"].nunique() == report["rows_quarantined"]


# ---------------------------------------------------------------------------------------------- CSV

INSERTS = st.sampled_from([b",", b";", b"\t", b'"', b"\r\n", b"\n", b"\n\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
                           b"=cmd|' /C calc'!A0", b"-1", b"1e309", b"nan", b"\xe9"])


@st.composite
def mutated_csv(draw, original: bytes) -> bytes:
    lines = original.split(b"\r\n")
    if draw(st.booleans()):  # swap two columns in every line (header too, or not)
        i, j = draw(st.integers(0, 5)), draw(st.integers(0, 5))
        with_header = draw(st.booleans())
        swapped = []
        for n, line in enumerate(lines):
            cells = line.split(b",")
            if len(cells) == 6 and (n or with_header):
                cells[i], cells[j] = cells[j], cells[i]
            swapped.append(b",".join(cells))
        lines = swapped
    if draw(st.booleans()):  # empty lines anywhere
        for _ in range(draw(st.integers(1, 3))):
            lines.insert(draw(st.integers(0, len(lines))), b"")
    data = b"\r\n".join(lines)
    for _ in range(draw(st.integers(0, 4))):  # inserted delimiters, quotes, odd bytes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.one_of(INSERTS, st.binary(min_size=1, max_size=4))) + data[at:]
    if draw(st.booleans()):  # truncated
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(data=st.data())
def _mutated_csv(study, data):
    _check_ingest(study, study[1], "w2", data.draw(mutated_csv(_ORIGINAL_CSV)))


def test_mutated_csv_is_ingested_or_refused(study):
    _fuzz(_mutated_csv, study, "CSV")


_ORIGINAL_CSV = pd.DataFrame(
    {
        "Council": ["Hartlepool", "Middlesbrough", "Manchester", "801", ""],
        "ID": ["A", "B", "E", "B", "F"],
        "Role": ["Strategic lead", "Frontline manager", "Partner", "Partner", "Partner"],
        "Q1 effectiveness": ["Very good", "Can't say", "banana", "3", "-2"],
        "Q2 plan": ["Yes", "No", "", "1", "maybe"],
        "Comment": ["Très bien", "", "=1+1", "@SUM(A1)", "-"],
    }
).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


# --------------------------------------------------------------------------------------------- SPSS


def test_damaged_sav_is_ingested_or_refused(study):
    _fuzz(_damaged_sav, study, "SPSS")


@FUZZ
@given(data=st.data())
def _damaged_sav(study, data):
    original = _original_sav(study[1])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=6))
    damaged = bytearray(original)
    for at, byte in flips:
        damaged[at] = byte
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(original))))
    _check_ingest(study, study[1], "w1", bytes(damaged[:cut]))


def _original_sav(paths: StudyPaths) -> bytes:
    keep = paths.root / "w1.original.sav"
    if not keep.exists():
        shutil.copyfile(paths.raw / "w1.sav", keep)
    return keep.read_bytes()
