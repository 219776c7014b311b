"""Any study, not only the demo: no programme's wording in code, councils without a covariate kept."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

import impactstudy
from impactstudy.report import summaries
from impactstudy.study.config import parse_study

PACKAGE = Path(impactstudy.__file__).parent
DEMO_WORDING = re.compile(r"ofsted|peer review|safeguarding|self-rated effectiveness|a year on|before the review", re.I)


def test_no_demo_wording_outside_the_demo():
    """Everything the report says about a programme comes from the study's config (the demo's from
    demo_study.toml); the generated studies of tests/fuzz check the rendered reports."""
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*")) if path.is_file() and "demo" not in path.relative_to(PACKAGE).parts
             and path.suffix in (".py", ".toml", ".j2", ".html", ".css", ".csv")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if DEMO_WORDING.search(line)]
    assert not found, "\n".join(found)


def test_a_study_that_declares_no_wording_gets_neutral_defaults():
    study = parse_study({"waves": [{"id": "a", "file": "a.csv", "council": "c"}],
                         "measures": [{"name": "m", "type": "numeric", "columns": {"a": "m"}}]}, "s", Path("s.toml"))
    assert study.intervention.name == "the intervention"
    assert study.intervention.caveat_text == (
        "These are changes over time in what councils reported, not proof that the intervention caused them. "
        "Without a comparison group of councils that did not take part, the change cannot be separated from "
        "anything else that changed over the same period.")


def test_councils_without_a_group_covariate_are_a_group_of_their_own():
    study = parse_study({"waves": [{"id": "a", "file": "a.csv", "council": "c"}, {"id": "b", "file": "b.csv", "council": "c"}],
                         "measures": [{"name": "m", "type": "numeric", "columns": {"a": "m", "b": "m"}}]}, "s", Path("s.toml"))
    panel = pd.DataFrame({"council_code": ["X", "X", "Y", "Y", "Z", "Z"], "measure": "m", "wave": ["a", "b"] * 3,
                          "value": [1.0, 2.0, 3.0, 5.0, 4.0, 4.0],
                          "band": pd.array(["N", "N", None, None, np.nan, np.nan], dtype="object")})
    traj = summaries.trajectories(panel, study, ["m"], ["band"])
    got = traj.set_index(["group", "wave"])["mean"].to_dict()
    assert got == {("all", "a"): 8 / 3, ("all", "b"): 11 / 3, ("band=N", "a"): 1.0, ("band=N", "b"): 2.0,
                   ("band=not recorded", "a"): 3.5, ("band=not recorded", "b"): 4.5}
    assert [g for g, _ in summaries.groups(panel, ["band"])] == ["all", "band=N", "band=not recorded"]
