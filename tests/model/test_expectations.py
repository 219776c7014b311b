"""Expectations against outcomes: the council is the unit, a documented rule for councils whose
respondents split, and an interval that inverts the same exact test as the p-value (against R
binom.test: tests/reference/expectations_reference.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.model.expectations import majority
from impactstudy.model.stats.proportions import exact_mcnemar_interval, expectations_vs_outcomes, mcnemar_row

REFERENCE = json.loads((Path(__file__).parents[1] / "reference" / "fixtures" / "expectations_reference.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["rows"], ids=lambda c: f"{c['n01']}-{c['n10']}-{c['n']}")
def test_interval_and_p_match_binom_test(case):
    n01, n10, n = case["n01"], case["n10"], case["n"]
    earlier = np.r_[np.zeros(n01), np.ones(n10), np.zeros(n - n01 - n10)]
    later = np.r_[np.ones(n01), np.zeros(n10), np.zeros(n - n01 - n10)]
    row = mcnemar_row(earlier, later, interval="exact")
    assert row["estimate"] == pytest.approx(case["estimate"])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((case["ci_low"], case["ci_high"]), rel=1e-7, abs=1e-12)
    assert row["p_value"] == pytest.approx(case["p_value"], rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_interval_excludes_zero_exactly_when_p_is_below_five_percent(n01, n10, concordant):
    n = n01 + n10 + concordant
    if n == 0:
        return
    earlier = np.r_[np.zeros(n01), np.ones(n10), np.ones(concordant)]
    later = np.r_[np.ones(n01), np.zeros(n10), np.ones(concordant)]
    row = mcnemar_row(earlier, later, interval="exact")
    excludes = row["ci_high"] < 0 or row["ci_low"] > 0
    assert excludes == (row["p_value"] < 0.05) or abs(row["p_value"] - 0.05) < 1e-9


def test_majority_rule_leaves_an_even_split_out():
    share = pd.Series({"a": 1.0, "b": 0.5, "c": 1 / 3, "d": 2 / 3})
    assert majority(share).tolist()[0] == 1.0 and np.isnan(majority(share)["b"])
    assert majority(share)[["c", "d"]].tolist() == [0.0, 1.0]


def test_expectations_rows_use_the_exact_interval():
    units = pd.DataFrame({"council_code": list("abcdefgh"), "expected": [1, 1, 1, 1, 1, 0, 0, 1.0],
                          "achieved": [0, 0, 0, 0, 1, 0, 1, 1.0]})
    rows = expectations_vs_outcomes(units, interval="exact").set_index("model")
    assert rows.loc["mcnemar", "estimate"] == pytest.approx((1 - 4) / 8)
    lo, hi = exact_mcnemar_interval(1, 4, 8)
    assert (rows.loc["mcnemar", "ci_low"], rows.loc["mcnemar", "ci_high"]) == (lo, hi)
    assert "inverts" in rows.loc["mcnemar", "correction"]
