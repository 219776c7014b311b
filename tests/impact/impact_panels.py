"""Simulated outcome panels and the panel fixture shared by the impact tests (imported by them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impactstudy.impact.panel import Panel, build_panel
from impactstudy.demo.panels import OutcomeModel, random_cohorts, simulate_panel

YEARS = tuple(range(2010, 2022))
MODEL = OutcomeModel("rate", "A rate", level=50, council_sd=5, trend=0.3, noise_sd=2, gain=4, dip=0.0)


def make_panel(seed: int = 1, n: int = 60, n_treated: int = 18, cohorts=(2014, 2015, 2017),
               model: OutcomeModel = MODEL) -> Panel:
    rng = np.random.default_rng(seed)
    councils = [f"E0600{i:04d}" for i in range(n)]
    cohort = random_cohorts(n, n_treated, cohorts, rng)
    values = simulate_panel(model, councils, rng.lognormal(0, 0.5, n), cohort, YEARS, rng)
    values["outcome"] = model.name
    return build_panel(values, model.name, dict(zip(councils, cohort, strict=True)))


def tidy_long(panel: Panel) -> pd.DataFrame:
    return panel.frame.rename(columns={"y": "value"}).assign(outcome=panel.outcome)


@pytest.fixture(scope="session")
def panel() -> Panel:
    """The default simulated panel (60 councils, 18 treated in three cohorts, 2010-2021)."""
    return make_panel()
