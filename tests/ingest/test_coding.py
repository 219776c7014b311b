"""Coding sheets out and codes back in: the ``[[coding]]`` sections, ``impactstudy verbatims``, the
returned sheets' errors, and the resolution of double-coded answers (docs/coding.md)."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impactstudy import stages
from impactstudy.errors import ConfigError, DataError
from impactstudy.pipeline.coding import NOT_CODED, answer_ids, read_returned, resolve_codes, tick
from impactstudy.pipeline.coding_sheets import assign, coding_workbook, fill_sheet
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import CodingFile, load_study, parse_study
from impactstudy.verbatims import read_answers, write_sheets

WRITTEN = datetime(2015, 6, 1, 9, 0)
OPTIONS = ("people", "method", "follow_up")

CODED_TOML = """
title = "Coded study"

[[waves]]
id = "one"
label = "Wave one"
file = "one.csv"
council = "Council"
respondent = "ID"
role = "Role"

[[waves]]
id = "two"
label = "Wave two"
file = "two.csv"
council = "Council"
respondent = "ID"
role = "Role"

[[measures]]
name = "lesson"
label = "Lessons (free text)"
type = "text"
columns = { one = "Lesson", two = "Lesson text" }

[[measures]]
name = "quote_ok"
label = "May we quote you?"
type = "binary"
columns = { one = "Quote OK", two = "Quote OK" }

[[measures]]
name = "lesson_theme"
label = "Themes in the lessons"
type = "multi"
options = { people = "Who took part", method = "The method", follow_up = "Follow-up" }

