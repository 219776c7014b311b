"""The study fuzzer: hypothesis generates whole studies (:mod:`studygen`) and every stage runs on them.

Properties, for every generated study: ``validate`` finds no problem and lists exactly the rows and
answers the run then sets aside; no stage raises (a generated study is valid, so not even a
:class:`~impactstudy.errors.UserError`); every raw row is accepted or quarantined at ingest, and every
accepted row is in the panel or in the link quarantine; the data contracts' columns hold; the report
renders and says nothing about the demo's programme.

``make test`` runs the two fixed rich studies and a few drawn ones (``FUZZ_EXAMPLES``, default 2,
seeded so the suite is deterministic);
``make fuzz`` runs it longer and randomly: ``FUZZ_MINUTES=30`` stops drawing studies after that many
minutes, and ``FUZZ_LOG=<file>`` records each failing study (its spec and traceback) in that file and
goes on, so one long run lists every distinct failure instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
import traceback
from dataclasses import replace
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings

from impactstudy import stages
from impactstudy.pipeline.frames import QUARANTINE_COLUMNS
from impactstudy.validate import set_aside_preview, validate_study

from studygen import DEMO_WORDS, Spec, specs, write_study

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
LOG = os.environ.get("FUZZ_LOG")
DEADLINE = time.monotonic() + 60 * float(os.environ.get("FUZZ_MINUTES", "0")) if os.environ.get("FUZZ_MINUTES") else None
LONG = os.environ.get("FUZZ_MINUTES") is not None
RAN = [0, 0]  # studies run, studies failing (a long run reports them when its time is spent)
MAX_COUNCILS = 60 if LONG else 12  # the bounded run keeps the model stage quick

PANEL_LONG = ["council_code", "council_name", "wave", "wave_order", "respondent_id", "role", "measure", "value",
              "value_label", "missing_reason", "authority_type", "region"]
LINKAGE = ["wave", "council_raw", "council_code", "council_name", "method", "score", "note", "n_rows"]
CONTRASTS = ["measure", "model", "contrast", "group", "estimate", "std_error", "ci_low", "ci_high", "p_value", "q_value",
             "n_obs", "n_councils"]


# always run: every format and identifier style, a reorganised council, a councils file with absent
# councils and blank cells, a 7-point and a 4-point scale as labels, reversed, every measure type
RICH = Spec(seed=7, start_year=2018, formats=("csv", "sav", "xlsx", "dta"), id_styles=("name", "gss", "dfe", "name"),
            n_councils=8, reorganised=True, councils_file=True, absent=0.1, blank=0.1, respondent_ids=True, roles=True,
            scales=(7, 4), text_labels=True, missing_code=-9, reverse=True, multi=2, numeric=True, binary=True,
            keys_at_end=False, successor=False)
RICH_AT_END = replace(RICH, seed=8, keys_at_end=True, successor=True)  # keyed at the last round, mergers followed


def check_study(root: Path, spec: Spec) -> None:
    """Run every stage on the study ``spec`` describes and check the properties."""
    rows = write_study(root, "gen", spec)
    study, paths = stages.open_study("gen", root)
    assert validate_study(study, paths) == []
    preview = [line for line in set_aside_preview(study, paths) if re.match(r"  round\d+ (row|case) ", line)]
    stages.run("gen", None, root=root)
    processed = root / "data" / "processed" / "gen"
    report = __import__("json").loads((processed / "ingest_report.json").read_text(encoding="utf-8"))
    quarantine = pd.read_csv(processed / "quarantine.csv", keep_default_na=False)
    assert list(quarantine.columns[: len(QUARANTINE_COLUMNS)]) == QUARANTINE_COLUMNS
    accepted = 0
    for wave in report["waves"]:
        assert wave["rows_read"] == rows[wave["wave"]], wave["wave"]
        assert wave["rows_read"] == wave["rows_accepted"] + wave["rows_quarantined"]
        mine = quarantine[(quarantine["wave"] == wave["wave"]) & (quarantine["scope"] == "row")]
        assert mine["source_row"].nunique() == wave["rows_quarantined"]
        parquet = pd.read_parquet(processed / "waves" / f"{wave['wave']}.parquet")
        assert len(parquet) == wave["rows_accepted"]
        accepted += len(parquet)
    panel = pd.read_parquet(processed / "panel_long.parquet")
    assert PANEL_LONG == list(panel.columns[: len(PANEL_LONG)])
    linkage = pd.read_csv(processed / "linkage.csv", keep_default_na=False)
    assert list(linkage.columns) == LINKAGE
    link_quarantine = pd.read_csv(processed / "quarantine_link.csv", keep_default_na=False)
    summary = __import__("json").loads((processed / "linkage_summary.json").read_text(encoding="utf-8"))
    assert sum(summary["rows_linked"].values()) + len(link_quarantine) == accepted
    assert len(preview) == len(quarantine) + len(link_quarantine), "validate and a run disagree on what is set aside"
    contrasts = pd.read_csv(processed / "tables" / "contrasts.csv")
    assert set(CONTRASTS) <= set(contrasts.columns)
    for audience in ("public", "internal"):
        html = (root / "reports" / "gen" / audience / "index.html").read_text(encoding="utf-8").lower()
        leaked = [w for w in DEMO_WORDS if re.search(rf"\b{re.escape(w)}\b", html)]
        assert not leaked, f"demo wording in a generated study's {audience} report: {leaked}"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=list(HealthCheck))
@given(spec=specs(max_councils=MAX_COUNCILS))
@example(spec=RICH)
@example(spec=RICH_AT_END)
def test_every_stage_runs_on_generated_studies(spec: Spec) -> None:
    if DEADLINE is not None and time.monotonic() > DEADLINE:
        done = f"fuzz: {RAN[0]} studies in {os.environ['FUZZ_MINUTES']} minutes, {RAN[1]} failing" + (f" (see {LOG})" if LOG else "")
        if RAN[1]:
            pytest.fail(done, pytrace=False)
        pytest.skip(done)  # ends the run: hypothesis re-raises a skip at once
    RAN[0] += 1
    root = Path(tempfile.mkdtemp(prefix="fuzz-study-"))
    try:
        check_study(root, spec)
    except Exception:
        if LOG is None:
            raise
        RAN[1] += 1
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(f"=== {spec!r}\n{traceback.format_exc()}\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
