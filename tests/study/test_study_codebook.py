"""The codebook and the SPSS/Stata missing codes, derived from the config (study/codebook.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.study.codebook import SYSTEM_MISSING, codebook, missing_codes, spss_missing
from impactstudy.study.config import Measure, ModelSettings, ReadOptions, Study, Wave, load_study

TEXT_KEYS = ["DK", "Refused", "n/a", "skip"]
DEMO = Path(__file__).resolve().parents[2] / "src" / "impactstudy" / "demo" / "demo_study.toml"


def _likert(levels=(1.0, 2.0, 3.0, 4.0, 5.0), missing=None, **kw) -> Measure:
    return Measure(name="m", label="M", type="likert", columns={"w1": "q1"}, levels=tuple(levels),
                   level_labels={v: f"L{v:g}" for v in levels}, missing=missing or {}, **kw)


def test_declared_numeric_codes_are_kept_and_text_only_reasons_get_nines_above_the_scale():
    codes = missing_codes(_likert(missing={"8.0": "Don't know", "9.0": "Not applicable", "Can't say": "Don't know",
                                           "Refused": "Refused"}))
    assert [(c.reason, c.code, c.tag) for c in codes] == [("Don't know", 8.0, "a"), ("Not applicable", 9.0, "b"),
                                                        ("Refused", 7.0, "c")]
    assert codes[0].declared == ("8", "Can't say")
    wide = missing_codes(_likert(levels=range(0, 11), missing={"DK": "Don't know", "NA": "Not applicable"}))
    assert [c.code for c in wide] == [99.0, 98.0]


def test_a_declared_code_that_is_also_a_level_or_a_recode_target_is_replaced():
    codes = missing_codes(_likert(missing={"3.0": "Don't know"}))
    assert codes[0].code == 9.0
    recoded = missing_codes(_likert(missing={"9.0": "Don't know", "x": "Other"}, recode={"w1": {"Top": 9.0}}))
    assert [c.code for c in recoded] == [99.0, 98.0]  # 9 is a valid code there, so the codes go above it


def test_numeric_measure_codes_lie_above_the_largest_answer_and_found_reasons_follow_declared_ones():
    amount = Measure(name="n", label="N", type="numeric", columns={"w1": "x"}, missing={"Don't know": "Don't know"})
    assert missing_codes(amount, observed_max=450.0)[0].code == 999.0
    bounded = Measure(name="n", label="N", type="numeric", columns={"w1": "x"}, maximum=100.0,
                      missing={"-1.0": "Refused"})
    codes = missing_codes(bounded, extra=["No answer", "Refused", "Skipped by routing", "Out of range"])
    assert [(c.reason, c.code) for c in codes] == [("Refused", -1.0), ("Skipped by routing", 999.0)]
    text = Measure(name="t", label="T", type="text", columns={"w1": "x"}, missing={"DK": "Don't know"})
    assert missing_codes(text) == ()


def test_more_than_three_codes_become_one_spss_range():
    codes = missing_codes(_likert(missing={k: k for k in ("A", "B", "C", "D")}))
    assert [c.code for c in codes] == [9.0, 8.0, 7.0, 6.0]
    assert spss_missing(codes) == [{"lo": 6.0, "hi": 9.0}]
    assert spss_missing(codes[:3]) == [7.0, 8.0, 9.0]


@settings(max_examples=150, deadline=None)
@given(levels=st.lists(st.integers(-5, 120), min_size=2, max_size=12, unique=True).map(sorted),
       declared=st.dictionaries(st.one_of(st.integers(-9, 130).map(lambda v: repr(float(v))),
                                          st.sampled_from(TEXT_KEYS)),
                                st.sampled_from(["Don't know", "Refused", "Not applicable", "Skipped", "Other"]),
                                max_size=6))
def test_codes_are_distinct_never_valid_and_keep_a_usable_declared_code(levels, declared):
    measure = _likert(levels=[float(v) for v in levels], missing=declared)
    codes = missing_codes(measure)
    assert [c.reason for c in codes] == list(dict.fromkeys(declared.values()))
    assert len({c.code for c in codes}) == len(codes) and len({c.tag for c in codes}) == len(codes)
    assert not any(c.code in measure.levels for c in codes)
    for c in codes:
        usable = [float(k) for k, r in declared.items() if r == c.reason and k not in TEXT_KEYS
                  and float(k) not in measure.levels]
        if usable:  # the first usable declared code is kept unless an earlier reason took it
            assert c.code in usable or any(o.code == usable[0] for o in codes if o is not c)
        else:
            assert c.code > max(levels)


def test_the_demo_codebook():
    study = load_study(DEMO, "demo")
    measures, sources = codebook(study, {"baseline": {"q1_1": "How effective is leadership?"}})
    row = measures.set_index("Variable").loc["eff_leadership"]
    assert row["Label"] == "Effectiveness: leadership and governance"
    assert row["Type"] == "Likert scale, 5 points (ordinal)"
    assert row["Values and labels"].startswith("1 = Very ineffective; 2 = Ineffective;")
    assert row["Missing codes"] == "8 (Stata .a) = Don't know; 9 (Stata .b) = Not applicable"
    assert row["Reversed in"] == "Longer-term follow-up (about a year after)"
    assert measures.set_index("Variable").loc["usefulness", "Missing codes"] == "9 (Stata .a) = Don't know"
    assert measures.set_index("Variable").loc["reason_ofsted", "Type"] == "Yes/No (nominal); an option of the set reason"
    assert len(measures) == len(study.analysed_measures)
    assert len(sources) == sum(len(m.columns) for m in study.analysed_measures)
    first = sources[(sources["Variable"] == "eff_leadership")].reset_index(drop=True)
    assert first["Source column"].tolist() == ["q1_1", "How effective is: Leadership and governance", "q4_1"]
    assert first.loc[0, "Question in the file"] == "How effective is leadership?"
    assert first["Reversed"].str.startswith("yes").tolist() == [False, False, True]
    assert not set(SYSTEM_MISSING) & set(" ".join(measures["Missing codes"]).split("; "))


def test_recodes_are_listed_per_wave():
    measure = _likert(recode={"w1": {"Strongly agree": 5.0, repr(6.0): 5.0}})

    wave = Wave(id="w1", label="Wave 1", order=0, file="w1.csv", format="csv", read=ReadOptions(), council="c")
    study = Study(name="s", title="S", description="", waves=(wave,), measures=(measure,), councils=None, aims=(),
                  expectations=(), models=ModelSettings())
    _, sources = codebook(study)
    assert sources["Recodes"].tolist() == ["'Strongly agree' \u2192 5; 6 \u2192 5"]
