"""Tests for the council register and name/code resolution (impactstudy.councils)."""

from __future__ import annotations

import io
import math
import time
from datetime import date
from importlib import resources

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.councils import (
    FUZZY_CUTOFF,
    RESULT_COLUMNS,
    councils_on,
    load_aliases,
    load_register,
    normalise,
    resolve,
    resolve_to_csv,
)
from impactstudy.errors import ConfigError

REGISTER = load_register()
CODES = set(REGISTER["gss_code"])

# (input, expected GSS code, expected method) on 2024-01-01, before the 2025 Barnsley/Sheffield
# recode. Every expected code was read off src/impactstudy/councils/councils.csv.
SPELLINGS = [
    # GSS codes in odd case and whitespace
    (" e06000023 ", "E06000023", "code"),
    ("E06000023", "E06000023", "code"),
    ("e 0 8 0 0 0 0 1 3", "E08000013", "code"),
    ("\tE09000001\n", "E09000001", "code"),
    # DfE codes as int, str, Excel/SPSS float and float string
    (801, "E06000023", "code"),
    ("801", "E06000023", "code"),
    ("801.0", "E06000023", "code"),
    (801.0, "E06000023", "code"),
    (" 342 ", "E08000013", "code"),
    (420, "E06000053", "code"),
    (201, "E09000001", "code"),
    # Official names and their normalised variants
    ("Bristol, City of", "E06000023", "exact"),
    ("Bristol", "E06000023", "exact"),
    ("City of Bristol", "E06000023", "exact"),
    ("Bristol City Council", "E06000023", "exact"),
    ("BRISTOL CITY", "E06000023", "exact"),
    ("St Helens", "E08000013", "exact"),
    ("St. Helens", "E08000013", "exact"),
    ("Saint Helens Council", "E08000013", "exact"),
    ("Durham", "E06000047", "exact"),
    ("County Durham", "E06000047", "exact"),
    ("Durham County Council", "E06000047", "exact"),
    ("Telford & Wrekin", "E06000020", "exact"),
    ("Telford and Wrekin Council", "E06000020", "exact"),
    ("Kingston-upon-Hull", "E06000010", "exact"),
    ("Kingston upon Hull City Council", "E06000010", "exact"),
    ("Herefordshire", "E06000019", "exact"),
    ("Herefordshire, County of", "E06000019", "exact"),
    ("Hammersmith & Fulham", "E09000013", "exact"),
    ("London Borough of Barking & Dagenham", "E09000002", "exact"),
    ("Royal Borough of Windsor and Maidenhead", "E06000040", "exact"),
    ("Royal Borough of Kingston upon Thames", "E09000021", "exact"),
    ("Council of the Isles of Scilly", "E06000053", "exact"),
    ("City of London", "E09000001", "exact"),
    ("City of London Corporation", "E09000001", "alias"),
    ("York", "E06000014", "exact"),
    ("City of York Council", "E06000014", "exact"),
    ("North Yorkshire", "E06000065", "exact"),
    ("Nottingham City", "E06000018", "exact"),
    ("Nottinghamshire County Council", "E10000024", "exact"),
    ("Derby City", "E06000015", "exact"),
    ("Leicester City Council", "E06000016", "exact"),
    ("Plymouth City", "E06000026", "exact"),
    ("Stoke-on-Trent", "E06000021", "exact"),
    ("Wirral Metropolitan Borough Council", "E08000015", "exact"),
    ("The Wirral", "E08000015", "exact"),
    ("Bournemouth, Christchurch and Poole", "E06000058", "exact"),
    ("Brighton & Hove", "E06000043", "exact"),
    ("Westminster City Council", "E09000033", "exact"),
    ("Cheshire West & Chester", "E06000050", "exact"),
    ("Bath & North East Somerset", "E06000022", "exact"),
    ("Newcastle-upon-Tyne", "E08000021", "exact"),
    ("Southend-on-Sea City Council", "E06000033", "exact"),
    # Shipped aliases
    ("Hull", "E06000010", "alias"),
    ("Southend", "E06000033", "alias"),
    ("BCP", "E06000058", "alias"),
    ("BCP Council", "E06000058", "alias"),
    ("Brighton", "E06000043", "alias"),
    ("Kingston", "E09000021", "alias"),
    ("Richmond", "E09000027", "alias"),
    ("Stoke", "E06000021", "alias"),
    ("B&NES", "E06000022", "alias"),
    ("Bucks", "E06000060", "alias"),
    ("Newcastle", "E08000021", "alias"),
    # Typos: fuzzy
    ("Hartlepol", "E06000001", "fuzzy"),
    ("Manchestr", "E08000003", "fuzzy"),
    ("Northumberlnd", "E06000057", "fuzzy"),
    ("Gloucestershre County Council", "E10000013", "fuzzy"),
    ("Isle of Scilly", "E06000053", "fuzzy"),
]


