"""Councils across the waves (docs/councils.md): code changes, replacements, mergers and splits, a
councils file keyed at any wave's date, date covariates read as ISO 8601, and the warnings link gives.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from impactstudy import stages
from impactstudy.errors import ConfigError, DataError
from impactstudy.pipeline.councils_file import panel_code, parse_dates
from impactstudy.study.config import load_study

STUDY = """
title = "Lineage"

[councils]
file = "councils.csv"
key = "council"
covariates = {{ cohort = "category", started = "date" }}
group_by = ["cohort"]
{extra}

[intervention]
name = "the scheme"
date = "started"
before_waves = ["w2018"]

[[waves]]
id = "w2018"
file = "w2018.csv"
fieldwork_start = 2018-01-01
fieldwork_end = 2018-06-30
council = "council"
submitted = "when"

[[waves]]
id = "w2021"
file = "w2021.csv"
fieldwork_start = 2021-01-01
fieldwork_end = 2021-06-30
council = "council"
submitted = "when"

[[measures]]
name = "score"
label = "Score"
type = "numeric"
columns = {{ w2018 = "score", w2021 = "score" }}
"""


def _study(root: Path, councils: list[dict], extra: str = "") -> Path:
    (root / "pipelines" / "lin").mkdir(parents=True)
    (root / "pipelines" / "lin" / "study.toml").write_text(textwrap.dedent(STUDY.format(extra=extra)), encoding="utf-8")
    raw = root / "data" / "raw" / "lin"
    raw.mkdir(parents=True)
    pd.DataFrame({"council": ["Bournemouth", "Poole", "Northamptonshire", "E10000002", "Hartlepool"],
                  "when": ["2018-02-01"] * 4 + ["2018-05-01"], "score": [1, 2, 3, 4, 5]}).to_csv(raw / "w2018.csv", index=False)
    pd.DataFrame({"council": ["Bournemouth, Christchurch and Poole", "North Northamptonshire", "Buckinghamshire",
                              "Hartlepool"], "when": "2021-02-01", "score": [6, 7, 8, 9]}).to_csv(raw / "w2021.csv", index=False)
    pd.DataFrame(councils).to_csv(raw / "councils.csv", index=False)
    return root


AS_AT_START = [  # keyed as the councils were in 2018
    {"council": "Bournemouth", "cohort": "A", "started": "2017-09-01"},
    {"council": "E06000029", "cohort": "B", "started": "2017-09-01"},
    {"council": "Northamptonshire", "cohort": "A", "started": "2017-09-01"},
    {"council": "Buckinghamshire", "cohort": "B", "started": "2017-09-01"},
    {"council": "Hartlepool", "cohort": "", "started": "2018-03-01"},
]


def _linked(root: Path) -> tuple[pd.DataFrame, dict]:
    stages.run("lin", ["link"], root=root)
    processed = root / "data" / "processed" / "lin"
    summary = json.loads((processed / "linkage_summary.json").read_text(encoding="utf-8"))
    panel = pd.read_parquet(processed / "panel_long.parquet")
    return panel.drop_duplicates(["council_code", "wave"]).astype({"council_code": str, "wave": str}), summary


def test_a_file_keyed_as_the_councils_began_keeps_every_predecessor_and_its_covariates(tmp_path):
    panel, summary = _linked(_study(tmp_path, AS_AT_START))
    cohort = dict(zip(panel["council_code"], panel["cohort"]))
    # Bournemouth and Poole stay themselves (2018) and BCP is another council (2021), with no covariates
    assert cohort["E06000028"] == "A" and cohort["E06000029"] == "B" and pd.isna(cohort["E06000058"])
    # Buckinghamshire county was replaced by the unitary of the same name: one council in both waves
    assert set(panel.loc[panel["council_code"] == "E06000060", "wave"]) == {"w2018", "w2021"}
    assert cohort["E06000060"] == "B"
    assert summary["councils_without_covariates"] == ["E06000058", "E06000061"]
    kinds = {r["council_code"]: r["kind"] for r in summary["reorganised"]}
    assert kinds == {"E06000028": "merger", "E06000029": "merger", "E10000002": "replacement", "E10000021": "split"}
    assert any("Hartlepool" in w and "no cohort" in w for w in summary["warnings"])
    # Hartlepool answered on 2018-05-01, after its start on 2018-03-01, in a wave declared as before
    assert any("w2018" in w and "Hartlepool" in w and "the scheme" in w for w in summary["warnings"])


def test_mergers_successor_maps_every_wave_to_the_latest_geography(tmp_path):
    councils = AS_AT_START + [{"council": "E06000058", "cohort": "C", "started": "2019-04-01"}]
    panel, summary = _linked(_study(tmp_path, councils, extra='mergers = "successor"'))
    bcp = panel[panel["council_code"] == "E06000058"]
    assert set(bcp["wave"]) == {"w2018", "w2021"} and set(bcp["cohort"]) == {"C"}
    assert not {"E06000028", "E06000029"} & set(panel["council_code"])
    # a split is never mapped: Northamptonshire stays itself, North Northamptonshire is a council of its own
    assert {"E10000021", "E06000061"} <= set(panel["council_code"])
    assert sum("merged into" in n and "not used" in n for n in summary["covariate_notes"]) == 2


def test_panel_code_rules():
    assert panel_code("E06000048", pd.Timestamp("2020-01-01").date()) == "E06000057"  # code change
    assert panel_code("E10000002", pd.Timestamp("2021-01-01").date()) == "E06000060"  # replacement
    assert panel_code("E06000028", pd.Timestamp("2021-01-01").date()) == "E06000028"  # merger, separate
    assert panel_code("E06000028", pd.Timestamp("2021-01-01").date(), follow_mergers=True) == "E06000058"
    assert panel_code("E10000021", pd.Timestamp("2022-01-01").date(), follow_mergers=True) == "E10000021"  # split
    assert panel_code("E06000028", pd.Timestamp("2018-01-01").date(), follow_mergers=True) == "E06000028"  # not yet


def test_dates_are_iso_first_and_never_guessed():
    got = parse_dates(pd.Series(["2013-06-04", "", None, "2013-06-04T09:30"]), None, "c.csv", "started")
    assert got.iloc[0] == pd.Timestamp("2013-06-04") and got.iloc[1:3].isna().all()  # 4 June, not 6 April
    assert parse_dates(pd.Series(["04/06/2013"]), "%d/%m/%Y", "c.csv", "started").iloc[0] == pd.Timestamp("2013-06-04")
    with pytest.raises(DataError, match=r"c\.csv row 3: started '04/06/2013' is not a date in ISO 8601 form; .*date_format"):
        parse_dates(pd.Series(["2013-06-04", "04/06/2013"]), None, "c.csv", "started")


def test_config_keys_for_generality(tmp_path):
    root = _study(tmp_path, AS_AT_START)
    path = root / "pipelines" / "lin" / "study.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('group_by = ["cohort"]', 'group_by = ["cohort"]\nmergers = "succesor"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'successor'"):
        load_study(path)
    path.write_text(text.replace('before_waves = ["w2018"]', 'before_waves = ["w2019"]'), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown wave 'w2019'"):
        load_study(path)
    block = text[text.index("[councils]"):text.index("[intervention]")]
    path.write_text(text.replace(block, '[councils]\naliases = "aliases.csv"\n\n').replace('date = "started"\n', "")
                    .replace('before_waves = ["w2018"]\n', ""), encoding="utf-8")
    study = load_study(path)
    assert study.councils.file is None and study.councils.aliases == "aliases.csv"
    assert study.intervention.caveat_text.startswith("These are changes over time") and "the scheme" in study.intervention.caveat_text
