"""study/names.py: the names a study may not use, and the safe names of its SPSS and Stata exports."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.study.names import (
    SPSS_RESERVED, STATA_RESERVED, export_labels, export_names, file_slug, name_problem,
)


def test_export_names_maps_only_what_the_format_cannot_hold():
    names = ["council_code", "Ofsted rating", "Ofsted_rating", "2019 rate", "ALL", "by", "p" * 70, "Été", "x-y", "x y"]
    assert export_names(names) == {
        "council_code": "council_code", "Ofsted rating": "Ofsted_rating_2", "Ofsted_rating": "Ofsted_rating",
        "2019 rate": "v2019_rate", "ALL": "ALL_", "by": "by_", "p" * 70: "p" * 64, "Été": "Ete", "x-y": "x_y",
        "x y": "x_y_2"}
    assert export_names(["ab", "AB"]) == {"ab": "ab", "AB": "AB_2"}
    stata = export_names(["p" * 40, "p" * 41, "int", "_cons", "ALL"], "stata")
    assert stata == {"p" * 40: "p" * 32, "p" * 41: "p" * 30 + "_2", "int": "int_", "_cons": "v_cons", "ALL": "ALL"}


def test_export_labels_name_the_study_column_where_it_was_mapped():
    mapped = export_names(["wave", "Ofsted rating", "eff"])
    assert export_labels(mapped, {"wave": "Survey wave", "eff": "Effectiveness"}) == {
        "wave": "Survey wave", "Ofsted_rating": "Ofsted rating", "eff": "Effectiveness"}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=12, unique=True), st.sampled_from(["spss", "stata"]))
def test_export_names_are_valid_unique_and_stable(names, style):
    got = export_names(names, style)
    assert list(got) == names
    reserved = SPSS_RESERVED if style == "spss" else STATA_RESERVED
    limit = (lambda n: len(n.encode()) <= 64) if style == "spss" else (lambda n: len(n) <= 32)
    for old, new in got.items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", new), new
        assert new.upper() not in reserved and limit(new)
        first = next(n for n in names if n.lower() == old.lower())
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", old) and old.upper() not in reserved and limit(old) and first == old:
            assert new == old, "a name the format takes is kept"
    assert len({n.lower() for n in got.values()}) == len(names), "two columns would share an SPSS name"
    assert export_names(names, style) == got


@pytest.mark.parametrize("name,covariate,problem", [
    ("Ofsted rating", True, None), ("2019 rate", True, None), ("Été", True, None), ("ALL", False, None),
    ("Ofsted rating", False, "letters, digits and underscores"), ("a=b", True, "'='"), (" a", True, "either end"),
    ("Region", True, "pipeline's own column"), ("eff__x", False, "'__'"), ("a\tb", True, "printable"),
])
def test_name_problem(name, covariate, problem):
    got = name_problem(name, covariate)
    assert (got is None) if problem is None else (problem in got)


def test_file_slug():
    assert file_slug("Ofsted rating / 2019") == "Ofsted-rating-2019"
    assert file_slug("Été_1") == "Ete_1"
