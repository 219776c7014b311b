"""Coded themes in the report: redaction, quote selection, and proof that no name in a quote reaches
the public bundle (every file, the workbook's and the document's XML included)."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy.councils import name_keys
from impactstudy.model import themes as model_themes
from impactstudy.pipeline.atomic import read_parquet_metadata, write_csv, write_parquet
from impactstudy.report import themes
from impactstudy.report.redact import COUNCIL, NAME, ORDINARY_WORDS, Redactor, fold
from impactstudy.report.stage import run_report
from impactstudy.study.config import Coding

from report_fixtures import build_study, write_model_outputs

# quotes naming councils of the register (in the study or not), by official name, alias and variant
NAMED = ["Jane Smith led the staff engagement work and it made the review worthwhile",
         "Stoke-on-Trent showed us how to brief frontline staff well before the review",
         "Like BANES we found staff engagement made the findings land with managers",
         "The team from Kingston upon Hull, City of, were honest about staff engagement with us",
         "St. Helens and saint helens both said staff engagement was the key lesson here"]
SENTINELS = ["Stoke-on-Trent", "Stoke on Trent", "BANES", "Kingston upon Hull", "St. Helens", "saint helens",
             "Jane Smith"]


def test_redactor_finds_register_names_aliases_and_study_names_as_whole_words():
    r = Redactor.create(name_keys(), ["Jane Smith", "Westfield Academy"])
    assert r.redact("We visited Stoke-on-Trent, BANES and Hull.") == (f"We visited {COUNCIL}, {COUNCIL} and {COUNCIL}.", 3)
    assert r.redact("Bath and North East Somerset; Bath") == (f"{COUNCIL}; {COUNCIL}", 2)  # the longest name first
    assert r.redact("the Kentish model") == ("the Kentish model", 0)  # Kent only as a whole word
    assert r.redact("ST. HELENS, Saint Helens") == (f"{COUNCIL}, {COUNCIL}", 2)
    assert r.redact("jane smith at westfield academy") == (f"{NAME} at {NAME}", 2)
    assert r.redact("Brighton & Hove") == (COUNCIL, 1)


def test_names_are_matched_as_names_and_ambiguous_words_err_on_removing():
    r = Redactor.create(name_keys(), ["Jane Smith", "Hope"])
    kept = ["reading the report helped", "the hull of the ship", "we had to stoke interest", "a bath and a derby",
            "staffs from both teams", "stop havering and decide", "a harrow in the field", "they wilts"]
    for text in kept:  # ordinary words that are also councils' names, written as words
        assert r.redact(text) == (text, 0), text
    removed = {"we visited Reading": f"we visited {COUNCIL}",
               "Reading the report helped": f"{COUNCIL} the report helped",  # capitalised: cannot tell, so removed
               "READING HELPED": f"{COUNCIL} HELPED", "staff from bury council": f"staff from {COUNCIL}",
               "the borough of harrow": COUNCIL, "we visited wigan": f"we visited {COUNCIL}",  # no ordinary word
               "stoke-on-trent, stoke on trent": f"{COUNCIL}, {COUNCIL}",  # several words: however written
               "the Hull team": f"the {COUNCIL} team",
               "jane smith gave us hope": f"{NAME} gave us {NAME}"}  # the study's own names: however written
    for text, expected in removed.items():
        assert r.redact(text)[0] == expected, text


def test_every_ordinary_word_is_a_one_word_name_of_the_register():
    one_word = {k for k in (tuple(fold(w) for w in re.findall(r"\w+|&", n)) for n in name_keys()) if len(k) == 1}
    assert {(w,) for w in ORDINARY_WORDS} <= one_word


def test_select_quotes_prefers_marked_then_shortest_distinct_long_enough():
    c = pd.DataFrame({"wave": ["w"] * 6, "source_row": range(1, 7),
                      "text": ["Yes.", "Staff engagement mattered most of all to us", "staff engagement mattered most of all to us!",
                               "Briefing staff early made them feel part of it", "A long answer " * 10, "Marked one"]})
    out = themes.select_quotes(c, marked={("w", 6)}, n=3)
    assert list(out["source_row"]) == [6, 2, 4]  # marked first, then the shortest of five words or more, no duplicate
    out = themes.select_quotes(c, marked=set(), n=2, used={"staff engagement mattered most of all to us"})
    assert list(out["source_row"]) == [4, 5]  # a text quoted for another theme only when nothing else is left


@pytest.fixture(scope="module")
def named_bundles(tmp_path_factory):
    """The 6-council study with lessons that name councils and a person, all consenting, quoted publicly."""
    study, paths = build_study(tmp_path_factory.mktemp("named"), 6)
    panel = pd.read_parquet(paths.panel_long)
    meta = read_parquet_metadata(paths.panel_long)
    lessons = panel.index[(panel["measure"] == "lessons") & panel["value_label"].notna()]
    names = panel.loc[lessons, "council_name"].astype(str).tolist()
    # every answer names a council: one of NAMED, or its own council's name
    panel.loc[lessons, "value_label"] = [NAMED[i % len(NAMED)] if i % 2 else f"{name} learnt that staff engagement pays off"
                                         for i, name in enumerate(names)]
    staff = panel.index[panel["measure"] == "theme_staff_engagement"]
    panel.loc[staff, "value"] = 1.0  # every answer mentions the theme, so it rests on enough respondents to quote
    # the coders marked the answer naming a person as a quote for the theme (codes.parquet, as the ingest writes it)
    jane = panel.loc[lessons][panel.loc[lessons, "value_label"].str.startswith("Jane")].iloc[0]
    pd.DataFrame([{"question": "lessons", "wave": jane["wave"], "source_row": jane["source_row"], "answer_id": "A-1",
                   "coder": "AB", "theme": "staff_engagement", "coded": 1, "quote": True, "note": ""}]).to_parquet(
        paths.processed / "codes.parquet")
    consent = panel.loc[lessons].assign(measure="quote_ok", value=1.0, value_label="Yes")
    # the question recurs: the same answers and codes again at the early-impact wave
    coded = panel["measure"].astype(str).str.startswith("theme_") | (panel["measure"] == "lessons")
    again = panel[coded & (panel["wave"] == "follow_up")].assign(wave="early_impact", wave_order=1)
    panel = pd.concat([panel, consent, again], ignore_index=True)
    panel["role"] = panel["role"].astype("string").where(panel["role"] != "Lead member", "Lead member, Stoke-on-Trent")
    # the coder-marked quote (always shown) is a lead member's, so a role naming a council is beside a quote
    marked = (panel["council_code"] == jane["council_code"]) & (panel["respondent_id"] == jane["respondent_id"])
    panel.loc[marked, "role"] = "Lead member, Stoke-on-Trent"
    # a free-text role only the other councils' officers gave, naming a council: its group is left out in public
    others = sorted(set(panel["council_code"].astype(str)) - {str(jane["council_code"])})[:3]
    officer = panel["council_code"].astype(str).isin(others) & (panel["role"] != "Lead member, Stoke-on-Trent")
    panel.loc[officer, "role"] = "Head of the Wigan front door"
    panel["measure"] = panel["measure"].astype("string")
    write_parquet(paths.panel_long, panel, meta)
    study = dataclasses.replace(study, redact_names=("Jane Smith",),
                                coding=(Coding(question="lessons", themes="theme", consent="quote_ok"),))
    write_model_outputs(paths.root, study)
    # two coders who agree on every theme but one, which they code at random
    rng = np.random.default_rng(5)
    options = [m.option for m in study.set_members("theme")]
    codes = pd.DataFrame([{"question": "lessons", "answer_id": str(i), "coder": coder, "theme": option,
                           "coded": int(rng.random() < 0.5) if option == "monitoring" and coder == "CD" else (i + j) % 3 == 0}
                          for i in range(40) for coder in ("AB", "CD") for j, option in enumerate(options)])
    agreement = model_themes.agreement_table(codes, {"lessons": options}, {"lessons": 0.67}, draws=300)
    write_csv(paths.tables / "agreement.csv", agreement)
    run_report(study, paths)
    return study, paths, sorted(set(names))


def _public_texts(bundle: Path) -> dict[str, str]:
    out = {}
    for path in bundle.rglob("*"):
        if path.suffix in (".xlsx", ".docx"):
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    if member.endswith(".xml"):
                        xml = z.read(member).decode("utf-8")
                        out[f"{path.name}:{member}"] = re.sub(r"<[^>]+>", "", xml)  # text split across runs joins up
        elif path.is_file() and path.suffix in (".html", ".csv", ".svg", ".json"):
            out[path.name] = path.read_text(encoding="utf-8-sig")
    return out


def test_no_name_in_a_quote_reaches_any_public_file(named_bundles):
    _, paths, council_names = named_bundles
    public = _public_texts(paths.bundle("public"))
    assert any(name.endswith(".docx:word/document.xml") for name in public) and any(".xlsx:" in n for n in public)
    page = public["index.html"]
    assert "In their own words" in page and COUNCIL in page and NAME in page  # quotes were published, redacted
    assert f"Lead member, {COUNCIL}, " in page  # the role beside a quote is redacted too
    for name, text in public.items():
        folded = text.casefold()
        for sentinel in SENTINELS:
            assert sentinel.casefold() not in folded, (name, sentinel)
        for council in council_names:
            assert f"{council} learnt".casefold() not in folded, (name, council)
    internal = (paths.bundle("internal") / "index.html").read_text(encoding="utf-8")
    assert "Jane Smith led" in internal  # the research team sees what was said


def test_roles_in_public_tables_are_redacted_and_those_of_few_councils_left_out(named_bundles):
    study, paths, _ = named_bundles
    public = _public_texts(paths.bundle("public"))
    assert not any("wigan" in text.casefold() for text in public.values())  # in no table, chart, CSV or document
    # six councils of a few respondents: every role rests on fewer than min_cell coded answers, so no role table
    assert not list((paths.bundle("public") / "tables").glob("themes-*-role.csv"))
    internal = pd.read_csv(paths.bundle("internal") / "tables" / "themes-theme-role.csv", encoding="utf-8-sig")
    assert {"Head of the Wigan front door", "Lead member, Stoke-on-Trent"} <= set(internal.columns)  # the team sees all


def test_public_quotes_carry_no_council_and_need_consent_and_enough_respondents(named_bundles):
    study, paths, council_names = named_bundles
    page = (paths.bundle("public") / "index.html").read_text(encoding="utf-8")
    quotes = page[page.index("In their own words"):]
    quotes = quotes[:quotes.index("</section>")]
    for council in council_names:
        assert council not in quotes
    # only the theme every answer mentions rests on enough respondents in the 6-council study
    themes_quoted = re.findall(r"<p>([^<]+):</p>", quotes)
    themes_table = pd.read_csv(paths.tables / "themes.csv")
    wave = themes_table[(themes_table["group"] == "all")]
    allowed = {study.measure(m).option_label for m in wave.loc[wave["n_selected"] >= study.min_cell, "measure"]}
    assert themes_quoted and set(themes_quoted) <= allowed


def test_agreement_table_and_low_agreement_flag_in_both_bundles(named_bundles):
    _, paths, _ = named_bundles
    for audience in ("public", "internal"):
        page = (paths.bundle(audience) / "index.html").read_text(encoding="utf-8")
        assert "How far the coders agreed" in page and "40 answers were coded by two or more coders" in page
        assert "1 theme fell short of the study&#39;s threshold (alpha 0.67): Ongoing monitoring." in page
        assert "Ongoing monitoring (low coder agreement)" in page  # marked in the frequency chart and table
        assert "300 seeded draws" in page
        table = pd.read_csv(paths.bundle(audience) / "tables" / "agreement-theme.csv", encoding="utf-8-sig")
        flags = dict(zip(table["Theme"], table["Flag"].fillna("")))
        assert flags["Ongoing monitoring"] == "alpha below 0.67" and flags["Staff engagement"] == ""
        assert any(c.startswith("Cohen's kappa, AB & CD") for c in table.columns)


def test_a_recurring_question_gets_one_chart_across_waves_and_its_changes(named_bundles):
    _, paths, _ = named_bundles
    internal = paths.bundle("internal")
    assert (internal / "figures" / "theme_themes.svg").is_file()
    assert not list((internal / "figures").glob("theme_*_themes.svg"))  # no bar chart per wave
    data = pd.read_csv(internal / "figures" / "theme_themes.csv", encoding="utf-8-sig")
    assert set(data["Wave"]) == {"Early impact (about 3 months after)", "Longer-term follow-up (about a year after)"}
    changes = pd.read_csv(internal / "tables" / "theme-changes-theme.csv", encoding="utf-8-sig")
    assert len(changes) == len(data) // 2  # one change per theme
    page = (internal / "index.html").read_text(encoding="utf-8")
    assert "How the themes in lessons for other councils (free text) changed between waves" in page
