"""Reading outcome files: DfE open-data and plain layouts, symbols, filters, years, councils."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.errors import DataError
from impactstudy.impact import outcomes as O
from impactstudy.study.periods import cohort_year, period_end

MARCH = (3, 31)


def dfe_table(rows: list[dict]) -> pd.DataFrame:
    base = {"time_period": "201314", "time_identifier": "Financial year", "geographic_level": "Local authority",
            "country_code": "E92000001", "country_name": "England", "old_la_code": "", "new_la_code": "",
            "la_name": "", "breakdown": "Total", "rate": "1"}
    return pd.DataFrame([{**base, **r} for r in rows]).astype(str)


def test_period_end_maps_single_and_two_year_periods() -> None:
    assert period_end("2013", MARCH) == date(2013, 3, 31)
    assert period_end("201314", MARCH) == date(2014, 3, 31)
    assert period_end("2013-14", (8, 31)) == date(2014, 8, 31)
    assert period_end("2013/14", MARCH) == date(2014, 3, 31)
    assert period_end("201315", MARCH) is None
    assert period_end("13", MARCH) is None


def test_cohort_year_is_the_period_containing_the_date() -> None:
    assert cohort_year(date(2013, 3, 31), MARCH) == 2013
    assert cohort_year(date(2013, 4, 1), MARCH) == 2014
    assert cohort_year(pd.Timestamp("2012-07-15"), MARCH) == 2013
    assert cohort_year(None, MARCH) is None
    assert cohort_year(pd.NaT, MARCH) is None


def test_symbols_are_reasons_never_numbers() -> None:
    values, reasons, bad = O.parse_cells(pd.Series(["12.5", "c", "low", "X", ":", "", "1,234", "u", "12a", " 7 "]))
    np.testing.assert_array_equal(np.isnan(values), [False, True, True, True, True, True, False, True, True, False])
    assert values[0] == 12.5 and values[6] == 1234 and values[9] == 7
    assert list(reasons[[1, 2, 3, 4, 5, 7, 8]]) == [O.SYMBOLS["c"], O.SYMBOLS["low"], O.SYMBOLS["x"],
                                                     O.SYMBOLS[":"], O.SYMBOLS[""], O.SYMBOLS["u"], "unreadable"]
    assert reasons[0] is None
    assert list(bad) == [False] * 8 + [True, False]


@settings(deadline=None, max_examples=60, derandomize=True)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
                          st.sampled_from(list(O.SYMBOLS))), min_size=1, max_size=30))
def test_parse_cells_numbers_round_trip_and_symbols_never_numbers(cells: list[str]) -> None:
    values, reasons, bad = O.parse_cells(pd.Series(cells))
    assert not bad.any()
    for cell, value, reason in zip(cells, values, reasons, strict=True):
        if cell in O.SYMBOLS:
            assert np.isnan(value) and reason == O.SYMBOLS[cell]
        else:
            assert value == pytest.approx(float(cell)) and reason is None


def test_dfe_layout_keeps_local_authorities_and_the_declared_filter() -> None:
    table = dfe_table([
        {"geographic_level": "National", "rate": "20"},
        {"geographic_level": "Regional", "rate": "21"},
        {"new_la_code": "E06000001", "la_name": "Hartlepool", "rate": "22.5"},
        {"new_la_code": "E06000001", "la_name": "Hartlepool", "breakdown": "Boys", "rate": "30"},
        {"old_la_code": "806", "la_name": "Middlesbrough", "rate": "c"},
        {"la_name": "Redcar and Cleveland", "time_period": "2014", "rate": "18"},
        {"new_la_code": "E06000004", "time_period": "2014/15", "rate": "oops"},
        {"new_la_code": "E06000004", "time_period": "201399", "rate": "1"},
    ])
    read = O.read_outcome_table(table, source="cin.csv", layout="dfe", indicators={"rerefer": "rate"},
                                year_end=MARCH, filters={"breakdown": "Total"})
    assert read.counts == {"rows_read": 8, "rows_other_level": 2, "rows_filtered_out": 1, "rows_used": 4,
                           "rows_bad_period": 1}
    v = read.values
    assert v["council_raw"].tolist() == ["E06000001", "806", "Redcar and Cleveland", "E06000004"]
    assert v["year"].tolist() == [2014, 2014, 2014, 2015]
    assert v["source_row"].tolist() == [3, 5, 6, 7]
    assert v["value"].iloc[0] == 22.5 and np.isnan(v["value"].iloc[1])
    assert v["missing_reason"].iloc[1] == O.SYMBOLS["c"]
    q = read.quarantine.sort_values("source_row")
    assert q["source_row"].tolist() == [7, 8]
    assert q["column"].tolist() == ["rate", "time_period"]


def test_plain_layout_and_council_resolution_with_lineage() -> None:
    table = pd.DataFrame({
        "council": ["E08000020", "Gateshead", "Bristol", "Poole", "Bournemouth, Christchurch and Poole", "Atlantis"],
        "year": ["2013", "2014", "2014", "2018", "2020", "2014"],
        "x": ["1", "2", "3", "4", "5", "6"],
    })
    read = O.read_outcome_table(table, source="plain.csv", layout="plain", indicators={"x": "x"}, year_end=MARCH)
    values, quarantine = O.resolve_councils(read.values)
    # Gateshead's 2013 code change is one council; Poole and BCP stay distinct authorities
    assert values["council_code"].tolist() == ["E08000037", "E08000037", "E06000023", "E06000029", "E06000058"]
    assert quarantine["source_row"].tolist() == [6]
    assert "not in the register" in quarantine["reason"].iloc[0]


def test_duplicate_council_years_are_one_line_errors() -> None:
    table = dfe_table([{"new_la_code": "E06000001", "breakdown": b} for b in ("Total", "Boys")])
    read = O.read_outcome_table(table, source="cin.csv", layout="dfe", indicators={"r": "rate"}, year_end=MARCH)
    with pytest.raises(DataError) as err:
        O.combine([read])
    message = str(err.value)
    assert "\n" not in message and "E06000001" in message and "cin.csv row 1" in message and "filter" in message


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"layout": "dfe", "indicators": {"r": "nope"}}, "'nope' not in the file; its columns are"),
    ({"layout": "dfe", "indicators": {"r": "rates"}}, "did you mean 'rate'?"),
    ({"layout": "dfe", "indicators": {"r": "rate"}, "filters": {"sex": "Total"}}, "filter column 'sex'"),
    ({"layout": "dfe", "indicators": {"r": "rate"}, "filters": {"breakdown": "All"}}, "no row has breakdown = 'All'"),
    ({"layout": "wide", "indicators": {"r": "rate"}}, "layout must be one of"),
])
def test_bad_declarations_are_clear_errors(kwargs: dict, needle: str) -> None:
    table = dfe_table([{"new_la_code": "E06000001"}])
    with pytest.raises(DataError, match=needle):
        O.read_outcome_table(table, source="cin.csv", year_end=MARCH, **kwargs)


@pytest.mark.parametrize(("rows", "needle"), [
    ([], "no row to use of 0 read"),
    ([{"new_la_code": "E92000001", "geographic_level": "National"}], "1 at another geographic level"),
    ([{"new_la_code": "E06000001", "time_period": "Q1"}], "1 without a reporting period"),
])
def test_a_file_with_no_usable_row_is_one_line_naming_why(rows: list[dict], needle: str) -> None:
    table = dfe_table(rows) if rows else dfe_table([{}]).iloc[:0]
    with pytest.raises(DataError) as err:
        O.read_outcome_table(table, source="cin.csv", layout="dfe", indicators={"r": "rate"}, year_end=MARCH)
    message = str(err.value)
    assert "\n" not in message and message.startswith("cin.csv: ") and needle in message


def test_a_plain_table_read_as_dfe_says_which_layout_to_declare() -> None:
    table = pd.DataFrame({"council": ["E06000001"], "year": ["2014"], "r": ["1"]})
    with pytest.raises(DataError, match='layout = "plain"'):
        O.read_outcome_table(table, source="p.csv", layout="dfe", indicators={"r": "r"}, year_end=MARCH)

