"""Gaussian GEE for change over waves: ``value ~ C(wave)`` (x ``C(group)``), exchangeable within council.

The population-averaged counterpart of the LMM: the same treatment-coded mean model, fitted with
statsmodels ``GEE`` (Gaussian family, identity link, exchangeable working correlation among all answers
from one council) and sandwich standard errors, which stay valid when the working correlation is
wrong (respondents recurring across waves are one source of that).

Conventions, chosen so that R's ``geepack::geeglm(value ~ wave, id = council, corstr =
"exchangeable", std.err = "san.se")`` reproduces the estimates and robust errors exactly:

- the scale and exchangeable correlation are moment estimates with no degrees-of-freedom correction
  (statsmodels ``ddof_scale=0``; its default subtracts the number of parameters, geepack does not);
- the robust covariance is the plain sandwich, no small-sample factor (neither package applies one).

Few councils: a row whose group level rests on fewer than ``few_councils`` councils (the councils with
answers in that level, not the study's total: a status row of a 20-council study rests on 5) uses the
bias-reduced covariance of Mancl & DeRouen (2001) (statsmodels ``cov_type="bias_reduced"``), since the
plain sandwich is biased downwards with few clusters, and a t reference on ``K - p`` degrees of freedom
(K the level's councils, p its waves: the level's mean parameters), as Mancl & DeRouen recommend; a
level with ``K - p < 1`` is not estimable. Other rows: the plain sandwich with a normal reference and
``df`` NaN. The ``correction`` column says which. (One fit gives both covariances.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.genmod.cov_struct import Exchangeable
from statsmodels.genmod.families import Gaussian
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.regression.linear_model import WLS

from impactstudy.errors import DataError
from impactstudy.model.stats import tidy
from impactstudy.model.stats.wave_design import WaveDesign

MODEL = "gee"
ROBUST = "none (sandwich SE, normal reference)"
BIAS_REDUCED = "bias-reduced (Mancl-DeRouen) SE, t reference df=K-p (K councils, p waves of the row's group level)"


def fit_gee(
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    few_councils: int = 40,
    conf_level: float = 0.95,
    weights: str | None = None,
) -> pd.DataFrame:
    """Wave contrasts from a GEE, one row per contrast (and per ``group`` level when given).

    ``data`` is the long frame of one measure (or a :class:`tidy.Sample` of it); ``contrasts`` are
    ``(later, earlier)`` wave pairs. With
    ``group`` the model is ``value ~ C(wave) * C(group)`` and each contrast is evaluated within each level.
    ``weights`` names a column of observation weights (e.g. inverse probability of retention).
    """
    sample = tidy.sample(data, wave_order, group, extra=[weights] if weights else [])
    d = sample.frame
    n_councils = d["council_code"].nunique()
    few = {level: tidy.level_size(sample, level)[0] < few_councils for _, level in sample.levels}
    correction = BIAS_REDUCED if n_councils < few_councils else ROBUST

    def result(design: WaveDesign | None, fit: object | None, warning: str) -> pd.DataFrame:
        return tidy.wald_rows(MODEL, sample, contrasts, correction=correction, design=design,
                              test=None, warning=warning,
                              level_test=None if fit is None else functools.partial(_level_test, sample, fit, few,
                                                                                    conf_level))

    if d.empty:
        return result(None, None, "no observed values")
    if n_councils < 2:
        return result(None, None, f"GEE needs at least 2 councils with observed values, has {n_councils}")
    try:
        design = sample.design()
    except DataError as err:
        return result(None, None, str(err))
    if d["value"].nunique() < 2:
        return result(design, None, "every observed value is the same; nothing varies to model")
    if d.groupby("council_code").size().max() < 2:
        return result(design, None, "every council has a single answer; the within-council correlation is not estimable")
    y = d["value"].to_numpy()
    w = d[weights].to_numpy(float) if weights else None
    with tidy.captured_warnings() as caught:
        # the councils' codes follow their sorted labels, so clusters come in the order the labels give
        model = _LinearGEE(y, design.X, groups=d["council_code"].cat.codes.to_numpy(), family=Gaussian(),
                           cov_struct=_Exchangeable(), weights=w)
        try:
            fit = model.fit(start_params=_start_params(design, y, w),
                            cov_type="bias_reduced" if any(few.values()) else "robust", ddof_scale=0)
        except (ValueError, np.linalg.LinAlgError) as err:  # statsmodels' way of saying the data defeat it
            caught.append(f"{type(err).__name__}: {err}")
            fit = None
    warning = tidy.join_warnings(*caught)
    if fit is None:
        return result(design, None, tidy.join_warnings("GEE could not be fitted", warning))
    return result(design, fit, warning)


def _level_test(sample: tidy.Sample, fit: object, few: dict[object, bool], conf_level: float,
                level: object) -> tuple[tidy.Test | None, str, str]:
    """The test of a level's contrasts: bias-reduced covariance and t on ``K - p`` df when the level rests
    on fewer than ``few_councils`` councils, else the plain sandwich and the normal reference."""
    beta = np.asarray(fit.params)
    if few[level]:
        k, p = tidy.level_size(sample, level)
        cov, df, correction = np.asarray(fit.cov_robust_bc), float(k - p), BIAS_REDUCED
        if df < 1:
            return None, correction, f"too few councils ({k}) for {p} mean parameters with bias-reduced SEs"
    else:
        cov, df, correction = np.asarray(fit.cov_robust), None, ROBUST
    if not np.all(np.isfinite(cov)):
        return None, correction, "robust covariance is not finite"
    return tidy.WaldFit(beta, cov, df, conf_level).test, correction, ""


class _LinearGEE(GEE):
    """statsmodels' ``GEE`` for the case fitted here, a full-rank design and the identity link, without
    two pieces of work that case makes redundant (the numbers are statsmodels' own, bit for bit).

    - ``GLM.initialize`` takes an SVD of the whole design (~20 ms at national scale) only for
      ``df_model``, which ``GEE.__init__`` then overwrites from the column count; a
      :func:`~impactstudy.model.stats.wave_design.design_matrix` design has full column rank by
      construction (aliased columns are dropped), so the rank is known.
    - ``mean_deriv`` multiplies each council's rows of ``X`` by the link's inverse derivative, which
      for the identity link is all ones, at every iteration: ``X`` itself is that product.
    """

    def initialize(self) -> None:
        self.df_model = self.exog.shape[1] - 1
        self.wnobs = self.exog.shape[0]  # what GLM sets without frequency weights, which GEE never passes
        self.df_resid = self.wnobs - self.df_model - 1

    def mean_deriv(self, exog: np.ndarray, lin_pred: np.ndarray) -> np.ndarray:
        return exog


class _Exchangeable(Exchangeable):
    """statsmodels' exchangeable working correlation, solving as statsmodels does with less work when
    the standard deviations are all one (the Gaussian family, the only one fitted here).

    Why: ``Exchangeable.covariance_matrix_solve`` (called for every council, several times per
    iteration) divides each right-hand side by the standard deviations before and after, and sums a
    vector right-hand side with Python's builtin ``sum``, element by element. With unit deviations
    this skips the divisions (by one: nothing changes) and sums a vector with ``np.cumsum(v)[-1]``
    (the same additions in the same order), so every number is bit for bit statsmodels' own and a
    GEE fit takes about a third less time. Other deviations are left to statsmodels.
    """

    def covariance_matrix_solve(self, expval: np.ndarray, index: int, stdev: np.ndarray,
                                rhs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not np.all(stdev == 1.0):
            return super().covariance_matrix_solve(expval, index, stdev, rhs)
        c = self.dep_params / (1.0 - self.dep_params)
        c /= 1.0 + self.dep_params * (len(expval) - 1)
        solved = []
        for x in rhs:
            y = x / (1.0 - self.dep_params)
            y -= c * (np.cumsum(x)[-1] if x.ndim == 1 else x.sum(0))
            solved.append(y)
        return solved


def _start_params(design: WaveDesign, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """GEE's own starting values (the weighted least-squares fit statsmodels gets from a Gaussian GLM
    with ``freq_weights``), from the cell means: the same normal equations, a handful of rows."""
    w = np.ones(len(y)) if weights is None else weights
    n_cells = len(design.cell_X)
    total = np.bincount(design.cell_index, weights=w, minlength=n_cells)
    seen = total > 0
    means = np.bincount(design.cell_index, weights=w * y, minlength=n_cells)[seen] / total[seen]
    return np.asarray(WLS(means, design.cell_X[seen], weights=total[seen]).fit().params)
