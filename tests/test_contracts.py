"""The data contracts (docs/data-contracts.md) hold: every CSV the page lists with its columns in one
backticked list has exactly those columns, in that order; the Parquet panels, the JSON reports and the
bundles have what the page promises. A small study is run through every stage once for the module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from impactstudy import stages
from impactstudy.pipeline.paths import StudyPaths

from conftest import write_mini_study

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contracts.md"
# a table row: | `file` | one row per | `col, col, col` ... |
# (a column may carry its values in brackets: `method (code|exact|alias|fuzzy|unmatched)`)
# (and may go on "then the columns of `other.csv`")
ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| [^|]* \| `(?P<columns>[a-z_]+(?: \([^)`]*\))?(?:, [a-z_]+(?: \([^)`]*\))?)+)`"
                 r"(?: then the columns of `(?P<then>[^`]+)`)?", re.M)


def documented_csv_columns() -> dict[str, list[str]]:
    """File name (as the page writes it) -> its columns, for every row giving them as one backticked list."""
    rows = list(ROW.finditer(DOC.read_text(encoding="utf-8")))
    listed = {m["file"]: [re.sub(r" \(.*\)$", "", c) for c in m["columns"].split(", ")] for m in rows}
    return {m["file"]: listed[m["file"]] + [c for c in (listed[m["then"]] if m["then"] else []) if c not in listed[m["file"]]]
            for m in rows}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> StudyPaths:
    root = write_mini_study(tmp_path_factory.mktemp("contracts"))
    stages.run("mini", None, root=root)
    return StudyPaths(root.resolve(), "mini")


def _find(paths: StudyPaths, name: str) -> Path | None:
    for folder in (paths.processed, paths.processed / "tables", paths.processed / "waves"):
        if (folder / name).is_file():
            return folder / name
    return None


def test_the_page_lists_the_csv_contracts():
    documented = documented_csv_columns()
    assert {"quarantine.csv", "linkage.csv", "contrasts.csv", "estimates.csv", "attrition.csv", "icc.csv"} <= set(documented)


def test_every_documented_csv_has_exactly_its_columns(run):
    checked = []
    for name, columns in documented_csv_columns().items():
        path = _find(run, name)
        if path is None:  # written only by some studies (impact.csv needs [impact])
            continue
        header = list(pd.read_csv(path, nrows=0).columns)
        assert header == columns, f"{name}: the file has {header}, docs/data-contracts.md says {columns}"
        checked.append(name)
    assert len(checked) >= 12, checked


def test_panels_waves_and_reports_hold_what_the_page_promises(run):
    text = DOC.read_text(encoding="utf-8")
    long = pq.read_schema(run.panel_long).names
    promised = ["council_code", "council_name", "wave", "wave_order", "respondent_id", "role", "measure", "value",
                "value_label", "missing_reason", "authority_type", "region", "months_since_intervention", "source_row"]
    assert [c for c in long if c in promised] == promised and all(f"`{c}`" in text for c in promised)
    wide = pq.read_schema(run.panel_wide).names
    assert wide[:3] == ["council_code", "respondent_id", "council_name"] and "waves_present" in wide
    assert any(re.fullmatch(r"eff__w[12]", c) for c in wide)
    wave = pq.read_schema(run.wave_file("w1")).names
    assert wave[:3] == ["wave", "source_row", "council_raw"] and "eff__missing" in wave and "email" not in wave
    ingest = json.loads(run.ingest_report.read_text())["waves"][0]
    for key in ("rows_read", "rows_accepted", "rows_quarantined", "values_quarantined", "rows_set_aside_by_reason",
                "values_set_aside_by_reason", "answers_not_declared"):
        assert key in ingest and f"`{key}`" in text, key
    summary = json.loads(run.linkage_summary.read_text())
    for key in ("rows_by_method", "rows_quarantined", "rows_linked", "councils_per_wave", "respondents_per_wave",
                "participation", "participation_counts", "sample_vs_register", "covariate_notes", "unmatched_councils",
                "reorganised", "warnings"):
        assert key in summary and f"`{key}`" in text, key
    models = json.loads((run.processed / "models.json").read_text())
    assert {"settings", "fits"} <= set(models)
    for audience in ("public", "internal"):
        bundle = run.bundle(audience)
        for name in ("index.html", "report.json", "report.docx", "tables.xlsx"):
            assert (bundle / name).is_file(), (audience, name)
        assert any((bundle / "figures").glob("*.svg")) and any((bundle / "tables").glob("*.csv"))
    assert (run.bundle("internal") / "councils" / "index.html").is_file()
    assert not (run.bundle("public") / "councils").exists()
