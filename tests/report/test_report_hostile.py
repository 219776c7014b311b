"""Hostile text reaching the report: bidirectional controls, "$…$" labels, free text in the council column.

Part of the bad-input corpus (issue #18): a right-to-left override must not reach any page or SVG figure,
a label with dollar signs is text (not matplotlib mathtext), and an unmatched council identifier (a
person's name typed where a council was expected) is quoted in neither the public nor the internal report.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from impactstudy.pipeline.atomic import write_csv
from impactstudy.report.bidi import BIDI_CONTROLS
from impactstudy.report.stage import run_report

from report_fixtures import build_study

PERSON = "Mrs O'Brien-Smith"
RLO_LABEL = "Spend \u202e$10^$\u202c a head"
RLO_ROLE = "Lead \u202egnp.exe\u202c"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    study, paths = build_study(tmp_path_factory.mktemp("hostile"), 6)
    target = next(m for m in study.measures if m.type == "likert" and not m.parent)
    study = replace(study, measures=tuple(replace(m, label=RLO_LABEL) if m is target else m for m in study.measures))
    panel = pd.read_parquet(paths.panel_long)
    panel["role"] = panel["role"].astype("string")
    panel.loc[panel["respondent_id"] == panel["respondent_id"].iloc[0], "role"] = RLO_ROLE
    panel.to_parquet(paths.panel_long)
    quarantine = pd.read_csv(paths.link_quarantine, keep_default_na=False)
    extra = pd.DataFrame([{"wave": study.wave_ids[0], "source_file": "x.csv", "source_row": 1, "column": "Council",
                           "value": PERSON, "reason": f"Council '{PERSON}' not found in the register as of 2014-03-31: "
                                                     f"no name matches; closest is '{PERSON[:3]}' at 40; correct it",
                           "scope": "row"}])
    write_csv(paths.link_quarantine, pd.concat([quarantine, extra], ignore_index=True))
    return study, paths


@pytest.fixture(scope="module")
def rendered(hostile):
    study, paths = hostile
    run_report(study, paths)
    return paths


@pytest.mark.parametrize("audience", ["public", "internal"])
def test_hostile_text_is_neutralised_in_pages_and_figures(rendered, audience):
    bundle = rendered.bundle(audience)
    pages = [bundle / "index.html", *(bundle / "councils").glob("*.html")]
    svgs = list((bundle / "figures").glob("*.svg"))
    assert svgs and pages
    for path in [*pages, *svgs]:
        text = path.read_text(encoding="utf-8")
        assert not any(c in text for c in BIDI_CONTROLS), f"bidirectional control in {path}"
    index = (bundle / "index.html").read_text(encoding="utf-8")
    assert "Spend $10^$ a head" in index  # the label, as text, without its override
    assert "O&#39;Brien" not in index and "Brien" not in index and PERSON not in index
    assert "not found in the register" in index  # the reason is still counted, without the value
