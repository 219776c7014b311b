"""The [impact] section of study.toml: parsed into ImpactSettings, every mistake a one-line error."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from impactstudy.errors import ConfigError
from impactstudy.study.config import parse_study

BASE = """
[[waves]]
id = "w1"
label = "Wave one"
file = "w1.csv"
council = "la"
respondent = "rid"

[[measures]]
name = "eff"
label = "Effectiveness"
type = "numeric"
columns = { w1 = "q1" }

[councils]
file = "councils.csv"
key = "council"
covariates = { review_date = "date", status = "category" }
"""

IMPACT = """
[impact]
treatment = "review_date"
anticipation = 1
window = [-3, 5]
covariates = ["status"]

[[impact.files]]
file = "outcomes.csv"
layout = "dfe"
year_end = "03-31"
filters = { breakdown = "Total" }

[[impact.files.outcomes]]
name = "rerefer"
label = "Re-referrals (%)"
column = "rerefer_pct"
better = "lower"
units = "percentage points"
"""


def parse(text: str):
    return parse_study(tomllib.loads(text), "t", Path("study.toml"))


def test_impact_section_parses_with_defaults() -> None:
    study = parse(BASE + IMPACT)
    s = study.impact
    assert s.treatment == "review_date" and s.anticipation == 1
    assert s.window == (-3, 5) and s.covariates == ("status",) and s.comparison == "not_yet_treated"
    assert s.bootstrap == 999 and s.permutations == 999 and s.min_breakdown == 0.5
    (f,) = s.files
    assert f.layout == "dfe" and f.year_end == (3, 31) and dict(f.filters) == {"breakdown": "Total"}
    assert [(o.name, o.column, o.better, o.units) for o in f.outcomes] == [
        ("rerefer", "rerefer_pct", "lower", "percentage points")]
    assert parse(BASE).impact is None


@pytest.mark.parametrize(("old", "new", "needle"), [
    ('anticipation = 1', 'anticipaton = 1', "unknown key 'anticipaton' (did you mean 'anticipation'?)"),
    ('layout = "dfe"', 'layout = "dfee"', "'layout' must be one of dfe, plain, got 'dfee' (did you mean 'dfe'?)"),
    ('better = "lower"', 'better = "smaller"', "'better' must be 'higher' or 'lower'"),
    ('treatment = "review_date"', 'treatment = "review"', "did you mean 'review_date'?"),
    ('year_end = "03-31"', 'year_end = "31-03"', "'year_end' must be a month and day"),
    ('window = [-3, 5]', 'window = [2, 5]', "'window' must be two whole numbers"),
    ('covariates = ["status"]', 'covariates = ["review_date"]', "must be a number or category covariate"),
    ('anticipation = 1', 'comparison = "never"', "'comparison' must be one of not_yet_treated, never_treated"),
    ('file = "outcomes.csv"', 'file = "../outcomes.csv"', "must be a path inside the study's raw folder"),
])
def test_impact_mistakes_are_one_line_errors(old: str, new: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(BASE + IMPACT.replace(old, new))
    assert needle in str(err.value) and "\n" not in str(err.value) and "impact" in str(err.value)


def test_treatment_defaults_to_the_intervention_date_and_is_needed() -> None:
    with_date = BASE + "\n[intervention]\nname = \"the programme\"\ndate = \"review_date\"\n"
    assert parse(with_date + IMPACT.replace('treatment = "review_date"\n', "")).impact.treatment == "review_date"
    with pytest.raises(ConfigError, match="missing 'treatment'"):
        parse(BASE + IMPACT.replace('treatment = "review_date"\n', ""))


def test_impact_needs_a_councils_file_with_the_date() -> None:
    with pytest.raises(ConfigError, match="needs a \\[councils\\] file"):
        parse(BASE.split("[councils]")[0] + IMPACT)


def test_an_outcome_names_a_survey_measure_and_the_waves_are_checked() -> None:
    two_waves = BASE.replace('columns = { w1 = "q1" }', 'columns = { w1 = "q1", w2 = "q1" }') + \
        '\n[[waves]]\nid = "w2"\nlabel = "Wave two"\nfile = "w2.csv"\ncouncil = "la"\nrespondent = "rid"\n'
    surveyed = IMPACT.replace('units = "percentage points"', 'units = "percentage points"\nsurvey = "eff"')
    study = parse(two_waves + surveyed)
    assert study.impact.outcomes[0].survey == "eff" and study.impact.survey_waves == ()
    assert parse(two_waves + surveyed.replace("anticipation = 1", 'anticipation = 1\nsurvey_waves = ["w1", "w2"]')
                 ).impact.survey_waves == ("w1", "w2")
    for text, needle in [
        (surveyed.replace('survey = "eff"', 'survey = "ef"'), "'survey' must name a number, rating or yes/no measure, "
                                                              "got 'ef' (did you mean 'eff'?)"),
        (surveyed.replace("anticipation = 1", 'anticipation = 1\nsurvey_waves = ["w2", "w1"]'),
         "'survey_waves' must name two waves, earlier first"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse(two_waves + text)
        assert needle in str(err.value) and "\n" not in str(err.value)
    for text, needle in [(two_waves.replace('name = "eff"', 'name = "eff"\nanalyse = false') + surveyed,
                          "survey measure 'eff' is not analysed (analyse = false")]:
        with pytest.raises(ConfigError) as err:
            parse(text)
        assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="is not asked at w2"):
        parse(BASE + '\n[[waves]]\nid = "w2"\nlabel = "Two"\nfile = "w2.csv"\ncouncil = "la"\nrespondent = "rid"\n'
              + surveyed.replace("anticipation = 1", 'anticipation = 1\nsurvey_waves = ["w1", "w2"]'))
