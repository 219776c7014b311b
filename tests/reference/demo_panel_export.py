"""Write tests/reference/fixtures/demo_panel.csv: the default demo's linked panel for a few measures.

The 40-council demo (default seed) is generated in a temporary folder and taken through ingest and link;
the observed answers to ``eff_leadership``, ``eff_voice`` (Likert 1-5) and ``improvement_plan`` (0/1) are
written as ``council_code, respondent_id, wave, status, measure, value``. ``demo_panel_reference.R`` fits
R's models to this file and ``tests/model/test_models_vs_r.py`` fits impactstudy's, so both read the same rows.
Respondent ids are pseudonyms salted per project root, so they change whenever this script runs: the CSV,
not the demo, is the fixture. Regenerate (then rerun the R script) from the repository root with

    .venv/bin/python tests/reference/demo_panel_export.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from impactstudy import demo, stages
from impactstudy.pipeline.paths import StudyPaths

MEASURES = ["eff_leadership", "eff_voice", "improvement_plan"]
COLUMNS = ["council_code", "respondent_id", "wave", "status", "measure", "value"]
OUT = Path(__file__).parent / "fixtures" / "demo_panel.csv"


def export(out: Path = OUT) -> pd.DataFrame:
    """Generate, ingest and link the demo in a temporary folder; write and return the fixture rows."""
    with tempfile.TemporaryDirectory() as tmp:
        demo.generate(Path(tmp), "demo", councils=40, seed=demo.DEFAULT_SEED)
        stages.run("demo", ["link"], root=tmp)
        panel = pd.read_parquet(StudyPaths(Path(tmp).resolve(), "demo").panel_long)
    rows = panel[panel["measure"].isin(MEASURES) & panel["value"].notna()]
    rows = rows.sort_values(["measure", "council_code", "respondent_id", "wave_order"])[COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False, lineterminator="\n")
    return rows


if __name__ == "__main__":
    written = export()
    print(f"wrote {OUT} ({len(written)} rows)")
