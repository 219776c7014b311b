"""How large a violation of parallel trends would overturn the conclusion (relative magnitudes).

Rambachan & Roth (2023) bound the post-treatment violation of parallel trends relative to the ones
seen before treatment: under Δ^RM(M̄) no one-year change of the violation after treatment is larger
than ``M̄`` times the largest one-year change before it. For the target ``θ`` (here the average effect
over the event times from 0 on) this module computes HonestDiD's robust confidence set: the
conditional test of Andrews, Roth & Pakes (2023, "ARP") with the least-favourable hybrid (method
"C-LF", the package's default), inverted over ``θ``. It follows the HonestDiD R package
(``R/deltarm.R``: the union over the period ``s`` of the largest pre-treatment change and its sign;
``R/arp-nuisance.R``: the test with nuisance parameters) and its Python port ``honestdid``, and
reproduces the port's intervals (tests/impact/test_sensitivity.py, fixtures from
tests/reference/impact_honestdid.py).

How the test is computed here. For one ``(s, sign)`` the moments are the post-period rows of
HonestDiD's ``A`` matrix, ``y(θ) = A β̂ − a θ``; the test statistic is the linear program
``η(θ) = min_τ max_i (y_i − (X τ)_i) / σ_i`` over the nuisance ``τ``. Its dual is a maximum over the
vertices of ``{γ ≥ 0, γ'X = 0, γ'σ = 1}``, and for Δ^RM those vertices are known in closed form:
the post rows come in pairs ``±(δ_t − δ_{t−1})``, so the cone ``{γ ≥ 0 : γ'X = 0}`` is spanned by
the pairs ``e_t⁺ + e_t⁻`` and by ``(w, 0)``, ``(0, w)`` with ``w_t = Σ_{j ≥ t} l_j`` (see
:func:`_rays`). So ``η``, the dual vertex ``γ̃`` the test conditions on, and the truncation points
``V^lo``, ``V^up`` (which HonestDiD finds by bisection over linear programs) are exact closed
forms, vectorised over a grid of ``θ``; scipy's HiGHS (:func:`scipy.optimize.linprog`) is used by
the tests to check the closed form against the linear program. The least-favourable critical value
is the ``1 − κ`` quantile (``κ = α/10``) of ``η`` under 1,000 normal draws with the moments'
covariance, drawn exactly as the ``honestdid`` package draws them (NumPy's ``RandomState(seed)``),
so the two agree draw for draw.

Intervals. HonestDiD tests a fixed grid of 1,000 values over ``±20`` standard errors *around zero*
and reports the smallest and largest accepted values; a set reaching the grid's edge is cut there
(it warns "CI is open"). Here the grid is centred on the estimate, widened until both ends are
rejected (an end still accepted after 8 doublings is reported as unbounded), and each end is then
refined by bisection between the last rejected and the first accepted grid value, so the bounds are
exact to 1e-6 of the grid's width rather than to one grid step. The *breakdown value* is the
largest ``M̄`` at which the interval excludes zero, found by bisection on ``M̄`` to 0.001: 0 means
the effect is not distinguishable from zero even with exactly parallel trends; 1 means it survives
a post-treatment violation as large as the worst year-to-year change seen before treatment.

Event times in the anticipation window (between the reference year ``−1 − anticipation`` and 0)
are post-reference periods with weight 0 in ``l``: the violation's chain of one-year changes runs
through them, as in HonestDiD with a reference period before the anticipation years.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtri_exp

DEFAULT_MBARS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
METHODS = {"C-LF": "conditional–least-favourable hybrid", "Conditional": "conditional"}
#: Normal draws for the least-favourable critical value (HonestDiD's ``sims``).
LF_SIMS = 1000
#: Points of the grid of θ values first tested, and of each of the finer grids at an end.
GRID, FINE = 401, 64
#: Upper end of the breakdown search: beyond this the effect is reported as surviving any M̄ tried.
MAX_MBAR = 64.0


@dataclass(frozen=True)
class Sensitivity:
    """Relative-magnitudes (Δ^RM) confidence intervals for the average post-treatment effect."""

    estimate: float
    std_error: float
    max_pre_change: float  # largest estimated one-year change before treatment, |d̂_s|
    mbars: tuple[float, ...]
    lower: tuple[float, ...]  # -inf where the set is unbounded below
    upper: tuple[float, ...]
    breakdown: float  # largest M̄ whose interval excludes zero (0: none; inf: beyond MAX_MBAR)
    breakdown_interval: tuple[float, float]  # the interval at the breakdown value (nan when it is inf)
    method: str = "C-LF"
    n_pre: int = 0  # pre-treatment event times used (before the reference year)
    n_post: int = 0  # event times after the reference year (anticipation years included)

    @property
    def description(self) -> str:
        """The method in words, for impact.json and the report."""
        return (f"HonestDiD relative magnitudes (Rambachan & Roth 2023, Δ^RM), {METHODS[self.method]} confidence "
                f"set (Andrews, Roth & Pakes), average effect over the post-treatment event times")


def _rays(l_vec: np.ndarray) -> np.ndarray:
    """Generators of the cone ``{γ ≥ 0 : γ'X = 0}`` of the Δ^RM post-period moments (rows of the result).

    The moments are ``+(δ_t − δ_{t−1})`` for ``t = 1..n`` then ``−(δ_t − δ_{t−1})``; the nuisance
    directions ``X`` span the post-period vectors with ``l'τ = 0``. ``γ'X = 0`` means
    ``D'(γ⁺ − γ⁻) = c·l`` with ``D`` the first-difference matrix, so ``γ⁺ − γ⁻ = c·w``,
    ``w = D'^{-1} l`` (``w_t = Σ_{j ≥ t} l_j``), and every such ``γ ≥ 0`` is a nonnegative
    combination of ``(w⁺, w⁻)``, ``(w⁻, w⁺)`` and the pairs ``(e_t, e_t)``. Redundant generators do not
    change a maximum over the cone's slice, so all are returned.
    """
    n = len(l_vec)
    w = np.cumsum(l_vec[::-1])[::-1]
    pos, neg = np.maximum(w, 0), np.maximum(-w, 0)
    eye = np.eye(n)
    rays = [np.r_[pos, neg], np.r_[neg, pos], *np.hstack([eye, eye])]
    return np.array([r for r in rays if r.any()])


def _moments(n_pre: int, n_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """HonestDiD's ``A`` for Δ^RM_{s,±}(M̄), post-period rows only (``postPeriodMomentsOnly``), over the
    coefficients ``(pre…, post…)`` without the reference period.

    Row ``t`` (``t = 1..n_post``): ``±(δ_t − δ_{t−1}) − M̄·sign·(δ_s − δ_{s−1})``, with ``δ_0 = 0`` the
    reference period and ``s ∈ {−(n_pre − 1), …, 0}`` the period of the largest pre-treatment change.
    """
    k = n_pre + n_post

    def e(t: int) -> np.ndarray:  # coefficient t (t = -n_pre..-1 pre, 1..n_post post); 0 is the reference
        v = np.zeros(k)
        if t < 0:
            v[n_pre + t] = 1
        elif t > 0:
            v[n_pre + t - 1] = 1
        return v

    diff = np.array([e(t) - e(t - 1) for t in range(1, n_post + 1)])
    bound = mbar * (1 if positive else -1) * (e(s) - e(s - 1))
    return np.vstack([diff - bound, -diff - bound])


def truncated_normal_quantile(p: float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of the standard normal truncated to ``[low, high]``, accurate far in either tail.

    In log space (``log_ndtr``, ``ndtri_exp``), from the upper tail when ``low >= 0`` and from the lower
    one otherwise, as R's ``TruncatedNormal::norminvp`` (which HonestDiD uses) is; scipy's
    ``truncnorm.ppf`` gives the same values but is about a hundred times slower. NaN where ``low > high``.
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    with np.errstate(all="ignore"):
        log_low, log_high = log_ndtr(-low), log_ndtr(-high)  # log survival at the ends
        upper_tail = -ndtri_exp(log_low + np.log1p(p * np.expm1(log_high - log_low)))
        cdf_low, cdf_high = log_ndtr(low), log_ndtr(high)
        lower_tail = ndtri_exp(cdf_high + np.log1p((1 - p) * np.expm1(cdf_low - cdf_high)))
        q = np.clip(np.where(low >= 0, upper_tail, lower_tail), low, high)
    return np.where(low <= high, q, np.nan)


@dataclass(frozen=True)
class _Test:
    """The ARP test of ``H0: l'τ = θ`` for one ``(s, sign)``, vectorised over ``θ``."""

    y0: np.ndarray  # A β̂ (moments at θ = 0)
    a: np.ndarray  # y(θ) = y0 − a θ
    sigma: np.ndarray  # covariance of the moments
    vertices: np.ndarray  # vertices of the dual polytope (rows)
    lf_cv: float  # least-favourable critical value (inf: no hybrid)
    size: float  # size of the second-stage conditional test
    lf_truncates: bool  # whether the conditional test conditions on η ≤ lf_cv (HonestDiD: with nuisance)

    def __post_init__(self) -> None:
        K = self.vertices @ self.sigma @ self.vertices.T  # covariances of the vertices' values
        object.__setattr__(self, "_K", K)
        object.__setattr__(self, "_s2", np.diag(K).copy())

    def accept(self, theta: np.ndarray) -> np.ndarray:
        """Whether the test accepts each value of ``theta``."""
        V, K, s2_all = self.vertices, self._K, self._s2
        E = (V @ self.y0)[:, None] - (V @ self.a)[:, None] * theta[None, :]  # each vertex's value, R x G
        best = np.argmax(E, axis=0)  # the dual vertex γ̃ the test conditions on
        eta = E[best, np.arange(len(theta))]
        s2 = s2_all[best]  # γ̃'Σγ̃
        reject = eta > self.lf_cv
        degenerate = s2 < np.finfo(float).eps
        todo = np.flatnonzero(~reject & ~degenerate)
        if len(todo):
            b, e, sd = best[todo], eta[todo], np.sqrt(s2[todo])
            with np.errstate(divide="ignore", invalid="ignore"):
                Vb = K[:, b] / s2[todo][None, :]  # each vertex's γ'Σγ̃ / γ̃'Σγ̃
                slack = 1 - Vb
                ratio = (E[:, todo] - Vb * e[None, :]) / slack
                vlo = np.where(slack > 1e-10, ratio, -np.inf).max(axis=0)
                vup = np.where(slack < -1e-10, ratio, np.inf).min(axis=0)
            up = np.minimum(vup, self.lf_cv) if self.lf_truncates else vup
            zlo, zup, stat = vlo / sd, up / sd, e / sd
            inside = (zlo <= stat) & (stat <= zup)
            q = np.full(len(todo), np.inf)
            q[inside] = truncated_normal_quantile(1 - self.size, zlo[inside], zup[inside])
            reject[todo] = inside & (stat > np.maximum(0, q))
        reject[degenerate] = eta[degenerate] > 0
        return ~reject


class _Problem:
    """Everything about one event study that does not depend on ``θ``; tests for each ``M̄``."""

    def __init__(self, beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_vec: np.ndarray, alpha: float,
                 method: str, seed: int) -> None:
        self.beta, self.sigma, self.n_pre, self.l_vec = beta, sigma, n_pre, l_vec
        self.n_post = len(l_vec)
        self.alpha, self.method = alpha, method
        self.kappa = alpha / 10
        self.rays = _rays(l_vec)
        # post-period coefficient change a unit of θ makes: any g with l'g = 1 (the rest is nuisance)
        self.g = np.r_[np.zeros(n_pre), l_vec / (l_vec @ l_vec)]
        self.normals = np.random.RandomState(seed).standard_normal((LF_SIMS, 2 * self.n_post))
        self._cache: dict[float, list[_Test]] = {}

    def tests(self, mbar: float) -> list[_Test]:
        if mbar not in self._cache:
            out = []
            for s in range(-(self.n_pre - 1), 1):
                for positive in (True, False):
                    A = _moments(self.n_pre, self.n_post, mbar, s, positive)
                    cov = A @ self.sigma @ A.T
                    sd = np.sqrt(np.maximum(np.diag(cov), 0))
                    norm_ = self.rays @ sd
                    V = self.rays[norm_ > 0] / norm_[norm_ > 0, None]
                    if self.method == "C-LF":
                        lf_cv = self._least_favourable(V, cov)
                        size = (self.alpha - self.kappa) / (1 - self.kappa)
                    else:
                        lf_cv, size = np.inf, self.alpha
                    out.append(_Test(A @ self.beta, A @ self.g, cov, V, lf_cv, size, self.n_post > 1))
            self._cache[mbar] = out
        return self._cache[mbar]

    def _least_favourable(self, V: np.ndarray, cov: np.ndarray) -> float:
        """``1 − κ`` quantile of ``η`` at the least favourable null (moments' mean 0), as HonestDiD draws it."""
        # numpy's multivariate_normal: x = z @ (sqrt(s)[:, None] * vh) from the SVD of the covariance
        _u, s, vh = np.linalg.svd(cov)
        draws = self.normals @ (np.sqrt(s)[:, None] * vh)
        return float(np.quantile((draws @ V.T).max(axis=1), 1 - self.kappa))

    def accept(self, mbar: float, theta: np.ndarray) -> np.ndarray:
        out = np.zeros(len(theta), dtype=bool)
        for test in self.tests(mbar):
            out |= test.accept(theta)
        return out

    @property
    def estimate(self) -> float:
        return float(self.l_vec @ self.beta[self.n_pre:])

    @property
    def std_error(self) -> float:
        post = self.sigma[self.n_pre:, self.n_pre:]
        return float(np.sqrt(max(self.l_vec @ post @ self.l_vec, 0)))

    def interval(self, mbar: float, grid: tuple[float, float, int] | None = None) -> tuple[float, float]:
        """The confidence set's smallest and largest value at ``mbar``; ``(nan, nan)`` when it is empty.

        ``grid = (low, high, points)`` tests exactly that grid, as HonestDiD does (no widening or
        refinement); by default the grid is centred on the estimate, widened and its ends refined.
        """
        if grid is not None:
            theta = np.linspace(*grid)
            ok = self.accept(mbar, theta)
            return (float(theta[ok].min()), float(theta[ok].max())) if ok.any() else (np.nan, np.nan)
        centre, half = self.estimate, 20 * max(self.std_error, 1e-12)
        for _ in range(9):
            theta = np.linspace(centre - half, centre + half, GRID)
            ok = self.accept(mbar, theta)
            if not ok.any():
                return np.nan, np.nan
            if not (ok[0] or ok[-1]):
                break
            half *= 2
        first, last = np.flatnonzero(ok)[[0, -1]]
        lower = -np.inf if ok[0] else self._edge(mbar, theta[first - 1], theta[first])
        upper = np.inf if ok[-1] else self._edge(mbar, theta[last + 1], theta[last])
        return lower, upper

    def _edge(self, mbar: float, rejected: float, accepted: float) -> float:
        """Where the test turns between a rejected and an accepted value: three finer grids between them
        (to 4e-6 of their distance)."""
        for _ in range(3):
            theta = np.linspace(rejected, accepted, FINE)
            ok = self.accept(mbar, theta)
            i = int(np.argmax(ok))  # the last value is accepted
            rejected, accepted = theta[max(i - 1, 0)], theta[i]
        return float(accepted)

    def rejects_zero(self, mbar: float) -> bool:
        return not self.accept(mbar, np.zeros(1))[0]

    def breakdown(self) -> float:
        """The largest ``M̄`` whose interval excludes zero (bisection on the test of ``θ = 0``, to 0.001).

        The interval excludes zero exactly when the test rejects ``θ = 0``, as long as the accepted
        values form one interval; the result is checked against the interval itself.
        """
        if not self.rejects_zero(0.0):
            return 0.0
        low, high = 0.0, 0.5
        while self.rejects_zero(high):
            low, high = high, high * 2
            if high > MAX_MBAR:
                return float("inf")
        while high - low > 1e-3:
            mid = (low + high) / 2
            if self.rejects_zero(mid):
                low = mid
            else:
                high = mid
        lower, upper = self.interval(low)
        if lower <= 0 <= upper:  # a set with a hole at zero: report where its hull first reaches zero
            return self._hull_breakdown(low)
        return round(low, 3)

    def _hull_breakdown(self, above: float) -> float:
        low, high = 0.0, above
        while high - low > 1e-3:
            mid = (low + high) / 2
            lower, upper = self.interval(mid)
            if lower > 0 or upper < 0:
                low = mid
            else:
                high = mid
        return round(low, 3)


def event_study_blocks(times: np.ndarray, anticipation: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices of the pre-reference and post-reference event times HonestDiD uses, in time order.

    The reference year is ``−1 − anticipation``; the periods must run without a gap on each side of
    it, so only the unbroken run of event times around it is used. None when there is no event time
    before the reference year or none from 0 on.
    """
    times = np.asarray(times, dtype=int)
    ref = -1 - anticipation
    position = {int(t): i for i, t in enumerate(times)}
    pre, t = [], ref - 1
    while t in position:
        pre.insert(0, position[t])
        t -= 1
    post, t = [], ref + 1
    while t in position:
        post.append(position[t])
        t += 1
    if not pre or not any(times[i] >= 0 for i in post):
        return None
    return np.array(pre), np.array(post)


def relative_magnitudes(times: np.ndarray, estimates: np.ndarray, vcov: np.ndarray, alpha: float = 0.05,
                        mbars: Sequence[float] = DEFAULT_MBARS, anticipation: int = 0, method: str = "C-LF",
                        seed: int = 0, grid: tuple[float, float, int] | None = None) -> Sensitivity | None:
    """HonestDiD's Δ^RM sensitivity of the average post effect of a universal-base event study.

    ``times`` are event times (the reference year ``−1 − anticipation`` may be among them, with
    estimate 0); ``method`` is ``"C-LF"`` (HonestDiD's default hybrid) or ``"Conditional"``; ``grid``
    reproduces HonestDiD's fixed grid (see :meth:`_Problem.interval`). Returns None when there is no
    event time before the reference year, or none from 0 on.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    blocks = event_study_blocks(times, anticipation)
    if blocks is None:
        return None
    pre, post = blocks
    keep = np.r_[pre, post]
    beta = np.asarray(estimates, dtype=float)[keep]
    sigma = np.asarray(vcov, dtype=float)[np.ix_(keep, keep)]
    post_times = np.asarray(times)[post]
    l_vec = np.where(post_times >= 0, 1.0, 0.0)
    l_vec /= l_vec.sum()
    problem = _Problem(beta, sigma, len(pre), l_vec, alpha, method, seed)
    bounds = [problem.interval(float(m), grid) for m in mbars]
    changes = np.diff(np.r_[beta[:len(pre)], 0.0])
    breakdown = problem.breakdown()
    at = problem.interval(breakdown) if np.isfinite(breakdown) else (np.nan, np.nan)
    return Sensitivity(problem.estimate, problem.std_error, float(np.max(np.abs(changes))),
                       tuple(float(m) for m in mbars), tuple(b[0] for b in bounds), tuple(b[1] for b in bounds),
                       breakdown, at, method, len(pre), len(post))

