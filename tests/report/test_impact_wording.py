"""The impact section's causal sentence and its conditions, on generated studies where they hold and
where each fails: the pre-trend joint test, the HonestDiD breakdown value against the declared
threshold (``min_breakdown``), and few treated councils (docs/impact.md "When the report says caused")."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "impact"))
from impact_panels import YEARS, make_panel  # noqa: E402

from impactstudy.demo.panels import OutcomeModel  # noqa: E402
from impactstudy.impact import estimate as E  # noqa: E402
from impactstudy.impact.analysis import Rules, analyse_outcome  # noqa: E402
from impactstudy.impact.panel import Panel  # noqa: E402
from impactstudy.report.sections.impact import (_agreement, headline, placebo_in_time_sentence,  # noqa: E402
                                                sensitivity_sentence)

CLEAR = OutcomeModel("rate", "Assessments on time (%)", level=50, council_sd=5, trend=0.3, noise_sd=1.0, gain=5,
                     dip=0.0)
OPTIONS = E.DidOptions(anticipation=0, window=(-4, 4), bootstrap=99)
CAUSAL = "The programme is estimated to have increased assessments on time (%) by"


def _summary(panel: Panel, rules: Rules = Rules(permutations=199)) -> dict:
    _table, summary = analyse_outcome(panel, OPTIONS, rules)
    return {"label": CLEAR.label, "better": "higher", "units": "percentage points", **summary}


@pytest.fixture(scope="module")
def clear() -> Panel:
    """150 councils, 40 treated in 2014-2016, a large effect and parallel trends: every condition holds."""
    return make_panel(seed=3, n=150, n_treated=40, cohorts=(2014, 2015, 2016), model=CLEAR)


def test_the_causal_sentence_when_every_condition_holds(clear: Panel) -> None:
    outcome = _summary(clear)
    assert outcome["pretrend"]["p_value"] >= 0.05
    assert outcome["sensitivity"]["breakdown"] >= 0.5 == outcome["sensitivity"]["min_breakdown"]
    assert outcome["verdict"] == {"causal": True, "reasons": [], "excludes_zero": True}
    text = headline("rate", outcome, "the programme")
    assert text.startswith(CAUSAL) and "compared with how comparison councils changed" in text
    assert "an improvement" in text


def test_a_breakdown_value_below_the_declared_threshold_withholds_it(clear: Panel) -> None:
    """The same study with a demanding declared threshold: the breakdown value is the reason given."""
    strict = _summary(clear, Rules(permutations=199, min_breakdown=50.0))
    bd = strict["sensitivity"]["breakdown"]
    assert 0.5 <= bd < 50 and strict["verdict"]["causal"] is False
    assert strict["verdict"]["reasons"] == [
        f"a violation of parallel trends {bd:.2f} times the largest seen before the intervention would explain "
        "the effect away (the declared threshold is 50)"]
    text = headline("rate", strict, "the programme")
    assert "is estimated to have" not in text and "This is not shown to be an effect of the programme" in text
    sentence = sensitivity_sentence(strict["sensitivity"], "the programme")
    assert "HonestDiD relative magnitudes" in sentence and f"M̄ = {bd:.2f}" in sentence
    assert "needs at least 50.00 (the study's declared threshold)" in sentence


def test_diverging_pre_trends_withhold_it() -> None:
    """Treated councils already improving faster before treatment: the joint pre-trend test rejects."""
    panel = make_panel(seed=3, n=150, n_treated=40, cohorts=(2014, 2015, 2016), model=CLEAR)
    frame = panel.frame.copy()
    treated = frame["cohort"] > 0
    # a steady divergence of 0.8 points a year in the treated councils, before and after treatment
    frame.loc[treated, "y"] += 0.8 * (frame.loc[treated, "year"] - YEARS[0])
    diverging = Panel(panel.outcome, frame, panel.years, panel.notes, panel.set_aside)
    outcome = _summary(diverging)
    assert outcome["pretrend"]["p_value"] < 0.05
    assert outcome["verdict"]["causal"] is False
    assert any(r.startswith("councils already diverged before the intervention (pre-trend test p = ")
               for r in outcome["verdict"]["reasons"])
    assert "is estimated to have" not in headline("rate", outcome, "the programme")


def test_few_treated_councils_say_how_little_they_can_show() -> None:
    panel = make_panel(seed=4, n=150, n_treated=6, cohorts=(2014, 2015), model=CLEAR)
    outcome = _summary(panel)
    text = headline("rate", outcome, "the programme")
    assert text.startswith(f"{CLEAR.label}: inconclusive with 6 treated councils")
    assert "so few councils cannot separate an effect" in text
    # the smallest p the reassignments can reach is said by their number, not hidden
    assert outcome["randomisation"]["p_space"] >= 1 / 200


def test_sensitivity_sentence_edges() -> None:
    assert "not distinguishable from zero even if trends were exactly parallel" in sensitivity_sentence(
        {"breakdown": 0.0, "min_breakdown": 0.5}, "the review")
    assert "however large a departure" in sensitivity_sentence({"breakdown": None, "min_breakdown": 0.5},
                                                                "the review")
    assert sensitivity_sentence(None, "the review").startswith("Sensitivity: needs at least two years")


def test_placebo_in_time_is_reported_beside_the_other_p_values_or_why_not(clear: Panel) -> None:
    outcome = _summary(clear)
    ri = outcome["randomisation"]
    assert ri["placebo_shifts"] and ri["p_time_smallest"] == pytest.approx(1 / (1 + len(ri["placebo_shifts"])))
    sentence = placebo_in_time_sentence(ri, "the programme")
    assert f"p {ri['p_time']:.3f}" in sentence and f"cannot be below {ri['p_time_smallest']:.2f}" in sentence
    table = _agreement(pd.DataFrame(), outcome)
    rows = table.set_index("Estimator")["p"]
    assert rows["Randomisation inference (placebo in time)"] == f"{ri['p_time']:.3f}"
    assert "Randomisation inference (placebo in space)" in rows
    # cohorts too close to the start of the data: said in words, and no p
    late = make_panel(seed=5, n=150, n_treated=40, cohorts=(2011,), model=CLEAR)
    none = _summary(late)["randomisation"]
    assert none["placebo_shifts"] == [] and none["p_time"] != none["p_time"]  # nan
    assert placebo_in_time_sentence(none, "the programme") == (
        "placebo in time could not be run: placebo dates in time need 2 years of outcomes before a cohort's first "
        "treated year (a base year and a placebo year); the outcome starts in 2010 and the latest cohort's first "
        "treated year is 2011, 1 year(s) later.")
