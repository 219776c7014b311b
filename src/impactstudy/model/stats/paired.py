"""Paired tests on council means: paired t and Wilcoxon signed-rank with the Hodges-Lehmann shift.

The unit is the council: answers are averaged within council and wave, and a contrast uses the
councils observed at both of its waves. With few councils these are the honest tests, and both give
exact small-sample answers: the t test under normality of the council differences, the signed-rank
test (exact null distribution) without it.

Wilcoxon follows R's ``wilcox.test(later, earlier, paired = TRUE, conf.int = TRUE)`` step for step,
so that every number can be reproduced in R:

- zero differences are dropped (R's and scipy's ``zero_method="wilcox"``);
- with fewer than 50 non-zero differences and no ties or zeros: exact p-value, the Hodges-Lehmann
  estimate (median of the Walsh averages) and the exact CI ``(walsh[qu], walsh[N - qu + 1])`` with
  ``qu = qsignrank(alpha/2, n)`` (``N = n(n+1)/2``); when the exact distribution cannot reach the
  requested level the achieved level is stated in ``warning``, as R warns;
- otherwise: normal approximation with tie and continuity correction for the p-value, and for the CI
  and estimate the points where the (continuity-corrected, resp. uncorrected) standardised statistic
  crosses the normal quantile (resp. zero). R finds those with ``uniroot(tol = 1e-4)``; the statistic
  is a step function of the shift, and here the crossing is located to machine precision, so the
  results differ from R's by at most R's tolerance (about 1e-4), never more.

Differences are rounded to 12 significant digits before ranking (R's ``digits.rank`` argument), so
council means that are equal in exact arithmetic count as ties even if floating point disagrees in
the last bit; the Walsh averages use the unrounded differences.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from impactstudy.model.stats import permutation, tidy

RANK_DIGITS = 12
EXACT_MAX_N = 50  # R's default: exact when n < 50
MIN_PAIRED = 3  # fewer councils at both waves: not estimable
_DBL_EPSILON = np.finfo(float).eps


def council_means(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
                  group: str | None = None) -> pd.DataFrame:
    """Mean value per council (and group level) and wave; columns ``council_code, [group], wave, mean, n``,
    sorted by them (categoricals, as in the prepared frame)."""
    d = tidy.sample(data, wave_order, group).frame
    keys = ["council_code"] + ([group] if group is not None else []) + ["wave"]
    # One integer per cell: grouping on it takes a third of the time grouping on the categoricals does,
    # with the same cells in the same order and the same means (each cell's values summed in row order).
    cell = np.zeros(len(d), dtype=np.int64)
    for key in keys:
        cell = cell * len(d[key].cat.categories) + d[key].cat.codes.to_numpy()
    means = d["value"].groupby(cell).agg(["mean", "size"])
    codes, columns = means.index.to_numpy(), {}
    for key in reversed(keys):
        n = len(d[key].cat.categories)
        columns[key] = pd.Categorical.from_codes(codes % n, dtype=d[key].dtype)
        codes = codes // n
    return pd.DataFrame({**{k: columns[k] for k in keys}, "mean": means["mean"].to_numpy(),
                         "n": means["size"].to_numpy()})


def _council_tables(sample: tidy.Sample) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """Per group level: council x wave tables of mean answers (NaN where none) and answer counts, councils
    in label order. Derived once per sample, for both paired tests."""
    means = council_means(sample, sample.waves, sample.group)
    council, wave = means["council_code"].cat.codes.to_numpy(), means["wave"].cat.codes.to_numpy()
    shape = (len(means["council_code"].cat.categories), len(sample.waves))
    tables = {}
    for _, level in sample.levels:
        rows = np.ones(len(means), dtype=bool) if sample.group is None else (means[sample.group] == level).to_numpy()
        mean, size = np.full(shape, np.nan), np.zeros(shape, dtype=np.int64)
        mean[council[rows], wave[rows]] = means["mean"].to_numpy()[rows]
        size[council[rows], wave[rows]] = means["n"].to_numpy()[rows]
        tables[level] = mean, size
    return tables


def paired_t(
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Paired t test of council means (later - earlier), as scipy ``ttest_rel`` (and R ``t.test(paired =
    TRUE)``); ``df`` = councils - 1. The t statistic, interval and p-value are computed with the
    ``scipy.special`` functions ``ttest_rel`` evaluates (:func:`tidy.interval`), without its argument
    handling: ~3 ms a test, which the coverage simulation's thousands of tests felt."""

    def test(diff: np.ndarray) -> dict[str, object]:
        if np.ptp(diff) == 0:
            return {"estimate": float(diff[0]), "std_error": 0.0, "df": float(len(diff) - 1),
                    "warning": "every council changed by the same amount; no t statistic"}
        n = len(diff)
        estimate, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n))
        lo, hi, p = tidy.interval(estimate, se, float(n - 1), conf_level)
        return {"estimate": estimate, "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p, "df": float(n - 1)}

    return paired_rows("paired_t", "none (t reference, df=n-1)", data, wave_order, contrasts, group, test)


def wilcoxon_signed_rank(
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Wilcoxon signed-rank test of council means with the Hodges-Lehmann shift and its CI (as R)."""

    def test(diff: np.ndarray) -> dict[str, object]:
        hl = hodges_lehmann(diff, conf_level)
        return {"estimate": hl.estimate, "ci_low": hl.ci_low, "ci_high": hl.ci_high, "p_value": hl.p_value,
                "min_p_value": signed_rank_min_p(int(np.count_nonzero(_round_rank(diff)))),
                "correction": hl.method, "warning": hl.warning}

    return paired_rows("wilcoxon", "", data, wave_order, contrasts, group, test)


@dataclass(frozen=True)
class HodgesLehmann:
    """Signed-rank p-value, Hodges-Lehmann shift and CI for paired differences, as R computes them."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    warning: str


def hodges_lehmann(diff: np.ndarray, conf_level: float = 0.95) -> HodgesLehmann:
    """Signed-rank test, Hodges-Lehmann shift and its interval for paired differences (two-sided, mu = 0).

    Fewer than 50 non-zero differences: exact. Without ties or zeros this is R's ``wilcox.test(diff,
    conf.int = TRUE, conf.level = conf_level)`` exactly; with them, the exact conditional distribution
    given the tied ranks (:func:`conditional_signed_rank`). Either way the interval is shown only at a
    level the exact distribution reaches: ``conf_level`` when it can, else the nearest achievable level
    if at least :data:`permutation.MIN_LEVEL`, else not at all (NaN, "not available with n councils").
    Otherwise the normal approximation with tie and continuity correction, as R.
    """
    diff = np.asarray(diff, dtype=float)
    rounded = _round_rank(diff)
    zeroes = bool(np.any(rounded == 0))
    x, xr = diff[rounded != 0], rounded[rounded != 0]
    n = len(x)
    nan = float("nan")
    if n == 0:
        return HodgesLehmann(nan, nan, nan, nan, "", "every difference is zero")
    ties = len(np.unique(np.abs(xr))) != n
    alpha = 1 - conf_level
    if n < EXACT_MAX_N and (ties or zeroes):
        return conditional_signed_rank(diff, conf_level)
    if n < EXACT_MAX_N:
        p = stats.wilcoxon(xr, zero_method="wilcox", method="exact").pvalue
        walsh = _walsh_averages(x)
        cdf = _signrank_cdf(n)
        qu = int(np.argmax(cdf >= alpha / 2 - 10 * _DBL_EPSILON)) or 1  # R: qsignrank, then qu >= 1
        ql = n * (n + 1) // 2 - qu
        achieved = 1 - 2 * cdf[qu - 1]
        level = permutation.interval_level(achieved, conf_level)  # R would call 0.9375 (n = 5) a 95% interval
        lo, hi = (float(walsh[qu - 1]), float(walsh[ql])) if level is not None else (nan, nan)
        return HodgesLehmann(float(np.median(walsh)), lo, hi, float(p), "exact",
                             permutation.level_warning(level, conf_level, n))
    p = stats.wilcoxon(xr, zero_method="wilcox", correction=True, method="approx").pvalue
    method = (f"normal approximation with continuity and tie correction ({n} >= {EXACT_MAX_N} differences); "
              "CI as R to ~1e-4")
    lo, hi, est, warning = _approximate_interval(x, alpha)
    return HodgesLehmann(est, lo, hi, float(p), method, warning)


def _round_rank(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to :data:`RANK_DIGITS` significant digits (R's ``digits.rank``), for ranking."""
    return np.array([float(f"{v:.{RANK_DIGITS}g}") for v in values])


CONDITIONAL = "exact conditional (permutation) distribution given the tied ranks"


def signed_rank_min_p(n: int) -> float:
    """Smallest two-sided p-value of the signed-rank test with ``n`` non-zero differences, ``2 / 2^n``
    (all of one sign is the one most extreme pattern, with or without ties), capped at 1."""
    return float(min(1.0, 2.0 ** (1 - n))) if n > 0 else float("nan")


def conditional_p_value(values: np.ndarray) -> float:
    """Two-sided p-value of the signed-rank statistic of ``values`` (rounded, zeros already dropped) in its
    exact conditional distribution: each of the 2^n sign patterns equally likely, the tied mid-ranks
    fixed. The distribution of the sum of positive doubled mid-ranks is built one rank at a time (a
    convolution; exact in float64 for n < 53), so it costs n passes over n(n+1) counts, not 2^n."""
    ranks2 = _doubled_midranks(np.abs(values))
    total = int(ranks2.sum())
    counts = _doubled_rank_counts(tuple(np.sort(ranks2).tolist()))
    observed = abs(2 * int(ranks2[values > 0].sum()) - total)
    extreme = np.abs(2 * np.arange(total + 1) - total) >= observed
    return float(counts[extreme].sum() / 2.0 ** len(values))


def _doubled_midranks(values: np.ndarray) -> np.ndarray:
    """Twice the mid-ranks of ``values`` (ties share the mean of their ranks), as integers: what
    ``2 * scipy.stats.rankdata(values)`` gives, without its argument handling (~0.4 ms a call)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (2 * upper - counts + 1)[inverse.ravel()].astype(np.int64)


@functools.lru_cache(maxsize=1024)
def _doubled_rank_counts(ranks2: tuple[int, ...]) -> np.ndarray:
    """How many of the 2^n sign patterns give each sum of positive doubled mid-ranks ``ranks2`` (sorted):
    kept, as an interval's search evaluates many shifts with the same tied ranks. Read-only."""
    counts = np.zeros(sum(ranks2) + 1)
    counts[0] = 1.0
    for r in ranks2:
        counts[r:] = counts[r:] + counts[:-r]  # the right side is the previous counts
    counts.setflags(write=False)
    return counts


def conditional_signed_rank(diff: np.ndarray, conf_level: float = 0.95) -> HodgesLehmann:
    """The signed-rank test with ties or zeros from its exact conditional distribution
    (:func:`conditional_p_value`; zeros dropped, as R and scipy's ``zero_method="wilcox"``), the
    Hodges-Lehmann estimate (median of the Walsh averages) and the interval that inverts the test.

    The interval is the set of shifts ``mu`` the test does not reject for ``diff - mu``. Its p-value is a
    step function of ``mu`` that can change only at a Walsh average, so it is evaluated at each Walsh
    average and between consecutive ones, from the outside in: the interval runs from the first
    accepted point on the left to the first on the right (closed at the Walsh averages that bound them).
    The level: ``conf_level`` when the smallest p-value, ``2 / 2^n``, is at most ``1 - conf_level``
    (rejecting at p <= 0.05 gives coverage of at least 95%), else ``1 - 2 / 2^n`` when that is at least
    :data:`permutation.MIN_LEVEL`, else no interval.
    """
    diff = np.asarray(diff, dtype=float)
    x = diff[_round_rank(diff) != 0]
    n_all = len(diff)
    walsh = _walsh_averages(diff)
    estimate = float(np.median(_walsh_averages(x)))
    p = conditional_p_value(_round_rank(x))
    nan = float("nan")
    smallest = signed_rank_min_p(n_all)  # at a shift between Walsh averages no difference is zero
    if smallest <= 1 - conf_level + 1e-12:
        level: float | None = conf_level
        reject_at = 1 - conf_level
    else:
        level = permutation.interval_level(1 - smallest, conf_level)
        reject_at = smallest
    lo = hi = nan
    if level is not None:
        jumps = np.unique(walsh)
        points = np.empty(2 * len(jumps) - 1)
        points[0::2] = jumps
        points[1::2] = (jumps[:-1] + jumps[1:]) / 2

        def accepted(mu: float) -> bool:
            shifted = _round_rank(diff - mu)
            return conditional_p_value(shifted[shifted != 0]) > reject_at * (1 + 1e-9)

        first = next((k for k in range(len(points)) if accepted(points[k])), None)
        if first is not None:
            last = next(k for k in range(len(points) - 1, first - 1, -1) if accepted(points[k]))
            lo, hi = float(jumps[first // 2]), float(jumps[(last + 1) // 2])
    return HodgesLehmann(estimate, lo, hi, p, CONDITIONAL, permutation.level_warning(level, conf_level, n_all))


def _walsh_averages(x: np.ndarray) -> np.ndarray:
    """Sorted ``(x_i + x_j) / 2`` for ``i <= j``."""
    i, j = np.triu_indices(len(x))
    return np.sort((x[i] + x[j]) / 2)


@functools.cache
def _signrank_cdf(n: int) -> np.ndarray:
    """CDF of the signed-rank statistic V under H0 at 0..n(n+1)/2 (R's psignrank; scipy has no public one).

    The count of subsets of {1..n} with each sum, built one rank at a time; exact in int64 for n < 63.
    """
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.int64)
    counts[0] = 1
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k]  # right side is evaluated first: uses the previous counts
    return np.cumsum(counts) / 2.0**n


def _signed_rank_z(xd: np.ndarray, correct: bool) -> float:
    """Standardised signed-rank statistic of ``xd`` with R's tie (and optionally continuity) correction."""
    xd = xd[xd != 0]
    nx = len(xd)
    ranks = stats.rankdata(np.abs(xd))
    zd = ranks[xd > 0].sum() - nx * (nx + 1) / 4
    _, tie_counts = np.unique(ranks, return_counts=True)
    sigma = np.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24 - np.sum(tie_counts**3 - tie_counts) / 48)
    return (zd - (np.sign(zd) * 0.5 if correct else 0.0)) / sigma


def _approximate_interval(x: np.ndarray, alpha: float) -> tuple[float, float, float, str]:
    """R's normal-approximation CI and estimate for the signed-rank shift (the non-exact branch).

    The standardised statistic is a step function of the shift ``d`` that can only change at a Walsh
    average (where an ``x_i - d`` changes sign, becomes zero or ties another in absolute value), so it
    is computed once per interval between consecutive Walsh averages (and once at each of them) and
    reused for every root-finder evaluation that falls there: same roots, a fraction of the work.
    """
    jumps = np.unique(_walsh_averages(x))
    cache: dict[tuple[int, bool, bool], float] = {}

    def w_stat(d: float, correct: bool) -> float:
        at = int(np.searchsorted(jumps, d))
        key = (at, at < len(jumps) and jumps[at] == d, correct)
        if key not in cache:
            cache[key] = _signed_rank_z(x - d, correct)
        return cache[key]

    def root(f: Callable[[float], float], lower_value: float, upper_value: float) -> float:
        if lower_value == 0:
            return mumin
        if upper_value == 0:
            return mumax
        return float(optimize.brentq(f, mumin, mumax, xtol=1e-12, rtol=4 * _DBL_EPSILON))

    mumin, mumax = float(x.min()), float(x.max())
    nan = float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        w_min, w_max = w_stat(mumin, True), w_stat(mumax, True)
    if not (np.isfinite(w_min) and np.isfinite(w_max)):
        return nan, nan, (mumin + mumax) / 2, "cannot compute a CI when all differences are tied"
    conf_level = 1 - alpha
    while w_min - stats.norm.isf(alpha / 2) < 0 or w_max - stats.norm.ppf(alpha / 2) > 0:
        alpha *= 2
    warning = ""
    if alpha >= 1 or 1 - conf_level < alpha * 0.75:
        warning = f"requested conf.level not achievable; the CI is a {1 - min(1.0, alpha):.2g} interval"
    if alpha < 1:
        bounds = []
        for zq in (stats.norm.isf(alpha / 2), stats.norm.ppf(alpha / 2)):
            bounds.append(root(lambda d, zq=zq: w_stat(d, True) - zq, w_min - zq, w_max - zq))
        lo, hi = bounds
    else:
        lo = hi = float(np.median(x))
    est = root(lambda d: w_stat(d, False), w_stat(mumin, False), w_stat(mumax, False))
    return lo, hi, est, warning


def paired_rows(
    model: str,
    correction: str,
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None,
    test: Callable[[np.ndarray], dict[str, object]],
) -> pd.DataFrame:
    """Run ``test`` on later - earlier council means for each level x contrast.

    ``n_councils`` (and ``n_councils_both``) is the number of paired councils, ``n_obs`` the answers
    behind their two means. Fewer than :data:`MIN_PAIRED` paired councils: "not estimable" (NaN), not a
    t interval on one degree of freedom or a signed-rank test that cannot go below p = 0.5.
    """
    sample = tidy.sample(data, wave_order, group)
    tables = sample.derive(_council_tables)
    waves = list(sample.waves)
    rows = []
    for label, level in sample.levels:
        mean, size = tables[level]
        for later, earlier in contrasts:
            known = later in waves and earlier in waves
            a, b = (waves.index(later), waves.index(earlier)) if known else (0, 0)
            both = known & ~np.isnan(mean[:, a]) & ~np.isnan(mean[:, b])
            n_both = int(both.sum())
            counts = {"n_councils": n_both, "n_councils_both": n_both,
                      "n_obs": int(size[both, a].sum() + size[both, b].sum())}
            if n_both < MIN_PAIRED:
                rows.append(tidy.make_row(model, later, earlier, label, correction=correction, warning=(
                    f"not estimable with {n_both} council{'s' if n_both != 1 else ''} observed at both waves "
                    f"(a paired test needs at least {MIN_PAIRED})"), **counts))
                continue
            diff = mean[both, a] - mean[both, b]
            values = {"correction": correction, **test(diff)}
            rows.append(tidy.make_row(model, later, earlier, label, **counts, **values))
    return tidy.to_frame(rows)