@pytest.fixture(scope="module")
def spelled() -> pd.DataFrame:
    return resolve([value for value, _, _ in SPELLINGS], as_of="2024-01-01")


def test_result_shape_and_order(spelled: pd.DataFrame) -> None:
    assert list(spelled.columns) == RESULT_COLUMNS
    assert list(spelled["input"]) == [value for value, _, _ in SPELLINGS]


@pytest.mark.parametrize(("index", "case"), list(enumerate(SPELLINGS)), ids=lambda v: repr(v))
def test_real_world_spellings(spelled: pd.DataFrame, index: int, case: tuple) -> None:
    value, gss, method = case
    row = spelled.iloc[index]
    assert (row["gss_code"], row["method"]) == (gss, method), row["note"]
    assert row["name"] == REGISTER.set_index("gss_code").loc[gss, "name"]
    if method == "fuzzy":
        assert FUZZY_CUTOFF <= row["score"] < 100
    else:
        assert row["score"] == 100


def test_code_notes_say_which_code(spelled: pd.DataFrame) -> None:
    notes = dict(zip(spelled["input"].astype(str), spelled["note"]))
    assert notes[" e06000023 "] == "GSS code"
    assert notes["801.0"] == "DfE code 801"


def test_nottingham_and_york_do_not_collide_with_counties() -> None:
    assert normalise("Nottingham City Council") == "nottingham"
    assert normalise("Nottinghamshire County Council") == "nottinghamshire"
    assert normalise("City of York") == "york"
    assert normalise("North Yorkshire Council") == "north yorkshire"
    assert normalise("City of London") == "city of london"  # not the region "London"
    out = resolve(["London"], as_of="2024-01-01")
    assert out.loc[0, "method"] == "unmatched"


def _one(value, as_of, aliases=None) -> pd.Series:
    return resolve([value], as_of=as_of, aliases=aliases).iloc[0]


