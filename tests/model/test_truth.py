"""The LMM's intervals against the demo's known truth (``data/raw/<study>/truth.json``).

(a) The 40-council demo through ingest, link and model with the stage API: the 95% intervals of the
``lmm`` rows of ``contrasts.csv`` cover the true change in the expected observed score.
(b) A seeded simulation over repeated demo-like studies: the empirical coverage of those intervals is
close to 95%.

Estimands. Within a status level the truth is the change in ``E[clip(round(latent), 1, 5)]`` for that
status, and ``value ~ wave * status`` models exactly those cell means; attrition depends on status
only, so it is ignorable within a level and the status rows target the truth. The ``all`` truth
averages the statuses weighted by their number of sampled councils, whereas ``value ~ wave`` with
council (and respondent) intercepts weights each council's within-council change by the information
it carries: councils that dropped out (more often Notice to Improve, which gains most) and councils
with fewer respondents count less. The two ``all`` estimands can therefore differ a little, but the
gap was not detectable when this was written: over 60 simulated demos the mean error of every
measure and contrast was within 0.023 of the truth (|t| < 1.5), and over 80 (960 ``all`` intervals
for the two contrasts against baseline) coverage was 0.953 and the standardised errors had SD 0.99.
So the ``all`` rows are held to 95% coverage like the status rows, not to a loosened standard.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from impactstudy import demo, stages
from impactstudy.model import fitting

EFFECTIVENESS = ["eff_leadership", "eff_performance", "eff_partnership", "eff_practice", "eff_voice",
                 "eff_workforce"]


def _with_truth(contrasts: pd.DataFrame, truth: dict) -> pd.DataFrame:
    effects = pd.DataFrame(truth["effects"]).rename(columns={"estimate": "truth"})
    rows = contrasts[contrasts["model"] == "lmm"].merge(
        effects[["measure", "contrast", "group", "truth"]], on=["measure", "contrast", "group"], validate="1:1")
    rows["covers"] = (rows["ci_low"] <= rows["truth"]) & (rows["truth"] <= rows["ci_high"])
    return rows


# ------------------------------------------------------------------------------- (a) the demo


@pytest.fixture(scope="module")
def demo_lmm(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The demo's ``lmm`` contrasts next to the truth, from the files the stages write."""
    root = tmp_path_factory.mktemp("truth_demo")
    demo.generate(root, "demo", councils=40)
    stages.run("demo", ["model"], root=root)
    contrasts = pd.read_csv(root / "data" / "processed" / "demo" / "tables" / "contrasts.csv")
    truth = json.loads((root / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))
    return _with_truth(contrasts, truth)


@pytest.mark.slow
def test_demo_lmm_intervals_cover_the_truth(demo_lmm: pd.DataFrame):
    # 6 measures x 3 contrasts x (all + 4 statuses). At 95% about 4.5 misses are expected; the
    # intervals share data (so misses cluster), and 12 or more would have probability < 0.2% even
    # for independent intervals: a sign of bias, not of chance.
    assert len(demo_lmm) == 90
    assert set(demo_lmm["measure"]) == set(EFFECTIVENESS)
    misses = demo_lmm[~demo_lmm["covers"]]
    assert stats.binom.sf(len(misses) - 1, len(demo_lmm), 0.05) > 0.002, misses
    headline = demo_lmm[(demo_lmm["group"] == "all") & (demo_lmm["contrast"] == "follow_up - baseline")]
    assert len(headline) == 6
    # at most one of the six headline intervals misses (two or more: probability 3% for 95% intervals).
    # With the council-level change (tau 0.15) the default seed's partnership change is 2 SE below its
    # truth, whatever the LMM (its council x wave variance is on the boundary there).
    assert (~headline["covers"]).sum() <= 1, headline


@pytest.mark.slow
def test_demo_voice_of_the_child_is_not_declared_changed(demo_lmm: pd.DataFrame):
    voice = demo_lmm[(demo_lmm["measure"] == "eff_voice") & (demo_lmm["group"] == "all")]
    assert len(voice) == 3
    assert (voice["truth"].abs() < 0.005).all()  # no gain; tau's wider spread moves the clipped mean a little
    assert (voice["q_value"] >= 0.05).all(), voice


# -------------------------------------------------------------------------- (b) the simulation

SEEDS = range(1, 21)
SIMULATED_CONTRASTS = ["early_impact - baseline", "follow_up - baseline"]


def _simulated_lmm(seed: int) -> pd.DataFrame:
    """One demo-like study (``demo.generate`` with ``seed``) through ingest and link, then the model
    stage's ``fit_all`` with only the LMM asked for (``Measure.models``, as a study.toml override would)."""
    with tempfile.TemporaryDirectory() as tmp:
        demo.generate(Path(tmp), "demo", councils=40, seed=seed)
        stages.run("demo", ["link"], root=tmp)
        study, paths = stages.open_study("demo", tmp)
        panel = pd.read_parquet(paths.panel_long)
        truth = json.loads((paths.raw / "truth.json").read_text(encoding="utf-8"))
    for column in ("council_code", "wave", "measure", "respondent_id"):
        panel[column] = panel[column].astype(str)
    only_lmm = tuple(replace(m, models=("lmm",) if m.name in EFFECTIVENESS else ()) for m in study.measures)
    contrasts = fitting.fit_all(replace(study, measures=only_lmm), panel, workers=1)["contrasts"]
    rows = _with_truth(contrasts, truth)
    return rows[rows["contrast"].isin(SIMULATED_CONTRASTS)].assign(seed=seed)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    with ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return pd.concat(pool.map(_simulated_lmm, SEEDS), ignore_index=True)


@pytest.mark.slow
def test_lmm_interval_coverage_over_simulated_demos(simulated: pd.DataFrame):
    """20 seeded demos x 6 measures x 2 contrasts: 240 ``all`` intervals and 960 within-status ones.

    Status rows target the truth exactly, so their coverage must be 95% up to sampling error (binomial
    SD 0.7 points for 960 independent intervals; they are not independent, hence 0.925-0.975) and
    their standardised errors must centre on 0 with SD 1. ``all`` rows get the window 0.90-0.99 for 240
    intervals (binomial SD 1.4 points). These 20 seeds give 0.983 (236/240) for ``all`` and 0.961 for
    the status rows; seeds 100-159 gave 0.943 and 0.951, so 0.983 is sampling luck, not a trend.
    """
    assert simulated["seed"].nunique() == len(SEEDS)
    overall = simulated[simulated["group"] == "all"]
    within = simulated[simulated["group"] != "all"]
    assert len(overall) == 240 and len(within) == 960
    assert 0.90 <= overall["covers"].mean() <= 0.99
    assert 0.925 <= within["covers"].mean() <= 0.975
    z = (within["estimate"] - within["truth"]) / within["std_error"]
    assert abs(z.mean()) < 0.1
    assert 0.9 < z.std() < 1.1  # the standard errors are the right size, not just the coverage
