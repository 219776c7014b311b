"""The impact stage on the demo: outputs, truth, estimator agreement, bad input, what a new year reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy import stages
from impactstudy.demo import generate
from impactstudy.impact.estimate import RESULT_COLUMNS
from impactstudy.pipeline.paths import StudyPaths


@pytest.fixture(scope="module")
def demo_impact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("impact_demo")
    generate(root, "demo")
    stages.run("demo", ["impact"], root=root)
    return root


def _copy(demo_impact: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "copy"
    shutil.copytree(demo_impact, root)
    return root, root / "data" / "raw" / "demo" / "cin_outcomes.csv"


def test_outputs_follow_the_contract(demo_impact: Path) -> None:
    paths = StudyPaths(demo_impact, "demo")
    table = pd.read_csv(paths.impact_table)
    assert list(table.columns) == RESULT_COLUMNS
    assert set(table["estimator"]) == {"callaway_santanna", "gardner", "sun_abraham", "twfe", "before_after",
                                       "randomisation_space", "randomisation_time"}
    assert set(table["aggregation"]) == {"group_time", "event", "cohort", "overall"}
    summary = json.loads(paths.impact_json.read_text())
    assert summary["settings"]["anticipation"] == 1 and summary["settings"]["libraries"]["csdid"]
    assert list(summary["outcomes"]) == ["assessments_45_days", "re_referrals", "repeat_cp_plans"]
    assert summary["files"]["cin_outcomes.csv"]["rows_other_level"] > 0
    quarantine = pd.read_csv(paths.impact_quarantine)
    assert list(quarantine.columns) == ["source_file", "source_row", "column", "value", "reason"]


def test_demo_recovers_the_truth_and_estimators_agree(demo_impact: Path) -> None:
    paths = StudyPaths(demo_impact, "demo")
    summary = json.loads(paths.impact_json.read_text())
    truth = json.loads((paths.raw / "truth.json").read_text())["impact"]["outcomes"]
    for name, outcome in summary["outcomes"].items():
        cs = outcome["estimators"]["callaway_santanna"]
        true = truth[name]["overall_att"]
        assert cs["ci_low"] - 0.5 < true < cs["ci_high"] + 0.5, (name, cs, true)
        for other in ("gardner", "sun_abraham"):
            assert abs(outcome["estimators"][other]["estimate"] - cs["estimate"]) < 1.0, (name, other)
        # the naive before/after is further from the truth than CS where there is an effect (the dip)
        if abs(true) > 1:
            assert abs(outcome["estimators"]["before_after"]["estimate"] - true) > abs(cs["estimate"] - true)
    assert summary["outcomes"]["repeat_cp_plans"]["verdict"]["excludes_zero"] is False
    assert summary["outcomes"]["re_referrals"]["verdict"]["causal"] is True


def test_unknown_councils_are_quarantined_and_counted(demo_impact: Path, tmp_path: Path) -> None:
    root, path = _copy(demo_impact, tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = table[table["geographic_level"] == "Local authority"].head(2).copy()
    extra[["new_la_code", "old_la_code", "la_name"]] = ["E06009999", "", "Atlantis"]
    pd.concat([table, extra]).to_csv(path, index=False)
    stages.run("demo", ["impact"], root=root)
    paths = StudyPaths(root, "demo")
    quarantine = pd.read_csv(paths.impact_quarantine)
    assert len(quarantine) == 2 and quarantine["reason"].str.contains("not in the register").all()
    assert json.loads(paths.impact_json.read_text())["quarantined"]["rows"] == 2


def test_duplicate_council_years_stop_with_one_line(demo_impact: Path, tmp_path: Path, capsys) -> None:
    from conftest import run_cli

    root, path = _copy(demo_impact, tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    dup = table[(table["geographic_level"] == "Local authority") & (table["breakdown"] == "Total")].head(1)
    pd.concat([table, dup]).to_csv(path, index=False)
    code, errors = run_cli(["impact", "--study", "demo", "--root", str(root)], capsys)
    assert code == 3 and len(errors) == 1 and "declare a filter" in errors[0]


def test_no_treated_council_in_the_years_is_a_clear_error(demo_impact: Path, tmp_path: Path, capsys) -> None:
    from conftest import run_cli

    root, _ = _copy(demo_impact, tmp_path)
    councils = root / "data" / "raw" / "demo" / "councils.csv"
    frame = pd.read_csv(councils)
    frame["review_date"] = "2030-06-01"
    frame.to_csv(councils, index=False)
    code, errors = run_cli(["impact", "--study", "demo", "--root", str(root)], capsys)
    assert code == 3 and "no treated council" in errors[0]


def test_a_new_year_of_outcome_data_makes_only_impact_stale(demo_impact: Path, tmp_path: Path) -> None:
    root, path = _copy(demo_impact, tmp_path)
    with path.open("a", encoding="utf-8") as f:  # a changed byte stands for a new year
        f.write(pd.read_csv(path, dtype=str, keep_default_na=False).tail(1).to_csv(index=False, header=False)
                .replace("Male", "Unknown"))
    status = dict(stages.status("demo", root=root))
    assert status["impact"] and all(not status[name] for name in status if name.split(":")[0] in ("ingest", "link"))


def test_suppressed_cells_set_councils_aside_with_their_reasons(demo_impact: Path) -> None:
    summary = json.loads(StudyPaths(demo_impact, "demo").impact_json.read_text())
    outcome = summary["outcomes"]["re_referrals"]
    assert outcome["set_aside"]["incomplete_years"] > 0
    assert "confidential" in outcome["warnings"][0]
    assert np.isfinite(outcome["overall"]["estimate"])