# (input, as_of, expected GSS code or None, method, fragment of note)
REORGANISATIONS = [
    # Northumberland and Gateshead changed code on 2013-04-01
    ("E06000048", "2012-06-01", "E06000048", "code", "GSS code"),
    ("E06000048", "2014-06-01", "E06000057", "code", "replaced by E06000057 on 2013-04-01 (code change)"),
    ("E06000057", "2012-06-01", "E06000048", "code", "code on 2012-06-01 was E06000048"),
    ("Northumberland", "2012-06-01", "E06000048", "exact", ""),
    ("Northumberland", "2014-06-01", "E06000057", "exact", ""),
    (390, "2012-06-01", "E08000020", "code", "DfE code 390"),
    (390, "2014-06-01", "E08000037", "code", "DfE code 390"),
    ("Gateshead", "2014-06-01", "E08000037", "exact", ""),
    ("E08000020", "2014-06-01", "E08000037", "code", "code change"),
    # Poole and Bournemouth merged into BCP on 2019-04-01
    ("Poole", "2019-01-01", "E06000029", "exact", ""),
    ("Poole", "2021-01-01", "E06000058", "exact", "merged into E06000058 Bournemouth, Christchurch and Poole"),
    ("Bournemouth", "2020-06-01", "E06000058", "exact", "merged into E06000058"),
    ("E06000029", "2020-06-01", "E06000058", "code", "merged into E06000058"),
    ("BCP", "2018-06-01", None, "unmatched", "not yet created on 2018-06-01"),
    ("E06000058", "2018-06-01", None, "unmatched", "not yet created on 2018-06-01"),
    # Buckinghamshire: DfE 825 was the county until 2020-03-31, then the unitary
    (825, "2019-06-01", "E10000002", "code", "E10000002 county from 2009-01-01 to 2020-03-31"),
    (825, "2020-06-01", "E06000060", "code", "then E06000060 unitary from 2020-04-01"),
    ("Buckinghamshire County Council", "2019-06-01", "E10000002", "exact", ""),
    ("Buckinghamshire Council", "2021-06-01", "E06000060", "exact", ""),
    ("E10000002", "2021-06-01", "E06000060", "code", "replaced by E06000060 Buckinghamshire (unitary)"),
    ("E06000060", "2019-06-01", None, "unmatched", "not yet created on 2019-06-01"),
    ("Bucks", "2019-06-01", "E10000002", "alias", ""),
    # Barnsley and Sheffield changed code on 2025-05-01
    ("Barnsley", "2024-06-01", "E08000016", "exact", ""),
    ("Barnsley", "2025-06-01", "E08000038", "exact", ""),
    (370, "2024-06-01", "E08000016", "code", "DfE code 370"),
    ("370", "2025-06-01", "E08000038", "code", "DfE code 370"),
    ("E08000019", "2025-06-01", "E08000039", "code", "replaced by E08000039 on 2025-05-01 (code change)"),
    ("Sheffield City Council", "2025-06-01", "E08000039", "exact", ""),
    # North Yorkshire and Somerset: county to unitary on 2023-04-01, same DfE code
    ("North Yorkshire", "2022-06-01", "E10000023", "exact", ""),
    ("North Yorkshire", "2023-05-01", "E06000065", "exact", ""),
    (815, "2022-06-01", "E10000023", "code", "DfE code 815"),
    (815, "2023-05-01", "E06000065", "code", "DfE code 815"),
    ("E10000023", "2023-05-01", "E06000065", "code", "replaced by E06000065 North Yorkshire (unitary)"),
    ("Somerset County Council", "2023-05-01", "E06000066", "exact", ""),
    ("933", "2022-06-01", "E10000027", "code", "DfE code 933"),
    # Splits: the county before, flagged after, never one part
    ("Northamptonshire", "2020-06-01", "E10000021", "exact", ""),
    ("Northamptonshire", "2021-06-01", None, "unmatched",
     "split on 2021-04-01 into E06000061 North Northamptonshire and E06000062 West Northamptonshire"),
    (928, "2021-06-01", None, "unmatched", "split on 2021-04-01"),
    ("Northants", "2022-06-01", None, "unmatched", "split on 2021-04-01"),
    ("West Northamptonshire", "2020-06-01", None, "unmatched", "not yet created on 2020-06-01"),
    ("West Northamptonshire", "2021-06-01", "E06000062", "exact", ""),
    ("Cumbria", "2022-06-01", "E10000006", "exact", ""),
    ("Cumbria County Council", "2023-04-01", None, "unmatched",
     "split on 2023-04-01 into E06000063 Cumberland and E06000064 Westmorland and Furness"),
    ("E10000006", "2024-01-01", None, "unmatched", "split on 2023-04-01"),
    # Dorset County: main successor (same name, listed first) with the Christchurch part named
    ("Dorset", "2018-06-01", "E10000009", "exact", ""),
    ("Dorset", "2020-06-01", "E06000059", "exact", ""),
    ("E10000009", "2020-06-01", "E06000059", "code",
     "mapped to its main successor E06000059 Dorset (unitary); part went to E06000058"),
    (835, "2020-06-01", "E06000059", "code", "main successor"),
]


