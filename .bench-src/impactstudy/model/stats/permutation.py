"""Exact council-level tests for few councils: the sign-flip permutation test on council changes and
the wild cluster bootstrap with Webb weights, each with the smallest p-value it can reach.

Why: with six councils a test's p-value is only as small as the number of ways the councils can be
rearranged allows. Five councils observed at both waves give 2^5 = 32 equally likely sign patterns of
their changes, so no exact council-level test can go below 2/32 = 0.0625, however large the change:
a respondent-level model that reports p = 0.002 there is pretending. Each result states its
``min_p_value`` so that a reader (and the key findings) can say "inconclusive with 5 councils".

- :func:`sign_flip`: under the null of no change and council changes symmetric about zero, every
  pattern of signs of the changes is equally likely; the statistic is their mean (the council-weighted
  mean change) and the two-sided p-value is the share of the 2^n patterns whose mean is at least as
  far from zero, enumerated exactly (as ``scipy.stats.permutation_test(..., permutation_type="samples",
  n_resamples=np.inf)`` does, which the tests check it against, but from the 2^n subset sums directly:
  a second for 19 councils instead of five). Its confidence interval inverts the same test: Hartigan's
  (1969) result that the 2^n - 1 means of the non-empty subsets of the changes cut the line into 2^n
  intervals each holding the centre with probability 1/2^n, so ``[M_(k), M_(2^n - k)]`` covers with
  probability ``1 - 2k/2^n``.
- :func:`wild_cluster_bootstrap`: the restricted (null-imposed) wild cluster bootstrap "WCR11" of
  Roodman et al. (2019) for a linear contrast of an OLS fit, CRV1 t statistic, Webb's six-point weights
  (MacKinnon & Webb 2018), every one of the 6^G weight vectors enumerated when G is small, as
  ``wildboottest.WildboottestCL(...).get_scores("11", impose_null=True)`` computes the bootstrap t
  statistics for given weights (checked in the tests); ``wildboottest`` itself recompiles its numba
  kernel at every call (over a second), so the same algebra is done here with NumPy.

Intervals follow one rule (:func:`interval_level`): the requested level when the exact distribution
reaches it (at least that coverage), else the nearest achievable level if it is at least
:data:`MIN_LEVEL` (80%), else none ("not available with N councils").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_LEVEL = 0.80  # below this achievable level no interval is shown
SIGN_FLIP_EXACT_MAX = 22  # 2^22 subset sums (32 MB); more councils: Monte Carlo
MONTE_CARLO_DRAWS = 99_999
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
WEBB_ENUMERATE_MAX = 7  # 6^7 = 279,936 weight vectors: enumerate every one up to this many councils
BOOTSTRAP_DRAWS = 9_999
SEED = 20130401
_REL_TOL = 1e-12  # statistics this close (relative) count as equal, so float noise never breaks a tie


def not_available(n: int) -> str:
    """The warning of an interval that cannot reach :data:`MIN_LEVEL` with ``n`` councils."""
    return f"interval not available with {n} councils (the highest achievable level is below {MIN_LEVEL:.0%})"


def interval_level(achievable: float, requested: float = 0.95) -> float | None:
    """The level of an exact interval whose nearest achievable level is ``achievable``: ``requested``
    when that is reached, else ``achievable`` when at least :data:`MIN_LEVEL`, else None."""
    if achievable >= requested - 1e-12:
        return requested
    return achievable if achievable >= MIN_LEVEL - 1e-12 else None


def level_warning(level: float | None, requested: float, n: int) -> str:
    """The row's warning for an interval at ``level`` (the wording :mod:`findings` reads back)."""
    if level is None:
        return not_available(n)
    if level < requested - 1e-12:
        return (f"requested conf.level not achievable with {n} councils; the CI is a {level:.4g} interval")
    return ""


@dataclass(frozen=True)
class SignFlip:
    """The sign-flip test of council changes: mean change, its interval (at ``conf_level``; NaN when
    none is available), the two-sided p-value, the smallest p-value reachable, and how it was computed."""

    estimate: float
    ci_low: float
    ci_high: float
    conf_level: float
    p_value: float
    min_p_value: float
    n: int
    method: str
    warning: str


