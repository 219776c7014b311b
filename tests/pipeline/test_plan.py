"""The checked plan, staleness flowing downstream, and each setting of study.toml rerunning exactly
the steps that read it (a table over every key of the demo's config)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import shutil
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from impactstudy import stages
from impactstudy.demo import generate
from impactstudy.pipeline.plan import PlanError, check_plan, needed, stale
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Manifest, Step
from impactstudy.study.config import parse_study

WAVES = {"ingest:baseline", "ingest:early_impact", "ingest:follow_up"}
SURVEY = WAVES | {"ingest", "link", "impact:triangulation", "model", "report"}  # what the survey's answers go through


def downstream_of(*steps: str) -> set[str]:
    """The steps and what reads their outputs, in the demo's plan (ingest:<wave> -> ingest, link -> ...)."""
    out = set(steps)
    if any(name.startswith("ingest:") for name in out):
        out |= {"ingest", "link"}
    if "ingest" in out or "link" in out:
        out |= {"model", "report"} if "link" in out else {"report"}
    if out & {"link", "impact"}:
        out.add("impact:triangulation")  # the survey's change beside the outcomes': the panel and the council effects
    if out & {"model", "impact", "impact:triangulation"}:
        out.add("report")
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[StudyPaths, dict[str, Any]]:
    """A generated demo whose every step is recorded as up to date (planning only: no step runs)."""
    root = tmp_path_factory.mktemp("plan")
    generate(root, "demo", councils=6)
    paths = StudyPaths(root.resolve(), "demo")
    for name in ("councils.csv", "wave1_baseline.sav", "cin_outcomes.csv"):  # for the edits that name another file
        shutil.copy(paths.raw / name, paths.raw / f"copy_{name}")
    data = tomllib.loads(paths.config.read_text(encoding="utf-8"))
    # a second date covariate, so the settings naming one (intervention, impact, time since review) can change
    data["councils"]["covariates"]["visit_date"] = "date"
    study = parse_study(data, "demo", paths.config)
    manifest = Manifest(paths)
    for step in stages.plan(study, paths):
        for output in step.outputs:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(b"as written by " + step.name.encode())
        manifest.record(step)
    manifest.save()
    return paths, data


def stale_after(demo: tuple[StudyPaths, dict[str, Any]], edit: Callable[[dict[str, Any]], None]) -> set[str]:
    paths, data = demo
    changed = copy.deepcopy(data)
    edit(changed)
    steps = stages.plan(parse_study(changed, "demo", paths.config), paths)
    return {step.name for step, reasons in stale(Manifest(paths), steps) if reasons}


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = key.replace("[0]", ".0").split(".")
        node = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value(node[last]) if callable(value) else value
    return edit


def _rename_wave(data: dict[str, Any]) -> None:
    data["waves"][0]["id"] = "before"
    for measure in data["measures"]:
        columns = measure.get("columns", {})
        if "baseline" in columns:
            columns["before"] = columns.pop("baseline")
    data["intervention"]["before_waves"] = ["before"]


def _rename_aim(data: dict[str, Any]) -> None:
    data["aims"][0]["id"] = "aims_first"
    for measure in data["measures"]:
        if measure.get("aim") == "before":
            measure["aim"] = "aims_first"


