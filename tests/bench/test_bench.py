"""The national benchmark (bench/run.py) keeps working: its --tiny mode, end to end, into a temporary root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import national  # noqa: E402
import run as bench_run  # noqa: E402


def test_national_layout_is_the_declared_scale(tmp_path):
    from impactstudy.study.config import load_study

    (tmp_path / "study.toml").write_text(national.study_toml(national.FULL), encoding="utf-8")
    study = load_study(tmp_path / "study.toml", "national")
    assert len(study.waves) == 5 and all(w.format == "sav" for w in study.waves)
    assert len(study.measures) == 30 and {m.type for m in study.measures} == {"likert"}
    assert set(national.effect_model(national.FULL).base) == {m.name for m in study.measures}


@pytest.mark.slow
def test_tiny_bench_writes_every_stage_and_target(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--tiny", "--root", str(tmp_path), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert set(results["stages"]) == {*bench_run.STAGES, "total"}
    for row in results["stages"].values():
        assert row["wall_s"] > 0 and row["peak_mb"] > 0
    assert [t["target"] for t in results["targets"]] == list(bench_run.TARGETS)
    assert {t["status"] for t in results["targets"]} <= {"pass", "FAIL", "skipped"}
    assert results["plain_read"]["files"] == 3
    ratio = results["ingest_vs_plain_read"]
    assert len(ratio["ingest_wall_s"]) == len(ratio["plain_read_wall_s"]) == 1  # --tiny: one run of each
    assert ratio["ratio_of_medians"] == round(ratio["ingest_wall_s"][0] / ratio["plain_read_wall_s"][0], 3)
    assert results["new_wave"]["steps_run"][0] == "ingest:follow_up_2"
    assert "report" in results["new_wave"]["steps_run"]
    reruns = results["reruns"]
    assert reruns["noop"]["steps_run"] == [] and reruns["touched_raw_file"]["steps_run"] == []
    assert reruns["template_change"]["steps_run"] == ["report"]  # the stylesheet is the report's code alone
    # wording: the combined ingest report, the .sav's labels and the report; no wave read again, no model refitted
    assert reruns["wave_label_change"]["steps_run"] == ["ingest", "link", "report"]
    assert "target" in done.stdout and "total_wall" in done.stdout
    # the study is left as declared: the extra wave's file is there, the config names the tiny scale's waves
    assert "follow_up_2" not in (tmp_path / "pipelines" / "national" / "study.toml").read_text()


def test_steps_are_read_from_the_console_with_or_without_what_they_are_about():
    """The new-year check of bench/impact_bench.py reads the steps a rerun ran: a line may name what the
    step is about between the name and ': running' (a wave and its file), and that must not hide it."""
    lines = ["impact: running (input data/raw/demo/national_outcomes.csv changed)",
             "impact:triangulation: running (input data/processed/demo/tables/impact_councils.csv changed)",
             "ingest:follow_up_2 (wave follow_up_2, file follow_up_2.sav): running (new step)",
             "report (both bundles): running (input tables/impact.csv changed)",
             "model: up to date", "done in 12 s: ran impact, report"]
    assert bench_run.steps_named(lines) == ["impact", "impact:triangulation", "ingest:follow_up_2", "report"]
