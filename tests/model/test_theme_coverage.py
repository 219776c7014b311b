"""The coded themes' coverage simulation (``impactstudy.coverage.themes``): its truths are right, and a fast
seeded version of it fails when the agreement or theme-share intervals cover less than 90%.

The full simulation (``make coverage``, docs/coding.md) runs 500 studies per cell; here a hundred, one cell each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.coverage import themes as sim
from impactstudy.model.stats import agreement


def test_the_agreement_truth_is_what_a_very_large_study_measures():
    codes, study_truth = sim.agreement_study(60_000, 3_000, seed=1)
    truth = sim.agreement_truth()  # over councils: with 3,000 of them, the study's own is the same
    for theme in [*[t.name for t in sim.AGREEMENT_THEMES], agreement.ALL]:
        part = codes if theme == agreement.ALL else codes[codes["theme"] == theme]
        x = part["coded"].to_numpy().reshape(-1, 2)
        assert abs(agreement.krippendorff_alpha(x.T) - study_truth[theme]) < 0.02, theme
        assert abs(study_truth[theme] - truth[theme]) < 0.01, theme
    assert truth["common_clear"] > truth["common_vague"] > truth["rare_vague"]  # the themes span good to poor
    six = pd.DataFrame([sim.agreement_study(30, 6, seed)[1] for seed in range(40)])
    assert six["all"].std() > 0.005 and abs(six["all"].mean() - truth["all"]) < 0.02  # each study its own, around it


def test_the_share_truth_is_what_a_very_large_study_measures():
    data = sim.share_study(2_000, (5, 15), seed=2)
    truth = sim.share_truth()
    means = data.groupby(["measure", "wave"])["value"].mean()
    for (theme, wave), value in means.items():
        assert abs(value - truth[(theme, wave)]) < 0.01, (theme, wave)
    assert abs((means["rising"]["w2"] - means["rising"]["w1"]) - truth[("rising", "w2 - w1")]) < 0.01
    again = data[data["wave"] == "w2"]["respondent_id"].isin(data[data["wave"] == "w1"]["respondent_id"]).mean()
    assert 0.3 < again < 0.7  # about half the second wave's respondents answered the first


def test_agreement_intervals_cover_at_least_90_percent():
    rows = sim.agreement_rows(100, 20, range(sim.SEED_BASE, sim.SEED_BASE + 100), draws=500)
    summary = sim.summarise(rows)
    for statistic, part in rows.groupby("statistic"):
        assert part["covers"].mean() >= 0.90, statistic
    assert (summary["coverage"] >= 0.85).all(), summary[summary["coverage"] < 0.85]


def test_theme_share_intervals_cover_at_least_90_percent():
    rows = sim.share_rows(20, (5, 15), range(sim.SEED_BASE, sim.SEED_BASE + 100))
    assert set(rows["statistic"]) == {"share", "theme_share"}  # 20 councils: no council-level rows
    for statistic, part in rows.groupby("statistic"):
        assert part["covers"].mean() >= 0.90, statistic
    few = sim.share_rows(6, (5, 15), range(sim.SEED_BASE, sim.SEED_BASE + 60))
    flips = few[few["statistic"] == "sign_flip"]
    assert len(flips) and flips["covers"].mean() >= 0.90  # exact: at least its level, under symmetric changes


def test_the_summary_goes_between_its_markers(tmp_path):
    rows = pd.concat([sim.agreement_rows(30, 6, range(3), draws=200), sim.share_rows(6, (1, 4), range(3))])
    section = sim.markdown(sim.summarise(rows), {"run": "a test run"})
    assert section.startswith(sim.START) and section.endswith(sim.END) and "a test run" in section
    assert "| krippendorff_alpha | common_clear | 0.8" in section and "| share | rising | w1 | 0.321 |" in section
    docs = tmp_path / "coding.md"
    docs.write_text("# Coding\n\ntext before\n", encoding="utf-8")
    sim.write_section(docs, section)
    sim.write_section(docs, section.replace("a test run", "a second run"))
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# Coding\n\ntext before\n") and text.count(sim.START) == 1 and "a second run" in text
    assert np.isfinite(sim.summarise(rows)["mc_se"]).all()
