"""Firth-penalised logistic regression against R (brglm2 estimates, profile penalised likelihood and
penalised LRT written out from the definition, Konis' separation LP): tests/reference/firth_reference.R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.model.stats.firth import INTERCEPT, NOT_ESTIMABLE, firth_logit, labelled_design, separation_note

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
REFERENCE = json.loads((FIXTURES / "firth_reference.json").read_text())


def _compare(result, expected, names):
    table = result.table.set_index("term")
    for row in expected["coefficients"]:
        got = table.loc[names[row["term"]]]
        assert got["estimate"] == pytest.approx(row["estimate"], abs=1e-6)
        assert got["std_error"] == pytest.approx(row["std_error"], rel=1e-6)
        assert got["ci_low"] == pytest.approx(row["ci_low"], abs=1e-5)
        assert got["ci_high"] == pytest.approx(row["ci_high"], abs=1e-5)
        assert got["statistic"] == pytest.approx(row["statistic"], rel=1e-5, abs=1e-8)
        assert got["p_value"] == pytest.approx(row["p_value"], rel=1e-5)
    separated = {names[t] for t, d in expected["direction"].items() if d != 0}
    assert set(result.separated) == separated


def test_attrition_data_match_r():
    data = pd.read_csv(FIXTURES / "firth_attrition.csv")
    design = labelled_design(data, ["status"], {"baseline_score": "baseline score"})
    assert design.reference == {"status": "Adequate"}
    result = firth_logit(data["y"], design.X)
    names = {"(Intercept)": INTERCEPT, "baseline_score": "baseline score",
             **{f"status{lv}": f"status: {lv} (against Adequate)" for lv in ("Good", "Notice to Improve", "Outstanding")}}
    _compare(result, REFERENCE["attrition"], names)
    # the figures quoted for the demo: finite where maximum likelihood ran off to +-900
    nti = result.table.set_index("term").loc["status: Notice to Improve (against Adequate)"]
    assert (round(nti["estimate"], 2), round(nti["ci_low"], 2), round(nti["ci_high"], 2)) == (-2.49, -7.56, 0.30)
    assert "infinite" in nti["warning"]
    assert result.converged and "Firth-penalised" in separation_note(result)


def test_endometrial_matches_r_and_logistf():
    data = pd.read_csv(FIXTURES / "firth_endometrial.csv")
    result = firth_logit(data["HG"], data[["NV", "PI", "EH"]])
    _compare(result, REFERENCE["endometrial"], {"(Intercept)": INTERCEPT, "NV": "NV", "PI": "PI", "EH": "EH"})
    # Heinze & Schemper (2002), table: NV 2.93 (0.61, 7.85)
    nv = result.table.set_index("term").loc["NV"]
    assert (round(nv["estimate"], 2), round(nv["ci_low"], 2), round(nv["ci_high"], 2)) == (2.93, 0.61, 7.85)


def test_terms_without_information_are_not_estimable():
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = (rng.random(60) < 1 / (1 + np.exp(-x))).astype(float)
    X = pd.DataFrame({"x": x, "nobody": 0.0, "twice x": 2 * x})
    table = firth_logit(y, X).table.set_index("term")
    assert np.isfinite(table.loc["x", "estimate"])
    for term in ("nobody", "twice x"):
        assert table.loc[term, "warning"].startswith(NOT_ESTIMABLE)
        assert table.loc[term, ["estimate", "std_error", "ci_low", "ci_high", "p_value"]].isna().all()


def test_one_outcome_class_is_not_estimable_not_an_error():
    table = firth_logit(np.ones(10), pd.DataFrame({"x": np.arange(10.0)})).table
    assert table["estimate"].isna().all() and table["warning"].str.startswith(NOT_ESTIMABLE).all()


def test_labelled_design_reference_is_the_largest_level():
    frame = pd.DataFrame({"region": ["North", "South", "South", "West"], "size": [1.0, 2.0, 3.0, 4.0]})
    design = labelled_design(frame, ["region"], {"size": "council size"})
    assert design.reference == {"region": "South"}
    assert list(design.X.columns) == ["region: North (against South)", "region: West (against South)", "council size"]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=15, max_value=80))
def test_estimates_are_finite_and_inside_their_intervals(seed, n):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n)
    y = (rng.random(n) < np.where(group == "c", 0.97, 0.5)).astype(float)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    design = labelled_design(pd.DataFrame({"g": group}), ["g"])
    table = firth_logit(y, design.X).table
    ok = ~table["warning"].str.startswith(NOT_ESTIMABLE)
    fitted = table[ok]
    assert np.isfinite(fitted["estimate"]).all()
    bounded = fitted.dropna(subset=["ci_low", "ci_high"])
    assert (bounded["ci_low"] <= bounded["estimate"] + 1e-9).all() and (bounded["estimate"] <= bounded["ci_high"] + 1e-9).all()
