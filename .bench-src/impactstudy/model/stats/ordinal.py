"""Proportional-odds (cumulative logit) model of a Likert measure on waves, council-clustered SEs.

statsmodels ``OrderedModel(y, X, distr="logit")`` with X the treatment-coded wave (x group) design
without an intercept (the thresholds play its part). Its parametrisation is ``logit P(Y <= j) =
theta_j - x'beta``, the same as R's ``ordinal::clm`` and ``MASS::polr``, so a positive estimate means
higher categories are more likely at the later wave; the estimate is the log odds ratio
``x(later)'beta - x(earlier)'beta`` (checked against ``clm`` in tests/model/test_models_stats.py).

The fit is statsmodels' own (likelihood, optimiser, ``cov_type="cluster"`` sandwich); :class:`LogitOrderedModel`
only supplies what ``OrderedModel`` leaves to numerical differentiation: the analytic score per
observation, its sum and the Hessian, in statsmodels' parametrisation (coefficients, first threshold,
log threshold increments), plus the logistic cdf/pdf as ``scipy.special`` ufuncs rather than
``scipy.stats.logistic`` calls. That makes a fit cost a few vectorised passes over the rows instead of
``2 * (parameters + 1)`` likelihood evaluations per gradient, and the Hessian exact rather than a
finite difference (so SEs agree with R more closely than before, not less).

Standard errors are the council-clustered sandwich built from the observation scores and the Hessian
(statsmodels ``cov_type="cluster"``) with the CRV1 small-sample factor ``G/(G-1) * (N-1)/(N-K)``, which
is what R's ``sandwich::vcovCL(clm_fit, cluster = council, type = "HC1")`` computes for the overall rows.
A group level's rows rest on that level's councils, not the study's: their factor and reference use the
level's ``G`` (the councils with answers in it). The reference is normal, or t with ``G - 1`` degrees of
freedom when the row's ``G`` is below ``few_councils`` (the usual cluster-robust convention); a level of
one council is not estimable; ``correction`` says which.

What the test tests: the model has no council term, so its log odds ratio compares the answers given at
the two waves, whoever gave them. Where councils of different levels answer or drop out at different
rates (the demo's Notice to Improve councils answer less and leave more), the answers' distribution
shifts with no council changing, and the test rejects "no change" too often (docs/coverage.md: up to a
third of the time at 152 councils). So the estimand is named as such, and the key findings never rest
on, nor compare against, an ordinal row.

Separation: when the answers at one contrasted wave all lie at or above those at the other (say every
baseline answer is 1-2 and every follow-up answer 2-5), the log odds ratio is infinite. That contrast
is reported as NaN with a warning instead of the huge number an optimiser stops at; when the
optimiser does not converge at all (separation elsewhere in the design) every row is NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import special
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats import sandwich_covariance as sw

from impactstudy.errors import DataError
from impactstudy.model.stats import tidy
from impactstudy.model.stats.wave_design import WaveDesign

MODEL = "ordinal"
CLUSTER_NORMAL = "cluster-robust CRV1 SE, normal reference"
CLUSTER_T = "cluster-robust CRV1 SE, t reference df=G-1 (G councils of the row's group level)"


class LogitOrderedModel(OrderedModel):
    """statsmodels ``OrderedModel(endog, exog, distr="logit")`` with analytic derivatives.

    ``endog`` must be integer codes 0..J-1. With ``a = theta_{y+1} - x'beta`` and ``b = theta_y - x'beta``
    (``theta_0 = -inf``, ``theta_J = +inf``), ``log p = log(F(a) - F(b))``; the derivatives in
    ``(beta, theta)`` are mapped to statsmodels' ``(beta, theta_1, log(theta_j - theta_{j-1}))``.

    ``freq_weights`` counts how many answers each row stands for, so that the (few) distinct (design
    row, answer) patterns can be fitted in place of every answer: the likelihood is the same sum.
    ``score_obs`` is per pattern and unweighted (one answer's score), for expanding back to answers.
    """

    def __init__(self, endog: np.ndarray, exog: np.ndarray, freq_weights: np.ndarray | None = None) -> None:
        super().__init__(endog, exog, distr="logit")
        self.weights = np.ones(len(self.endog)) if freq_weights is None else np.asarray(freq_weights, dtype=float)
        n_thresh = self.k_levels - 1
        codes = np.asarray(self.endog, dtype=np.intp)
        # one-hot of the threshold above (upper) and below (lower) each answer; none at -inf/+inf
        eye = np.vstack([np.zeros(n_thresh), np.eye(n_thresh), np.zeros(n_thresh)])
        self._upper, self._lower = eye[codes + 1], eye[codes]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return special.expit(x)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        e = special.expit(x)
        return e * (1.0 - e)

    def _threshold_jacobian(self, params: np.ndarray) -> np.ndarray:
        """``d theta / d tau``: theta_j = tau_1 + sum_{m=2..j} exp(tau_m)."""
        n_thresh = self.k_levels - 1
        inc = np.r_[1.0, np.exp(params[-n_thresh:][1:])]
        return np.tril(np.ones((n_thresh, n_thresh))) * inc[None, :]

    def _pieces(self, params: np.ndarray) -> tuple[np.ndarray, ...]:
        low, upp = self._bounds(params)
        fa, fb = self.pdf(upp), self.pdf(low)  # 0 at +-inf
        prob = self.prob(low, upp) + 1e-20  # as statsmodels' loglikeobs
        score_theta = (fa[:, None] * self._upper - fb[:, None] * self._lower) / prob[:, None]
        score_beta = -((fa - fb) / prob)[:, None] * self.exog
        return low, upp, fa, fb, prob, score_beta, score_theta

    @property
    def start_params(self) -> np.ndarray:
        """statsmodels' start (thresholds from the answer frequencies, coefficients 0), weighted."""
        freq = np.bincount(self.endog, weights=self.weights) / self.weights.sum()
        thresholds = self.transform_reverse_threshold_params(special.logit(np.clip(freq.cumsum(), 0, 1)))
        return np.concatenate((np.zeros(self.k_vars), thresholds))

    def loglikeobs(self, params: np.ndarray) -> np.ndarray:
        return self.weights * super().loglikeobs(params)

    def score_obs(self, params: np.ndarray, **kwds: object) -> np.ndarray:
        _, _, _, _, _, score_beta, score_theta = self._pieces(params)
        return np.column_stack([score_beta, score_theta @ self._threshold_jacobian(params)])

    def score(self, params: np.ndarray) -> np.ndarray:
        return self.weights @ self.score_obs(params)

    def hessian(self, params: np.ndarray) -> np.ndarray:
        low, upp, fa, fb, prob, score_beta, score_theta = self._pieces(params)
        # f'(x) = f(x) (1 - 2 F(x)) for the logistic; 0 at +-inf
        da = np.where(np.isfinite(upp), fa * (1.0 - 2.0 * self.cdf(upp)), 0.0) / prob
        db = np.where(np.isfinite(low), fb * (1.0 - 2.0 * self.cdf(low)), 0.0) / prob
        ja = np.column_stack([-self.exog, self._upper])  # d a / d (beta, theta)
        jb = np.column_stack([-self.exog, self._lower])
        g = np.column_stack([score_beta, score_theta])
        w = self.weights[:, None]
        h = (ja * (w * da[:, None])).T @ ja - (jb * (w * db[:, None])).T @ jb - (g * w).T @ g
        k = self.exog.shape[1]
        jac = np.eye(len(params))
        jac[k:, k:] = self._threshold_jacobian(params)
        h = jac.T @ h @ jac
        # second derivative of theta in tau: d2 theta_j / d tau_m^2 = exp(tau_m) for 2 <= m <= j
        total = self.weights @ score_theta
        diag = np.r_[0.0, np.cumsum(total[::-1])[::-1][1:]] * np.r_[0.0, np.exp(params[k:][1:])]
        h[k:, k:] += np.diag(diag)
        return h


def fit_ordinal(
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    few_councils: int = 40,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Log odds ratios for wave contrasts from a proportional-odds logit, one row per contrast (x level).

    ``data`` is the long frame of one measure (or a :class:`tidy.Sample` of it); ``value`` holds the
    ordered codes (any sortable numbers; each distinct value is a category). With ``group`` the model
    is ``y ~ C(wave) * C(group)`` and contrasts are evaluated within each level.
    """
    sample = tidy.sample(data, wave_order, group)
    d = sample.frame
    n_councils = d["council_code"].nunique()
    correction = CLUSTER_T if n_councils < few_councils else CLUSTER_NORMAL

    def result(design: WaveDesign | None, fit: tuple[np.ndarray, np.ndarray, float] | None,
               warning: str) -> pd.DataFrame:
        return tidy.wald_rows(MODEL, sample, contrasts, correction=correction, design=design, test=None,
                              warning=warning, cell_problem=_separation_check(d, group),
                              level_test=None if fit is None else functools.partial(
                                  _level_test, sample, *fit, few_councils, conf_level))

    if d.empty:
        return result(None, None, "no observed values")
    categories, codes = np.unique(d["value"].to_numpy(), return_inverse=True)
    if len(categories) < 2:
        return result(None, None, f"only {len(categories)} response category observed; nothing to model")
    if n_councils < 2:
        return result(None, None, f"clustered SEs need at least 2 councils with observed values, has {n_councils}")
    try:
        design = sample.design(intercept=False)
    except DataError as err:
        return result(None, None, str(err))
    council_idx = pd.factorize(d["council_code"])[0]
    # The likelihood only sees (wave x level cell, answer) patterns: fit those, weighted by their counts.
    patterns, answer_pattern, counts = np.unique(design.cell_index * len(categories) + codes, return_inverse=True,
                                                 return_counts=True)
    with tidy.captured_warnings() as caught:
        model = LogitOrderedModel(patterns % len(categories), design.cell_X[patterns // len(categories)],
                                  freq_weights=counts)
        try:
            # statsmodels scales the objective by the number of rows (patterns here): scale gtol alike,
            # so convergence means what it means on one row per answer (gradient / answers < 1e-8).
            fit = model.fit(method="bfgs", gtol=1e-8 * len(codes) / len(patterns), maxiter=300, disp=False)
            cov = None
            if fit.mle_retvals.get("converged", False):
                scores = model.score_obs(fit.params)[answer_pattern]
                # CR0 here; each level's rows scale it by their own CRV1 factor (_level_test)
                cov = sw.cov_cluster((scores, np.linalg.inv(model.hessian(fit.params))), council_idx,
                                     use_correction=False)
        except (ValueError, np.linalg.LinAlgError) as err:  # statsmodels' way of saying the data defeat it
            caught.append(f"{type(err).__name__}: {err}")
            fit = None
    warning = tidy.join_warnings(*caught)
    if fit is None or cov is None:
        # Typically separation somewhere in the design: some coefficient runs off to infinity, and the
        # Hessian (so every standard error) is unreliable, so no contrast is reported.
        return result(design, None, tidy.join_warnings("proportional-odds fit did not converge", warning))
    k = len(design.columns)  # exog coefficients come first, thresholds after
    beta = np.asarray(fit.params)[:k]
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        return result(design, None, tidy.join_warnings("estimates or clustered covariance not finite", warning))
    # statsmodels' CRV1 factor's (N - 1) / (N - K), K every parameter (thresholds too)
    size_factor = (len(codes) - 1.0) / (len(codes) - len(fit.params))
    return result(design, (beta, cov[:k, :k], size_factor), warning)


def _level_test(sample: tidy.Sample, beta: np.ndarray, cov0: np.ndarray, size_factor: float, few_councils: int,
                conf_level: float, level: object) -> tuple[tidy.Test | None, str, str]:
    """The test of a level's contrasts: the CR0 covariance times the CRV1 factor of the level's G councils,
    with a t reference on G - 1 df when G is below ``few_councils``."""
    g = tidy.level_size(sample, level)[0]
    few = g < few_councils
    correction = CLUSTER_T if few else CLUSTER_NORMAL
    if g < 2:
        return None, correction, f"clustered SEs need at least 2 councils, the level has {g}"
    cov = cov0 * (g / (g - 1.0)) * size_factor
    return tidy.WaldFit(beta, cov, float(g - 1) if few else None, conf_level).test, correction, ""


def _separation_check(d: pd.DataFrame, group: str | None) -> Callable[[object, str, str], str]:
    """``check(level, later, earlier)``: why the log odds ratio between the two cells is infinite ('' when
    it is finite), from each cell's lowest and highest answer."""
    keys = ([group] if group is not None else []) + ["wave"]
    ranges = d.groupby(keys, observed=True)["value"].agg(["min", "max"])
    bounds = {(k if group is not None else (None, k)): (lo, hi) for k, lo, hi in
              zip(ranges.index, ranges["min"], ranges["max"])}

    def check(level: object, later: str, earlier: str) -> str:
        (a_min, a_max), (b_min, b_max) = bounds[(level, later)], bounds[(level, earlier)]
        if a_min == a_max == b_min == b_max:
            return ""
        if a_min >= b_max or b_min >= a_max:
            return (f"separation: answers at {later} (range {a_min:g}-{a_max:g}) and {earlier} "
                    f"(range {b_min:g}-{b_max:g}) do not overlap; the log odds ratio is infinite")
        return ""

    return check
