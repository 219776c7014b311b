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
from impactstudy.impact.triangulation import COUNCIL_COLUMNS, TRIANGULATION_COLUMNS
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
                                       "randomisation_space", "randomisation_time", "honestdid_rm"}
    assert set(table["aggregation"]) == {"group_time", "event", "cohort", "overall", "sensitivity", "breakdown"}
    summary = json.loads(paths.impact_json.read_text())
    # the HonestDiD rows: one per M̄ and one at the breakdown value, the only rows with an mbar
    sens = table[table["estimator"] == "honestdid_rm"]
    assert table.loc[table["estimator"] != "honestdid_rm", "mbar"].isna().all()
    for name, outcome in summary["outcomes"].items():
        rows = sens[sens["outcome"] == name].set_index("aggregation")
        assert rows.loc["sensitivity", "mbar"].tolist() == outcome["sensitivity"]["mbar"]
        assert rows.loc["sensitivity", "ci_low"].tolist() == pytest.approx(outcome["sensitivity"]["lower"])
        if outcome["sensitivity"]["breakdown"] is not None:
            assert rows.loc["breakdown", "mbar"] == outcome["sensitivity"]["breakdown"]
        assert "conditional–least-favourable" in outcome["sensitivity"]["method"]
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


def test_an_outcome_file_of_unknown_councils_only_stops_with_one_line(demo_impact: Path, tmp_path: Path,
                                                                     capsys) -> None:
    from conftest import run_cli

    root, path = _copy(demo_impact, tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table = table[table["geographic_level"] == "Local authority"].head(3)
    table[["new_la_code", "old_la_code", "la_name"]] = ["E06009999", "", "Atlantis"]
    table.to_csv(path, index=False)
    code, errors = run_cli(["impact", "--study", "demo", "--root", str(root)], capsys)
    assert code == 3 and len(errors) == 1
    assert "cin_outcomes.csv: every one of the 3 rows was set aside (3 " in errors[0] and "aliases" in errors[0]


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


def test_triangulation_sets_the_survey_beside_each_councils_own_effect(demo_impact: Path) -> None:
    paths = StudyPaths(demo_impact, "demo")
    councils = pd.read_csv(paths.impact_councils)
    assert list(councils.columns) == COUNCIL_COLUMNS
    summary = json.loads(paths.impact_json.read_text())
    for name, outcome in summary["outcomes"].items():
        mine = councils[councils["outcome"] == name]
        assert len(mine) == outcome["n_treated"]
        # equal council weights make the unconditional overall ATT (the demo declares no covariates)
        assert mine["estimate"].mean() == pytest.approx(outcome["overall"]["estimate"], abs=1e-6)
    tri = pd.read_csv(paths.impact_triangulation, keep_default_na=False, na_values=[""])
    assert list(tri.columns) == TRIANGULATION_COLUMNS
    assert tri[["outcome", "measure", "earlier_wave", "later_wave"]].values.tolist() == [
        ["re_referrals", "eff_practice", "baseline", "follow_up"],
        ["assessments_45_days", "eff_performance", "baseline", "follow_up"]]
    # councils answering at both waves, of the treated ones; improvement signed by the outcome's direction
    assert (tri["n_councils"] <= summary["outcomes"]["re_referrals"]["n_treated"]).all() and (tri["n_councils"] > 20).all()
    assert (tri["admin_improvement"] > 0).all() and (tri["survey_change"] > 0).all()
    assert ((tri["correlation_ci_low"] < tri["correlation"]) & (tri["correlation"] < tri["correlation_ci_high"])).all()
    truth = json.loads((paths.raw / "truth.json").read_text())["impact"]["triangulation"]["correlation"]
    assert ((tri["correlation_ci_low"] < truth) & (truth < tri["correlation_ci_high"])).all()


def test_a_new_survey_wave_reruns_the_triangulation_not_the_estimation(demo_impact: Path, tmp_path: Path) -> None:
    root, _ = _copy(demo_impact, tmp_path)
    paths = StudyPaths(root, "demo")
    long = pd.read_parquet(paths.panel_long)
    long.loc[long["measure"] == "eff_practice", "value"] = long["value"] + 0.0  # same answers, new bytes:
    long.iloc[::-1].to_parquet(paths.panel_long)  # rows in another order stand for a changed panel
    status = dict(stages.status("demo", root=root))
    assert status["impact:triangulation"] and not status["impact"]


def test_outcomes_in_worker_processes_match_one_process() -> None:
    """From MIN_PARALLEL outcomes on the analyses run in forkserver workers: the same rows, in order; the
    console's progress counts the outcomes either way (plain lines: this is no terminal)."""
    import io

    from impactstudy.impact.stage import MIN_PARALLEL, _run_all, worker_pool
    from impactstudy.pipeline import progress
    from impactstudy.study.config import ImpactSettings
    from impact_panels import make_panel

    panels = [make_panel(seed=s, n=30, n_treated=9) for s in range(MIN_PARALLEL)]
    panels = [type(p)(f"outcome_{i}", p.frame, p.years) for i, p in enumerate(panels)]
    settings = ImpactSettings(files=(), treatment="review_date", bootstrap=99, permutations=99)
    shown = io.StringIO()
    progress.enable(shown)
    try:
        with progress.progress("impact", "outcomes") as bar:
            here = _run_all(panels, settings, None, bar)
        with worker_pool(len(panels), 2) as pool, progress.progress("impact", "outcomes") as bar:
            assert pool is not None
            there = _run_all(panels, settings, pool, bar)
    finally:
        progress.disable()
    lines = shown.getvalue().splitlines()
    assert [line for line in lines if "done (" in line] == [
        f"impact: {n} outcomes done ({MIN_PARALLEL} started so far)" for n in (1, 2, 3)] * 2
    assert sum(line.startswith(f"impact: {MIN_PARALLEL} outcomes done in ") for line in lines) == 2
    for (a, sa, ca), (b, sb, cb) in zip(here, there, strict=True):
        pd.testing.assert_frame_equal(a, b, rtol=1e-9)
        assert sa["overall"] == pytest.approx(sb["overall"], rel=1e-9)
        pd.testing.assert_frame_equal(ca, cb, rtol=1e-9)
        assert len(ca) == 9  # every treated council's own effect, computed in the worker
    with worker_pool(MIN_PARALLEL - 1, 2) as pool:
        assert pool is None


def test_the_report_words_the_triangulation_as_association_only(demo_impact: Path) -> None:
    from types import SimpleNamespace

    from impactstudy.report.sections.impact import triangulation
    from impactstudy.study.config import load_study

    paths = StudyPaths(demo_impact, "demo")
    study = load_study(paths.config, "demo")
    tri = pd.read_csv(paths.impact_triangulation)
    sentences, shown = triangulation(SimpleNamespace(study=study, inputs=SimpleNamespace(impact_triangulation=tri)))
    assert list(shown["Outcome"]) == ["Re-referrals within 12 months (%)",
                                      "Assessments completed within 45 working days (%)"]
    assert shown["Survey measure"].str.contains("from “Before the review” to “Longer-term follow-up").all()
    assert sentences[0].startswith("Re-referrals within 12 months (%), beside effectiveness: quality of frontline "
                                   "practice (change from “Before the review”")
    assert f"in the {int(tri['n_councils'][0])} treated councils with both: no clear association" in sentences[0]
    assert "does not show what caused" in sentences[-1]
    assert not any(word in " ".join(sentences) for word in ("caused by", "effect of the review"))
    empty = SimpleNamespace(study=study, inputs=SimpleNamespace(impact_triangulation=pd.DataFrame()))
    assert triangulation(empty) is None


def test_a_treated_councils_page_shows_its_own_effect_with_interval_and_caution(demo_impact: Path, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from impactstudy.pipeline.panel import read_long
    from impactstudy.report.council_pages import council_facts, write_council_pages
    from impactstudy.study.config import load_study

    paths = StudyPaths(demo_impact, "demo")
    study = load_study(paths.config, "demo")
    effects = pd.read_csv(paths.impact_councils, dtype={"council_code": str})
    summary = json.loads(paths.impact_json.read_text())
    # every own effect has a placebo interval around it (the demo has 100+ never-reviewed councils)
    assert (effects["n_placebo"] >= 100).all()
    assert ((effects["ci_low"] < effects["estimate"]) & (effects["estimate"] < effects["ci_high"])).all()
    inputs = SimpleNamespace(panel=read_long(paths.panel_long), impact_councils=effects, impact_summary=summary)
    facts = {f.code: f for f in council_facts(study, inputs)}
    treated = sorted(set(effects["council_code"]) & set(facts))
    assert len(treated) > 20
    untreated = next(code for code in facts if code not in set(effects["council_code"]))
    code = treated[0]
    page = facts[code]
    mine = effects[effects["council_code"] == code].set_index("outcome")
    assert [r["label"] for r in page.impact] == [summary["outcomes"][o.name]["label"] for o in study.impact.outcomes
                                                 if o.name in mine.index]
    first = page.impact[0]
    name = study.impact.outcomes[0].name
    assert first["estimate"] == pytest.approx(mine.loc[name, "estimate"])
    assert (first["ci_low"], first["ci_high"]) == pytest.approx((mine.loc[name, "ci_low"], mine.loc[name, "ci_high"]))
    assert first["overall"] == pytest.approx(summary["outcomes"][name]["overall"]["estimate"])
    assert facts[untreated].impact == ()
    write_council_pages(study, [page, facts[untreated]], [], {}, "", tmp_path)
    html = (tmp_path / f"{code}.html").read_text(encoding="utf-8")
    assert "This council&#39;s own effect on the administrative outcomes" in html or \
        "This council's own effect on the administrative outcomes" in html
    assert "It is not the overall effect" in html and "placebo councils" in html
    low = f"{mine.loc[name, 'ci_low']:.2f}".replace("-", "\u2212")
    assert low in html
    assert "own effect on the administrative outcomes" not in (tmp_path / f"{untreated}.html").read_text(encoding="utf-8")
