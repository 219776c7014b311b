"""How large a violation of parallel trends would overturn the conclusion (relative magnitudes).

Rambachan & Roth (2023) bound the post-treatment violation of parallel trends by ``M̄`` times the
largest one-year violation seen before treatment (their Δ^RM(M̄)). With the event study on a universal
base (event time -1 is 0), the pre-period one-year changes are ``d_s = δ_s - δ_{s-1}``; after
treatment, each year's violation can move by at most ``M̄ · max|d_s|``, so by event time ``e`` it is at
most ``(e + 1) · M̄ · max|d_s|``. For the target ``θ`` = the average effect over the post event times,
the bias is at most ``M̄ · max|d_s| · mean(e + 1)``.

The interval here is a Bonferroni version of that idea: with probability at least ``1 - α/2`` the
largest pre-period change is below ``max(|d̂_s| + c · se_s)`` (``c`` splits ``α/2`` over the changes), and
``θ̂ ± z_{α/4} · se(θ̂)`` covers ``θ + bias`` with probability at least ``1 - α/2``; so the union covers at
least ``1 - α``. It is wider than HonestDiD's conditional/hybrid interval (the ``honestdid`` package,
which needs PyTorch and is not a dependency): tests/impact/test_sensitivity.py checks on a committed
fixture that it contains HonestDiD's interval at every ``M̄``. The *breakdown value* is the largest
``M̄`` at which the interval still excludes zero: 0 means the effect is not distinguishable from zero
even with exactly parallel trends; 1 means a post-treatment violation as large as the worst seen
before treatment would be needed to explain the effect away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

DEFAULT_MBARS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class Sensitivity:
    """Relative-magnitudes intervals for the average post-treatment effect."""

    estimate: float
    std_error: float
    max_pre_change: float  # largest estimated one-year pre-period change, |d̂_s|
    max_pre_change_upper: float  # its upper confidence bound used in the intervals
    mbars: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    breakdown: float  # largest M̄ whose interval excludes zero (0: none; inf: no pre-periods to scale)


def relative_magnitudes(times: np.ndarray, estimates: np.ndarray, vcov: np.ndarray, alpha: float = 0.05,
                        mbars: Sequence[float] = DEFAULT_MBARS, anticipation: int = 0) -> Sensitivity | None:
    """Sensitivity of the average post effect of a universal-base event study (``times`` event times).

    Returns ``None`` when there is no pre-period event time before the reference year (no change
    before treatment to scale by) or no post event time.
    """
    times = np.asarray(times, dtype=int)
    ref = -1 - anticipation
    pre = np.flatnonzero(times < ref)
    post = np.flatnonzero(times >= 0)
    if len(pre) < 1 or len(post) == 0:
        return None
    # delta vector including the reference (0) at the end of the pre-periods
    order = pre[np.argsort(times[pre])]
    k = len(estimates)
    # one-year changes between consecutive pre event times, the last one into the reference year
    rows = []
    for a, b in zip(order[:-1], order[1:], strict=True):
        r = np.zeros(k)
        r[b], r[a] = 1, -1
        rows.append(r)
    r = np.zeros(k)
    r[order[-1]] = -1
    rows.append(r)
    D = np.vstack(rows)
    d = D @ estimates
    d_se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", D, vcov, D), 0))
    c = norm.ppf(1 - alpha / (4 * len(d)))
    upper_change = float(np.max(np.abs(d) + c * d_se))

    w = np.zeros(k)
    w[post] = 1 / len(post)
    theta = float(w @ estimates)
    se = float(np.sqrt(max(w @ vcov @ w, 0)))
    scale = float(np.mean(times[post] - ref))
    z = norm.ppf(1 - alpha / 4)
    lower, upper = [], []
    for m in mbars:
        bias = m * upper_change * scale
        lower.append(theta - z * se - bias)
        upper.append(theta + z * se + bias)
    room = abs(theta) - z * se
    if room <= 0:
        breakdown = 0.0
    elif upper_change * scale == 0:
        breakdown = float("inf")
    else:
        breakdown = room / (upper_change * scale)
    return Sensitivity(theta, se, float(np.max(np.abs(d))), upper_change, tuple(float(m) for m in mbars),
                       tuple(lower), tuple(upper), float(breakdown))
