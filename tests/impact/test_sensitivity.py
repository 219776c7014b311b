"""Relative-magnitudes sensitivity: contains HonestDiD's intervals, breakdown value behaves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from impactstudy.impact.sensitivity import relative_magnitudes

FIXTURE = Path(__file__).parents[1] / "reference" / "fixtures" / "impact_honestdid.json"


def test_intervals_contain_honestdid_relative_magnitudes() -> None:
    ref = json.loads(FIXTURE.read_text())
    ours = relative_magnitudes(np.array(ref["times"]), np.array(ref["estimates"]), np.array(ref["vcov"]),
                               alpha=ref["alpha"], mbars=ref["mbar"])
    assert ours is not None
    for m, lo, hi, ref_lo, ref_hi in zip(ref["mbar"], ours.lower, ours.upper, ref["lb"], ref["ub"], strict=True):
        if m <= 1.0:  # above M̄ = 1 HonestDiD's grid clips the interval (it warns "CI is open")
            assert lo <= ref_lo + 1e-9 and hi >= ref_hi - 1e-9, (m, lo, hi, ref_lo, ref_hi)
    # M̄ = 0 is parallel trends: our interval is the Bonferroni-widened normal one
    assert ours.lower[0] == pytest.approx(ours.estimate - 2.2414 * ours.std_error, rel=1e-4)


def test_breakdown_is_where_the_interval_first_reaches_zero() -> None:
    times = np.arange(-4, 4)
    est = np.array([0.1, -0.1, 0.05, 0.0, 1.0, 1.2, 1.4, 1.6])
    vcov = np.eye(8) * 0.01
    s = relative_magnitudes(times, est, vcov, mbars=(0.0, 0.5, 1.0, 2.0, 4.0))
    assert s is not None and s.breakdown > 0
    at = relative_magnitudes(times, est, vcov, mbars=(s.breakdown,))
    assert at.lower[0] == pytest.approx(0, abs=1e-9)
    assert all(np.diff(s.lower) < 0) and all(np.diff(s.upper) > 0)
    null = relative_magnitudes(times, np.r_[est[:4], [0.01, -0.02, 0.0, 0.01]], vcov)
    assert null.breakdown == 0.0
    assert relative_magnitudes(np.arange(0, 3), est[:3], np.eye(3)) is None
