"""Proportional-odds (cumulative logit) model of a Likert measure on waves, council-clustered SEs.

statsmodels ``OrderedModel(y, X, distr="logit")`` with X the treatment-coded wave (x group) design
without an intercept (the thresholds play its part). Its parametrisation is ``logit P(Y <= j) =
theta_j - x'beta``, the same as R's ``ordinal::clm`` and ``MASS::polr``, so a positive estimate means
higher categories are more likely at the later wave; the estimate is the log odds ratio
``x(later)'beta - x(earlier)'beta`` (checked against ``clm`` in tests/test_models_stats.py).

Standard errors are the council-clustered sandwich built from the observation scores and the Hessian
(statsmodels ``cov_type="cluster"``) with the CRV1 small-sample factor ``G/(G-1) * (N-1)/(N-K)``, which
is what R's ``sandwich::vcovCL(clm_fit, cluster = council, type = "HC1")`` computes. The reference is
normal, or t with ``G - 1`` degrees of freedom when there are fewer than ``few_councils`` councils (the
usual cluster-robust convention); ``correction`` says which.

Separation: when the answers at one contrasted wave all lie at or above those at the other (say every
baseline answer is 1-2 and every follow-up answer 2-5), the log odds ratio is infinite. That contrast
is reported as NaN with a warning instead of the huge number an optimiser stops at; when the
optimiser does not converge at all (separation elsewhere in the design) every row is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.miscmodels.ordinal_model import OrderedModel

from impactstudy.errors import DataError
from impactstudy.stats import tidy
from impactstudy.stats.wave_design import WaveDesign, design_matrix

MODEL = "ordinal"
CLUSTER_NORMAL = "cluster-robust CRV1 SE, normal reference"
CLUSTER_T = "cluster-robust CRV1 SE, t reference df=G-1"


def fit_ordinal(
    data: pd.DataFrame,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    few_councils: int = 40,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Log odds ratios for wave contrasts from a proportional-odds logit, one row per contrast (x level).

    ``value`` holds the ordered codes (any sortable numbers; each distinct value is a category).
    With ``group`` the model is ``y ~ C(wave) * C(group)`` and contrasts are evaluated within each level.
    """
    d = tidy.prepare(data, wave_order, group)
    n_councils = d["council_code"].nunique()
    few = n_councils < few_councils
    correction = CLUSTER_T if few else CLUSTER_NORMAL

    def result(design: WaveDesign | None, fit: tidy.WaldFit | None, warning: str) -> pd.DataFrame:
        return tidy.wald_rows(MODEL, data, d, group, contrasts, correction=correction, design=design,
                              test=fit.test if fit else None, warning=warning,
                              cell_problem=lambda lv, a, b: _separated(d, group, lv, a, b))

    if d.empty:
        return result(None, None, "no observed values")
    categories, codes = np.unique(d["value"].to_numpy(), return_inverse=True)
    if len(categories) < 2:
        return result(None, None, f"only {len(categories)} response category observed; nothing to model")
    if n_councils < 2:
        return result(None, None, f"clustered SEs need at least 2 councils with observed values, has {n_councils}")
    try:
        design = design_matrix(d, wave_order, group, intercept=False, empty_cells="drop")
    except DataError as err:
        return result(None, None, str(err))
    council_idx = pd.factorize(d["council_code"])[0]
    with tidy.captured_warnings() as caught:
        model = OrderedModel(codes, design.X, distr="logit")
        try:
            fit = model.fit(method="bfgs", gtol=1e-8, maxiter=300, disp=False, cov_type="cluster",
                            cov_kwds={"groups": council_idx, "use_correction": True})
        except (ValueError, np.linalg.LinAlgError) as err:  # statsmodels' way of saying the data defeat it
            caught.append(f"{type(err).__name__}: {err}")
            fit = None
    warning = tidy.join_warnings(*caught)
    if fit is None or not fit.mle_retvals.get("converged", False):
        # Typically separation somewhere in the design: some coefficient runs off to infinity, and the
        # Hessian (so every standard error) is unreliable, so no contrast is reported.
        return result(design, None, tidy.join_warnings("proportional-odds fit did not converge", warning))
    k = design.X.shape[1]  # exog coefficients come first, thresholds after
    beta = np.asarray(fit.params)[:k]
    cov = np.asarray(fit.cov_params())[:k, :k]
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        return result(design, None, tidy.join_warnings("estimates or clustered covariance not finite", warning))
    return result(design, tidy.WaldFit(beta, cov, float(n_councils - 1) if few else None, conf_level), warning)


def _separated(d: pd.DataFrame, group: str | None, level: object, later: str, earlier: str) -> str:
    """Why the log odds ratio between the two cells is infinite ('' when it is finite)."""
    a = d.loc[tidy.cell_mask(d, group, level, [later]), "value"]
    b = d.loc[tidy.cell_mask(d, group, level, [earlier]), "value"]
    if a.nunique() == 1 and b.nunique() == 1 and a.iloc[0] == b.iloc[0]:
        return ""
    if a.min() >= b.max() or b.min() >= a.max():
        return (f"separation: answers at {later} (range {a.min():g}-{a.max():g}) and {earlier} "
                f"(range {b.min():g}-{b.max():g}) do not overlap; the log odds ratio is infinite")
    return ""
