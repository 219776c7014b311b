"""Linear mixed model with a council random intercept and an optional nested respondent intercept.

The model is ``y = X beta + b_council + b_respondent(council) + e``, fitted by REML. It is the model
lme4 fits with ``lmer(value ~ wave + (1 | council_code) + (1 | council_code:respondent_id))``, and
:func:`fit_lmm` reproduces lme4's estimates, ``vcov`` and REML criterion, and lmerTest's Satterthwaite
degrees of freedom, so every number in a report can be re-derived in R.

Why not statsmodels ``MixedLM``: it forms dense per-group matrices and takes ~7 s on a national panel
(80,000 rows, 30,000 respondents, 152 councils); this module takes well under a second. It exploits the
nested structure: within council ``i``, ``V_i = s2 * (I + t1 * J + t2 * blockdiag(J_resp))``, whose
inverse and determinant follow in closed form from Sherman-Morrison per respondent block and then per
council. After one pass that sums ``[X y]`` per respondent, a REML evaluation costs
O(respondents * p^2) and never touches an n x n matrix. The REML deviance is profiled over the residual
variance and minimised over the variance ratios ``t = theta^2`` (lme4's relative covariance factors
squared) with L-BFGS-B and an exact gradient, with ``t >= 0`` so a variance can sit on the boundary.

Satterthwaite degrees of freedom follow lmerTest exactly: variance parameters ``(theta, sigma)``, their
covariance ``2 * H^-1`` from the Hessian ``H`` of the unprofiled REML deviance (here a central
difference of the exact gradient), and the exact Jacobian of ``vcov(beta)`` with respect to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from impactstudy.errors import DataError
from impactstudy.stats import tidy

# lme4's isSingular() tolerance on theta, and lmerTest's tolerance on Hessian eigenvalues.
SINGULAR_TOL = 1e-4
HESSIAN_EIGEN_TOL = 1e-8
_COMPONENTS = ("council", "respondent")


@dataclass(frozen=True)
class _Blocks:
    """Sufficient statistics of ``[X y]`` for the nested REML likelihood.

    A block is a respondent within a council (nested model) or a whole council (council-only model,
    where the respondent ratio is fixed at 0). Every per-block weight depends only on the block's size
    ``m``, so blocks are pooled into size classes: all sums run over (council, size class) cells, and a
    likelihood evaluation costs O(councils * classes * p^2), whatever the number of rows or respondents.
    """

    zz: np.ndarray  # (p+1, p+1): [X y]'[X y]
    k: np.ndarray  # (councils, classes, p+1): sum of [X y] over the blocks of a class in a council
    m1: np.ndarray  # (councils, classes): sum of block sizes m_j
    m2: np.ndarray  # (councils, classes): sum of m_j^2
    outer: np.ndarray  # (classes, p+1, p+1): sum over a class of S_j S_j' (S_j = block sum of [X y])
    size: np.ndarray  # (classes,): block size m of each class
    count: np.ndarray  # (classes,): number of blocks in each class
    n: int
    p: int
    nested: bool


@dataclass(frozen=True)
class _Terms:
    """Everything one evaluation of the REML deviance at ratios ``t`` yields."""

    a_chol: np.ndarray  # lower Cholesky factor of X' W^-1 X (W = V / s2)
    beta: np.ndarray
    rss: float  # (y - X beta)' W^-1 (y - X beta), lme4's penalised weighted RSS
    logdet_w: float
    logdet_a: float
    grad_logdet_w: np.ndarray  # d logdet W / d t_k
    grad_logdet_a: np.ndarray  # d logdet(X' W^-1 X) / d t_k
    grad_rss: np.ndarray  # d rss / d t_k
    gram: tuple[np.ndarray, ...]  # G_k with d(X' W^-1 X)/d t_k = -G_k


def _block_stats(y: np.ndarray, x: np.ndarray, council: np.ndarray, respondent: np.ndarray | None) -> _Blocks:
    """Sum ``[X y]`` per block, then per (council, block-size class), in one O(n p) pass."""
    council_idx, council_levels = pd.factorize(council)
    if respondent is None:
        block_idx = council_idx
    else:
        resp_idx, _ = pd.factorize(respondent)
        block_idx, _ = pd.factorize(council_idx.astype(np.int64) * (int(resp_idx.max()) + 1) + resp_idx)
    z = np.empty((len(y), x.shape[1] + 1), order="F")  # [X y] with contiguous columns for bincount, one copy
    z[:, :-1], z[:, -1] = x, y
    n_blocks = int(block_idx.max()) + 1
    sums = np.column_stack([np.bincount(block_idx, weights=col, minlength=n_blocks) for col in z.T])
    sizes = np.bincount(block_idx, minlength=n_blocks).astype(float)
    block_council = np.empty(n_blocks, dtype=np.int64)
    block_council[block_idx] = council_idx
    if respondent is None:  # one class; its size is never used because t2 = 0
        cls, size = np.zeros(n_blocks, dtype=np.int64), np.zeros(1)
    else:
        cls, size = pd.factorize(sizes)
        size = np.asarray(size, dtype=float)
    n_councils, n_classes = len(council_levels), len(size)
    cell = block_council * n_classes + cls

    def per_cell(w: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=w, minlength=n_councils * n_classes).reshape(n_councils, n_classes)

    return _Blocks(
        zz=z.T @ z,
        k=np.stack([per_cell(col) for col in sums.T], axis=-1),
        m1=per_cell(sizes),
        m2=per_cell(sizes**2),
        outer=np.stack([sums[cls == c].T @ sums[cls == c] for c in range(n_classes)]),
        size=size,
        count=np.bincount(cls, minlength=n_classes).astype(float),
        n=len(y),
        p=x.shape[1],
        nested=respondent is not None,
    )


def _terms(b: _Blocks, t: np.ndarray) -> _Terms:
    """Evaluate ``[X y]' W^-1 [X y]``, ``logdet W`` and their derivatives in ``t``.

    With ``D = I + t2 blockdiag(J_resp)`` and ``W = D + t1 J`` within a council, and block sums ``S_j``
    of sizes ``m_j``: ``u_j = 1 / (1 + t2 m_j)``, council sums ``C_i = sum_j u_j S_j``,
    ``s_i = sum_j u_j m_j`` and ``f_i = 1 / (1 + t1 s_i)``. Sherman-Morrison twice gives
    ``Z' W^-1 Z = Z'Z - t2 sum_j u_j S_j S_j' - t1 sum_i f_i C_i C_i'`` and
    ``logdet W = sum_j log(1 + t2 m_j) + sum_i log(1 + t1 s_i)``. The derivative of ``Z' W^-1 Z`` in
    ``t_k`` is ``-Q_k' Q_k``, with ``Q_k`` the level-k group sums of ``W^-1 Z``: rows ``f_i C_i`` for
    councils and ``u_j S_j - t1 f_i u_j m_j C_i`` for respondents; their Gram matrices are formed from
    the class sums without visiting a respondent.
    """
    t1 = float(t[0])
    t2 = float(t[1]) if b.nested else 0.0
    p = b.p
    u = 1.0 / (1.0 + t2 * b.size)  # (classes,)
    c = np.einsum("c,icq->iq", u, b.k)
    sc = b.m1 @ u
    f = 1.0 / (1.0 + t1 * sc)
    q1 = c * f[:, None]
    mzz = b.zz - t1 * (q1.T @ c)
    logdet_w = float(np.sum(np.log1p(t1 * sc)))
    grad_logdet_w = [float(np.sum(sc * f))]
    grams = [q1.T @ q1]
    if b.nested:
        u2 = u**2
        mzz -= t2 * np.einsum("c,cpq->pq", u, b.outer)
        logdet_w += float(b.count @ np.log1p(t2 * b.size))
        mu2 = b.m2 @ u2  # per council: sum_j (m_j u_j)^2
        grad_logdet_w.append(float(b.count @ (b.size * u) - t1 * np.sum(mu2 * f)))
        e = t1 * f[:, None] * np.einsum("c,icq->iq", u2 * b.size, b.k)  # sum_j t1 f_i u_j^2 m_j S_j
        cross = e.T @ c
        g2 = np.einsum("c,cpq->pq", u2, b.outer) - cross - cross.T + (c * ((t1 * f) ** 2 * mu2)[:, None]).T @ c
        grams.append(g2)
    try:
        a_chol = linalg.cholesky(mzz[:p, :p], lower=True)
    except linalg.LinAlgError as err:  # unreachable after the rank check unless t is absurd
        raise DataError(f"lmm: X'V^-1X is not positive definite ({err}); check the design matrix") from err
    beta = linalg.cho_solve((a_chol, True), mzz[:p, p])
    coef = np.r_[-beta, 1.0]
    return _Terms(
        a_chol=a_chol,
        beta=beta,
        rss=float(mzz[p, p] - mzz[:p, p] @ beta),
        logdet_w=logdet_w,
        logdet_a=2.0 * float(np.sum(np.log(np.diag(a_chol)))),
        grad_logdet_w=np.array(grad_logdet_w),
        # tr(A^-1 dA) with dA = -G_X, and the envelope theorem for the residual: -[-beta; 1]' G [-beta; 1]
        grad_logdet_a=np.array([-np.trace(linalg.cho_solve((a_chol, True), g[:p, :p])) for g in grams]),
        grad_rss=np.array([-float(coef @ g @ coef) for g in grams]),
        gram=tuple(g[:p, :p] for g in grams),
    )


def _profiled_deviance(b: _Blocks, t: np.ndarray) -> tuple[float, np.ndarray]:
    """REML deviance (lme4's REML criterion) with the residual variance profiled out, and its gradient."""
    tt = _terms(b, t)
    dof = b.n - b.p
    dev = tt.logdet_w + tt.logdet_a + dof * (1.0 + np.log(2.0 * np.pi * tt.rss / dof))
    grad = tt.grad_logdet_w + tt.grad_logdet_a + dof * tt.grad_rss / tt.rss
    return float(dev), grad


def _varpar_gradient(b: _Blocks, varpar: np.ndarray) -> np.ndarray:
    """Gradient of the unprofiled REML deviance in lmerTest's parameters ``(theta..., sigma)``.

    The deviance is even in each theta (it depends on theta^2), so it is defined for the small
    negative theta a central difference at a boundary fit evaluates, exactly as in lmerTest.
    """
    theta, sigma = varpar[:-1], varpar[-1]
    tt = _terms(b, theta**2)
    d_t = tt.grad_logdet_w + tt.grad_logdet_a + tt.grad_rss / sigma**2
    d_sigma = -2.0 * tt.rss / sigma**3 + 2.0 * (b.n - b.p) / sigma
    return np.r_[2.0 * theta * d_t, d_sigma]


def _hessian(b: _Blocks, varpar: np.ndarray) -> np.ndarray:
    """Hessian of the REML deviance in ``(theta, sigma)``: Richardson-extrapolated central differences
    of the exact gradient (error O(h^4)), symmetrised."""
    k = len(varpar)
    # theta is a ratio (a step of at least 1e-4, as numDeriv's at 0); sigma has y's units, so a relative step.
    h = 1e-3 * np.r_[np.maximum(np.abs(varpar[:-1]), 0.1), varpar[-1]]

    def jac(step: np.ndarray) -> np.ndarray:
        cols = []
        for i in range(k):
            e = np.zeros(k)
            e[i] = step[i]
            cols.append((_varpar_gradient(b, varpar + e) - _varpar_gradient(b, varpar - e)) / (2.0 * step[i]))
        return np.column_stack(cols)

    hess = (4.0 * jac(h / 2.0) - jac(h)) / 3.0
    return (hess + hess.T) / 2.0


def _varpar_covariance(hess: np.ndarray, sigma: float) -> tuple[np.ndarray, list[str]]:
    """Asymptotic covariance of ``(theta, sigma)``: ``2 H^-1`` over the eigenvalues above tolerance, as
    lmerTest. The eigenvalues are taken for ``(theta, log sigma)`` (H scaled by sigma in its last row
    and column; equal to H at the optimum up to that scaling), so the tolerance does not depend on
    the units of y; when every eigenvalue passes, this is exactly lmerTest's ``2 * solve(H)``."""
    d = np.r_[np.ones(len(hess) - 1), sigma]
    evals, evecs = np.linalg.eigh(hess * np.outer(d, d))
    messages = []
    if np.any(evals < -HESSIAN_EIGEN_TOL):
        messages.append(f"failed to converge: REML Hessian has negative eigenvalues {evals[evals < -HESSIAN_EIGEN_TOL]}")
    if np.any(np.abs(evals) <= HESSIAN_EIGEN_TOL):
        messages.append("may not have converged: REML Hessian has eigenvalues close to zero")
    keep = evals > HESSIAN_EIGEN_TOL
    scaled_inv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    return 2.0 * scaled_inv * np.outer(d, d), messages


def _gram_root(x: np.ndarray) -> np.ndarray:
    """A matrix ``M`` with ``M'M = X'X`` and few rows: each distinct row of ``X`` once, scaled by the root
    of its count (zero rows added up to ``p``); ``X`` itself when its rows are mostly distinct.

    The QR factor ``R`` of ``X`` depends only on ``X'X`` (``R'R = X'X``), so ``M`` gives the same
    ``|R[j, j]|`` from a (cells x p) instead of an (n x p) factorisation: a design of wave (x group)
    dummies has a handful of distinct rows among tens of thousands.
    """
    key = x @ np.random.default_rng(0).standard_normal(x.shape[1])  # equal rows, equal keys
    codes, uniques = pd.factorize(key)
    if len(uniques) > x.shape[0] // 4:
        return x
    # factorize numbers rows in order of first appearance: a row is a first one where the code grows
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    distinct = x[first]
    if not np.array_equal(distinct[codes], x):  # two different rows with one key: no shortcut
        return x
    m = distinct * np.sqrt(np.bincount(codes))[:, None]
    return np.vstack([m, np.zeros((max(x.shape[1] - len(m), 0), x.shape[1]))])


def _check_inputs(
    y: np.ndarray, x: np.ndarray, columns: tuple[str, ...], council: np.ndarray, respondent: np.ndarray | None
) -> None:
    """Refuse inputs lme4 would refuse, with a message that says what to fix."""
    n = len(y)
    if y.ndim != 1 or x.ndim != 2 or x.shape[0] != n or len(council) != n:
        raise DataError(f"lmm: y has shape {y.shape}, X {x.shape}, council {len(council)}; they must have n rows")
    if respondent is not None and len(respondent) != n:
        raise DataError(f"lmm: respondent has {len(respondent)} entries for {n} rows")
    if len(columns) != x.shape[1]:
        raise DataError(f"lmm: {len(columns)} column names for {x.shape[1]} columns of X")
    bad_y = int(np.sum(~np.isfinite(y)))
    bad_x = 0 if np.isfinite(x).all() else int(np.sum(~np.all(np.isfinite(x), axis=1)))  # count rows only if any
    bad_g = int(np.sum(pd.isna(council))) + (0 if respondent is None else int(np.sum(pd.isna(respondent))))
    if bad_y or bad_x or bad_g:
        raise DataError(
            f"lmm: {bad_y} rows with a missing or infinite value, {bad_x} with a missing design entry, "
            f"{bad_g} missing council/respondent labels; drop incomplete rows before fitting"
        )
    # As R's lm/lmer: column j is aliased when the QR factor's R[j, j] is ~0 (in the span of earlier columns).
    r_diag = np.abs(np.diag(np.linalg.qr(_gram_root(x), mode="r"))) if x.shape[0] >= x.shape[1] else np.zeros(x.shape[1])
    aliased = [columns[j] for j in np.flatnonzero(r_diag <= 1e-7 * max(r_diag.max(), 1e-300))]
    if aliased or n <= x.shape[1]:
        raise DataError(
            f"lmm: design matrix is rank deficient ({x.shape[1] - len(aliased)} of {x.shape[1]} columns, {n} rows); "
            f"{', '.join(aliased) or 'too few rows'}: linear combination of earlier columns (an empty wave or "
            "group cell?)"
        )


def _check_levels(b: _Blocks) -> None:
    """lme4's checks on grouping factors: at least 2 levels, and fewer levels than observations."""
    levels = {"council": b.k.shape[0]}
    if b.nested:
        levels["council:respondent"] = int(b.count.sum())
    for name, k in levels.items():
        if k < 2 or k >= b.n:
            raise DataError(
                f"lmm: {k} {name} levels for {b.n} rows; a random intercept needs at least 2 levels and fewer "
                "levels than rows (drop the respondent level when respondents do not recur)"
            )


@dataclass(frozen=True, eq=False)
class LmmFit:
    """A fitted REML linear mixed model; every number matches lme4/lmerTest for the same data."""

    terms: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray  # REML covariance of beta, as lme4's vcov()
    var_council: float
    var_respondent: float | None  # None when the model has no respondent level
    var_residual: float
    theta: np.ndarray  # lme4's theta: random-effect SDs relative to the residual SD
    reml_criterion: float  # -2 * REML log-likelihood, as lme4's REMLcrit()
    n_obs: int
    n_groups: dict[str, int]
    converged: bool
    warnings: tuple[str, ...]
    vcov_varpar: np.ndarray = field(repr=False)  # covariance of (theta..., sigma), lmerTest's vcov_varpar
    vcov_jacobian: np.ndarray = field(repr=False)  # d vcov / d (theta..., sigma): (k, p, p), lmerTest's Jac_list

    @property
    def sd_council(self) -> float:
        return float(np.sqrt(self.var_council))

    @property
    def sd_respondent(self) -> float | None:
        return None if self.var_respondent is None else float(np.sqrt(self.var_respondent))

    @property
    def sd_residual(self) -> float:
        return float(np.sqrt(self.var_residual))

    @property
    def singular(self) -> bool:
        """True for a boundary fit, as lme4's ``isSingular()``."""
        return bool(np.any(self.theta < SINGULAR_TOL))

    def contrast(self, L: np.ndarray, level: float = 0.95) -> dict[str, float]:
        """Wald t-test of ``L @ beta = 0`` with Satterthwaite df, as lmerTest's ``contest1D()``.

        ``df = 2 (L V L')^2 / (g' A g)``, with ``g`` the gradient of ``L V L'`` in ``(theta, sigma)``
        and ``A`` their asymptotic covariance.
        """
        lv = np.asarray(L, dtype=float)
        if lv.shape != self.beta.shape:
            raise ValueError(f"contrast vector has shape {lv.shape}; expected {self.beta.shape} ({self.terms})")
        estimate = float(lv @ self.beta)
        var = float(lv @ self.vcov @ lv)
        grad = np.einsum("i,kij,j->k", lv, self.vcov_jacobian, lv)
        denom = float(grad @ self.vcov_varpar @ grad)
        df = 2.0 * var**2 / denom if denom > 0 else np.inf
        se = float(np.sqrt(var))
        ci_low, ci_high, p_value = tidy.interval(estimate, se, float(df), level)
        return {
            "estimate": estimate,
            "std_error": se,
            "df": float(df),
            "t": estimate / se,
            "p_value": p_value,
            "ci_low": ci_low,
            "ci_high": ci_high,
        }

    def summary_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Tidy table of the fixed effects: term, estimate, std_error, df, t, p_value, ci_low, ci_high."""
        rows = [{"term": term, **self.contrast(row, level)} for term, row in zip(self.terms, np.eye(len(self.terms)))]
        return pd.DataFrame(rows, columns=["term", "estimate", "std_error", "df", "t", "p_value", "ci_low", "ci_high"])


def _optimise(b: _Blocks) -> tuple[np.ndarray, bool, list[str]]:
    """Minimise the profiled REML deviance over the variance ratios ``t >= 0``."""
    k = 2 if b.nested else 1
    res = optimize.minimize(
        lambda t: _profiled_deviance(b, t),
        x0=np.ones(k),  # lme4's start: theta = 1
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * k,
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 500},
    )
    t = np.asarray(res.x, dtype=float)
    _, grad = _profiled_deviance(b, t)
    # Projected gradient: at t_k = 0 only a negative slope (the deviance falls inward) is a failure.
    proj = np.where(t > 0, grad, np.minimum(grad, 0.0))
    # lme4 flags |gradient| > 0.002 on its scaled scale; here the scale is the ratio itself.
    converged = bool(np.all(np.abs(proj) * np.maximum(t, 1.0) < 2e-3))
    messages = [] if converged else [f"failed to converge: {res.message}; projected gradient {proj.tolist()}"]
    return t, converged, messages


def fit_lmm(
    y: np.ndarray,
    X: np.ndarray,
    columns: list[str] | tuple[str, ...],
    council: np.ndarray,
    respondent: np.ndarray | None = None,
) -> LmmFit:
    """Fit ``y ~ X + (1 | council) [+ (1 | council:respondent)]`` by REML.

    ``X`` includes the intercept column; ``columns`` names its columns. Respondent ids are nested
    within council (the same id in two councils is two respondents), as ``council:respondent`` in lme4.
    Raises :class:`DataError` for missing values, fewer than two groups, as many groups as rows, or a
    rank-deficient ``X``.
    """
    yv = np.asarray(y, dtype=float)
    xv = np.asarray(X, dtype=float)
    cv = np.asarray(council)
    rv = None if respondent is None else np.asarray(respondent)
    names = tuple(columns)
    _check_inputs(yv, xv, names, cv, rv)
    b = _block_stats(yv, xv, cv, rv)
    _check_levels(b)
    t, converged, messages = _optimise(b)
    tt = _terms(b, t)
    dev, _ = _profiled_deviance(b, t)
    dof = b.n - b.p
    sigma2 = tt.rss / dof
    a_inv = linalg.cho_solve((tt.a_chol, True), np.eye(b.p))
    theta = np.sqrt(t)
    sigma = np.sqrt(sigma2)

    vcov_varpar, hess_messages = _varpar_covariance(_hessian(b, np.r_[theta, sigma]), sigma)
    messages += hess_messages
    converged = converged and not any(m.startswith("failed") for m in hess_messages)
    jac = [sigma2 * 2.0 * th * a_inv @ g @ a_inv for th, g in zip(theta, tt.gram)]
    jac.append(2.0 * sigma * a_inv)

    singular = [name for name, th in zip(_COMPONENTS, theta) if th < SINGULAR_TOL]
    if singular:
        messages.append(f"boundary (singular) fit: {' and '.join(singular)} variance estimated as (near) zero")
    n_groups = {"council": b.k.shape[0]}
    if b.nested:
        n_groups["respondent"] = int(b.count.sum())
    return LmmFit(
        terms=names,
        beta=tt.beta,
        vcov=sigma2 * a_inv,
        var_council=float(t[0] * sigma2),
        var_respondent=float(t[1] * sigma2) if b.nested else None,
        var_residual=float(sigma2),
        theta=theta,
        reml_criterion=dev,
        n_obs=b.n,
        n_groups=n_groups,
        converged=converged,
        warnings=tuple(messages),
        vcov_varpar=vcov_varpar,
        vcov_jacobian=np.stack(jac),
    )


def fit_summary(fit: LmmFit) -> dict[str, Any]:
    """JSON-ready record of a fit for ``models.json``: variance components, criterion, diagnostics."""
    return {
        "terms": list(fit.terms),
        "beta": fit.beta.tolist(),
        "var_council": fit.var_council,
        "var_respondent": fit.var_respondent,
        "var_residual": fit.var_residual,
        "reml_criterion": fit.reml_criterion,
        "n_obs": fit.n_obs,
        "n_groups": dict(fit.n_groups),
        "converged": fit.converged,
        "warnings": list(fit.warnings),
    }
