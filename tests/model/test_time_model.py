"""The ``lmm_time`` model (value on months since the intervention): the primary LMM's random part."""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.model import attrition
from impactstudy.model.stats.lmm import fit_lmm
from impactstudy.pipeline.frames import MONTHS_SINCE


def _frame(seed: int, council_wave_sd: float) -> pd.DataFrame:
    """12 councils x 3 waves x 15 respondents; months since the intervention differ by council and wave."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(12):
        offset, level = rng.uniform(0, 6), rng.normal(0, 0.4)
        for w, wave in enumerate(("baseline", "early", "follow_up")):
            months = offset + 12 * w
            shift = rng.normal(0, council_wave_sd)
            for r in range(15):
                rows.append({"council_code": f"C{c:02d}", "respondent_id": f"{c}-{w}-{r}", "wave": wave,
                             MONTHS_SINCE: months, "value": 3 + 0.02 * months + level + shift + rng.normal()})
    frame = pd.DataFrame(rows)
    return frame.assign(council_code=frame["council_code"].astype("category"), wave=frame["wave"].astype("category"))


def test_time_model_has_the_council_by_wave_term_and_its_slope_is_replicated_by_council_waves() -> None:
    frame = _frame(3, council_wave_sd=0.4)
    estimates, record = attrition.time_rows("eff", frame, knots=())
    assert "(1 | council_code:wave)" in record["formula"] and record["converged"]
    months = estimates.set_index("term").loc["months"]
    # the council-only model replicates the slope by the 540 answers and is far too sure of it
    X = attrition.time_design(frame[MONTHS_SINCE], ())
    nested = fit_lmm(frame["value"].to_numpy(), X.to_numpy(), list(X.columns), frame["council_code"].cat.codes.to_numpy())
    naive = nested.summary_frame().set_index("term").loc["months"]
    assert months["std_error"] > 1.5 * naive["std_error"]
    assert months["df"] < 40 < naive["df"]  # about the 36 council-waves, not the answers
    assert abs(months["estimate"] - 0.02) < 3 * months["std_error"]


def test_time_model_without_council_wave_variation_is_a_boundary_fit_not_a_failure() -> None:
    estimates, record = attrition.time_rows("eff", _frame(5, council_wave_sd=0.0), knots=(12.0,))
    assert estimates is not None and set(estimates["term"]) == {"Intercept", "months", "months_after_12"}
    assert record["converged"]
