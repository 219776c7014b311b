"""Proportional-odds (cumulative logit) model of a Likert measure between two waves, within councils.

For each contrast ``later - earlier`` and each group level, the model is fitted to the answers of the
councils with answers at both waves (within the level), each answer weighted ``1 / n`` with ``n`` the
answers of its council at its wave, so that every council counts once at each wave whatever its number
of respondents: ``logit P(Y <= j) = theta_j - beta * [wave = later]``, statsmodels ``OrderedModel(distr=
"logit")`` with frequency weights. R: ``ordinal::clm(ordered(value) ~ wave, weights = 1 / n, link =
"logit")`` on the same rows, with ``sandwich::vcovCL(fit, cluster = council, type = "HC1")``
(tests/reference/ordinal_reference.R). A positive estimate means higher answers at the later wave.

Estimand: the log odds ratio between the two waves' answer distributions averaged over the same
councils, each council weighted equally (:data:`ESTIMAND`): the ordinal counterpart of the paired
tests' council-weighted mean change. Why not one model of every answer (what this module fitted until
issue #14): it compared the answers given at the two waves, whoever gave them, so where councils of one
kind answer less or drop out (the demo's Notice to Improve councils, lower scorers, answer less and
leave more), the answers' distribution moved with no council changing, and the "no change" test
rejected in 24% and 49% of simulated studies with 20 and 40 councils of 20-40 respondents (32% at 152
councils of 1-4). Keeping only councils at both waves removes dropout; weighting each council-wave
equally removes the shift in who answers within the councils that stay: at 40 councils of 20-40 the
size was 60% before, 18% and 35% with either alone, 4% with both (100 studies).

Standard errors: the council-clustered sandwich of the weighted scores with the CRV1 factor
``G/(G-1) * (N-1)/(N-K)`` (G councils at both waves, N answers, K parameters), exactly R's
``vcovCL(type = "HC1")`` on the weighted ``clm``; the reference is t with ``G - 1`` degrees of freedom
when ``G`` is below ``few_councils``, else normal (``correction`` says which). Fewer than 3 councils at
both waves: not estimable (as the paired tests; no interval on one degree of freedom).

:class:`LogitOrderedModel` supplies what ``OrderedModel`` leaves to numerical differentiation: the
analytic score per observation, its sum and the Hessian, in statsmodels' parametrisation (coefficients,
first threshold, log threshold increments), plus the logistic cdf/pdf as ``scipy.special`` ufuncs. The
likelihood only sees (wave, answer) patterns, so a fit is to at most 2 x categories weighted rows.

Separation: when the answers at one wave all lie at or above those at the other (say every baseline
answer is 1-2 and every follow-up answer 2-5), the log odds ratio is infinite: that contrast is NaN
with a warning instead of the huge number an optimiser stops at, as is one whose fit does not converge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats import sandwich_covariance as sw

from impactstudy.model.stats import tidy

MODEL = "ordinal"
ESTIMAND = "council-weighted log odds ratio (councils at both waves)"
"""What a row estimates (``contrasts.csv``'s ``estimand``): see the module docstring."""
MIN_COUNCILS = 3  # councils at both waves a contrast needs
CLUSTER_NORMAL = "cluster-robust CRV1 SE (councils at both waves, each council-wave weighted equally), normal reference"
CLUSTER_T = ("cluster-robust CRV1 SE (councils at both waves, each council-wave weighted equally), "
             "t reference df=G-1 (G councils at both waves)")


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
    """Council-weighted log odds ratios, one row per contrast (x level of ``group``), each from its own
    proportional-odds fit to the councils with answers at both of the contrast's waves (module docstring).

    ``data`` is the long frame of one measure (or a :class:`tidy.Sample` of it); ``value`` holds the
    ordered codes (any sortable numbers; each distinct value is a category). ``n_obs`` counts the answers
    used, ``n_councils`` and ``n_councils_both`` the councils at both waves.
    """
    sample = tidy.sample(data, wave_order, group)
    d = sample.frame
    values = d["value"].to_numpy()
    council = pd.factorize(d["council_code"])[0]
    wave = d["wave"].cat.codes.to_numpy()
    wave_index = {str(w): k for k, w in enumerate(d["wave"].cat.categories)}
    level_of = None if group is None else d[group].astype(object).to_numpy()
    rows = []
    for label, level in sample.levels:
        in_level = np.ones(len(d), dtype=bool) if group is None else level_of == level
        where = "" if group is None else f" for {label}"
        for later, earlier in contrasts:
            counts = sample.counts(level, [later, earlier])
            empty = sample.counts.empty(level, [later, earlier])
            if d.empty or empty:
                reason = "no observed values" if d.empty else f"no observations at wave {', '.join(empty)}{where}"
                rows.append(tidy.make_row(MODEL, later, earlier, label, correction=CLUSTER_NORMAL, warning=reason,
                                          **counts))
                continue
            a, b = wave_index[later], wave_index[earlier]
            pick = in_level & ((wave == a) | (wave == b))
            rows.append(contrast_row(values[pick], wave[pick] == a, council[pick], later, earlier, label,
                                     few_councils, conf_level))
    return tidy.to_frame(rows)


def contrast_row(values: np.ndarray, is_later: np.ndarray, council: np.ndarray, later: str, earlier: str,
                 label: str, few_councils: int = 40, conf_level: float = 0.95) -> dict[str, object]:
    """One contrast's row from the answers of its two waves (``values``, ``is_later``, integer ``council``
    codes): councils with answers at both waves kept, each council-wave weighted equally, the weighted
    proportional-odds fit and its council-clustered CRV1 test."""
    both = np.zeros((council.max(initial=-1) + 1, 2), dtype=bool)
    both[council, is_later.astype(np.intp)] = True
    keep = both.all(axis=1)[council]
    values, is_later, council = values[keep], is_later[keep], pd.factorize(council[keep])[0]
    g = int(council.max(initial=-1)) + 1
    counts = {"n_obs": int(keep.sum()), "n_councils": g, "n_councils_both": g}
    few = g < few_councils
    correction = CLUSTER_T if few else CLUSTER_NORMAL

    def failed(reason: str) -> dict[str, object]:
        return tidy.make_row(MODEL, later, earlier, label, correction=correction, warning=reason, **counts)

    if g < MIN_COUNCILS:
        return failed(f"not estimable with {g} council{'s' if g != 1 else ''} observed at both waves "
                      f"(needs at least {MIN_COUNCILS})")
    categories, codes = np.unique(values, return_inverse=True)
    if len(categories) < 2:
        return failed(f"only {len(categories)} response category observed; nothing to model")
    separated = _separation(values[is_later], values[~is_later], later, earlier)
    if separated:
        return failed(separated)
    cell = council * 2 + is_later
    weight = 1.0 / np.bincount(cell)[cell]  # every council-wave's answers sum to 1
    # The likelihood only sees (wave, answer) patterns: fit those, weighted by their answers' weights.
    patterns, answer_pattern = np.unique(is_later * len(categories) + codes, return_inverse=True)
    with tidy.captured_warnings() as caught:
        model = LogitOrderedModel(patterns % len(categories), (patterns // len(categories)).astype(float)[:, None],
                                  freq_weights=np.bincount(answer_pattern, weights=weight))
        try:
            # Newton-Raphson on the analytic Hessian from statsmodels' start (thresholds from the answers'
            # frequencies, no change): a concave likelihood of a few parameters converges in a few steps,
            # to a step below 1e-10 (BFGS to a comparable gradient often stops short of it)
            fit = model.fit(method="newton", tol=1e-10, maxiter=100, disp=False)
            params = np.asarray(fit.params)
            converged = bool(fit.mle_retvals.get("converged", False))
            scores = model.score_obs(params)[answer_pattern] * weight[:, None]
            cov = sw.cov_cluster((scores, np.linalg.inv(model.hessian(params))), council, use_correction=False)
        except (ValueError, np.linalg.LinAlgError) as err:  # statsmodels' way of saying the data defeat it
            caught.append(f"{type(err).__name__}: {err}")
            converged = False
    warning = tidy.join_warnings(*caught)
    if not converged:
        return failed(tidy.join_warnings("proportional-odds fit did not converge", warning))
    n, k = len(values), len(params)
    cov = cov[:1, :1] * (g / (g - 1.0)) * (n - 1.0) / (n - k)  # CRV1, as vcovCL(type = "HC1")
    if not (np.isfinite(params[0]) and np.isfinite(cov[0, 0])):
        return failed(tidy.join_warnings("estimate or clustered covariance not finite", warning))
    test = tidy.WaldFit(params[:1], cov, float(g - 1) if few else None, conf_level).test(np.ones(1))
    test = {c: v for c, v in test.items() if c in tidy.COLUMNS}
    return tidy.make_row(MODEL, later, earlier, label, correction=correction, **counts,
                         **{**test, "warning": tidy.join_warnings(warning, str(test.get("warning", "")))})


def _separation(later_values: np.ndarray, earlier_values: np.ndarray, later: str, earlier: str) -> str:
    """Why the log odds ratio between two waves' answers is infinite ('' when it is finite)."""
    a_min, a_max, b_min, b_max = later_values.min(), later_values.max(), earlier_values.min(), earlier_values.max()
    if a_min == a_max == b_min == b_max or not (a_min >= b_max or b_min >= a_max):
        return ""
    return (f"separation: answers at {later} (range {a_min:g}-{a_max:g}) and {earlier} "
            f"(range {b_min:g}-{b_max:g}) do not overlap; the log odds ratio is infinite")
