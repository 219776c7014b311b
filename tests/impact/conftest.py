"""Fixtures of the impact tests."""

from __future__ import annotations

import pytest
from impact_panels import make_panel

from impactstudy.impact.panel import Panel


@pytest.fixture(scope="session")
def panel() -> Panel:
    return make_panel()