def _rename_coded(key: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Rename the measure the first [[coding]] section names as ``key`` (question or themes), there too."""
    def edit(data: dict[str, Any]) -> None:
        old = data["coding"][0][key]
        next(m for m in data["measures"] if m["name"] == old)["name"] = data["coding"][0][key] = new
    return edit


def _date_column_as_category(data: dict[str, Any]) -> None:
    data["councils"]["covariates"]["review_date"] = "category"  # and what must name a date follows to visit_date
    data["intervention"]["date"] = data["impact"]["treatment"] = data["models"]["time_since_intervention"]["date"] = "visit_date"


def _numeric(data: dict[str, Any]) -> None:
    data["measures"][0]["type"] = "numeric"
    del data["measures"][0]["reverse"]  # reversing is for Likert scales only


def _swap_expectation(data: dict[str, Any]) -> None:
    pair = data["expectations"][0]
    pair["expected"], pair["achieved"] = pair["achieved"], pair["expected"]


def text(old: str) -> str:
    return old + " (edited)"


def day_later(old: datetime.date) -> datetime.date:
    return old + datetime.timedelta(days=1)


# every key of the demo's study.toml (arrays of tables: their first entry) -> (the edit, the steps it reruns)
TABLE: dict[str, tuple[Callable[[dict[str, Any]], None], set[str]]] = {
    # ingest_report.json names the study's title; the combining step also writes codes.parquet, which model reads
    "title": (_set("title", text), {"ingest", "model", "report"}),
    "description": (_set("description", text), {"report"}),
    "ingest.duplicates": (_set("ingest.duplicates", "most_complete"), SURVEY),
    "intervention.name": (_set("intervention.name", "the visit"), downstream_of("link")),  # panel_long.sav labels
    "intervention.caveat": (_set("intervention.caveat", text), {"report"}),
    "intervention.before": (_set("intervention.before", text), {"report"}),
    "intervention.after": (_set("intervention.after", text), {"report"}),
    "intervention.date": (_set("intervention.date", "visit_date"), downstream_of("link")),
    "intervention.before_waves": (_set("intervention.before_waves", []), downstream_of("link")),
    "councils.file": (_set("councils.file", "copy_councils.csv"), downstream_of("link", "impact")),
    "councils.key": (_set("councils.key", "code"), downstream_of("link", "impact")),
    "councils.covariates.status": (_set("councils.covariates.status", "number"), downstream_of("link", "impact")),
    "councils.covariates.review_date": (_date_column_as_category, downstream_of("link", "impact")),
    "councils.covariates.visit_date": (_set("councils.covariates.visit_date", "category"), downstream_of("link", "impact")),
    "councils.group_by": (_set("councils.group_by", []), downstream_of("link")),  # impact does not break down by it
    "waves[0].id": (_rename_wave, downstream_of("ingest:before")),
    # a label is wording: the combined ingest report, the panel's .sav labels and the report (the panel's
    # Parquet files come out the same, so at run time the model is skipped)
    "waves[0].label": (_set("waves[0].label", text), downstream_of("ingest", "link")),
    **{f"waves[0].{key}": (_set(f"waves[0].{key}", text), downstream_of("ingest:baseline"))
       for key in ("council", "council_check", "respondent", "role", "submitted")},
    "waves[0].file": (_set("waves[0].file", "copy_wave1_baseline.sav"), downstream_of("ingest:baseline")),
    "waves[0].fieldwork_start": (_set("waves[0].fieldwork_start", day_later), downstream_of("ingest:baseline")),
    "waves[0].fieldwork_end": (_set("waves[0].fieldwork_end", day_later), downstream_of("ingest:baseline")),
    "aims[0].id": (_rename_aim, downstream_of("ingest:baseline")),  # a measure's aim travels with the data
    "aims[0].title": (_set("aims[0].title", text), {"report"}),
    "aims[0].intro": (_set("aims[0].intro", text), {"report"}),
    "measures[0].name": (_set("measures[0].name", "eff_lead"), SURVEY),
    "measures[0].label": (_set("measures[0].label", text), SURVEY),
    "measures[0].type": (_numeric, SURVEY),
    "measures[0].aim": (_set("measures[0].aim", "early"), SURVEY),
    "measures[0].levels": (_set("measures[0].levels", [0, 1, 2, 3, 4]), SURVEY),
    "measures[0].labels": (_set("measures[0].labels", lambda old: [text(old[0]), *old[1:]]), SURVEY),
    "measures[0].missing.8": (_set("measures[0].missing.8", "Unsure"), SURVEY),
    "measures[0].missing.9": (_set("measures[0].missing.9", "Not asked"), SURVEY),
    "measures[0].columns.baseline": (_set("measures[0].columns.baseline", "q1_1b"), downstream_of("ingest:baseline")),
    "measures[0].columns.early_impact": (_set("measures[0].columns.early_impact", text), downstream_of("ingest:early_impact")),
    "measures[0].columns.follow_up": (_set("measures[0].columns.follow_up", "q4_1b"), downstream_of("ingest:follow_up")),
    "measures[0].reverse": (_set("measures[0].reverse", []), downstream_of("ingest:follow_up")),
    # not in the demo's config (NOT_IN_DEMO): whether a measure is analysed decides its models and findings only
    "measures[0].analyse": (_set("measures[0].analyse", False), {"model", "report"}),
    # the first [[coding]] section codes the baseline's free text: its codes come in with that wave
    "coding[0].question": (_rename_coded("question", "hopes_text"), downstream_of("ingest:baseline")),
    "coding[0].themes": (_rename_coded("themes", "hope_themes"), downstream_of("ingest:baseline")),
    "coding[0].files": (_set("coding[0].files", ["coding/coding_AB.xlsx"]), downstream_of("ingest:baseline")),
    "coding[0].consent": (_set("coding[0].consent", "improvement_plan"), downstream_of("ingest:baseline")),
    "models.few_councils": (_set("models.few_councils", 21), {"model", "report"}),
    "models.flag_councils": (_set("models.flag_councils", 11), {"model", "report"}),  # the report's caveat reads it too
    "models.time_since_intervention.date": (_set("models.time_since_intervention.date", "visit_date"), downstream_of("link")),
    "models.time_since_intervention.knots": (_set("models.time_since_intervention.knots", [9]), {"model", "report"}),
    "report.min_cell": (_set("report.min_cell", 6), {"report"}),
    "expectations[0].expected": (_swap_expectation, {"model", "report"}),
    "expectations[0].achieved": (_swap_expectation, {"model", "report"}),
    **{f"impact.{key}": (_set(f"impact.{key}", value), downstream_of("impact")) for key, value in (
        ("treatment", "visit_date"), ("comparison", "never_treated"), ("anticipation", 0), ("window", [-3, 3]),
        ("bootstrap", 499), ("permutations", 499))},
    **{f"impact.files[0].{key}": (_set(f"impact.files[0].{key}", value), downstream_of("impact")) for key, value in (
        ("file", "copy_cin_outcomes.csv"), ("layout", "plain"), ("year_end", "08-31"), ("filters.breakdown", "All"))},
    **{f"impact.files[0].outcomes[0].{key}": (_set(f"impact.files[0].outcomes[0].{key}", value), downstream_of("impact"))
       for key, value in (("name", "rereferrals"), ("label", "Re-referrals (%)"), ("column", "rereferral_rate"),
                          ("better", "higher"), ("units", "per cent"), ("survey", "eff_voice"))},
}


NOT_IN_DEMO = {"measures[0].analyse"}  # keys the demo's config leaves at their defaults, set by the edit


def _keys(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _keys(v, f"{prefix}.{key}" if prefix else key)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _keys(value[0], f"{prefix}[0]")
    return [prefix]


def test_the_table_covers_every_key_of_the_demo_config(demo):
    _, data = demo
    keys = set(_keys(data))
    assert not keys - set(TABLE), f"add a row to TABLE for each new key of the demo's config: {sorted(keys - set(TABLE))}"
    assert not set(TABLE) - keys - NOT_IN_DEMO, f"keys no longer in the demo's config: {sorted(set(TABLE) - keys)}"
    assert not NOT_IN_DEMO & keys, f"now in the demo's config: {sorted(NOT_IN_DEMO & keys)}"


@pytest.mark.parametrize("key", sorted(TABLE))
def test_each_setting_reruns_exactly_the_steps_that_read_it(demo, key):
    edit, expected = TABLE[key]
    assert stale_after(demo, edit) == expected


def test_nothing_is_stale_unedited(demo):
    assert stale_after(demo, lambda data: None) == set()


# ------------------------------------------------------------------------------ the plan, checked


def _plan(demo) -> tuple[StudyPaths, list[Step]]:
    paths, data = demo
    return paths, stages.plan(parse_study(data, "demo", paths.config), paths)


def _replace(steps: list[Step], name: str, **changes: Any) -> list[Step]:
    return [dataclasses.replace(s, **changes) if s.name == name else s for s in steps]


def test_a_moved_output_is_one_line_at_plan_time(demo):
    paths, steps = _plan(demo)
    model = next(s for s in steps if s.name == "model")
    moved = tuple(paths.tables / "model" / p.name if p.name == "contrasts.csv" else p for p in model.outputs)
    with pytest.raises(PlanError) as err:
        check_plan(_replace(steps, "model", outputs=moved), paths)
    assert str(err.value) == ("report reads data/processed/demo/tables/contrasts.csv, but no step writes it and it is not "
                              "a raw file: declare the file where the step that writes it puts it (pipeline/paths.py) "
                              "and read it from there")


def test_one_producer_per_output_inputs_made_earlier_and_nothing_written_into_raw(demo):
    paths, steps = _plan(demo)
    link = next(s for s in steps if s.name == "link")
    with pytest.raises(PlanError, match="^model and link both write data/processed/demo/panel_long.parquet"):
        check_plan(_replace(steps, "model", outputs=(paths.panel_long,)), paths)
    with pytest.raises(PlanError, match="^ingest:baseline reads data/processed/demo/panel_long.parquet, but is written by "
                                        "link, which runs after it"):
        check_plan(_replace(steps, "ingest:baseline", inputs=(paths.panel_long,)), paths)
    with pytest.raises(PlanError, match="^link would write data/raw/demo/x.csv into the raw folder"):
        check_plan(_replace(steps, "link", outputs=(*link.outputs, paths.raw / "x.csv")), paths)
    with pytest.raises(PlanError, match="two steps are named 'link'"):
        check_plan([*steps, dataclasses.replace(link, inputs=(), outputs=())], paths)
    check_plan(steps, paths)


def test_until_a_stage_plans_it_and_what_it_reads_from(demo):
    _, steps = _plan(demo)
    assert {s.stage for s in needed(steps, ["model"])} == {"ingest", "link", "model"}  # not impact
    assert {s.stage for s in needed(steps, ["impact"])} == {"ingest", "link", "impact"}  # triangulation reads the panel
    assert {s.stage for s in needed(steps, ["report"])} == set(stages.STAGES)


def test_status_names_the_upstream_step_and_the_changed_key(demo):
    paths, data = demo
    changed = copy.deepcopy(data)
    changed["waves"][0]["label"] = "Before"
    steps = stages.plan(parse_study(changed, "demo", paths.config), paths)
    reasons = {step.name: r for step, r in stale(Manifest(paths), steps)}
    assert reasons["ingest:baseline"] == []  # the wave is not read again for a new label
    assert reasons["ingest"] == ["study.toml changed: waves.label"]
    assert reasons["link"] == ["study.toml changed: waves"]
    # codes.parquet: the demo codes its free text
    assert reasons["model"] == ["reads what ingest and link write, which will rerun"]
    assert reasons["report"] == ["study.toml changed: waves.label",
                                 "reads what ingest, link, impact:triangulation and 1 more write, which will rerun"]
    assert reasons["impact"] == [] and reasons["ingest:follow_up"] == []


def test_the_model_declaration_names_the_tables_the_model_writes():
    from impactstudy.model import describe
    from impactstudy.model.steps import DESCRIPTIVE_TABLES

    assert describe.TABLES == DESCRIPTIVE_TABLES
