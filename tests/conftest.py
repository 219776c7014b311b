"""Shared fixtures: small studies written by the tests themselves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

MINI_TOML = """
title = "Mini study"

[[waves]]
id = "w1"
label = "Wave one"
file = "w1.sav"
fieldwork_end = 2014-03-31
council = "la"
respondent = "rid"
role = "role"
submitted = "when"

[[waves]]
id = "w2"
label = "Wave two"
file = "w2.csv"
fieldwork_end = 2015-03-31
council = "Council"
respondent = "ID"
role = "Role"

[[measures]]
name = "eff"
label = "Effectiveness"
type = "likert"
levels = [1, 2, 3, 4, 5]
labels = ["Very poor", "Poor", "Neither", "Good", "Very good"]
missing = { 8 = "Don't know", 9 = "Not applicable", "Can't say" = "Don't know" }
columns = { w1 = "q1", w2 = "Q1 effectiveness" }
reverse = ["w2"]

[[measures]]
name = "plan"
label = "Has a plan"
type = "binary"
columns = { w1 = "q2", w2 = "Q2 plan" }

[[measures]]
name = "pct"
label = "Percent"
type = "numeric"
min = 0
max = 100
columns = { w1 = "q3" }

[[measures]]
name = "note"
label = "Comment"
type = "text"
columns = { w2 = "Comment" }

[[measures]]
name = "email"
label = "E-mail"
type = "text"
pii = true
columns = { w1 = "email" }
"""


def write_mini_study(root: Path) -> Path:
    """A two-wave study: an SPSS wave with labels and user-missing codes, and a CSV wave with text answers."""
    (root / "pipelines" / "mini").mkdir(parents=True)
    (root / "pipelines" / "mini" / "study.toml").write_text(textwrap.dedent(MINI_TOML), encoding="utf-8")
    raw = root / "data" / "raw" / "mini"
    raw.mkdir(parents=True)
    w1 = pd.DataFrame(
        {
            "la": ["E06000001", "E06000002", "E06000002", "", "E08000003"],
            "rid": ["A", "B", "B", "C", "D"],
            "role": [1.0, 2.0, 2.0, 1.0, 1.0],
            "when": pd.to_datetime(["2014-01-01", "2014-01-02", "2014-02-02", "2014-01-03", "2014-01-04"]),
            "q1": [4.0, 8.0, 5.0, 2.0, 6.0],
            "q2": [1.0, 0.0, 1.0, np.nan, 1.0],
            "q3": [50.0, 101.0, 20.0, 0.0, np.nan],
            "email": ["a@x.org", "b@x.org", "b@x.org", "c@x.org", "d@x.org"],
        }
    )
    pyreadstat.write_sav(
        w1,
        str(raw / "w1.sav"),
        column_labels={"q1": "How effective", "q2": "Plan?", "q3": "Percent"},
        variable_value_labels={
            "q1": {1: "Very poor", 2: "Poor", 3: "Neither", 4: "Good", 5: "Very good", 8: "Don't know", 9: "N/A"},
            "role": {1: "Strategic lead", 2: "Frontline manager"},
        },
        missing_ranges={"q1": [8, 9]},
    )
    w2 = pd.DataFrame(
        {
            "Council": ["Hartlepool", "Middlesbrough", "Manchester"],
            "ID": ["A", "B", "E"],
            "Role": ["Strategic lead", "Frontline manager", "Partner"],
            "Q1 effectiveness": ["Very good", "Can't say", "banana"],
            "Q2 plan": ["Yes", "No", ""],
            "Comment": ["<b>bold</b> & \"quoted\"", "", "Très bien"],
        }
    )
    (raw / "w2.csv").write_bytes(w2.to_csv(index=False).encode("utf-8-sig"))
    return root


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The 40-council demo study, generated and taken through ingest and link once per session."""
    from impactstudy import stages
    from impactstudy.demo import generate

    root = tmp_path_factory.mktemp("demo")
    generate(root, "demo")
    stages.run("demo", ["link"], root=root)
    return root


# ------------------------------------------------------------------ hardening helpers (bad input, faults)


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Run the CLI in-process; return its exit code and its `impactstudy: error:` lines.

    Fails the test if stderr shows a traceback: a user's mistake must end in one line.
    """
    from impactstudy.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if line.startswith("impactstudy: error:")]


def assert_outputs_complete(root: Path) -> None:
    """Every file under data/processed and reports parses, and no temporary file is left behind."""
    import json

    for base in (root / "data" / "processed", root / "reports"):
        if not base.exists():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            name = path.name
            assert not name.endswith(".tmp"), f"temporary file left behind: {path}"
            if name.endswith(".parquet"):
                pd.read_parquet(path)
            elif name.endswith(".json"):
                json.loads(path.read_text(encoding="utf-8"))
            elif name.endswith(".csv"):
                pd.read_csv(path, keep_default_na=False)
            elif name.endswith(".sav"):
                pyreadstat.read_sav(str(path))
            elif name.endswith((".html", ".svg")):
                assert path.read_text(encoding="utf-8").rstrip().endswith(">"), f"truncated markup: {path}"
