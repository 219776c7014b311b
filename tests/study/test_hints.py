"""The one "did you mean" helper (study/hints.py), and that every hint in the package goes through it."""

from __future__ import annotations

import ast
from pathlib import Path

import impactstudy
from impactstudy.study.hints import closest, did_you_mean


def test_closest_names_best_first_within_the_cutoff():
    choices = ["status", "stratum", "region", "review_date"]
    assert closest("staus", choices) == ["status", "stratum"]
    assert closest("staus", choices, n=1) == ["status"]
    assert closest("staus", choices, cutoff=0.95) == [] and closest("staus", choices, cutoff=0.9) == ["status"]
    assert closest("2019", [2019, 2020], n=1) == ["2019"]  # non-text choices (a file's column headers) as text


def test_did_you_mean_wording_is_the_callers():
    assert did_you_mean("staus", ["status", "stratum"]) == " (did you mean 'status', 'stratum'?)"
    assert did_you_mean("staus", ["status"], n=1, wording="; closest: {}") == "; closest: 'status'"
    assert did_you_mean("zzz", ["status"]) == ""


def test_no_other_module_calls_difflib():
    """A second variant of the hint would drift in count, cutoff and wording: only study/hints.py uses difflib."""
    root = Path(impactstudy.__file__).parent
    users = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] \
                if isinstance(node, ast.ImportFrom) else []
            if "difflib" in names:
                users.append(path.relative_to(root).as_posix())
    assert users == ["study/hints.py"]
