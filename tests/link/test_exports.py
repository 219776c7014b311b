"""The panels for SPSS, PSPP and Stata (link/exports.py): read back with pyreadstat, GNU PSPP and R haven."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from impactstudy.link.exports import Export, long_export, write_exports
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.study.config import CouncilsFile, Measure, ModelSettings, ReadOptions, Study, Wave

PSPP = shutil.which("pspp")
RSCRIPT = shutil.which("Rscript")


@pytest.fixture(scope="module")
def demo(demo_root):
    return StudyPaths(demo_root, "demo")


@pytest.fixture(scope="module")
def panel(demo):
    return pd.read_parquet(demo.panel_long)


def _reason_counts(panel: pd.DataFrame, measure: str) -> pd.Series:
    return panel.loc[panel["measure"] == measure, "missing_reason"].value_counts()


def test_long_sav_has_levels_formats_user_missing_and_labels(demo, panel):
    frame, meta = pyreadstat.read_sav(str(demo.panel_sav), user_missing=True)
    assert meta.variable_measure["eff_leadership"] == "ordinal" and meta.variable_measure["attribution"] == "scale"
    assert meta.variable_measure["improvement_plan"] == "nominal" and meta.variable_measure["wave"] == "ordinal"
    assert meta.variable_measure["region"] == "nominal" and meta.variable_measure["review_date"] == "scale"
    assert meta.original_variable_types["eff_leadership"] == "F1.0" and meta.original_variable_types["wave"] == "F1.0"
    assert meta.original_variable_types["review_date"] == "DATE11"
    assert meta.missing_ranges["eff_leadership"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]
    assert meta.variable_value_labels["eff_leadership"][8.0] == "Don't know"
    assert meta.variable_value_labels["usefulness"] == {1.0: "Not at all useful", 2.0: "Not very useful", 3.0: "Fairly useful",
                                                        4.0: "Very useful", 5.0: "Extremely useful", 9.0: "Don't know"}
    assert meta.column_names_to_labels["status"] == "status"
    assert set(meta.variable_value_labels["status"].values()) == set(panel["status"].dropna().astype(str))
    reasons = _reason_counts(panel, "eff_leadership")
    codes = frame["eff_leadership"].value_counts()
    assert codes.get(8.0, 0) == reasons.get("Don't know", 0) > 0  # every declared missing answer kept as its code
    assert codes.get(9.0, 0) == reasons.get("Not applicable", 0)
    blank = frame["eff_leadership"].isna().sum()
    asked = frame["wave"].isin([1.0, 2.0, 3.0]).sum()
    assert blank == asked - frame["eff_leadership"].notna().sum()
    assert blank == reasons.drop(["Don't know", "Not applicable"], errors="ignore").sum()  # no answer, set aside
    plain, _ = pyreadstat.read_sav(str(demo.panel_sav))  # as SPSS sees it: user-missing are missing
    answered = panel[(panel["measure"] == "eff_leadership") & panel["value"].notna()]
    assert plain["eff_leadership"].notna().sum() == len(answered)


def test_wide_sav_has_a_row_per_respondent_coded_as_the_long_one(demo):
    long, _ = pyreadstat.read_sav(str(demo.panel_sav), user_missing=True)
    wide, meta = pyreadstat.read_sav(str(demo.panel_wide_sav), user_missing=True)
    panel_wide = pd.read_parquet(demo.panel_wide)
    assert len(wide) == len(panel_wide) and not wide.duplicated(["council_code", "respondent_id"]).any()
    assert meta.column_names_to_labels["eff_leadership__baseline"] == \
        "Effectiveness: leadership and governance (Before the review)"
    assert meta.missing_ranges["eff_leadership__follow_up"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]
    merged = wide.merge(long[long["wave"] == 1.0], on=["council_code", "respondent_id"], how="inner")
    assert len(merged) and np.array_equal(merged["eff_leadership__baseline"].fillna(-1), merged["eff_leadership"].fillna(-1))
    assert set(wide["waves_present"]) == set(panel_wide["waves_present"])


def test_dta_has_extended_missing_values_with_labels(demo, panel):
    frame, meta = pyreadstat.read_dta(str(demo.panel_dta), user_missing=True)
    reasons = _reason_counts(panel, "eff_leadership")
    column = frame["eff_leadership"]
    assert (column == "a").sum() == reasons.get("Don't know", 0) > 0 and (column == "b").sum() == reasons.get("Not applicable", 0)
    assert meta.missing_user_values["eff_leadership"] == ["a", "b"]
    labels = meta.variable_value_labels["eff_leadership"]
    assert labels["a"] == "Don't know" and labels["b"] == "Not applicable" and labels[5] == "Very effective"
    assert meta.column_names_to_labels["eff_leadership"] == "Effectiveness: leadership and governance"
    assert meta.original_variable_types["eff_leadership"] == "%2.0f"
    wide, wide_meta = pyreadstat.read_dta(str(demo.panel_wide_dta), user_missing=True)
    assert len(wide) == len(pd.read_parquet(demo.panel_wide))
    assert all(len(name) <= 32 for name in wide.columns)
    assert len(set(wide.columns)) == len(wide.columns)
    labels = wide_meta.column_names_to_labels
    assert all(len(label) <= 80 for label in labels.values())
    long_names = [c for c, label in labels.items() if label.startswith("Longer-term contribution of the review: Perf")]
    assert len(long_names) == 1 and long_names[0].startswith("longer_contribution_perf")  # 43 characters cut
    assert labels[long_names[0]].endswith("\u2026 [follow_up]")  # its label cut to 80, keeping the wave


def _pspp_dictionary(path) -> dict[str, list[list[str]]]:
    """PSPP's DISPLAY DICTIONARY of ``path`` as tables of rows (CSV output)."""
    syntax = f"GET FILE='{path}'.\nDISPLAY DICTIONARY.\n"
    done = subprocess.run([PSPP, "-O", "format=csv", "-o", "-", "-"], input=syntax, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    tables: dict[str, list[list[str]]] = {}
    name = None
    for row in csv.reader(io.StringIO(done.stdout)):
        if len(row) == 1 and row[0].startswith("Table: "):
            name = row[0][len("Table: "):]
            tables[name] = []
        elif name and row:
            tables[name].append(row)
    return tables


@pytest.mark.skipif(PSPP is None, reason="GNU PSPP (pspp) is not installed")
@pytest.mark.parametrize("which", ["long", "wide"])
def test_pspp_opens_each_sav_and_shows_labels_levels_and_missing_values(demo, which):
    path = demo.panel_sav if which == "long" else demo.panel_wide_sav
    tables = _pspp_dictionary(path)
    header, *rows = tables["Variables"]
    variables = {r[0]: dict(zip(header, r, strict=False)) for r in rows}
    item = "eff_leadership" if which == "long" else "eff_leadership__follow_up"
    assert variables[item]["Measurement Level"] == "Ordinal" and variables[item]["Print Format"] == "F1.0"
    assert variables[item]["Missing Values"] == "8; 9"
    assert variables[item]["Label"].startswith("Effectiveness: leadership and governance")
    assert variables["region"]["Measurement Level"] == "Nominal" and variables["region"]["Label"] == "Region"
    assert variables["months_since_intervention"]["Measurement Level"] == "Scale"
    labels = tables["Value Labels"]
    text = "\n".join(",".join(r) for r in labels)
    assert "8[a],Don't know" in text and "9[a],Not applicable" in text  # [a]: PSPP's footnote "User-missing value"
    assert "Adequate" in text and "Yorkshire and The Humber" in text  # covariate and region value labels


@pytest.mark.skipif(RSCRIPT is None, reason="R (Rscript) is not installed")
def test_r_haven_reads_the_dta_and_sav_labels_and_missing_codes(demo, tmp_path):
    script = tmp_path / "read.R"
    script.write_text(f"""
suppressMessages(library(haven))
d <- read_dta("{demo.panel_dta}")
x <- d$eff_leadership
cat("dta_label", attr(x, "label"), "\\n", sep = "|")
cat("dta_tags", sum(na_tag(x) %in% "a"), sum(na_tag(x) %in% "b"), "\\n", sep = "|")
cat("dta_labels", names(attr(x, "labels")), "\\n", sep = "|")
s <- read_sav("{demo.panel_sav}", user_na = TRUE)
y <- s$eff_leadership
cat("sav_na_values", attr(y, "na_values"), "\\n", sep = "|")
cat("sav_dk", sum(unclass(y) == 8, na.rm = TRUE), "\\n", sep = "|")
""", encoding="utf-8")
    done = subprocess.run([RSCRIPT, str(script)], capture_output=True, text=True, timeout=180)
    if done.returncode != 0 and "haven" in done.stderr and "no package" in done.stderr.lower():
        pytest.skip("R package haven is not installed")
    assert done.returncode == 0, done.stderr[-2000:]
    out = {line.split("|")[0]: line.split("|")[1:-1] for line in done.stdout.splitlines() if "|" in line}
    reasons = _reason_counts(pd.read_parquet(demo.panel_long), "eff_leadership")
    assert out["dta_label"] == ["Effectiveness: leadership and governance"]
    assert out["dta_tags"] == [str(reasons["Don't know"]), str(reasons.get("Not applicable", 0))]
    assert "Don't know" in out["dta_labels"] and "Very effective" in out["dta_labels"]
    assert out["sav_na_values"] == ["8", "9"] and out["sav_dk"] == [str(reasons["Don't know"])]


def test_more_than_three_missing_reasons_are_one_spss_range_and_a_tag_each(tmp_path):
    wave = Wave(id="w1", label="Wave 1", order=0, file="w1.csv", format="csv", read=ReadOptions(), council="c")
    measure = Measure(name="q", label="Question", type="likert", columns={"w1": "q"}, levels=(1.0, 2.0, 3.0),
                      level_labels={1.0: "Low", 2.0: "Mid", 3.0: "High"},
                      missing={"DK": "Don't know", "NA": "Not applicable", "RF": "Refused", "SK": "Skipped"})
    study = Study(name="s", title="S", description="", waves=(wave,), measures=(measure,), councils=None, aims=(),
                  expectations=(), models=ModelSettings())
    reasons = ["Don't know", "Not applicable", "Refused", "Skipped", None, "No answer"]
    person_wave = pd.DataFrame({
        "council_code": ["E06000001"] * 6, "council_name": ["Hartlepool"] * 6, "respondent_id": list("abcdef"),
        "role": ["Lead"] * 6, "authority_type": ["unitary"] * 6, "region": ["North East"] * 6, "wave": ["w1"] * 6,
        "wave_order": [0] * 6, "months_since_intervention": [np.nan] * 6,
        "q": [np.nan, np.nan, np.nan, np.nan, 2.0, np.nan], "q__missing": pd.array(reasons, dtype="string")})
    export = long_export(person_wave, study, [])
    assert isinstance(export, Export)
    assert export.frame["q"].tolist()[:5] == [9.0, 8.0, 7.0, 6.0, 2.0] and np.isnan(export.frame["q"].iloc[5])
    write_exports(export, tmp_path / "q.sav", tmp_path / "q.dta")
    _, meta = pyreadstat.read_sav(str(tmp_path / "q.sav"), user_missing=True)
    assert meta.missing_ranges["q"] == [{"lo": 6.0, "hi": 9.0}]
    frame, dta = pyreadstat.read_dta(str(tmp_path / "q.dta"), user_missing=True)
    assert frame["q"].tolist()[:5] == ["a", "b", "c", "d", 2.0]
    assert dta.variable_value_labels["q"] == {1: "Low", 2: "Mid", 3: "High", "a": "Don't know", "b": "Not applicable",
                                              "c": "Refused", "d": "Skipped"}
    first = (tmp_path / "q.dta").read_bytes()
    write_exports(export, tmp_path / "q.sav", tmp_path / "q.dta")
    assert (tmp_path / "q.dta").read_bytes() == first  # no write time in the file


def test_types_do_not_depend_on_the_first_rows(tmp_path):
    """pyreadstat types a column through narwhals, which guesses an object column's type from its first 100
    values: a measure whose first 150 answers are blank or "Don't know", and a date covariate whose first
    150 councils have no date, must still be written as numbers and dates (both were refused as text)."""
    wave = Wave(id="w1", label="Wave 1", order=0, file="w1.csv", format="csv", read=ReadOptions(), council="c")
    measure = Measure(name="q", label="Question", type="likert", columns={"w1": "q"}, levels=(1.0, 2.0, 3.0),
                      level_labels={1.0: "Low", 2.0: "Mid", 3.0: "High"}, missing={"DK": "Don't know"})
    study = Study(name="s", title="S", description="", waves=(wave,), measures=(measure,), aims=(), expectations=(),
                  councils=CouncilsFile(file="councils.csv", key="council", covariates={"reviewed": "date"}),
                  models=ModelSettings())
    n = 300
    reasons = [None] * 75 + ["Don't know"] * 75 + [None] * 150
    when = [pd.NaT] * 150 + [pd.Timestamp("2013-04-01")] * 150
    person_wave = pd.DataFrame({
        "council_code": ["E06000001"] * n, "council_name": ["Hartlepool"] * n,
        "respondent_id": [f"r{i:03d}" for i in range(n)], "role": ["Lead"] * n, "authority_type": ["unitary"] * n,
        "region": ["North East"] * n, "wave": ["w1"] * n, "wave_order": [0] * n, "months_since_intervention": [np.nan] * n,
        "reviewed": when, "q": [np.nan] * 150 + [1.0, 2.0, 3.0] * 50, "q__missing": pd.array(reasons, dtype="string")})
    write_exports(long_export(person_wave, study, ["reviewed"]), tmp_path / "q.sav", tmp_path / "q.dta")
    for path, read in ((tmp_path / "q.sav", pyreadstat.read_sav), (tmp_path / "q.dta", pyreadstat.read_dta)):
        frame, meta = read(str(path), user_missing=True)
        assert frame["q"].iloc[150:153].tolist() == [1.0, 2.0, 3.0], path
        assert frame["q"].iloc[75] == (9.0 if path.suffix == ".sav" else "a") and pd.isna(frame["q"].iloc[0])
        assert pd.isna(frame["reviewed"].iloc[0]) and str(frame["reviewed"].iloc[150])[:10] == "2013-04-01", path
        assert meta.original_variable_types["reviewed"] == ("DATE11" if path.suffix == ".sav" else "%td")


def test_the_writer_needs_no_polars(tmp_path):
    """The exports are written in a forked child (link/stage.exports_aside). polars deadlocks in a child
    forked from a process that has run its thread pool, so the writer must not use it: the demo's export,
    written in a fresh interpreter, imports no polars."""
    import pickle
    import subprocess
    import sys

    wave = Wave(id="w1", label="Wave 1", order=0, file="w1.csv", format="csv", read=ReadOptions(), council="c")
    measure = Measure(name="q", label="Question", type="likert", columns={"w1": "q"}, levels=(1.0, 2.0),
                      level_labels={1.0: "Low", 2.0: "High"}, missing={"DK": "Don't know"})
    study = Study(name="s", title="S", description="", waves=(wave,), measures=(measure,), councils=None, aims=(),
                  expectations=(), models=ModelSettings())
    person_wave = pd.DataFrame({
        "council_code": ["E06000001"] * 3, "council_name": ["Hartlepool"] * 3, "respondent_id": list("abc"),
        "role": ["Lead"] * 3, "authority_type": ["unitary"] * 3, "region": ["North East"] * 3, "wave": ["w1"] * 3,
        "wave_order": [0] * 3, "months_since_intervention": [np.nan] * 3, "q": [1.0, np.nan, 2.0],
        "q__missing": pd.array([None, "Don't know", None], dtype="string")})
    (tmp_path / "export.pickle").write_bytes(pickle.dumps(long_export(person_wave, study, [])))
    script = ("import pickle, sys\n"
              "from pathlib import Path\n"
              "from impactstudy.link import stage\n"
              "from impactstudy.link.exports import write_exports\n"
              "root = Path(sys.argv[1])\n"
              "write_exports(pickle.loads((root / 'export.pickle').read_bytes()), root / 'q.sav', root / 'q.dta')\n"
              "print('polars' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
    assert pyreadstat.read_dta(str(tmp_path / "q.dta"), user_missing=True)[0]["q"].tolist() == [1.0, "a", 2.0]


def test_link_does_not_hang_in_a_session_that_has_used_polars(tmp_path):
    """The exports are written in a forked child. A child forked from a process that has run polars' thread
    pool deadlocks if it runs polars (the suite hung in ``polars.from_pandas`` when the .dta writer used
    it): the writer must not. Run in a subprocess with a time limit so a regression fails instead of hanging."""
    import subprocess
    import sys

    script = (
        "import polars as pl, sys\n"
        "from pathlib import Path\n"
        "pl.DataFrame({'a': list(range(100000))}).with_columns(pl.col('a') * 2).sum()\n"
        "from impactstudy import demo, stages\n"
        "root = Path(sys.argv[1])\n"
        "demo.generate(root, 'demo6', councils=6)\n"
        "stages.run('demo6', ['link'], root)\n"
        "print('linked')\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "linked" in done.stdout
    assert (tmp_path / "data" / "processed" / "demo6" / "panel_wide.dta").is_file()
