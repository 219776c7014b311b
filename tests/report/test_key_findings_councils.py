"""Key findings with few councils: they rest on the council-level sign-flip test, say "inconclusive with
N councils" when that test cannot reach p < 0.05, and compare only rows with the same estimand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impactstudy import demo, stages
from impactstudy.report.findings import key_findings, sentence

RESPONDENT = "respondent-weighted mean change"
COUNCIL = "council-weighted mean change"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("findings6")
    demo.generate(root, "demo6", councils=6)
    return stages.open_study("demo6", root)[0]


def _rows(**overrides: dict) -> pd.DataFrame:
    """The issue's six-council case: the LMM 'significant', the council-level tests not."""
    base = {"measure": "eff_practice", "contrast": "follow_up - baseline", "group": "all", "std_error": np.nan,
            "n_obs": 60, "n_councils": 6, "n_councils_both": 5, "df": np.nan, "correction": "", "flag": "few councils",
            "warning": "", "min_p_value": 0.0}
    rows = {
        "lmm": {"estimand": RESPONDENT, "estimate": 0.73, "ci_low": 0.29, "ci_high": 1.17, "p_value": 0.0024,
                "q_value": 0.014},
        "paired_t": {"estimand": COUNCIL, "estimate": 0.75, "ci_low": 0.13, "ci_high": 1.37, "p_value": 0.028,
                     "q_value": 0.09},
        "sign_flip": {"estimand": COUNCIL, "estimate": 0.75, "ci_low": 0.0, "ci_high": 1.25, "p_value": 0.125,
                      "q_value": 0.44, "min_p_value": 0.0625,
                      "warning": "requested conf.level not achievable with 5 councils; the CI is a 0.9375 interval"},
        "ordinal": {"estimand": "log odds ratio", "estimate": 1.5, "ci_low": -0.07, "ci_high": 3.1, "p_value": 0.06,
                    "q_value": 0.3},
    }
    return pd.DataFrame([{**base, "model": m, **values, **overrides.get(m, {})} for m, values in rows.items()])


def test_with_five_councils_the_finding_is_inconclusive_not_the_lmms_significance(study) -> None:
    [finding] = [f for f in key_findings(_rows(), study) if f.measure == "eff_practice"]
    assert finding.model == "sign_flip" and finding.inconclusive and finding.estimand == COUNCIL
    text = finding.sentence
    assert "inconclusive with 5 councils" in text
    assert "council-weighted mean change +0.75" in text
    assert "94% CI 0.00 to 1.25\u2020" in text
    assert "the smallest possible p-value is 0.0625" in text
    assert "higher" not in text and "q = 0.014" not in text and "linear mixed model" not in text


def test_a_council_level_test_that_can_reach_significance_is_reported_as_usual(study) -> None:
    rows = _rows(sign_flip={"ci_low": 0.2, "ci_high": 1.1, "p_value": 0.004, "q_value": 0.02, "min_p_value": 0.0039,
                            "n_councils_both": 9, "warning": ""})
    [finding] = [f for f in key_findings(rows, study) if f.measure == "eff_practice"]
    assert not finding.inconclusive
    assert "was higher at" in finding.sentence and "council-weighted mean change +0.75" in finding.sentence
    assert "95% CI 0.20 to 1.10" in finding.sentence
    # the paired t (same estimand) agrees; the LMM and ordinal model estimate other things: not compared
    assert "Not every model agrees" not in finding.sentence


def test_only_models_of_the_same_estimand_are_compared(study) -> None:
    rows = _rows(sign_flip={"ci_low": 0.2, "ci_high": 1.1, "p_value": 0.004, "q_value": 0.02, "min_p_value": 0.0039,
                            "warning": ""},
                 paired_t={"ci_low": -0.1})
    row = rows[rows["model"] == "sign_flip"].iloc[0]
    text = sentence(row, study, rows)
    assert "Not every model agrees: the paired t-test reached a different conclusion" in text
    assert "ordinal" not in text


def test_a_council_level_test_on_too_few_councils_says_not_estimable(study) -> None:
    rows = _rows(sign_flip={"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                            "min_p_value": np.nan, "n_councils_both": 2,
                            "warning": "not estimable with 2 councils observed at both waves (a paired test needs at least 3)"})
    [finding] = [f for f in key_findings(rows, study) if f.measure == "eff_practice"]
    assert "not estimable with 2 councils" in finding.sentence
    assert "higher" not in finding.sentence


def test_without_council_level_rows_the_primary_model_is_unchanged(study) -> None:
    rows = _rows()
    rows = rows[rows["model"] != "sign_flip"]
    [finding] = [f for f in key_findings(rows, study) if f.measure == "eff_practice"]
    assert finding.model == "lmm" and "was higher at" in finding.sentence
