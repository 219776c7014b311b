"""What if those who left would have answered differently? A delta-adjusted multiple-imputation
tipping-point analysis of each measure's change.

Weighting (:mod:`impactstudy.model.stats.ipw`) and the mixed models assume that, once their earlier answers
and council are taken into account, the people who stopped answering would have answered like those
who carried on (missing at random). Nothing in the data can confirm that. This analysis asks how far
wrong it would have to be to change a conclusion.

For the first wave's respondents who answered the measure then, and each later wave k:

1. **Impute** each missing wave-k answer from a normal linear regression of the wave-k answer on the
   first-wave answer and the grouping covariates, fitted to those who answered both, with the
   parameters drawn from their posterior (Rubin's "proper" imputation, as R ``mice(method = "norm")``),
   ``m`` times (default 50).
2. **Shift** every imputed answer by ``delta`` (in standard deviations of the first wave's answers):
   ``delta = -0.3`` says those who left would have answered 0.3 SD lower than similar people who stayed.
3. **Analyse** each completed data set: the mean change ``wave k - first wave`` over the cohort, with the
   CR2 cluster-robust standard error over councils and Bell–McCaffrey df, and **pool** the ``m`` results by
   Rubin's rules (Barnard–Rubin degrees of freedom).
4. **Tip**: the ``delta`` nearest 0 at which the conclusion changes: where a clear rise (interval above 0)
   stops being clear (its lower bound reaches 0), or a clear fall's upper bound reaches 0; for a change
   that is not clear under missing at random, the shifts in each direction that would make it clear.

The same random draws serve every ``delta`` (common random numbers), so the pooled estimate moves
exactly linearly with ``delta`` by ``delta * SD * (share imputed)`` and the tipping point is found to the
root finder's precision rather than the Monte Carlo noise. Reading it: a tipping point of ``-1.0`` SD
means the leavers would have had to answer a whole standard deviation lower than comparable stayers
for the rise to vanish (implausible for most surveys); ``-0.1`` means a small difference would do it
(fragile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from impactstudy.model.stats import tidy
from impactstudy.model.stats.cluster_robust import cr2_vcov

TIPPING_COLUMNS = ["measure", "contrast", "n_cohort", "n_imputed", "sd", "estimate", "ci_low", "ci_high", "df",
                   "conclusion", "delta_down", "delta_up", "points_down", "points_up", "imputations", "warning"]
DELTA_LIMIT = 3.0  # SDs: a shift beyond this is reported as "none within 3 SD"


@dataclass(frozen=True)
class Pooled:
    estimate: float
    std_error: float
    df: float
    ci_low: float
    ci_high: float


def rubin(estimates: np.ndarray, variances: np.ndarray, complete_df: float, conf_level: float = 0.95) -> Pooled:
    """Rubin's rules with Barnard & Rubin's (1999) small-sample degrees of freedom (as R ``mice::pool``)."""
    m = len(estimates)
    qbar = float(np.mean(estimates))
    ubar = float(np.mean(variances))
    b = float(np.var(estimates, ddof=1)) if m > 1 else 0.0
    total = ubar + (1 + 1 / m) * b
    if b > 0:
        lam = (1 + 1 / m) * b / total
        old = (m - 1) / lam ** 2
        observed = (complete_df + 1) / (complete_df + 3) * complete_df * (1 - lam)
        df = old * observed / (old + observed)
    else:
        df = complete_df
    se = float(np.sqrt(total))
    half = float(stats.t.ppf(0.5 + conf_level / 2, df)) * se
    return Pooled(qbar, se, float(df), qbar - half, qbar + half)


@dataclass(frozen=True)
class _Draws:
    """The pieces of the imputations that do not depend on delta, and the CR2 pieces of the analysis."""

    base: np.ndarray  # first-wave answer per cohort member
    later: np.ndarray  # (m, cohort): wave-k answers, observed or imputed under missing at random
    imputed: np.ndarray  # bool (cohort): imputed at wave k
    cluster: np.ndarray  # council code (0..G-1) per cohort member
    factor: np.ndarray  # per council: the CR2 weight of its squared residual sum (see _cr2_mean)
    df: float  # Bell-McCaffrey df of the mean (depends only on the clusters' sizes)
    sd: float = 1.0  # SD of the first wave's answers: the unit of delta

    def at(self, delta: float, conf_level: float = 0.95) -> Pooled:
        """The pooled change with every imputed answer shifted by ``delta`` SDs."""
        return _analyse(self, delta * self.sd, conf_level)


def _cr2_mean(council: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Council codes, per-council factors and Bell–McCaffrey df for the CR2 variance of a mean.

    For a mean (intercept-only OLS) ``H = J / n``, so ``G_j = I - J_j / n`` has eigenvalue ``1 - n_j/n``
    on the ones vector and 1 elsewhere: ``A_j`` scales the council's residual sum by
    ``(1 - n_j/n)^{-1/2}`` and ``V = sum_j (sum_i e_ij)^2 / (n^2 (1 - n_j/n))``, which is
    :func:`impactstudy.model.stats.cluster_robust.cr2_vcov` for this design (checked in tests) at the cost of
    one ``bincount``. The df does not depend on the residuals, so it is computed once.
    """
    codes, uniques = pd.factorize(council)
    n = len(codes)
    sizes = np.bincount(codes, minlength=len(uniques)).astype(float)
    factor = 1.0 / (n ** 2 * (1.0 - sizes / n))
    df = cr2_vcov(np.ones((n, 1)), np.zeros(n), codes).bm_df(np.ones(1))
    return codes, factor, df