def sign_flip_min_p(diff: np.ndarray) -> float:
    """Smallest two-sided p-value of the sign-flip test with these changes: ``2 / 2^(non-zero changes)``
    (every change of one sign is the one most extreme pattern; zeros do not flip), capped at 1."""
    nonzero = int(np.count_nonzero(np.asarray(diff, dtype=float)))
    return float(min(1.0, 2.0 ** (1 - nonzero)))


def sign_flip(diff: np.ndarray, conf_level: float = 0.95) -> SignFlip:
    """Exact sign-flip test and Hartigan interval for the mean of ``diff`` (one change per council)."""
    d = np.asarray(diff, dtype=float)
    n = len(d)
    nan = float("nan")
    min_p = sign_flip_min_p(d)
    if n == 0:
        return SignFlip(nan, nan, nan, nan, nan, nan, 0, "", "no councils")
    total = float(d.sum())
    if n > SIGN_FLIP_EXACT_MAX:
        res = stats.permutation_test((d,), _mean, permutation_type="samples", vectorized=True,
                                     n_resamples=MONTE_CARLO_DRAWS, alternative="two-sided",
                                     rng=np.random.default_rng(SEED))
        return SignFlip(total / n, nan, nan, nan, float(res.pvalue), 1 / (MONTE_CARLO_DRAWS + 1), n,
                        f"Monte Carlo ({MONTE_CARLO_DRAWS:,} sign patterns, seeded)",
                        f"exact interval only with up to {SIGN_FLIP_EXACT_MAX} councils")
    sums, sizes = _subset_sums(d)
    scale = max(float(np.abs(d).sum()), 1e-300)
    statistic = np.abs(2 * sums - total)  # |sum of s_i d_i| for the pattern that keeps the subset positive
    p = float(np.mean(statistic >= abs(total) - _REL_TOL * scale))
    n_patterns = 2**n
    k = int(np.floor((1 - conf_level) / 2 * n_patterns + 1e-9))  # [M_(k), M_(2^n-k)] covers >= conf_level
    level: float | None = conf_level
    if k == 0:  # not reachable: the widest finite interval, if its level is high enough
        k, level = 1, interval_level(1 - 2 / n_patterns, conf_level)
    lo = hi = nan
    if level is not None:
        means = sums[1:] / sizes[1:]  # the 2^n - 1 non-empty subsets
        parted = np.partition(means, [k - 1, n_patterns - k - 1])
        lo, hi = float(parted[k - 1]), float(parted[n_patterns - k - 1])
    warning = level_warning(level, conf_level, n)
    return SignFlip(total / n, lo, hi, nan if level is None else level, p, min_p, n,
                    f"exact ({n_patterns:,} sign patterns)", warning)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _subset_sums(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and sizes of all 2^n subsets of ``d`` (subset k holds element i when bit i of k is set)."""
    sums, sizes = np.zeros(1), np.zeros(1, dtype=np.int64)
    for x in d:
        sums = np.concatenate([sums, sums + x])
        sizes = np.concatenate([sizes, sizes + 1])
    return sums, sizes


@dataclass(frozen=True)
class WildBootstrap:
    """A wild cluster bootstrap test of ``L @ beta = 0``: the estimate, the CRV1 t statistic, the
    bootstrap p-value, the smallest p-value reachable, how many weight vectors were used, and the
    interval that inverts the test (NaN when not asked for or not found)."""

    estimate: float
    t_stat: float
    p_value: float
    min_p_value: float
    draws: int
    enumerated: bool
    ci_low: float = float("nan")
    ci_high: float = float("nan")


def webb_weights(G: int, seed: int = SEED) -> tuple[np.ndarray, bool]:
    """The Webb weight vectors for G clusters (G x B): all 6^G when ``G <= WEBB_ENUMERATE_MAX`` (True),
    else :data:`BOOTSTRAP_DRAWS` seeded draws (False)."""
    if G <= WEBB_ENUMERATE_MAX:
        grid = np.stack(np.meshgrid(*([np.arange(6)] * G), indexing="ij"), axis=0).reshape(G, -1)
        return WEBB[grid], True
    return np.random.default_rng(seed).choice(WEBB, size=(G, BOOTSTRAP_DRAWS)), False


def wild_cluster_bootstrap(X: np.ndarray, y: np.ndarray, clusters: np.ndarray, L: np.ndarray,
                           seed: int = SEED, conf_level: float | None = None) -> WildBootstrap:
    """Restricted wild cluster bootstrap (WCR11, Webb weights) of ``L @ beta = 0`` in the OLS fit of
    ``y`` on ``X``, clustered by ``clusters``; with ``conf_level``, also the interval that inverts it.

    With G clusters and G <= :data:`WEBB_ENUMERATE_MAX`, all 6^G weight vectors are used (exact
    bootstrap p: the share with ``|t*| >= |t|``; the all-one and all-minus-one vectors reproduce
    ``|t|``, so the smallest reachable p is 2 / 6^G); otherwise :data:`BOOTSTRAP_DRAWS` seeded draws and
    ``p = (1 + #{|t*| >= |t|}) / (B + 1)`` (smallest 1 / (B + 1)).

    The interval is every ``r`` that the same bootstrap test of ``L @ beta = r`` does not reject at
    ``1 - conf_level`` (the null imposed at each ``r``, the same weights), as ``fwildclusterboot`` and
    ``wildboottest`` invert it: the test of ``r`` is the test of 0 for ``y - r X L / (L'L)``, and every
    bootstrap numerator and squared CRV1 standard error is linear, resp. quadratic, in ``r``, so ``p(r)``
    is cheap at any ``r`` and each bound is found by bisection between the estimate (p = 1) and a point
    where the test rejects.
    """
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    G = int(codes.max(initial=-1)) + 1
    v, enumerated = webb_weights(G, seed)
    with np.errstate(divide="ignore", invalid="ignore"):  # a degenerate draw gives a NaN t*, never a hit
        parts = _wcr_parts(X, y, codes, L, v)
    estimate, t_stat = parts.estimate, parts.t_stat
    B = v.shape[1]
    nan = float("nan")
    if not np.isfinite(t_stat):
        return WildBootstrap(estimate, nan, nan, nan, B, enumerated)
    p_value = parts.p_value(0.0, enumerated)
    lo = hi = nan
    if conf_level is not None:
        lo, hi = parts.interval(1 - conf_level, enumerated)
    return WildBootstrap(estimate, t_stat, p_value, 2 / B if enumerated else 1 / (B + 1), B, enumerated, lo, hi)


@dataclass(frozen=True, eq=False)
class _WcrParts:
    """The bootstrap t statistics of ``L beta = r`` as functions of ``r``: for each weight vector b,
    ``t*_b(r) = (a_b + r c_b) / sqrt(q0_b + 2 r q1_b + r^2 q2_b)`` and ``t(r) = (estimate - r) / se``."""

    estimate: float
    se: float
    a: np.ndarray
    c: np.ndarray
    q0: np.ndarray
    q1: np.ndarray
    q2: np.ndarray

    @property
    def t_stat(self) -> float:
        return self.estimate / self.se if self.se > 0 else float("nan")

    def p_value(self, r: float, enumerated: bool) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            t_boot = (self.a + r * self.c) / np.sqrt(self.q0 + 2 * r * self.q1 + r * r * self.q2)
        hits = int(np.sum(np.abs(t_boot) >= abs((self.estimate - r) / self.se) * (1 - 1e-10)))
        B = len(self.a)
        return hits / B if enumerated else (1 + hits) / (B + 1)

    def interval(self, alpha: float, enumerated: bool) -> tuple[float, float]:
        """The bounds of ``{r : p(r) > alpha}`` around the estimate (NaN when no rejecting point is found)."""
        bounds = []
        for direction in (-1.0, 1.0):
            inside, step = self.estimate, 2.0 * self.se
            outside = None
            for _ in range(40):  # double the step until the test rejects
                point = self.estimate + direction * step
                if self.p_value(point, enumerated) <= alpha:
                    outside = point
                    break
                inside, step = point, 2 * step
            if outside is None:
                bounds.append(float("nan"))
                continue
            for _ in range(60):  # p(r) is a step function: bisect to 1e-6 of the standard error
                if abs(outside - inside) <= 1e-6 * self.se:
                    break
                middle = (inside + outside) / 2
                if self.p_value(middle, enumerated) > alpha:
                    inside = middle
                else:
                    outside = middle
            bounds.append(float(inside))
        return bounds[0], bounds[1]


def wcr_t_statistics(X: np.ndarray, y: np.ndarray, codes: np.ndarray, L: np.ndarray,
                     v: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(L @ beta_hat, t, t*)``: the CRV1 t statistic of ``L @ beta = 0`` and the bootstrap t statistics
    for the weight vectors in the columns of ``v`` (G x B), by the "fast and wild" algebra of Roodman et
    al. (2019), as ``wildboottest`` (bootstrap type "11", null imposed, small-sample factor
    ``(N-1)/(N-k) * G/(G-1)``)."""
    parts = _wcr_parts(X, y, codes, L, v)
    return parts.estimate, parts.t_stat, parts.a / np.sqrt(parts.q0)


def _wcr_parts(X: np.ndarray, y: np.ndarray, codes: np.ndarray, L: np.ndarray, v: np.ndarray) -> _WcrParts:
    """:class:`_WcrParts` of the OLS fit of ``y`` on ``X``: the bootstrap numerators ``C v`` and
    ``Z = C v - H v`` (per cluster) at ``r = 0`` and their slopes in ``r`` (both are linear in ``y``, and
    testing ``r`` is testing 0 for ``y - r X L / (L'L)``)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    R = np.asarray(L, dtype=float)
    N, k = X.shape
    G = v.shape[0]
    XtX_g = np.zeros((G, k, k))
    np.add.at(XtX_g, codes, X[:, :, None] * X[:, None, :])
    inv = np.linalg.inv(XtX_g.sum(axis=0))
    Rinv = R @ inv
    ssc = (N - 1) / (N - k) * G / (G - 1)
    RinvXtX = np.einsum("k,gkl->gl", Rinv, XtX_g) @ inv

    def numerators(yy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Xty_g = np.zeros((G, k))
        np.add.at(Xty_g, codes, X * yy[:, None])
        beta = inv @ Xty_g.sum(axis=0)
        beta_tilde = beta - inv @ R * (R @ beta) / (Rinv @ R)  # restricted: R beta_tilde = 0
        scores = Xty_g - XtX_g @ beta_tilde  # (G, k) restricted scores
        C = scores @ Rinv  # (G,)
        H = RinvXtX @ scores.T  # H[g, h] = R inv X_g'X_g inv s_h
        Z = C[:, None] * v - H @ v
        return C @ v, Z, Xty_g - XtX_g @ beta  # numerators, Z, unrestricted scores

    numer0, Z0, raw = numerators(y)
    numer1, Z1, _ = numerators(y - X @ R / (R @ R))  # at r = 1
    dZ = Z1 - Z0
    vcov = inv @ (raw.T @ raw) @ inv
    variance = float(ssc * R @ vcov @ R)
    estimate = float(R @ (inv @ (X.T @ y)))
    se = float(np.sqrt(variance)) if variance > 0 else 0.0
    return _WcrParts(estimate, se, numer0, numer1 - numer0, ssc * np.sum(Z0 * Z0, axis=0),
                     ssc * np.sum(Z0 * dZ, axis=0), ssc * np.sum(dZ * dZ, axis=0))


__all__ = ["MIN_LEVEL", "SignFlip", "WildBootstrap", "interval_level", "level_warning", "not_available",
           "sign_flip", "sign_flip_min_p", "wcr_t_statistics", "webb_weights", "wild_cluster_bootstrap"]