@pytest.mark.parametrize(("value", "as_of", "gss", "method", "note"), REORGANISATIONS)
def test_reorganisations_by_date(value, as_of, gss, method, note) -> None:
    row = _one(value, as_of)
    assert row["method"] == method, row["note"]
    if gss is None:
        assert pd.isna(row["gss_code"]) and math.isnan(row["score"])
    else:
        assert row["gss_code"] == gss, row["note"]
    assert note in row["note"]


def test_as_of_accepts_dates_and_defaults_to_today() -> None:
    assert _one("Poole", date(2019, 1, 1))["gss_code"] == "E06000029"
    assert _one("Poole", pd.Timestamp("2019-01-01"))["gss_code"] == "E06000029"
    # Today is after every change in the register.
    assert _one(825, None)["gss_code"] == "E06000060"
    assert _one("Barnsley", None)["gss_code"] == "E08000038"
    assert _one("Cumbria", None)["method"] == "unmatched"


@pytest.mark.parametrize("bad", ["01/04/2020", "2020-13-01", "soon"])
def test_bad_as_of_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        resolve(["Kent"], as_of=bad)


def test_as_of_before_register_coverage_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="before the council register starts"):
        resolve(["Kent"], as_of="2005-01-01")


def test_ambiguous_fuzzy_names_both_candidates() -> None:
    for typo, first, second in [("Est Sussex", "East Sussex", "West Sussex"),
                                ("Brnet", "Barnet", "Brent")]:
        row = _one(typo, "2024-01-01")
        assert row["method"] == "unmatched" and pd.isna(row["gss_code"])
        assert "ambiguous" in row["note"]
        assert repr(first) in row["note"] and repr(second) in row["note"]


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ("Atlantis Borough Council", "no name or alias matches"),
        ("Christchurch", "no name or alias matches"),
        ("E07000048", "not an upper-tier authority"),
        ("999", "not a DfE LA code"),
        (42, "not a DfE LA code"),
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        (float("nan"), "empty"),
        (pd.NA, "empty"),
        ("--", "empty"),
    ],
)
def test_unmatched_inputs(value, note) -> None:
    row = _one(value, "2024-01-01")
    assert row["method"] == "unmatched"
    assert pd.isna(row["gss_code"]) and pd.isna(row["name"]) and math.isnan(row["score"])
    assert note in row["note"]


def test_study_aliases_extend_and_override() -> None:
    values = ["Bristol CC", "Hull"]
    before = resolve(values, as_of="2024-01-01")
    assert before.loc[0, "method"] == "unmatched"
    mapping = {"Bristol CC": "E06000023", "Hull": "E06000010"}
    frame = pd.DataFrame({"alias": ["Bristol CC"], "gss_code": ["e06000023"]})
    for aliases in (mapping, frame):
        after = resolve(values, as_of="2024-01-01", aliases=aliases)
        assert list(after["gss_code"]) == ["E06000023", "E06000010"]
        assert list(after["method"]) == ["alias", "alias"]


def test_study_aliases_from_csv(tmp_path) -> None:
    path = tmp_path / "aliases.csv"
    path.write_text("alias,gss_code\nNorthampton shire CC,E10000021\n")
    assert load_aliases(path) == {"northampton shire cc": "E10000021"}
    row = _one("Northampton Shire CC", "2019-01-01", aliases=path)
    assert (row["gss_code"], row["method"]) == ("E10000021", "alias")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"name": ["x"], "code": ["E06000001"]}), "needs columns alias,gss_code"),
        ({"Hartlepool Borough": "E99999999"}, "not in the council register"),
        ({"Durham": "E06000001"}, "is the official name of E06000047 County Durham"),
        (pd.DataFrame({"alias": ["Foo", "foo"], "gss_code": ["E06000001", "E06000002"]}),
         "given twice"),
        ({"  ": "E06000001"}, "alias is empty"),
    ],
)
def test_bad_study_aliases_are_config_errors(table, message) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(["Kent"], aliases=table)


def test_unreadable_alias_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the aliases CSV"):
        load_aliases(tmp_path / "missing.csv")