def _draws(base: np.ndarray, later: np.ndarray, X: np.ndarray, council: np.ndarray, m: int,
           rng: np.random.Generator) -> _Draws:
    """``m`` proper normal-regression imputations of the missing entries of ``later`` given ``X``."""
    missing = np.isnan(later)
    Xo, yo = X[~missing], later[~missing]
    n, p = Xo.shape
    beta, *_ = np.linalg.lstsq(Xo, yo, rcond=None)
    resid = yo - Xo @ beta
    df = n - p
    s2 = float(resid @ resid) / df
    chol = np.linalg.cholesky(np.linalg.inv(Xo.T @ Xo))
    completed = np.repeat(later[None, :], m, axis=0)
    for j in range(m):
        sigma2 = s2 * df / rng.chisquare(df)
        b = beta + np.sqrt(sigma2) * chol @ rng.standard_normal(p)
        completed[j, missing] = X[missing] @ b + np.sqrt(sigma2) * rng.standard_normal(int(missing.sum()))
    codes, factor, bm_df = _cr2_mean(council)
    return _Draws(base, completed, missing, codes, factor, bm_df)


def _analyse(draws: _Draws, shift: float, conf_level: float) -> Pooled:
    """Pooled mean change with every imputed answer moved by ``shift`` (answer units)."""
    diff = draws.later + shift * draws.imputed[None, :] - draws.base[None, :]
    means = diff.mean(axis=1)
    resid = diff - means[:, None]
    sums = np.stack([np.bincount(draws.cluster, weights=r, minlength=len(draws.factor)) for r in resid])
    variances = (sums ** 2) @ draws.factor
    return rubin(means, variances, draws.df, conf_level)


def _conclusion(p: Pooled) -> int:
    return 1 if p.ci_low > 0 else -1 if p.ci_high < 0 else 0


