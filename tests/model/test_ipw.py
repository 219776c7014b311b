"""Retention weights and the weighted change model against R (brglm2 dropout models, clubSandwich CR2:
tests/reference/ipw_reference.R), and what weighting must do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.model.stats import ipw, tidy

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "ipw_reference.json").read_text())
WAVES = ["baseline", "early_impact", "follow_up"]
PANEL = pd.read_csv(FIXTURES / "demo_panel.csv")


@pytest.fixture(scope="module")
def weighted():
    h = ipw.history(PANEL, WAVES, ["eff_leadership", "eff_voice"], ["status"])
    fits = ipw.step_models(h, ["status"])
    raw, trunc = ipw.weights(h, fits, (1.0, 99.0))
    return h, raw, trunc


def test_weights_match_r(weighted):
    h, _, trunc = weighted
    mine = ipw.weight_table(h, trunc)
    theirs = pd.read_csv(FIXTURES / "ipw_weights.csv")
    both = mine.merge(theirs, on=["council_code", "respondent_id", "wave"], how="outer", suffixes=("", "_r"))
    assert len(both) == len(mine) == len(theirs)
    assert np.allclose(both["weight"], both["weight_r"], rtol=1e-5, atol=0)


def test_diagnostics_match_r(weighted):
    h, raw, trunc = weighted
    table = ipw.diagnostics(h, raw, trunc, (1.0, 99.0)).set_index("wave")
    for row in REFERENCE["diagnostics"]:
        mine = table.loc[row["wave"]]
        assert (mine["at_risk"], mine["stayed"]) == (row["at_risk"], row["stayed"])
        for key in ("ess", "weight_max", "truncated_max"):
            assert mine[key] == pytest.approx(row[key], rel=1e-5)


@pytest.mark.parametrize("measure", ["eff_leadership", "eff_voice"])
def test_every_gee_ipw_row_is_reproduced_by_r_from_the_weights_file(measure):
    weights = pd.read_csv(FIXTURES / "ipw_weights.csv")
    rows = ipw.weighted_change_rows(PANEL[PANEL["measure"] == measure], WAVES, tidy.default_contrasts(WAVES), weights)
    rows = rows.set_index("contrast")
    for row in (r for r in REFERENCE["rows"] if r["measure"] == measure):
        mine = rows.loc[row["contrast"]]
        for key in ("estimate", "std_error", "df", "ci_low", "ci_high", "p_value"):
            assert mine[key] == pytest.approx(row[key], rel=1e-8), key


def _simulated(seed: int, councils: int, per_council: int = 6):
    """Respondents whose chance of answering again rises with their baseline answer (missing at random
    given it); the true change is 0.5 for everyone."""
    rng = np.random.default_rng(seed)
    n = councils * per_council
    council = np.repeat([f"c{k:02d}" for k in range(councils)], per_council)
    level = np.repeat(rng.normal(size=councils), per_council) * 0.3
    base = level + rng.normal(size=n)
    stays = rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.5 * base)))
    follow = base + 0.5 + rng.normal(size=n) * 0.5
    rows = pd.DataFrame({"council_code": np.r_[council, council[stays]], "respondent_id": np.r_[np.arange(n), np.arange(n)[stays]],
                         "wave": ["b"] * n + ["f"] * int(stays.sum()), "measure": "m",
                         "value": np.r_[base, follow[stays]]})
    return rows


def test_weighting_balances_the_baseline_and_removes_the_bias():
    panel = _simulated(4, councils=300)
    h = ipw.history(panel, ["b", "f"], ["m"])
    raw, trunc = ipw.weights(h, ipw.step_models(h), (0.0, 100.0))
    balance = ipw.balance(h, trunc).iloc[0]
    assert abs(balance["smd_unweighted"]) > 0.3 and abs(balance["smd_weighted"]) < 0.1
    naive = panel[panel["wave"] == "f"]["value"].mean() - panel[panel["wave"] == "b"]["value"].mean()
    rows = ipw.weighted_change_rows(panel, ["b", "f"], [("f", "b")], ipw.weight_table(h, trunc))
    assert naive > 0.8  # those who stayed started higher
    assert rows.loc[0, "ci_low"] < 0.5 < rows.loc[0, "ci_high"] and abs(rows.loc[0, "estimate"] - 0.5) < 0.2


def test_six_councils_give_finite_rows_that_do_not_depend_on_row_order():
    panel = _simulated(9, councils=6, per_council=3)
    h = ipw.history(panel, ["b", "f"], ["m"])
    table = ipw.weight_table(h, ipw.weights(h, ipw.step_models(h))[1])
    forward = ipw.weighted_change_rows(panel, ["b", "f"], [("f", "b")], table)
    backward = ipw.weighted_change_rows(panel.iloc[::-1], ["b", "f"], [("f", "b")], table.iloc[::-1])
    assert np.isfinite(forward.loc[0, "std_error"]) and forward.loc[0, "df"] < 6
    assert forward.loc[0, "std_error"] == pytest.approx(backward.loc[0, "std_error"], rel=1e-10)


def test_truncation_clips_at_the_stated_percentiles(weighted):
    h, raw, _ = weighted
    later = raw[:, 1:][np.isfinite(raw[:, 1:])]
    _, trunc = ipw.weights(h, ipw.step_models(h, ["status"]), (10.0, 90.0))
    clipped = trunc[:, 1:][np.isfinite(trunc[:, 1:])]
    assert clipped.min() == pytest.approx(np.percentile(later, 10)) and clipped.max() == pytest.approx(np.percentile(later, 90))
    assert np.all(trunc[:, 0] == 1.0)
