"""The demo's in-memory frames (``demo.long_frames``, what the coverage simulation fits) are the answers
its files carry, and its council-level change (``council_change_sd``, tau) is what ``truth.json`` says."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from impactstudy import demo, stages
from impactstudy.demo.model import MODEL

MEASURES = ["eff_practice", "eff_voice", "eff_leadership"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("frames_demo")
    demo.generate(root, "demo", councils=14, seed=77)
    stages.run("demo", ["link"], root=root)
    study, paths = stages.open_study("demo", root)
    # rows the stages set aside whole (the deliberate mess): their wave and raw respondent id; a duplicate's
    # draft is not one of the generated answers (its final copy, which is, is kept)
    set_aside = set()
    for name in ("quarantine.csv", "quarantine_link.csv"):
        rows = pd.read_csv(paths.processed / name)
        whole = (rows["scope"] == "row") & ~rows["reason"].str.startswith("Duplicate submission")
        for wave_id, source_row in rows.loc[whole, ["wave", "source_row"]].itertuples(index=False):
            wave = next(w for w in study.waves if w.id == wave_id)
            raw, _ = pyreadstat.read_sav(str(root / "data" / "raw" / "demo" / wave.file))
            set_aside.add((wave_id, raw[wave.respondent].iloc[source_row - 1]))
    truth = json.loads((paths.raw / "truth.json").read_text(encoding="utf-8"))
    return study, pd.read_parquet(paths.panel_long), truth, set_aside


def _answers(frame: pd.DataFrame) -> pd.DataFrame:
    """(council, wave, value) counts: respondent ids are pseudonymised by the link stage."""
    keyed = frame.assign(wave=frame["wave"].astype(str), council_code=frame["council_code"].astype(str))
    return keyed.groupby(["council_code", "wave", "value"]).size().rename("n").reset_index()


def test_long_frames_hold_the_answers_of_the_written_files(written):
    study, panel, _, set_aside = written
    assert len(set_aside) >= 1  # the conflicting name (and the unknown council, outside the frames anyway)
    frames = demo.long_frames(study, 14, seed=77, measures=MEASURES)
    for name in MEASURES:
        frame = frames[name]
        kept = ~pd.Series(list(zip(frame["wave"].astype(str), frame["respondent_id"], strict=True))).isin(set_aside)
        observed = panel[(panel["measure"] == name) & panel["value"].notna()]
        pd.testing.assert_frame_equal(_answers(frame[kept.to_numpy()]), _answers(observed), obj=name)
        assert list(frames[name].columns) == ["council_code", "respondent_id", "wave", "value", "status"]
        assert list(frames[name]["wave"].cat.categories) == list(study.wave_ids)


def test_truth_records_the_council_level_change(written):
    _, _, truth, _ = written
    assert truth["model"]["sd"]["council_change"] == MODEL.council_change_sd == 0.15
    voice = [e for e in truth["effects"] if e["measure"] == "eff_voice"]
    # no gain, but the wider latent spread at later waves moves the expected clipped score a little
    assert all(abs(e["estimate"]) < 0.01 for e in voice)


def test_tau_spreads_the_councils_changes_and_leaves_the_baseline_alone():
    study = demo.study_config(60)
    spread = {}
    for tau in (0.0, 0.6):
        frame = demo.long_frames(study, 60, seed=5, respondents=(30, 30), model=replace(MODEL, council_change_sd=tau),
                                 measures=["eff_voice"])["eff_voice"]
        means = frame.groupby(["council_code", "wave"], observed=True)["value"].mean().unstack()
        spread[tau] = float((means["follow_up"] - means["baseline"]).std())
        if tau:
            assert frame[frame["wave"] == "baseline"].equals(base[base["wave"] == "baseline"])
        base = frame
    # council change SD: sampling noise alone (tau 0) vs sqrt(noise^2 + (0.6, clipped)^2)
    assert spread[0.6] > 1.5 * spread[0.0]
    assert np.isfinite(spread[0.0]) and spread[0.0] > 0
