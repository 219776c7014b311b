"""Per-stage code versions: a step hashes its own stage package and the modules it really imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from impactstudy import stages
from impactstudy.demo import generate
from impactstudy.pipeline.code import PACKAGE_DIR, code_files, code_hashes, code_modules

from conftest import write_mini_study

STAGE_CODE = {stage: (f"impactstudy.{stage}",) for stage in stages.STAGES}
RUN_STAGE = """
import json, sys
from impactstudy import stages
study, paths = stages.open_study({study!r}, {root!r})
steps = [step for step in stages.plan(study, paths) if step.stage == {stage!r}]
before = set(sys.modules)
for step in steps:
    step.run()
ours = sorted(m for m in sys.modules if m == "impactstudy" or m.startswith("impactstudy."))
print(json.dumps({{"loaded": ours, "by_planning": sorted(before.intersection(ours)), "code": [list(s.code) for s in steps]}}))
"""


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """The mini study run through the report (for ingest, link, model, report) and a six-council demo
    linked (for impact and its triangulation), with fewer bootstrap draws so it runs in seconds."""
    mini = tmp_path_factory.mktemp("mini")
    write_mini_study(mini)
    stages.run("mini", None, root=mini)
    demo = tmp_path_factory.mktemp("demo")
    generate(demo, "demo", councils=6)
    config = demo / "pipelines" / "demo" / "study.toml"
    config.write_text(config.read_text().replace("bootstrap = 999", "bootstrap = 99").replace("permutations = 999", "permutations = 19"))
    stages.run("demo", ["link"], root=demo)  # the triangulation step reads the linked panel
    return {stage: ("demo", demo) if stage == "impact" else ("mini", mini) for stage in stages.STAGES}


def _relative(paths: list[Path]) -> set[str]:
    return {p.relative_to(PACKAGE_DIR).as_posix() for p in paths}


@pytest.mark.parametrize("stage", stages.STAGES)
def test_the_derived_module_list_is_what_running_the_stage_loads(studies, stage):
    study, root = studies[stage]
    done = subprocess.run([sys.executable, "-c", RUN_STAGE.format(study=study, root=str(root), stage=stage)],
                          capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert {tuple(code) for code in seen["code"]} == {STAGE_CODE[stage]}  # every step of the stage names its package
    package = f"impactstudy.{stage}"
    derived = set(code_modules(STAGE_CODE[stage]))
    outside = {m for m in seen["loaded"] if m != package and not m.startswith(package + ".")}
    # everything the stage's code loaded beyond what planning had loaded is hashed ...
    assert outside - set(seen["by_planning"]) <= derived
    # ... and everything hashed is loaded by running the stage: the list is derived, not "the whole package"
    assert derived <= outside
    assert not any(m.startswith(f"impactstudy.{other}") for m in derived for other in stages.STAGES), derived


def test_a_template_change_touches_the_report_alone_and_a_reader_change_what_reads_raw_files():
    files = {stage: _relative(code_files(code)) for stage, code in STAGE_CODE.items()}
    assert {s for s, f in files.items() if "report/templates/report.css" in f} == {"report"}
    assert {s for s, f in files.items() if "pipeline/readers.py" in f} == {"ingest", "link", "impact"}
    # the register's data: link and impact resolve councils with it, the report redacts its names and aliases
    # from published quotes, so a new alias must rerun the report too
    assert {s for s, f in files.items() if "councils/councils.csv" in f} == {"link", "impact", "report"}
    assert {s for s, f in files.items() if "study/config.py" in f} == set(stages.STAGES)
    assert not any("pipeline/steps.py" in f for f in files.values())  # the runner reruns nothing
    assert all(f"{s}/steps.py" in f for s, f in files.items())  # the declaration itself is hashed
    hashes = code_hashes(STAGE_CODE["report"])
    assert hashes["version"] and set(hashes) - {"version"} == files["report"]
