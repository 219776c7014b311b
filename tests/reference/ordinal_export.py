"""Write tests/reference/fixtures/ordinal_simulated.csv: two studies of the coverage simulation, for the
ordinal model's R reference (``ordinal_reference.R``).

The studies are the coverage simulation's own (:func:`impactstudy.coverage.simulation.simulate`, the demo
generator in memory): ``sim20``, 20 councils of 20-40 respondent seats with a council-level change of SD
0.3, the setting where the old all-answers ordinal model's "no change" test rejected in a quarter of the
studies; ``sim6``, 6 councils of 1-4 seats. Both measures (``eff_practice`` changes, ``eff_voice`` does
not), written as ``study, measure, council_code, respondent_id, wave, status, value``. Regenerate (then
rerun the R script) from the repository root with

    .venv/bin/python tests/reference/ordinal_export.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from impactstudy.coverage import simulation

OUT = Path(__file__).parent / "fixtures" / "ordinal_simulated.csv"
STUDIES = {"sim20": (simulation.Cell(20, 0.3, (20, 40)), simulation.SEED_BASE + 3),
           "sim6": (simulation.Cell(6, 0.3, (1, 4)), simulation.SEED_BASE + 5)}
COLUMNS = ["study", "measure", "council_code", "respondent_id", "wave", "status", "value"]


def export(out: Path = OUT) -> pd.DataFrame:
    """The studies' observed answers, one row per answer, in a stable order; written to ``out``."""
    parts = []
    for study, (cell, seed) in STUDIES.items():
        for measure, frame in simulation.simulate(cell, seed).items():
            parts.append(frame[frame["value"].notna()].assign(study=study, measure=measure,
                                                               wave=frame["wave"].astype(str)))
    rows = pd.concat(parts, ignore_index=True)[COLUMNS]
    rows["value"] = rows["value"].astype(int)
    rows = rows.sort_values(COLUMNS[:5], kind="stable")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False, lineterminator="\n")
    return rows


if __name__ == "__main__":
    written = export()
    print(f"{OUT}: {len(written)} rows")