def test_register_types_and_counts() -> None:
    assert len(REGISTER) == 165 and REGISTER["gss_code"].is_unique
    assert REGISTER["dfe_la_code"].str.fullmatch(r"\d{3}").all()
    assert REGISTER.set_index("gss_code").loc["E06000053", "dfe_la_code"] == "420"
    assert pd.api.types.is_datetime64_any_dtype(REGISTER["valid_from"])
    assert pd.api.types.is_datetime64_any_dtype(REGISTER["valid_to"])
    assert len(councils_on("2013-04-01")) == 152
    assert len(councils_on("2024-04-01")) == 153
    assert set(councils_on("2012-04-01")["gss_code"]) >= {"E06000048", "E08000020"}


def test_load_register_returns_an_independent_copy() -> None:
    frame = load_register()
    frame.loc[0, "name"] = "changed"
    assert load_register().loc[0, "name"] == "Hartlepool"


def test_register_is_consistent_for_resolution() -> None:
    """The invariants resolution relies on; rerun after refreshing data/councils.csv."""
    frame = load_register()
    successors = frame["successor_codes"].str.split(";").explode()
    assert set(successors[successors != ""]) <= CODES
    ended = frame["valid_to"].notna()
    assert (frame.loc[ended, "successor_codes"] != "").all()
    for day in pd.date_range("2009-04-01", "2026-04-01", freq="MS"):
        live = frame[(frame["valid_from"] <= day) & (frame["valid_to"].isna() | (frame["valid_to"] >= day))]
        assert live["dfe_la_code"].is_unique, day
        assert live["name"].map(normalise).is_unique, day


def test_shipped_aliases_all_resolve_to_their_code() -> None:
    shipped = resources.files("impactstudy.councils") / "council_aliases.csv"
    aliases = pd.read_csv(io.StringIO(shipped.read_text(encoding="utf-8")), dtype=str)
    out = resolve(aliases["alias"], as_of="2019-06-01")
    assert (out["method"] == "alias").all()
    # On 2019-06-01 only "Bucks" points at a different row of the same name (the county).
    differs = out["gss_code"] != aliases["gss_code"]
    assert list(out.loc[differs, "gss_code"]) == ["E10000002"]
    assert list(aliases.loc[differs, "alias"]) == ["Bucks"]


def test_resolve_to_csv() -> None:
    text = resolve_to_csv(["E06000023", "Est Sussex", None], as_of="2024-01-01")
    lines = text.splitlines()
    assert lines[0] == "input,gss_code,name,method,score,note"
    assert lines[1] == 'E06000023,E06000023,"Bristol, City of",code,100.0,GSS code'
    assert lines[2].startswith("Est Sussex,,,unmatched,,ambiguous:")
    assert lines[3] == ",,,unmatched,,empty"


def test_many_repeated_values_are_fast() -> None:
    pool = list(REGISTER["name"]) + list(REGISTER["gss_code"]) + ["Bristol", "Hartlepol", None]
    values = [pool[(i * 7919) % len(pool)] for i in range(10_000)]
    start = time.perf_counter()
    out = resolve(values, as_of="2024-01-01")
    assert time.perf_counter() - start < 1.0
    assert len(out) == 10_000


anything = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([v for v, _, _ in SPELLINGS] + ["Est Sussex", "Cumbria", "Poole"]),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=st.lists(anything, max_size=15),
       as_of=st.dates(min_value=date(2009, 4, 1), max_value=date(2030, 12, 31)))
def test_property_never_raises_and_returns_register_codes(values, as_of) -> None:
    out = resolve(values, as_of=as_of)
    assert len(out) == len(values)
    assert list(out.columns) == RESULT_COLUMNS
    assert set(out["gss_code"].dropna()) <= CODES
    assert set(out["method"]) <= {"code", "exact", "alias", "fuzzy", "unmatched"}
    matched = out["method"] != "unmatched"
    assert out.loc[matched, "gss_code"].notna().all()
    assert out.loc[~matched, "gss_code"].isna().all() and out.loc[~matched, "score"].isna().all()
    # Whatever was matched is valid on the date asked for.
    live = set(councils_on(as_of)["gss_code"])
    assert set(out.loc[matched, "gss_code"]) <= live