[[coding]]
question = "lesson"
themes = "lesson_theme"
consent = "quote_ok"
{files}
"""


def write_coded_study(root: Path, files: str = "", n: int = 12) -> StudyPaths:
    """Two CSV waves, each with a free-text question (a few answers blank) coded against three themes."""
    (root / "pipelines" / "coded").mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / "coded" / "study.toml").write_text(textwrap.dedent(CODED_TOML).replace("{files}", files),
                                                             encoding="utf-8")
    raw = root / "data" / "raw" / "coded"
    raw.mkdir(parents=True, exist_ok=True)
    councils = ["Hartlepool", "Middlesbrough", "Manchester", "Leeds"]
    for wave, text_column in (("one", "Lesson"), ("two", "Lesson text")):
        frame = pd.DataFrame({
            "Council": [councils[i % 4] for i in range(n)],
            "ID": [f"R{i}" for i in range(n)],
            "Role": ["Lead" if i % 2 else "Partner" for i in range(n)],
            text_column: ["" if i % 5 == 4 else f"{wave} answer {i}: =SUM(A1) & <b>" for i in range(n)],
            "Quote OK": ["Yes" if i % 3 else "No" for i in range(n)],
        })
        (raw / f"{wave}.csv").write_bytes(frame.to_csv(index=False).encode("utf-8"))
    return StudyPaths(root.resolve(), "coded")


def set_files(paths: StudyPaths, files: str) -> None:
    text = paths.config.read_text(encoding="utf-8")
    start = text.index('consent = "quote_ok"\n') + len('consent = "quote_ok"\n')
    paths.config.write_text(text[:start] + files + "\n", encoding="utf-8")


@pytest.fixture
def coded(tmp_path):
    paths = write_coded_study(tmp_path)
    stages.run("coded", ["ingest"], root=tmp_path)
    return paths


def sheets_for(paths: StudyPaths, coders=("AB", "CD"), overlap=0.5):
    study = load_study(paths.config, "coded")
    return study, write_sheets(study, paths, list(coders), overlap, seed=7, written=WRITTEN)


def sheet_ids(path: Path, sheet: str = "lesson") -> list[str]:
    wb = openpyxl.load_workbook(path)
    return [r[0] for r in wb[sheet].iter_rows(min_row=2, values_only=True)]


def return_sheet(paths: StudyPaths, study, coder: str, ticks, quotes=(), notes=None, edit=None) -> str:
    wb = openpyxl.load_workbook(paths.coding_dir / f"coding_{coder}.xlsx")
    fill_sheet(wb, study, "lesson", ticks, quotes, notes)
    if edit is not None:
        edit(wb["lesson"])
    name = f"returned_{coder}.xlsx"
    wb.save(paths.raw / name)
    return name


# ------------------------------------------------------------------------------------------------ config


def _parse(extra: str, themes_columns: str = "") -> None:
    text = textwrap.dedent(CODED_TOML).replace("{files}", extra)
    if themes_columns:
        text = text.replace('follow_up = "Follow-up" }', 'follow_up = "Follow-up" }\n' + themes_columns)
    import tomllib

    parse_study(tomllib.loads(text), "coded", Path("study.toml"))


def test_the_coded_set_is_asked_wherever_its_text_is():
    import tomllib

    study = parse_study(tomllib.loads(textwrap.dedent(CODED_TOML).replace("{files}", "")), "coded", Path("s.toml"))
    member = study.measure("lesson_theme_method")
    assert member.coded_from == "lesson" and member.coding_frame_for == "lesson"
    assert dict(member.columns) == {"one": "Lesson", "two": "Lesson text"}
    coding = study.coding_of("lesson")
    assert (coding.resolve, coding.alpha_threshold, coding.consent, coding.files) == ("primary", 0.67, "quote_ok", ())


@pytest.mark.parametrize("extra, themes_columns, message", [
    ('alpha_treshold = 0.8', "", "unknown key 'alpha_treshold' (did you mean 'alpha_threshold'?)"),
    ('resolve = "eithr"', "", "'resolve' must be one of primary, either, both, got 'eithr' (did you mean 'either'?)"),
    ('alpha_threshold = 1.5', "", "'alpha_threshold' must be above 0 and at most 1"),
    ('files = [{ file = "x.csv", coderr = "AB" }]', "", "unknown key 'coderr' (did you mean 'coder'?)"),
    ('files = ["../x.xlsx"]', "", "must be a path inside the study's raw folder"),
    ("", 'columns.one = { people = "p" }', "its codes come from the returned coding sheets"),
])
def test_coding_config_errors_name_the_key(extra, themes_columns, message):
    with pytest.raises(ConfigError, match=None) as err:
        _parse(extra, themes_columns)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_coding_must_name_a_text_question_and_a_multi_frame():
    import tomllib

    base = textwrap.dedent(CODED_TOML).replace("{files}", "")
    for old, new, message in (('question = "lesson"', 'question = "lesson_x"', "did you mean 'lesson'?"),
                              ('themes = "lesson_theme"', 'themes = "lesson_them"', "[[coding]] names themes 'lesson_them': did you mean 'lesson_theme'?"),
                              ('consent = "quote_ok"', 'consent = "lesson"', "'consent' must name a binary measure")):
        with pytest.raises(ConfigError) as err:
            parse_study(tomllib.loads(base.replace(old, new)), "coded", Path("s.toml"))
        assert message in str(err.value)


def test_a_consent_question_is_administrative_unless_it_says_analyse_true():
    import tomllib

    base = textwrap.dedent(CODED_TOML).replace("{files}", "")
    study = parse_study(tomllib.loads(base), "coded", Path("s.toml"))
    assert not study.measure("quote_ok").analyse and study.measure("lesson_theme_people").analyse
    assert [m.name for m in study.research_measures] == [m.name for m in study.analysed_measures if m.name != "quote_ok"]
    kept = parse_study(tomllib.loads(base.replace('type = "binary"\n', 'type = "binary"\nanalyse = true\n')), "coded",
                       Path("s.toml"))
    assert kept.measure("quote_ok").analyse  # declared: the researcher wants the consent rate modelled
    not_coded = parse_study(tomllib.loads(base.replace('consent = "quote_ok"\n', "")), "coded", Path("s.toml"))
    assert not_coded.measure("quote_ok").analyse  # without [[coding]] naming it, a binary question like any other
    dropped = parse_study(tomllib.loads(base.replace('type = "multi"\n', 'type = "multi"\nanalyse = false\n')), "coded",
                          Path("s.toml"))
    assert not any(m.analyse for m in dropped.set_members("lesson_theme"))  # a set's flag is each option's
    with pytest.raises(ConfigError) as err:
        parse_study(tomllib.loads(base.replace('type = "binary"\n', 'type = "binary"\nanalyse = "no"\n')), "coded",
                    Path("s.toml"))
    assert "measure 'quote_ok': 'analyse' must be bool" in str(err.value)


# ------------------------------------------------------------------------------------------ pure parts


def _frame(rows):
    return pd.DataFrame(rows, columns=["wave", "source_row", "council_raw", "respondent_id"])


def test_answer_ids_are_stable_unique_and_carry_no_identity():
    frame = _frame([("one", 1, "Leeds", "P1"), ("one", 2, "Leeds", "P2"), ("two", 1, "Leeds", "P1"),
                    ("one", 3, "Leeds", None)])
    ids = answer_ids(frame, "coded", "lesson")
    assert ids.str.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}").all() and ids.nunique() == 4
    moved = _frame([("one", 9, "LEEDS", "P1")])  # the row moved in a late file: the same answer
    assert answer_ids(moved, "coded", "lesson").iloc[0] == ids.iloc[0]
    assert answer_ids(frame, "other", "lesson").iloc[0] != ids.iloc[0]  # another study's ids differ
    assert answer_ids(frame, "coded", "other").iloc[0] != ids.iloc[0]
    assert not any("P1" in i or "Leeds" in i for i in ids)


@pytest.mark.parametrize("value, counts, expected", [
    ("x", False, True), ("X", False, True), (1, False, True), ("✓", False, True), (True, False, True),
    ("", False, False), (None, False, False), (0, False, False), ("AB", False, None), ("2", False, None),
    ("2", True, True), (3.0, True, True), ("0", True, False), ("-1", True, None), ("maybe", True, None),
])
def test_tick(value, counts, expected):
    assert tick(value, counts=counts) is expected


def _codes(rows):
    out = []
    for answer, coder, role, ticked in rows:
        out += [{"answer_id": answer, "coder": coder, "coder_role": role, "theme": t, "coded": int(t in ticked)}
                for t in OPTIONS]
    return pd.DataFrame(out)


CODES = _codes([("a", "AB", "primary", {"people"}), ("a", "CD", "second", {"people", "method"}),
                ("b", "CD", "primary", {"method"}), ("b", "AB", "second", set()),
                ("c", "AB", "primary", {"follow_up"}), ("c", "CD", "second", {"people"}), ("c", "ZZ", "adjudicator", {"method"})])


@pytest.mark.parametrize("rule, expected", [
    ("primary", {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 1, 0]}),
    ("either", {"a": [1, 1, 0], "b": [0, 1, 0], "c": [0, 1, 0]}),
    ("both", {"a": [1, 0, 0], "b": [0, 0, 0], "c": [0, 1, 0]}),
])
def test_resolution_rules_and_the_adjudicator(rule, expected):
    got = resolve_codes(CODES, pd.Index(["a", "b", "c", "d"]), list(OPTIONS), rule, adjudicator="ZZ")
    for answer, values in expected.items():
        assert got.loc[answer].tolist() == values, (rule, answer)
    assert got.loc["d"].isna().all()  # nobody coded it


def test_primary_falls_back_to_the_first_listed_coder():
    codes = CODES.assign(coder_role="")
    got = resolve_codes(codes[codes["coder"] != "ZZ"], pd.Index(["c"]), list(OPTIONS), "primary",
                        coder_order=["CD", "AB"])
    assert got.loc["c"].tolist() == [1, 0, 0]  # CD's codes


def test_assign_deals_evenly_and_double_codes_the_overlap():
    answers = pd.DataFrame({"question": "q", "wave": ["one"] * 40 + ["two"] * 20, "answer_id": [f"id{i}" for i in range(60)]})
    rows = assign(answers, ["AB", "CD", "EF"], 0.3, seed=1)
    primary = rows[rows["coder_role"] == "primary"]
    second = rows[rows["coder_role"] == "second"]
    assert sorted(primary["answer_id"]) == sorted(answers["answer_id"])
    dealt = primary.groupby(["wave", "coder"]).size()
    assert sorted(dealt["one"]) == [13, 13, 14] and sorted(dealt["two"]) == [6, 7, 7]  # each wave dealt evenly
    assert len(second) == 12 + 6
    pairs = rows.groupby("answer_id")["coder"].agg(list)
    assert all(len(set(c)) == len(c) for c in pairs)  # never twice to one coder
    assert assign(answers, ["AB", "CD", "EF"], 0.3, seed=1).equals(rows)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(2, 5), st.floats(0, 1), st.integers(0, 2**31))
def test_assign_for_any_split(n, k, overlap, seed):
    answers = pd.DataFrame({"question": "q", "wave": "one", "answer_id": [f"id{i}" for i in range(n)]})
    coders = [f"C{j}" for j in range(k)]
    rows = assign(answers, coders, overlap, seed)
    primary = rows[rows["coder_role"] == "primary"]
    assert sorted(primary["answer_id"]) == sorted(answers["answer_id"])  # every answer once, to one coder first
    assert (rows["coder_role"] == "second").sum() == int(round(overlap * n))
    assert not rows.duplicated(["answer_id", "coder"]).any()
    dealt = primary["coder"].value_counts().reindex(coders, fill_value=0)
    assert dealt.max() - dealt.min() <= 1


# ---------------------------------------------------------------------------------------- round trips


def test_a_rerun_with_other_coders_sets_the_old_workbooks_aside(coded):
    study, first = sheets_for(coded, coders=("AB", "CD"))
    returned = return_sheet(coded, study, "AB", {})  # AB's returned copy, in data/raw
    ab_ids = sheet_ids(first[0])
    raw_before = {p: p.read_bytes() for p in coded.raw.rglob("*") if p.is_file()}
    (coded.coding_dir / "notes.txt").write_text("the team's own file", encoding="utf-8")
    lines: list[str] = []
    again = write_sheets(study, coded, ["CD", "EF"], 0.5, seed=7, written=WRITTEN, log=lines.append)
    assert sorted(p.name for p in coded.coding_dir.glob("coding_*.xlsx")) == ["coding_CD.xlsx", "coding_EF.xlsx"]
    previous = coded.coding_dir / "previous" / "coding_AB.xlsx"
    assert sheet_ids(previous) == ab_ids  # moved, not rewritten
    assert (coded.coding_dir / "notes.txt").is_file()  # only the workbooks it writes are moved
    assert [line for line in lines if "previous" in line] == [
        "verbatims: data/processed/coded/coding/coding_AB.xlsx is an earlier run's sheet for a coder not in this run: "
        "moved to data/processed/coded/coding/previous/coding_AB.xlsx (delete it once nobody codes on it)"]
    assert {p: p.read_bytes() for p in coded.raw.rglob("*") if p.is_file()} == raw_before  # the returned sheet untouched
    assert (coded.raw / returned).is_file() and [p.name for p in again] == ["coding_CD.xlsx", "coding_EF.xlsx"]
    write_sheets(study, coded, ["CD", "EF"], 0.5, seed=7, written=WRITTEN, log=lines.append)  # same coders: nothing moved
    assert len([line for line in lines if "previous" in line]) == 1


def test_round_trip_codes_equal_what_was_ticked(coded):
    study, written = sheets_for(coded)
    assert [p.name for p in written] == ["coding_AB.xlsx", "coding_CD.xlsx"]
    answers = read_answers(study, coded)
    assert len(answers) == 20  # 2 waves x 12 rows, 2 blank in each
    ticked, rng = {}, np.random.default_rng(3)
    names = []
    for coder in ("AB", "CD"):
        ids = sheet_ids(coded.coding_dir / f"coding_{coder}.xlsx")
        ticks = {a: [o for o in OPTIONS if rng.random() < 0.4] for a in ids[1:]}  # the first left uncoded
        ticked[coder] = ticks
        names.append(return_sheet(coded, study, coder, ticks, quotes=ids[1:3], notes={ids[1]: "=HYPERLINK(x)"}))
    set_files(coded, f"files = {json.dumps(names)}")
    stages.run("coded", ["ingest"], root=coded.root)
    codes = pd.read_parquet(coded.codes)
    assert list(codes.columns) == ["question", "wave", "source_row", "answer_id", "coder", "coder_role", "theme",
                                   "coded", "quote", "note"]
    got = {(r.coder, r.answer_id): set() for r in codes.itertuples()}
    for r in codes[codes["coded"] == 1].itertuples():
        got[(r.coder, r.answer_id)].add(r.theme)
    assert got == {(c, a): set(t) for c, ticks in ticked.items() for a, t in ticks.items()}
    assert codes.loc[codes["note"] != "", "note"].unique().tolist() == ["=HYPERLINK(x)"]  # kept as text
    assert codes.groupby(["coder", "answer_id"])["quote"].first().sum() == 4
    merged = codes.merge(answers[["answer_id", "wave", "source_row"]], on="answer_id", suffixes=("", "_answer"))
    assert (merged["wave"] == merged["wave_answer"]).all() and (merged["source_row"] == merged["source_row_answer"]).all()

    report = json.loads(coded.ingest_report.read_text())["coding"]["lesson"]
    double = codes.drop_duplicates(["answer_id", "coder"]).groupby("answer_id").size()
    assert report["double_coded"] == int((double == 2).sum()) >= 8  # 10 given to two coders, each left one uncoded
    uncoded = set(answers["answer_id"]) - set(codes["answer_id"])
    assert report["uncoded"] == len(uncoded) and report["coded"] == 20 - len(uncoded)
    assert report["answers_not_found"] == [] and report["unknown_themes"] == []

    # the primary coder's codes are the measures of the wave files (the other coder's where the primary
    # left an answer uncoded); uncoded answers are "Not coded"
    has_primary = codes.groupby("answer_id")["coder_role"].transform(lambda r: (r == "primary").any())
    roles = codes[(codes["coder_role"] == "primary") | ~has_primary]
    for wave in ("one", "two"):
        data = pd.read_parquet(coded.wave_file(wave))
        ids = answer_ids(data, "coded", "lesson")
        for option in OPTIONS:
            expected = roles[roles["theme"] == option].set_index("answer_id")["coded"]
            column = data[f"lesson_theme_{option}"]
            values = ids.map(expected)
            assert np.allclose(column.fillna(-1), values.astype(float).fillna(-1))
            reasons = data[f"lesson_theme_{option}__missing"]
            assert set(reasons[data["lesson"].isna()]) == {"No answer"}
            assert (reasons[data["lesson"].notna() & column.isna()] == NOT_CODED).all()


def test_late_rows_keep_the_codes_of_the_answers_they_did_not_move(coded):
    study, _ = sheets_for(coded, coders=("AB",), overlap=0)
    ids = sheet_ids(coded.coding_dir / "coding_AB.xlsx")
    name = return_sheet(coded, study, "AB", {a: ["people"] for a in ids})
    set_files(coded, f"files = [\"{name}\"]")
    raw = coded.raw / "one.csv"
    frame = pd.read_csv(raw, dtype=str, keep_default_na=False)
    late = pd.DataFrame({"Council": ["Leeds"], "ID": ["R99"], "Role": ["Lead"], "Lesson": ["a late answer"],
                         "Quote OK": ["Yes"]})
    frame.loc[0, "Lesson"] = "an answer corrected after coding"
    pd.concat([late, frame]).to_csv(raw, index=False)  # the late row first: every source row moves
    stages.run("coded", ["ingest"], root=coded.root)
    report = json.loads(coded.ingest_report.read_text())["coding"]["lesson"]
    assert (report["answers"], report["coded"], report["uncoded"]) == (21, 20, 1)
    assert report["changed"] == 1  # reported, its codes kept
    assert pd.read_parquet(coded.wave_file("one"))["lesson_theme_people"].sum() == 10


def test_unknown_answers_and_themes_are_reported_not_dropped(coded, capsys):
    from impactstudy.cli import main

    study, _ = sheets_for(coded, coders=("AB",), overlap=0)
    ids = sheet_ids(coded.coding_dir / "coding_AB.xlsx")

    def edit(ws):
        ws.cell(row=2, column=1).value = "ZZZZ-ZZZZ-ZZZZ"  # an answer that does not exist
        ws.cell(row=1, column=ws.max_column + 1).value = "Leadership"  # a new theme
        ws.cell(row=3, column=ws.max_column).value = "x"

    name = return_sheet(coded, study, "AB", {a: ["method"] for a in ids}, edit=edit)
    set_files(coded, f"files = [\"{name}\"]")
    assert main(["ingest", "--study", "coded", "--root", str(coded.root)]) == 0
    err = capsys.readouterr().err
    report = json.loads(coded.ingest_report.read_text())["coding"]["lesson"]
    assert report["answers_not_found"] == [{"file": f"data/raw/coded/{name}", "coder": "AB",
                                            "answer_id": "ZZZZ-ZZZZ-ZZZZ", "sheet_row": 2}]
    assert report["unknown_themes"] == [{"file": f"data/raw/coded/{name}", "coder": "AB", "column": "Leadership",
                                         "answers_ticked": 1}]
    assert (report["coded"], report["uncoded"]) == (19, 1)
    assert "coding lesson: 20 answers, 19 coded (0 by two coders), 1 not coded yet" in err
    assert "'Leadership' (1 answer(s) ticked)" in err and "ZZZZ-ZZZZ-ZZZZ" in err


def test_an_nvivo_matrix_is_read_with_its_coder(coded):
    study = load_study(coded.config, "coded")
    answers = read_answers(study, coded)
    ids = answers["answer_id"].tolist()
    matrix = pd.DataFrame({"": [f"Cases\\\\{a}" for a in ids], "A : Who took part": [2] + [0] * (len(ids) - 1),
                           "B : The method": [0, 1] + [0] * (len(ids) - 2), "C : follow_up": [0] * len(ids)})
    matrix.to_csv(coded.raw / "nvivo.csv", index=False)
    set_files(coded, 'files = [{ file = "nvivo.csv", coder = "EF" }]')
    stages.run("coded", ["ingest"], root=coded.root)
    codes = pd.read_parquet(coded.codes)
    assert set(codes["answer_id"]) == set(ids[:2])  # all-zero rows: not coded
    assert codes.loc[codes["coded"] == 1, ["answer_id", "theme"]].values.tolist() == [[ids[0], "people"], [ids[1], "method"]]
    assert set(codes["coder"]) == {"EF"} and set(codes["coder_role"]) == {"primary"}


# -------------------------------------------------------------------------------------------- bad sheets


def _bad(coded, edit, message, config_files=None):
    study, _ = sheets_for(coded, coders=("AB",), overlap=0)
    ids = sheet_ids(coded.coding_dir / "coding_AB.xlsx")
    name = return_sheet(coded, study, "AB", {a: ["people"] for a in ids[:3]}, edit=edit)
    set_files(coded, config_files or f"files = [\"{name}\"]")
    with pytest.raises(DataError) as err:
        stages.run("coded", ["ingest"], root=coded.root)
    text = str(err.value)
    assert message in text and "\n" not in text and f"returned_AB.xlsx" in text, text


def _set(row, column, value):
    def edit(ws):
        ws.cell(row=row, column=column).value = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(1, 7, "Who took part?"), "column 'Who took part' is missing (closest: 'Who took part?')"),
    (_set(1, 11, "Quotes"), "column 'Quote' is missing (closest: 'Quotes')"),
    (lambda ws: ws.merge_cells("B3:D3"), "cells B3:D3 are merged"),
    (_set(30, 6, "Total: 12 answers"), "row 30: 'Total: 12 answers' is not an answer id"),
    (_set(3, 7, "AB"), "row 3, column 'Who took part': 'AB' is not a tick"),
    (_set(4, 11, "yes please"), "row 4, column 'Quote': 'yes please' is not a tick"),
    (lambda ws: [_set(2, 7, "x")(ws), _set(2, 10, "x")(ws)], "row 2: ticks 'No theme' and a theme"),
    (_set(3, 1, "Total"), "row 3: 'Total' is not an answer id"),
    (lambda ws: _set(5, 1, ws.cell(row=4, column=1).value)(ws), "is in rows 4 and 5; keep one row per answer"),
])
def test_bad_returned_sheets_get_one_line_errors(coded, edit, message):
    _bad(coded, edit, message)


def test_validate_lists_every_bad_returned_sheet(coded):
    from impactstudy.validate import validate_study

    study, _ = sheets_for(coded, coders=("AB",), overlap=0)
    name = return_sheet(coded, study, "AB", {}, edit=_set(3, 7, "AB"))
    set_files(coded, f'files = ["{name}", "missing.xlsx"]')
    problems = validate_study(load_study(coded.config, "coded"), coded)
    assert len(problems) == 2 and "'AB' is not a tick" in problems[0] and "not found" in problems[1]


def test_a_sheet_from_another_study_is_refused(coded, tmp_path):
    other = write_coded_study(tmp_path / "other")
    text = other.config.read_text().replace('title = "Coded study"', 'title = "Other"')
    (other.root / "pipelines" / "coded2").mkdir()
    (other.root / "pipelines" / "coded2" / "study.toml").write_text(text)
    (other.root / "data" / "raw" / "coded").rename(other.root / "data" / "raw" / "coded2")
    stages.run("coded2", ["ingest"], root=other.root)
    study2 = load_study(other.root / "pipelines" / "coded2" / "study.toml", "coded2")
    (path,) = write_sheets(study2, StudyPaths(other.root.resolve(), "coded2"), ["AB"], 0.0, 1, written=WRITTEN)
    (coded.raw / "theirs.xlsx").write_bytes(path.read_bytes())
    set_files(coded, 'files = ["theirs.xlsx"]')
    with pytest.raises(DataError, match="is a coding sheet of study 'coded2', not 'coded'"):
        stages.run("coded", ["ingest"], root=coded.root)


def test_a_matrix_needs_its_coder_and_every_theme(coded):
    pd.DataFrame({"case": ["AAAA-BBBB-CCCC"], "Who took part": [1]}).to_csv(coded.raw / "m.csv", index=False)
    set_files(coded, 'files = ["m.csv"]')
    with pytest.raises(DataError, match=r"name its coder in the config: files = \[\{ file = \"m.csv\", coder"):
        stages.run("coded", ["ingest"], root=coded.root)
    set_files(coded, 'files = [{ file = "m.csv", coder = "EF" }]')
    with pytest.raises(DataError, match="no column for theme 'The method'"):
        stages.run("coded", ["ingest"], root=coded.root)
    set_files(coded, 'files = [{ file = "missing.xlsx", coder = "EF" }]')
    with pytest.raises(DataError, match="returned coding file not found"):
        stages.run("coded", ["ingest"], root=coded.root)


# ------------------------------------------------------------------------------------ the workbook itself


def test_the_workbook_is_marked_sensitive_and_keeps_formulas_as_text(coded):
    study, (path, _) = sheets_for(coded)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Read me", "lesson", "_impactstudy"]
    assert wb["_impactstudy"].sheet_state == "veryHidden"
    assert "OFFICIAL-SENSITIVE" in wb.properties.title and wb.properties.keywords == "OFFICIAL-SENSITIVE"
    assert wb["Read me"]["A1"].value.startswith("OFFICIAL-SENSITIVE")
    ws = wb["lesson"]
    assert [c.value for c in ws[1]] == ["Answer ID", "Wave", "Council", "Role", "Respondent", "Answer",
                                        "Who took part", "The method", "Follow-up", "No theme", "Quote", "Notes"]
    answers = [r[5] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert all("=SUM(A1)" in a for a in answers)
    assert all(c.data_type == "s" for row in ws.iter_rows(min_row=2, max_col=6) for c in row)
    respondents = {r[4] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert not respondents & {f"R{i}" for i in range(12)}  # pseudonyms only


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sets(st.sampled_from(OPTIONS)), st.booleans(), st.booleans(),
                          st.text(st.characters(codec="utf-8"), max_size=20)), min_size=1, max_size=12),
       st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
def test_any_ticks_read_back_as_written(tmp_path_factory, rows, answer_text):
    import tomllib

    study = parse_study(tomllib.loads(textwrap.dedent(CODED_TOML).replace("{files}", "")), "coded", Path("s.toml"))
    ids = [f"AAAA-AAAA-{i:04d}".replace("0", "A").replace("1", "B").replace("8", "C").replace("9", "D") for i in range(len(rows))]
    answers = pd.DataFrame({"question": "lesson", "wave": "one", "wave_label": "Wave one", "source_row": range(1, len(rows) + 1),
                            "answer_id": ids, "council": "Leeds", "role": "Lead", "respondent": "P1", "answer": answer_text})
    table = assign(answers, ["AB"], 0.0, 1)
    wb = coding_workbook(table, study, "AB", WRITTEN)
    coded_rows = {a: sorted(t) for a, (t, _, done, _) in zip(ids, rows, strict=True) if done or t}
    fill_sheet(wb, study, "lesson", coded_rows, quotes=[a for a, r in zip(ids, rows, strict=True) if r[1]],
               notes={a: r[3] for a, r in zip(ids, rows, strict=True)})
    path = tmp_path_factory.mktemp("wb") / "AB.xlsx"
    wb.save(path)
    back = read_returned(path, "AB.xlsx", CodingFile("AB.xlsx"), study.coding_of("lesson"), study)
    got = {a: sorted(g.loc[g["coded"] == 1, "theme"]) for a, g in back.codes.groupby("answer_id")}
    assert got == coded_rows
    assert set(back.uncoded) == set(ids) - set(coded_rows)
    for a, r in zip(ids, rows, strict=True):
        if a in coded_rows:
            row = back.codes[back.codes["answer_id"] == a].iloc[0]
            assert bool(row["quote"]) == r[1]
    assert set(back.codes["coder_role"]) <= {"primary"}
