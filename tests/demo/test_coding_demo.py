"""The demo's coded free text: answers in every wave, two coders' returned sheets with realistic
disagreement, and the truth they are judged by (impactstudy.demo.coding)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from impactstudy.demo import answers, generate
from impactstudy.demo.coding import FUZZY, NEW_THEME
from impactstudy.pipeline.coding import answer_ids
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import load_study

QUESTIONS = {"hopes": ("baseline", "hope_theme", answers.HOPE_PHRASES),
             "early_change": ("early_impact", "change_theme", answers.CHANGE_PHRASES),
             "lessons": ("follow_up", "theme", answers.LESSON_PHRASES)}


@pytest.fixture(scope="module")
def demo(demo_root):
    paths = StudyPaths(demo_root.resolve(), "demo")
    study = load_study(paths.config, "demo")
    truth = json.loads((paths.raw / "truth.json").read_text())["coding"]
    codes = pd.read_parquet(paths.codes)
    report = json.loads(paths.ingest_report.read_text())["coding"]
    return paths, study, truth, codes, report


def test_every_wave_has_free_text_made_of_its_themes_phrases(demo):
    paths, study, truth, _, _ = demo
    for question, (wave, themes, phrases) in QUESTIONS.items():
        data = pd.read_parquet(paths.wave_file(wave))
        answered = data[question].notna()
        assert 0.8 < answered.mean() < 0.97, question
        by_row = {a["source_row"]: a for a in truth["questions"][question]["answers"]}
        ids = answer_ids(data, "demo", question)
        options = [m.option for m in study.set_members(themes)]
        for i in np.flatnonzero(answered.to_numpy()):
            answer = by_row[int(data["source_row"].iloc[i])]
            assert answer["answer_id"] == ids.iloc[i]  # the ids the demo put on the sheets are ingest's
            used = [o for o in options if any(p in data[question].iloc[i] for p in phrases[o])]
            assert used == answer["themes"] and 1 <= len(used) <= 3


def test_the_returned_sheets_come_in_with_everything_reported(demo):
    paths, study, truth, codes, report = demo
    for question in QUESTIONS:
        r = report[question]
        n = len(truth["questions"][question]["answers"])
        assert r["answers"] == n and r["answers_not_found"] == []
        assert r["double_coded"] >= 0.25 * n  # 30 % dealt to both, less the few either left uncoded
        assert r["coded"] + r["uncoded"] == n and r["uncoded"] <= 0.03 * n
        assert {f["coder"] for f in r["files"]} == {"AB", "CD"}
    unknown = report[NEW_THEME["question"]]["unknown_themes"]
    assert [(u["coder"], u["column"], u["answers_ticked"]) for u in unknown] == [
        (NEW_THEME["coder"], NEW_THEME["column"], NEW_THEME["ticks"])]
    assert set(codes["question"]) == set(QUESTIONS) and set(codes["coder"]) == {"AB", "CD"}


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    observed = (a == b).mean()
    expected = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def test_agreement_differs_by_theme_and_is_low_for_some(demo):
    _, _, _, codes, _ = demo
    kappas = {}
    for (question, theme), block in codes.groupby(["question", "theme"]):
        wide = block.pivot_table(index="answer_id", columns="coder", values="coded").dropna()
        kappas[(question, theme)] = _kappa(wide["AB"].to_numpy(), wide["CD"].to_numpy())
    fuzzy = [k for t, k in kappas.items() if t[1] in FUZZY]
    clear = [k for t, k in kappas.items() if t[1] not in FUZZY]
    assert min(fuzzy) < 0.67 < np.median(clear)
    assert np.median(clear) - np.median(fuzzy) > 0.15


def test_the_themes_measures_are_the_first_coders_codes_and_track_the_truth(demo):
    paths, study, truth, codes, _ = demo
    data = pd.read_parquet(paths.wave_file("follow_up"))
    ids = answer_ids(data, "demo", "lessons").astype(str)
    true_rows = {a["answer_id"]: a["themes"] for a in truth["questions"]["lessons"]["answers"]}
    lessons = codes[codes["question"] == "lessons"]
    primary = lessons[lessons["coder_role"] == "primary"]
    for m in study.set_members("theme"):
        values = data[m.name]
        expected = ids.map(primary[primary["theme"] == m.option].set_index("answer_id")["coded"])
        known = expected.notna()
        assert (values[known] == expected[known]).all()
        truly = ids.map(lambda a, o=m.option: o in true_rows[a] if a in true_rows else np.nan)
        ticked = values[truly == True].mean()  # noqa: E712
        assert ticked > (0.4 if m.option in FUZZY else 0.8)  # sensitivity 0.7 and 0.95 (docs/demo.md)
    reasons = data["theme_method__missing"]
    assert set(reasons.dropna()) <= {"No answer", "Not coded"} and (reasons == "No answer").sum() == data["lessons"].isna().sum()


def test_the_sheets_are_reproducible(tmp_path):
    digests = []
    for name in ("a", "b"):
        generate(tmp_path / name, "demo", councils=6)
        digests.append(hashlib.sha256((tmp_path / name / "data/raw/demo/coding/coding_AB.xlsx").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
