"""Tests for the demo-study generator: layout per config, metadata, deliberate mess, truth, determinism."""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from impactstudy import demo
from impactstudy.councils import resolve
from impactstudy.demo import answers
from impactstudy.demo import model as demo_model
from impactstudy.errors import ConfigError
from impactstudy.study.config import load_study

EFF = ["eff_leadership", "eff_performance", "eff_partnership", "eff_practice", "eff_voice", "eff_workforce"]
EFFECTIVE_LABELS = {"Very ineffective", "Ineffective", "Neither effective nor ineffective", "Effective",
                    "Very effective"}


def _generate(root: Path, **kwargs) -> dict:
    return demo.generate(root, **kwargs)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo40")
    summary = _generate(root)
    study = load_study(root / "pipelines" / "demo" / "study.toml", "demo")
    return root, summary, study


def _raw(root: Path, study, wave_id: str):
    wave = study.wave(wave_id)
    path = root / "data" / "raw" / "demo" / wave.file
    if wave.format == "csv":
        return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False), None
    return pyreadstat.read_sav(path, user_missing=True)


def _register() -> pd.DataFrame:
    return pd.read_csv(Path(str(resources.files("impactstudy.councils") / "councils.csv")), dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------------------------ layout


def test_config_loads_with_the_template_waves_and_title(made):
    _, summary, study = made
    assert study.wave_ids == ("baseline", "early_impact", "follow_up")
    assert study.title == "Longer-term impact of safeguarding children peer reviews (synthetic demo)"
    assert summary["files"] == ["councils.csv", "wave1_baseline.sav", "wave2_early_impact.csv",
                                "wave3_follow_up.sav", "cin_outcomes.csv", "coding/coding_AB.xlsx",
                                "coding/coding_CD.xlsx", "truth.json"]


def test_every_configured_column_and_nothing_else_is_in_each_raw_file(made):
    root, _, study = made
    for wave in study.waves:
        frame, _ = _raw(root, study, wave.id)
        ids = [c for c in (wave.council, wave.council_check, wave.respondent, wave.role, wave.submitted) if c]
        measures = [m.columns[wave.id] for m in study.measures if wave.id in m.columns and not m.coded_from]
        assert list(frame.columns) == ids + measures, wave.id


def test_councils_file_is_a_stratified_sample_live_in_2013(made):
    root, summary, _ = made
    councils = pd.read_csv(root / "data" / "raw" / "demo" / "councils.csv", dtype=str)
    register = _register()
    assert list(councils.columns) == ["council", "name", "status", "review_date"]
    assert len(councils) == 40 and councils["council"].is_unique
    live = register[(register["valid_from"] <= "2013-04-01")
                     & ((register["valid_to"] == "") | (register["valid_to"] >= "2013-04-01"))]
    merged = councils.merge(live, left_on="council", right_on="gss_code", validate="1:1")
    assert len(merged) == 40 and (merged["name_x"] == merged["name_y"]).all()
    assert merged["authority_type"].nunique() == 4 and merged["region"].nunique() == 9
    assert {"Bristol, City of", "Brighton and Hove", "St. Helens", "County Durham"} <= set(councils["name"])
    assert councils["status"].value_counts().to_dict() == {"Adequate": 14, "Good": 12, "Notice to Improve": 10,
                                                           "Outstanding": 4}
    assert summary["status_counts"]["Notice to Improve"] == 10
    assert councils["review_date"].between("2012-07-01", "2013-06-30").all()


def test_sav_files_carry_labels_user_missing_and_measurement_levels(made):
    root, _, study = made
    data, meta = _raw(root, study, "baseline")
    assert meta.variable_value_labels["q1_1"] == {1.0: "Very ineffective", 2.0: "Ineffective",
                                                  3.0: "Neither effective nor ineffective", 4.0: "Effective",
                                                  5.0: "Very effective", 8.0: "Don't know", 9.0: "Not applicable"}
    assert meta.missing_ranges["q1_1"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]
    assert meta.missing_ranges["q3"] == [{"lo": 8.0, "hi": 8.0}]
    assert meta.variable_value_labels["role"][1.0] == "Director of Children's Services / strategic lead"
    assert meta.variable_measure["q1_1"] == "ordinal" and meta.variable_measure["q2_r1"] == "nominal"
    assert meta.column_names_to_labels["q1_1"] == "Effectiveness: leadership and governance"
    assert meta.file_label == "Before the review"
    assert set(data["role"]) <= {1.0, 2.0, 3.0, 4.0}
    assert {8.0, 9.0} <= set(pd.concat([data[f"q1_{i}"] for i in range(1, 7)]))  # some Don't know / N/A
    assert data["la_code"].str.fullmatch(r"E\d{8}").all()
    follow, fmeta = _raw(root, study, "follow_up")
    assert fmeta.missing_ranges["q8"] == [{"lo": 999.0, "hi": 999.0}]
    assert fmeta.variable_measure["q8"] == "scale"
    assert follow["dfe_la"].dtype == float and follow["dfe_la"].between(200, 999).all()
    assert set(follow["q8"].dropna()) <= {*range(0, 101, 5), 999}


def test_follow_up_scale_is_reversed_in_codes_and_labels(made):
    root, _, study = made
    data, meta = _raw(root, study, "follow_up")
    assert meta.variable_value_labels["q4_1"][1.0] == "Very effective"
    assert meta.variable_value_labels["q4_1"][5.0] == "Very ineffective"
    codes = pd.concat([data[f"q4_{i}"] for i in range(1, 7)])
    # True mean effectiveness is about 4 on the 5 = very effective scale, so reversed codes sit near 2.
    assert codes[codes <= 5].mean() < 2.6  # effective answers carry low codes (unreversed, the mean is near 3.6)
    baseline, _ = _raw(root, study, "baseline")
    assert baseline["q1_1"][baseline["q1_1"] <= 5].mean() > 3.2


def test_csv_is_an_online_export_with_bom_and_answer_texts(made):
    root, _, study = made
    wave = study.wave("early_impact")
    raw = (root / "data" / "raw" / "demo" / wave.file).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    frame, _ = _raw(root, study, "early_impact")
    eff = study.measure("eff_leadership").columns["early_impact"]
    assert eff == "How effective is: Leadership and governance"
    answers = set(frame[eff])
    assert answers <= EFFECTIVE_LABELS | {"Don't know", "Not applicable"}
    assert "Very effective" in answers and "Don't know" in answers
    assert set(frame["Your role"]) == set(demo_model.ROLES.values())
    assert frame["Submitted"].str.fullmatch(r"\d\d/\d\d/20\d\d \d\d:\d\d").all()
    useful = set(frame["Overall, how useful was the peer review?"])
    assert useful <= {*study.measure("usefulness").level_labels.values(), "Don't know"}


def test_submissions_fall_in_fieldwork_and_around_each_review(made):
    root, _, study = made
    councils = pd.read_csv(root / "data" / "raw" / "demo" / "councils.csv", dtype=str)
    review = dict(zip(councils["council"], pd.to_datetime(councils["review_date"]), strict=True))
    baseline, _ = _raw(root, study, "baseline")
    wave = study.wave("baseline")
    assert baseline["submitted_at"].between(pd.Timestamp(wave.fieldwork_start), pd.Timestamp(wave.fieldwork_end)).all()
    lead = baseline["la_code"].map(review) - baseline["submitted_at"].dt.normalize()
    assert (lead.dt.days >= 1).all() and (lead.dt.days <= 120).all()
    follow, _ = _raw(root, study, "follow_up")
    fw = study.wave("follow_up")
    assert follow["submitted_at"].between(pd.Timestamp(fw.fieldwork_start), pd.Timestamp(fw.fieldwork_end)).all()
    assert list(follow["submitted_at"]) == sorted(follow["submitted_at"])


# -------------------------------------------------------------------------------------------- mess


def test_exactly_one_duplicate_submission_with_one_answer_changed(made):
    root, summary, study = made
    data, _ = _raw(root, study, "baseline")
    dup = summary["mess"]["duplicate"]
    assert data["resp_id"].duplicated().sum() == 1
    assert data["resp_id"][data["resp_id"].duplicated(keep=False)].unique().tolist() == [dup["respondent_id"]]
    draft, final = (data.iloc[r - 1] for r in dup["source_rows"])
    assert draft["submitted_at"] < final["submitted_at"]
    differs = [c for c in data.columns if not (draft[c] == final[c] or (pd.isna(draft[c]) and pd.isna(final[c])))]
    assert differs == ["submitted_at", dup["column"]]
    assert [draft[dup["column"]], final[dup["column"]]] == dup["values"]


def test_exactly_one_row_from_a_council_not_in_the_register(made):
    root, summary, study = made
    data, _ = _raw(root, study, "follow_up")
    register_codes = set(_register()["dfe_la_code"].astype(float))
    unknown = data.index[~data["dfe_la"].isin(register_codes)].tolist()
    assert [i + 1 for i in unknown] == [summary["mess"]["unknown_council"]["source_row"]]
    assert data.at[unknown[0], "dfe_la"] == 999.0


def test_exactly_one_out_of_range_effectiveness_code(made):
    root, summary, study = made
    data, _ = _raw(root, study, "follow_up")
    columns = [study.measure(m).columns["follow_up"] for m in EFF]
    values = data[columns]
    bad = [(i + 1, c, v) for c in columns for i, v in values[c].items() if v not in {1, 2, 3, 4, 5, 8, 9}]
    mess = summary["mess"]["out_of_range"]
    assert bad == [(mess["source_row"], mess["column"], 7.0)]


def test_exactly_one_conflicting_la_name(made):
    root, summary, study = made
    data, _ = _raw(root, study, "baseline")
    names = dict(zip(_register()["gss_code"], _register()["name"], strict=True))
    conflict = data.index[data["la_code"].map(names) != data["la_name"]].tolist()
    mess = summary["mess"]["conflicting_check"]
    assert [i + 1 for i in conflict] == [mess["source_row"]]
    assert data.at[conflict[0], "la_name"] == mess["value"] and mess["value"] in names.values()


def test_early_impact_names_use_register_names_variants_and_one_fuzzy_typo(made):
    root, summary, study = made
    frame, _ = _raw(root, study, "early_impact")
    column = study.wave("early_impact").council
    variants = {v["value"] for v in summary["mess"]["name_variants"]}
    assert {"Bristol", "Brighton", "St Helens", "Durham"} <= variants
    typo = summary["mess"]["typo"]
    odd = frame.index[~frame[column].isin(set(_register()["name"]) | variants)].tolist()
    assert [i + 1 for i in odd] == [typo["source_row"]]
    linked = resolve(sorted(set(frame[column])), as_of="2014-01-31").set_index("input")
    assert linked.loc[typo["value"], "method"] == "fuzzy"
    assert linked.loc[typo["value"], "gss_code"] == typo["gss_code"]
    for variant in summary["mess"]["name_variants"]:
        assert linked.loc[variant["value"], "gss_code"] == variant["gss_code"]
    assert (linked["method"] != "unmatched").all()
    assert linked.loc["Bristol", "method"] == "exact" and linked.loc["Brighton", "method"] == "alias"


def test_free_text_is_awkward_and_its_true_themes_match_the_phrases_used(made):
    root, _, study = made
    data, _ = _raw(root, study, "follow_up")
    text = data["q11_text"]
    joined = "".join(text)
    for char in ("<", "&", '"', "’", "é"):
        assert char in joined
    assert not any(c.startswith("theme_") or c.startswith("_") for c in data.columns)  # themes come from the coders
    truth = json.loads((root / "data" / "raw" / "demo" / "truth.json").read_text())["coding"]["questions"]["lessons"]
    by_row = {a["source_row"]: a["themes"] for a in truth["answers"]}
    themes = study.set_members("theme")
    for i, row in data.iterrows():
        if row["q11_text"] == "":
            assert i + 1 not in by_row
            continue
        used = [m.option for m in themes if any(p in row["q11_text"] for p in answers.LESSON_PHRASES[m.option])]
        assert by_row[i + 1] == used
    assert 0 < (text == "").sum() < len(text) / 4


def test_respondents_recur_across_waves_and_some_are_replaced(made):
    root, _, study = made
    baseline, _ = _raw(root, study, "baseline")
    early, _ = _raw(root, study, "early_impact")
    follow, _ = _raw(root, study, "follow_up")
    known = set(baseline["resp_id"])
    assert baseline.groupby("la_code")["resp_id"].nunique().between(1, 4).all()
    for ids in (early["Respondent ID"], follow["resp_id"]):
        assert 0.75 < ids.isin(known).mean() < 1.0
    emails = dict(zip(baseline["resp_id"], baseline["resp_email"], strict=False))
    same = follow[follow["resp_id"].isin(known)]
    assert (same["email"] == same["resp_id"].map(emails)).all()
    assert baseline["resp_name"].str.contains(r"[^\x00-\x7f]").any()


def test_attrition_depends_on_status(tmp_path):
    summary = _generate(tmp_path, councils=150)
    study = load_study(tmp_path / "pipelines" / "demo" / "study.toml")
    councils = pd.read_csv(tmp_path / "data" / "raw" / "demo" / "councils.csv", dtype=str)
    baseline, _ = _raw(tmp_path, study, "baseline")
    follow, _ = _raw(tmp_path, study, "follow_up")
    dfe = dict(zip(_register()["gss_code"], _register()["dfe_la_code"].astype(float), strict=True))
    seats = baseline.drop_duplicates("resp_id").groupby("la_code").size()
    answered = follow.groupby("dfe_la").size()
    councils["seats"] = councils["council"].map(seats)
    councils["answered"] = [answered.get(dfe[c], 0) for c in councils["council"]]
    pooled = councils.groupby("status")[["seats", "answered"]].sum()
    rates = pooled["answered"] / pooled["seats"]
    # Seats answer with probability 0.5 (NtI) or 0.72-0.76; a council's only seat always answers.
    assert rates["Notice to Improve"] < min(rates.drop("Notice to Improve")) - 0.1
    assert 0.3 < rates["Notice to Improve"] < 0.6
    truth = json.loads((tmp_path / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))
    assert truth["attrition"]["response_probability"]["Notice to Improve"]["follow_up"] == 0.5
    assert summary["status_counts"]["Notice to Improve"] == 38


# ---------------------------------------------------------------------------------- truth & model


def _monte_carlo(truth: dict, measure: str, status: str, wave: str, rng: np.random.Generator, n: int) -> float:
    model = truth["model"]
    mean = (model["base"][measure] + model["status_offset"][status]
            + model["gain"][measure] * model["status_gain"][status] * model["trajectory"][wave])
    sd = model["sd"]
    latent = (mean + rng.normal(0, sd["council"], n) + rng.normal(0, sd["respondent"], n)
              + rng.normal(0, sd["residual"], n) + rng.normal(0, sd["council_change"], n) * model["trajectory"][wave])
    return float(np.clip(np.round(latent), 1, 5).mean())


def test_truth_matches_a_monte_carlo_of_the_generating_model(made):
    root, _, _ = made
    truth = json.loads((root / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))
    assert truth["seed"] == demo.DEFAULT_SEED
    assert truth["model"]["icc"] == {"council": 0.2, "respondent": 0.1}
    sd = truth["model"]["sd"]
    assert sd["council"] ** 2 + sd["respondent"] ** 2 + sd["residual"] ** 2 == pytest.approx(sd["total"] ** 2)
    rng = np.random.default_rng(7)
    counts = truth["status_counts"]
    waves = ("baseline", "early_impact", "follow_up")
    means = {(m, s, w): _monte_carlo(truth, m, s, w, rng, 100_000) for m in EFF for s in counts for w in waves}
    effects = truth["effects"]
    assert len(effects) == len(EFF) * 3 * (len(counts) + 1)  # 3 contrasts × (statuses + all)
    for row in effects:
        later, earlier = row["contrast"].split(" - ")
        groups = counts if row["group"] == "all" else {row["group"].removeprefix("status="): 1}
        total = sum(groups.values())
        simulated = sum(n * (means[row["measure"], s, later] - means[row["measure"], s, earlier])
                        for s, n in groups.items()) / total
        assert row["estimate"] == pytest.approx(simulated, abs=0.02), row
    voice = [r["estimate"] for r in effects if r["measure"] == "eff_voice"]
    # no gain; the council-level change (tau) only widens the later waves' spread, which moves the
    # expected clipped score by a few thousandths
    assert sd["council_change"] == demo.MODEL.council_change_sd > 0
    assert max(abs(v) for v in voice) < 0.005
    nti = next(r for r in effects if r["measure"] == "eff_leadership" and r["contrast"] == "follow_up - baseline"
               and r["group"] == "status=Notice to Improve")
    good = next(r for r in effects if r["measure"] == "eff_leadership" and r["contrast"] == "follow_up - baseline"
                and r["group"] == "status=Good")
    assert nti["estimate"] > 2 * good["estimate"] > 0 and nti["mean_earlier"] < good["mean_earlier"]


def test_the_generator_draws_from_the_model_truth_describes(made):
    """The generator's own code path, on a large synthetic wave, reproduces truth.json's means."""
    root, _, study = made
    truth = json.loads((root / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(11)
    n = 200_000
    rows = pd.DataFrame({"status": "Notice to Improve", "council": np.arange(n),  # a council per row
                         "council_re": rng.normal(0, demo.MODEL.council_sd, n),
                         "resp_re": rng.normal(0, demo.MODEL.respondent_sd, n)})
    ctx = answers.Context(study, pd.DataFrame(index=range(n)), pd.DataFrame(), seed=11)
    measure = study.measure("eff_leadership")
    for wave in study.waves:
        codes = answers._effectiveness(ctx, wave, rows, [measure], rng)[measure.name]
        valid = codes[codes > 0]
        row = next(r for r in truth["effects"] if r["measure"] == measure.name
                   and r["group"] == "status=Notice to Improve" and r["contrast"].startswith(f"{wave.id} - baseline")
                   ) if wave.order else None
        expected = row["mean_later"] if row else next(
            r["mean_earlier"] for r in truth["effects"] if r["group"] == "status=Notice to Improve")
        assert valid.mean() == pytest.approx(expected, abs=0.02)
        assert (codes < 0).mean() == pytest.approx(0.04, abs=0.005)  # Don't know + Not applicable


def test_expected_observed_is_exact_at_the_edges():
    assert demo_model.expected_observed(3.0, 1e-9, (1, 2, 3, 4, 5)) == pytest.approx(3.0)
    assert demo_model.expected_observed(50.0, 1.0, (1, 2, 3, 4, 5)) == pytest.approx(5.0)
    assert demo_model.expected_observed(3.0, 0.8, (1, 2, 3, 4, 5)) == pytest.approx(3.0)  # symmetric about 3


# --------------------------------------------------------------------------- determinism & options


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_give_byte_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _generate(first)
    time.sleep(1.1)  # the SPSS header would carry a different write time
    _generate(second)
    assert _tree(first) == _tree(second)
    assert len(_tree(first)) == 10  # config, 5 raw files, truth.json, 2 coding sheets, the salt they need


def test_another_seed_gives_other_data(tmp_path):
    _generate(tmp_path / "a")
    _generate(tmp_path / "b", seed=7)
    assert _tree(tmp_path / "a")["data/raw/demo/wave1_baseline.sav"] != _tree(tmp_path / "b")["data/raw/demo/wave1_baseline.sav"]


def test_extra_wave_adds_a_second_follow_up_and_keeps_earlier_waves(tmp_path, made):
    root, _, _ = made
    summary = _generate(tmp_path, extra_waves=1)
    study = load_study(tmp_path / "pipelines" / "demo" / "study.toml")
    wave = study.wave("follow_up_2")
    assert (wave.label, wave.file, wave.council) == (
        "Second follow-up (about two years after)", "wave4_follow_up_2.sav", "dfe_la")
    assert str(wave.fieldwork_start) == "2014-06-01"
    for name in EFF:
        m = study.measure(name)
        assert m.columns["follow_up_2"] == m.columns["follow_up"] and m.reverse == ("follow_up", "follow_up_2")
    text = (tmp_path / "pipelines" / "demo" / "study.toml").read_text(encoding="utf-8")
    assert "# DfE 3-digit codes" in text and text.count("[[waves]]") == 4
    data, meta = _raw(tmp_path, study, "follow_up_2")
    assert list(data.columns) == ["dfe_la", "resp_id", "role", "submitted_at"] + [f"q4_{i}" for i in range(1, 7)]
    assert meta.variable_value_labels["q4_1"][1.0] == "Very effective"
    assert summary["waves"]["follow_up_2"]["rows"] > 40
    before, after = _tree(root), _tree(tmp_path)
    for name in ("councils.csv", "wave1_baseline.sav", "wave2_early_impact.csv", "wave3_follow_up.sav"):
        assert before[f"data/raw/demo/{name}"] == after[f"data/raw/demo/{name}"]
    truth = json.loads(after["data/raw/demo/truth.json"])
    contrasts = {r["contrast"] for r in truth["effects"]}
    assert {"follow_up_2 - baseline", "follow_up_2 - follow_up"} <= contrasts


def test_six_councils_make_a_small_study_with_every_wave(tmp_path):
    summary = _generate(tmp_path, councils=6, study="small")
    study = load_study(tmp_path / "pipelines" / "small" / "study.toml")
    assert study.title.endswith("(synthetic demo, 6 councils)")
    councils = pd.read_csv(tmp_path / "data" / "raw" / "small" / "councils.csv", dtype=str)
    assert len(councils) == 6 and {"Bristol, City of", "Brighton and Hove"} <= set(councils["name"])
    assert councils["status"].value_counts().to_dict() == {"Notice to Improve": 2, "Adequate": 2, "Good": 2}
    for wave_id, info in summary["waves"].items():
        assert info["rows"] >= 6, wave_id
    follow = pyreadstat.read_sav(tmp_path / "data" / "raw" / "small" / "wave3_follow_up.sav")[0]
    assert follow["dfe_la"].nunique() == 7  # every council, plus the one not in the register
    assert summary["mess"]["not_produced"] == []
    assert {"duplicate", "conflicting_check", "typo", "unknown_council", "out_of_range"} <= set(summary["mess"])


@pytest.mark.parametrize("kwargs", [{"councils": 1}, {"councils": 500}, {"extra_waves": 4},
                                    {"respondents": (0, 3)}, {"respondents": (3, 2)}, {"study": "a b"}])
def test_bad_arguments_are_user_errors(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        _generate(tmp_path, **kwargs)


def test_run_refuses_to_overwrite_unless_forced_and_removes_stale_waves(tmp_path):
    demo.run(tmp_path, extra_waves=1, councils=6)
    raw = tmp_path / "data" / "raw" / "demo"
    assert (raw / "wave4_follow_up_2.sav").is_file()
    with pytest.raises(ConfigError, match="--force"):
        demo.run(tmp_path, councils=6)
    summary = demo.run(tmp_path, councils=6, force=True)
    assert not (raw / "wave4_follow_up_2.sav").exists()
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()) == sorted(summary["files"])
    assert re.search(r"6 councils", (tmp_path / "pipelines" / "demo" / "study.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("study", "councils"), [("demo", 40), ("demo6", 6)])
def test_the_tracked_demo_configs_are_what_the_generator_writes(study, councils):
    """`make report` on a fresh clone runs `impactstudy demo`, which refuses a study.toml that differs from
    the one it would write: the tracked copies must follow every edit of the packaged template."""
    from impactstudy.demo.config_text import study_text
    from impactstudy.demo.generator import _template

    tracked = Path(__file__).resolve().parents[2] / "pipelines" / study / "study.toml"
    assert tracked.read_text(encoding="utf-8") == study_text(_template(), councils, 0), (
        f"{tracked} is stale: regenerate it with `impactstudy demo --study {study} --councils {councils} --force`")