def imputed_change(data: pd.DataFrame, first: str, later: str, covariates: Sequence[str] = (), imputations: int = 50,
                   rng: np.random.Generator | None = None) -> tuple[_Draws | None, str, int, int]:
    """The imputations of ``later``'s missing answers among the respondents who answered at ``first``
    (``.at(delta)`` gives the pooled change at a shift of ``delta`` SDs), or None with the reason; also
    the cohort size and how many answers were imputed."""
    rng = rng or np.random.default_rng(20130401)
    council_code, respondent = pd.factorize(data["council_code"])[0], pd.factorize(data["respondent_id"])[0]
    d = data.assign(_key=council_code.astype(np.int64) * (int(respondent.max(initial=0)) + 1) + respondent)
    wave = tidy.as_text(data["wave"])
    at_first = d[wave == first].drop_duplicates("_key").set_index("_key")
    answers = d[wave == later].drop_duplicates("_key").set_index("_key")["value"]
    y = answers.reindex(at_first.index).to_numpy(float)
    base = at_first["value"].to_numpy(float)
    n_cohort, n_imputed = len(base), int(np.isnan(y).sum())
    sd = float(np.std(base, ddof=1)) if n_cohort > 1 else np.nan
    columns = [np.ones(n_cohort), base]
    for c in covariates:
        text = tidy.as_text(at_first[c])
        columns += [(text == lv).astype(float) for lv in sorted(set(text) - {None})[1:]]
    X = np.column_stack(columns)
    observed = ~np.isnan(y)
    council = tidy.as_text(at_first["council_code"])
    if observed.sum() <= X.shape[1] + 1 or len(np.unique(council)) < 2 or not sd > 0:
        return None, "too few respondents answered both waves to impute from", n_cohort, n_imputed
    if np.linalg.matrix_rank(X[observed]) < X.shape[1]:
        X = X[:, :2]  # the covariates are aliased among those observed: impute from the first answer alone
    return replace(_draws(base, y, X, council, imputations, rng), sd=sd), "", n_cohort, n_imputed


def tipping_rows(measure: str, data: pd.DataFrame, wave_order: Sequence[str], covariates: Sequence[str] = (),
                 imputations: int = 50, seed: int = 20130401, conf_level: float = 0.95) -> pd.DataFrame:
    """:data:`TIPPING_COLUMNS`, one row per later wave (its change from the first wave)."""
    first = wave_order[0]
    stream = int.from_bytes(measure.encode()[:8].ljust(8, b"\0"), "little")
    rows = []
    for k, wave in enumerate(wave_order[1:], start=1):
        draws, reason, n_cohort, n_imputed = imputed_change(data, first, wave, covariates, imputations,
                                                             np.random.default_rng([seed, stream, k]))
        row = {"measure": measure, "contrast": f"{wave} - {first}", "n_cohort": n_cohort, "n_imputed": n_imputed,
               "imputations": imputations, "warning": reason}
        if draws is None:
            rows.append(row)
            continue
        mar = draws.at(0.0, conf_level)
        conclusion = _conclusion(mar)
        down, up = _tip(draws, conclusion, conf_level)
        row.update(sd=draws.sd, estimate=mar.estimate, ci_low=mar.ci_low, ci_high=mar.ci_high, df=mar.df,
                   conclusion={1: "clear rise", -1: "clear fall", 0: "no clear change"}[conclusion],
                   delta_down=down, delta_up=up, points_down=down * draws.sd, points_up=up * draws.sd)
        if n_imputed == 0:
            row["warning"] = "nobody's answer is missing at this wave: nothing depends on the assumption"
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=TIPPING_COLUMNS)


def _tip(draws: _Draws, conclusion: int, conf_level: float) -> tuple[float, float]:
    """The shifts (SD units, below and above 0) at which the conclusion changes; NaN where none does
    within :data:`DELTA_LIMIT` SD (or where that direction cannot change it)."""
    if not draws.imputed.any():
        return np.nan, np.nan

    def bound(which: str):
        return lambda delta: getattr(draws.at(delta, conf_level), which)

    def root(f, a: float, b: float) -> float:
        fa, fb = f(a), f(b)
        if np.sign(fa) == np.sign(fb):
            return np.nan
        return float(optimize.brentq(f, a, b, xtol=1e-4))

    if conclusion == 1:  # a clear rise: lower bound falls to 0 as leavers answer lower
        return root(bound("ci_low"), -DELTA_LIMIT, 0.0), np.nan
    if conclusion == -1:
        return np.nan, root(bound("ci_high"), 0.0, DELTA_LIMIT)
    # not clear: the shift that would make it a clear fall (upper bound below 0) or a clear rise
    return root(bound("ci_high"), -DELTA_LIMIT, 0.0), root(bound("ci_low"), 0.0, DELTA_LIMIT)


__all__ = ["Pooled", "TIPPING_COLUMNS", "imputed_change", "rubin", "tipping_rows"]
