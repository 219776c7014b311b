"""Linear mixed model with council, council x wave and council x respondent random intercepts.

The model is ``y = X beta + b_council + b_council:wave + b_council:respondent + e``, fitted by REML;
the council x wave and respondent terms are optional. It is the model lme4 fits with

    lmer(value ~ wave + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id))

and :func:`fit_lmm` reproduces lme4's estimates, ``vcov``, variance components and REML criterion,
lmerTest's Satterthwaite degrees of freedom and pbkrtest's Kenward-Roger adjusted covariance and
degrees of freedom (as ``lmerTest::contest1D(ddf = "Kenward-Roger")``), so every number in a report
can be re-derived in R.

Why the council x wave term: without it the model assumes every council changed by the same amount,
so its wave contrasts are replicated by respondents rather than councils, and its intervals are too
narrow whenever councils' changes differ.

Why not statsmodels ``MixedLM`` or a sparse Cholesky as lme4: within a council, waves and respondents
are crossed, yet the council's covariance has a structure that needs no n x n (or q x q) matrix.
With ``W = V / s2 = D + Zw G Zw'`` where ``D = I + t3 blockdiag(J_respondent)`` (Sherman-Morrison per
respondent, in closed form) and ``G = t1 J + t2 I`` is the covariance of the council's wave effects
(W x W, W = number of waves), Woodbury gives ``W^-1 = D^-1 - D^-1 Zw H Zw' D^-1`` with
``H = G (I + Pw G)^-1`` and ``Pw = Zw' D^-1 Zw``, and ``det W = det D * det(I + Pw G)``. Every
respondent-level weight depends only on the number of rows the respondent has, so after one pass
that sums ``[X y]`` per respondent the REML criterion and its exact gradient cost
O(councils x size-classes x waves^2 x p) per evaluation, whatever the number of rows or respondents.
The REML deviance is profiled over the residual variance and minimised over the variance ratios
``t = theta^2`` (lme4's relative covariance factors squared) with L-BFGS-B and the exact gradient,
``t >= 0``, so a variance can sit on the boundary; Newton steps on the exact gradient then polish
the optimum.

Satterthwaite (lmerTest): variance parameters ``(theta, sigma)``, their covariance ``2 H^-1`` from the
Hessian ``H`` of the REML deviance (central differences of the exact gradient), and the exact
Jacobian of ``vcov(beta)``. Kenward-Roger (pbkrtest): variance parameters ``(sigma2_k, sigma2_e)``
with ``V = sum_k sigma2_k Z_k Z_k' + sigma2_e I``; pbkrtest's ``P_k``, ``Q_kl`` and
``tr(G_k V^-1 G_l V^-1)`` are first and second derivatives of ``X' V^-1 X`` and ``log det V`` in
those parameters, taken here from the exact first derivatives (second by central differences).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, stats

from impactstudy.errors import DataError
from impactstudy.model.stats import tidy

# lme4's isSingular() tolerance on theta, and lmerTest's tolerance on Hessian eigenvalues.
SINGULAR_TOL = 1e-4
HESSIAN_EIGEN_TOL = 1e-8
# pbkrtest's tolerance on the eigenvalues of the expected information before it takes a pseudo-inverse.
KR_EIGEN_TOL = 1e-10
COMPONENTS = ("council", "council_wave", "respondent")
R_TERMS = {"council": "(1 | council_code)", "council_wave": "(1 | council_code:wave)",
           "respondent": "(1 | council_code:respondent_id)"}
DDF_METHODS = ("satterthwaite", "kenward-roger")
DDF_NAMES = {"satterthwaite": "Satterthwaite df (as lmerTest)",
             "kenward-roger": "Kenward-Roger df and SE (as pbkrtest)"}
Ddf = Literal["satterthwaite", "kenward-roger"]


@dataclass(frozen=True)
class _Blocks:
    """Sufficient statistics of ``[X y]`` (``Z``, q = p + 1 columns) for the REML likelihood.

    ``Zw`` is the council's rows x waves indicator matrix (one column, the council itself, when the
    model has no council x wave term). Respondents (``j``, block sums ``S_j`` of ``Z``, sizes ``m_j``,
    rows per wave ``N_j``) are pooled into size classes: every respondent weight depends on ``m_j``
    only, so all sums run over (council, class) cells.
    """

    zz: np.ndarray  # (q, q): Z'Z
    nw: np.ndarray  # (councils, W): rows per council x wave
    zw: np.ndarray  # (councils, W, q): Zw'Z per council
    # (councils, W*W + W*q, classes): per (council, class), the sums of N_j N_j' (W x W) and of
    # N_j S_j' (W x q) over the class's respondents, flattened, so that one product weights them all
    per_class: np.ndarray
    outer: np.ndarray  # (classes, q*q): sum over a class of S_j S_j', flattened
    size: np.ndarray  # (classes,): respondent block size m of each class
    count: np.ndarray  # (classes,): respondents in each class
    n: int
    p: int
    active: tuple[int, ...]  # indices into COMPONENTS of the model's random terms
    levels: dict[str, int]  # levels of each random term
    largest: np.ndarray  # (3,): rows of the largest level of each term (scales finite-difference steps)


@dataclass(frozen=True)
class _Terms:
    """Everything one evaluation at variance ratios ``t`` (all three, inactive ones 0) yields."""

    a_chol: np.ndarray  # lower Cholesky factor of A = X' W^-1 X
    beta: np.ndarray
    rss: float  # (y - X beta)' W^-1 (y - X beta), lme4's penalised weighted RSS
    logdet_w: float
    logdet_a: float
    mzz: np.ndarray  # Z' W^-1 Z
    grad_logdet_w: np.ndarray  # (3,): d logdet W / d t_k = tr(W^-1 G_k)
    grad_logdet_a: np.ndarray  # (3,): d logdet A / d t_k
    grad_rss: np.ndarray  # (3,): d rss / d t_k
    gram: np.ndarray  # (3, q, q): Gram_k, with d(Z' W^-1 Z)/d t_k = -Gram_k


def _aggregate(cell: np.ndarray, n_cells: int, values: np.ndarray) -> np.ndarray:
    """Sum the rows of ``values`` (2-D) by ``cell``."""
    ones = sparse.csr_matrix((np.ones(len(cell)), (cell, np.arange(len(cell)))), shape=(n_cells, len(cell)))
    return np.asarray(ones @ values)


def _block_stats(y: np.ndarray, x: np.ndarray, council: np.ndarray, respondent: np.ndarray | None,
                 wave: np.ndarray | None = None) -> _Blocks:
    """Sum ``[X y]`` per council x wave and per respondent, then per (council, size class): O(n p)."""
    council_idx, council_levels = pd.factorize(council)
    n_c = len(council_levels)
    wave_idx, wave_levels = (np.zeros(len(y), dtype=np.int64), [0]) if wave is None else pd.factorize(wave)
    n_w = len(wave_levels)
    z = np.empty((len(y), x.shape[1] + 1), order="F")  # [X y] with contiguous columns for bincount, one copy
    z[:, :-1], z[:, -1] = x, y
    q = z.shape[1]
    cw = council_idx.astype(np.int64) * n_w + wave_idx
    nw = np.bincount(cw, minlength=n_c * n_w).astype(float)
    zw = np.stack([np.bincount(cw, weights=col, minlength=n_c * n_w) for col in z.T], axis=-1)
    levels = {"council": n_c}
    if wave is not None:
        levels["council_wave"] = int(np.count_nonzero(nw))
    largest = np.array([np.bincount(council_idx).max(), nw.max(), 0.0])
    if respondent is None:
        nn, ns = np.zeros((n_c, 0, n_w, n_w)), np.zeros((n_c, 0, n_w, q))
        outer, size, count = np.zeros((0, q, q)), np.zeros(0), np.zeros(0)
    else:
        resp_idx, _ = pd.factorize(respondent)
        block_idx, _ = pd.factorize(council_idx.astype(np.int64) * (int(resp_idx.max()) + 1) + resp_idx)
        n_blocks = int(block_idx.max()) + 1
        sums = np.column_stack([np.bincount(block_idx, weights=col, minlength=n_blocks) for col in z.T])
        sizes = np.bincount(block_idx, minlength=n_blocks).astype(float)
        per_wave = np.bincount(block_idx * n_w + wave_idx, minlength=n_blocks * n_w).reshape(n_blocks, n_w)
        block_council = np.empty(n_blocks, dtype=np.int64)
        block_council[block_idx] = council_idx
        cls, size = pd.factorize(sizes)
        size = np.asarray(size, dtype=float)
        n_k = len(size)
        cell = block_council * n_k + cls
        nn = _aggregate(cell, n_c * n_k, (per_wave[:, :, None] * per_wave[:, None, :]).reshape(n_blocks, -1))
        ns = np.stack([_aggregate(cell, n_c * n_k, per_wave[:, [w]] * sums) for w in range(n_w)], axis=1)
        nn, ns = nn.reshape(n_c, n_k, n_w, n_w), ns.reshape(n_c, n_k, n_w, q)
        outer = np.stack([sums[cls == c].T @ sums[cls == c] for c in range(n_k)])
        count = np.bincount(cls, minlength=n_k).astype(float)
        levels["respondent"] = n_blocks
        largest[2] = sizes.max()
    active = tuple(k for k, name in enumerate(COMPONENTS) if name in levels)
    n_k = len(size)
    per_class = np.concatenate([nn.reshape(n_c, n_k, n_w * n_w), ns.reshape(n_c, n_k, n_w * q)], axis=2)
    return _Blocks(zz=z.T @ z, nw=nw.reshape(n_c, n_w), zw=zw.reshape(n_c, n_w, q),
                   per_class=np.ascontiguousarray(np.swapaxes(per_class, 1, 2)), outer=outer.reshape(n_k, q * q),
                   size=size, count=count, n=len(y), p=x.shape[1], active=active, levels=levels, largest=largest)


def _terms(b: _Blocks, t: np.ndarray) -> _Terms:
    """``Z' W^-1 Z``, ``logdet W`` and their derivatives in ``t = (t_council, t_wave, t_respondent)``.

    Within a council: ``u_j = 1 / (1 + t3 m_j)``, ``D^-1 = I - t3 sum_j u_j 1_j 1_j'``,
    ``Pw = Zw'D^-1Zw = diag(rows per wave) - t3 sum_j u_j N_j N_j'``,
    ``Qw = Zw'D^-1Z = Zw'Z - t3 sum_j u_j N_j S_j'``, and with ``H = G (I + Pw G)^-1``:
    ``Z'W^-1Z = Z'Z - t3 sum_j u_j S_j S_j' - sum_i Qw' H Qw`` and
    ``logdet W = sum_j log(1 + t3 m_j) + sum_i logdet(I + Pw G)``. The derivative of ``Z'W^-1Z`` in
    ``t_k`` is ``-Q_k'Q_k`` with ``Q_k = Z_k'W^-1Z`` (per level of term k): ``1'R`` for councils and
    ``R = (I - Pw H) Qw`` for council x wave cells, ``u_j (S_j - Qw'H N_j)`` for respondents; their
    Gram matrices, and ``tr(W^-1 Z_k Z_k')``, come from the class sums without visiting a respondent.
    No square root of ``t`` is taken, so the formulas hold for the small negative ``t`` a central
    difference at a boundary fit evaluates.
    """
    t1, t2, t3 = (float(v) for v in t)
    p = b.p
    n_w = b.nw.shape[1]
    u = 1.0 / (1.0 + t3 * b.size)
    u2 = u**2
    q = b.zz.shape[0]
    n_c = b.nw.shape[0]
    weights = np.column_stack([u, u2])
    pooled = b.per_class @ weights  # (councils, W*W + W*q, 2): class sums weighted by u and by u^2
    outer_u, outer_u2 = (weights.T @ b.outer).reshape(2, q, q)
    split = n_w * n_w
    pw = b.nw[:, :, None] * np.eye(n_w) - t3 * pooled[:, :split, 0].reshape(n_c, n_w, n_w)
    qw = b.zw - t3 * pooled[:, split:, 0].reshape(n_c, n_w, q)
    g = t1 * np.ones((n_w, n_w)) + t2 * np.eye(n_w)
    m = np.eye(n_w) + g @ pw  # I + G Pw: same determinant as I + Pw G
    h = np.linalg.solve(m, np.broadcast_to(g, m.shape))  # (I + G Pw)^-1 G = G (I + Pw G)^-1, symmetric
    h = (h + np.swapaxes(h, 1, 2)) / 2.0
    sign, logdet_m = np.linalg.slogdet(m)
    if np.any(sign <= 0):
        raise DataError("lmm: variance ratios outside the positive-definite region")
    hq = h @ qw
    mzz = b.zz - t3 * outer_u - qw.reshape(-1, q).T @ hq.reshape(-1, q)
    logdet_w = float(b.count @ np.log1p(t3 * b.size) + np.sum(logdet_m))
    r = qw - pw @ hq  # Zw' W^-1 Z
    y = pw - pw @ h @ pw  # Zw' W^-1 Zw
    r1 = r.sum(axis=1)
    nn2 = pooled[:, :split, 1].reshape(n_c, n_w, n_w)  # symmetric in its last two axes, as h
    ns2 = pooled[:, split:, 1].reshape(n_c, n_w, q)
    cross = ns2.reshape(-1, q).T @ hq.reshape(-1, q)
    rr = r.reshape(-1, q)
    grams = np.stack([
        r1.T @ r1,
        rr.T @ rr,
        outer_u2 - cross - cross.T + hq.reshape(-1, q).T @ (nn2 @ hq).reshape(-1, q),
    ])
    grad_logdet_w = np.array([
        float(y.sum()),
        float(np.trace(y, axis1=1, axis2=2).sum()),
        float(b.count @ (b.size * u) - np.sum(h * nn2)),
    ])
    try:
        a_chol = linalg.cholesky(mzz[:p, :p], lower=True, check_finite=False)
    except linalg.LinAlgError as err:  # unreachable after the rank check unless t is absurd
        raise DataError(f"lmm: X'V^-1X is not positive definite ({err}); check the design matrix") from err
    a_inv = linalg.cho_solve((a_chol, True), np.eye(p), check_finite=False)
    beta = a_inv @ mzz[:p, p]
    coef = np.r_[-beta, 1.0]
    return _Terms(
        a_chol=a_chol,
        beta=beta,
        rss=float(mzz[p, p] - mzz[:p, p] @ beta),
        logdet_w=logdet_w,
        logdet_a=2.0 * float(np.sum(np.log(np.diag(a_chol)))),
        mzz=mzz,
        grad_logdet_w=grad_logdet_w,
        # tr(A^-1 dA) with dA = -G_X, and the envelope theorem for the residual: -[-beta; 1]' G [-beta; 1]
        grad_logdet_a=-np.einsum("pq,kqp->k", a_inv, grams[:, :p, :p]),
        grad_rss=-np.einsum("p,kpq,q->k", coef, grams, coef),
        gram=grams,
    )


def _full(b: _Blocks, t: np.ndarray) -> np.ndarray:
    """The three variance ratios from the model's active ones (inactive terms at 0)."""
    out = np.zeros(3)
    out[list(b.active)] = t
    return out


def _profiled_deviance(b: _Blocks, t: np.ndarray) -> tuple[float, np.ndarray]:
    """REML deviance (lme4's REML criterion) with the residual variance profiled out, and its gradient
    in the active variance ratios ``t``."""
    tt = _terms(b, _full(b, t))
    dof = b.n - b.p
    dev = tt.logdet_w + tt.logdet_a + dof * (1.0 + np.log(2.0 * np.pi * tt.rss / dof))
    grad = tt.grad_logdet_w + tt.grad_logdet_a + dof * tt.grad_rss / tt.rss
    return float(dev), grad[list(b.active)]


def _varpar_gradient(b: _Blocks, varpar: np.ndarray) -> np.ndarray:
    """Gradient of the unprofiled REML deviance in lmerTest's parameters ``(theta..., sigma)``.

    The deviance is even in each theta (it depends on theta^2), so it is defined for the small
    negative theta a central difference at a boundary fit evaluates, exactly as in lmerTest.
    """
    theta, sigma = varpar[:-1], varpar[-1]
    tt = _terms(b, _full(b, theta**2))
    d_t = (tt.grad_logdet_w + tt.grad_logdet_a + tt.grad_rss / sigma**2)[list(b.active)]
    d_sigma = -2.0 * tt.rss / sigma**3 + 2.0 * (b.n - b.p) / sigma
    return np.r_[2.0 * theta * d_t, d_sigma]


def _jacobian(function: Any, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Jacobian of ``function`` (array-valued) at ``x``: central differences, Richardson-extrapolated
    from steps ``step`` and ``step / 2`` (error O(h^4)); the derivative index is the first axis."""
    def central(h: np.ndarray) -> np.ndarray:
        cols = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h[i]
            cols.append((np.asarray(function(x + e)) - np.asarray(function(x - e))) / (2.0 * h[i]))
        return np.stack(cols)

    return (4.0 * central(step / 2.0) - central(step)) / 3.0


def _hessian(b: _Blocks, varpar: np.ndarray) -> np.ndarray:
    """Hessian of the REML deviance in ``(theta, sigma)`` from the exact gradient, symmetrised."""
    # theta is a ratio (a step of at least 1e-4, as numDeriv's at 0); sigma has y's units, so a relative step.
    h = 1e-3 * np.r_[np.maximum(np.abs(varpar[:-1]), 0.1), varpar[-1]]
    hess = _jacobian(lambda v: _varpar_gradient(b, v), varpar, h)
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


def _variance_derivatives(b: _Blocks, s: np.ndarray) -> np.ndarray:
    """First derivatives of ``log det V`` and ``F = X'V^-1X`` in pbkrtest's parameters
    ``s = (sigma2_k for the active terms..., sigma2_e)``, packed as (k, 1 + p*p).

    With ``V = s_e W`` and ``t_k = s_k / s_e``: ``d logdetV / d s_k = tr(W^-1 G_k) / s_e``,
    ``d logdetV / d s_e = tr(W^-1) / s_e`` with ``tr(W^-1) = n - sum_k t_k tr(W^-1 G_k)``;
    ``dF / d s_k = -Gram_k / s_e^2`` and ``dF / d s_e = -X'W^-2X / s_e^2`` with
    ``X'W^-2X = A - sum_k t_k Gram_k`` (both from ``W^-1 = W^-1 W W^-1``).
    """
    p, act = b.p, list(b.active)
    s_e = s[-1]
    t = s[:-1] / s_e
    tt = _terms(b, _full(b, t))
    glw = tt.grad_logdet_w[act]
    gram = tt.gram[act][:, :p, :p]
    d_logdet = np.r_[glw / s_e, (b.n - t @ glw) / s_e]
    d_f = np.concatenate([-gram, -(tt.mzz[:p, :p] - np.einsum("k,kpq->pq", t, gram))[None]]) / s_e**2
    return np.column_stack([d_logdet, d_f.reshape(len(s), -1)])


@dataclass(frozen=True)
class _KenwardRoger:
    """pbkrtest's ``vcovAdj``: the adjusted covariance of beta and its attributes ``P`` and ``W``."""

    vcov: np.ndarray  # PhiA
    p_mats: np.ndarray  # (k, p, p): P_k = -X'V^-1 G_k V^-1 X
    w: np.ndarray  # (k, k): 2 * inverse expected information of the variance parameters
    condition: float  # smallest |eigenvalue| of the expected information (pbkrtest's condi)


def _kenward_roger(b: _Blocks, s: np.ndarray, phi: np.ndarray) -> _KenwardRoger:
    """pbkrtest's ``vcovAdj_internal`` at the REML variances ``s``, with ``Phi = vcov(beta)``."""
    p, k = b.p, len(s)
    # Steps: relative for a positive variance; at a zero variance small enough that 1 + t * rows stays
    # near 1 for the term's largest level (the functions vary on the scale 1 / rows there).
    scale = np.r_[s[-1] / np.maximum(b.largest[list(b.active)], 1.0), s[-1]]
    step = 1e-3 * np.maximum(np.abs(s), scale)
    first = _variance_derivatives(b, s)
    second = _jacobian(lambda v: _variance_derivatives(b, v), s, step)  # (k, k, 1 + p*p)
    ktrace = -second[:, :, 0]
    ktrace = (ktrace + ktrace.T) / 2.0
    q = second[:, :, 1:].reshape(k, k, p, p) / 2.0  # Q_kl + Q_lk = d2F / ds_k ds_l: the symmetric part
    q = (q + np.swapaxes(q, 0, 1) + np.swapaxes(q, 2, 3) + np.swapaxes(np.swapaxes(q, 0, 1), 2, 3)) / 4.0
    pm = first[:, 1:].reshape(k, p, p)
    pm = (pm + np.swapaxes(pm, 1, 2)) / 2.0
    php = np.einsum("kab,bc,lcd->klad", pm, phi, pm)  # P_k Phi P_l
    info = ktrace - 2.0 * np.einsum("ab,klab->kl", phi, q) + np.einsum("klaa->kl", np.einsum("ab,klbc->klac", phi, php))
    info = (info + info.T) / 2.0
    condition = float(np.min(np.abs(np.linalg.eigvalsh(info))))
    w = 2.0 * (np.linalg.inv(info) if condition > KR_EIGEN_TOL else np.linalg.pinv(info))
    w = (w + w.T) / 2.0
    uu = np.einsum("kl,klab->ab", w, q - php)
    uu = (uu + uu.T) / 2.0
    return _KenwardRoger(vcov=phi + 2.0 * phi @ uu @ phi, p_mats=pm, w=w, condition=condition)


def kenward_roger_df(L: np.ndarray, vcov: np.ndarray, p_mats: np.ndarray, w: np.ndarray) -> float:
    """pbkrtest's ``Lb_ddf``: Kenward-Roger denominator df for the hypothesis ``L beta = 0`` (L: q x p
    or a vector), from the unadjusted ``vcov`` and ``vcovAdj``'s ``P`` and ``W``."""
    return _kr_aux(L, vcov, p_mats, w)[1]


def kenward_roger_f(L: np.ndarray, beta: np.ndarray, vcov: np.ndarray, vcov_adj: np.ndarray, p_mats: np.ndarray,
                    w: np.ndarray) -> dict[str, float]:
    """pbkrtest's ``KRmodcomp`` F test of ``L beta = 0`` (L: q x p of rank q), which lmerTest's
    ``anova(ddf = "Kenward-Roger")`` reports too: ``F = lambda * W / q`` with the Wald statistic ``W`` on
    the adjusted covariance ``vcov_adj``, the scaling ``lambda = ddf (1 - A2/q) / (ddf - 2)`` (1 when ddf is
    within 0.01 of 2) and the Kenward-Roger ddf."""
    lm = np.atleast_2d(np.asarray(L, dtype=float))
    q = lm.shape[0]
    a2, ddf = _kr_aux(lm, vcov, p_mats, w)
    scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - a2 / q) / (ddf - 2)
    lb = lm @ beta
    wald = float(lb @ np.linalg.solve(lm @ vcov_adj @ lm.T, lb))
    F = scaling * wald / q
    return {"F": F, "num_df": float(q), "den_df": ddf, "p_value": float(stats.f.sf(F, q, ddf)), "F_scaling": scaling}


def _kr_aux(L: np.ndarray, vcov: np.ndarray, p_mats: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """pbkrtest's ``.KR_adjust`` pieces: ``A2`` and the denominator df of ``L beta = 0``."""
    lm = np.atleast_2d(np.asarray(L, dtype=float))
    q = lm.shape[0]
    theta = lm.T @ np.linalg.solve(lm @ vcov @ lm.T, lm)
    u = (theta @ vcov) @ p_mats @ vcov  # ThetaV0 P_k V0, (k, p, p)
    tr = np.einsum("kaa->k", u)
    a1 = float(tr @ w @ tr)
    a2 = float(np.einsum("kl,kab,lba->", w, u, u))
    big_b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    v0 = 1 + c1 * big_b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * big_b, 1 - c3 * big_b
    ratio = 0.0 if v1 == 0 else (1 - a2 / q) / v1  # pbkrtest's .divZero
    rho = ratio**2 * v0 / v2 / q
    return a2, float(4 + (q + 2) / (q * rho - 1))


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


def _check_inputs(y: np.ndarray, x: np.ndarray, columns: tuple[str, ...], council: np.ndarray,
                  respondent: np.ndarray | None, wave: np.ndarray | None) -> None:
    """Refuse inputs lme4 would refuse, with a message that says what to fix."""
    n = len(y)
    if y.ndim != 1 or x.ndim != 2 or x.shape[0] != n or len(council) != n:
        raise DataError(f"lmm: y has shape {y.shape}, X {x.shape}, council {len(council)}; they must have n rows")
    for name, labels in (("respondent", respondent), ("wave", wave)):
        if labels is not None and len(labels) != n:
            raise DataError(f"lmm: {name} has {len(labels)} entries for {n} rows")
    if len(columns) != x.shape[1]:
        raise DataError(f"lmm: {len(columns)} column names for {x.shape[1]} columns of X")
    bad_y = int(np.sum(~np.isfinite(y)))
    bad_x = 0 if np.isfinite(x).all() else int(np.sum(~np.all(np.isfinite(x), axis=1)))  # count rows only if any
    bad_g = sum(int(np.sum(pd.isna(g))) for g in (council, respondent, wave) if g is not None)
    if bad_y or bad_x or bad_g:
        raise DataError(
            f"lmm: {bad_y} rows with a missing or infinite value, {bad_x} with a missing design entry, "
            f"{bad_g} missing council/respondent/wave labels; drop incomplete rows before fitting"
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


LEVEL_NAMES = {"council": "council", "council_wave": "council:wave", "respondent": "council:respondent"}


def _check_levels(b: _Blocks) -> None:
    """lme4's checks on grouping factors: at least 2 levels, and fewer levels than observations."""
    for name, k in b.levels.items():
        if k < 2 or k >= b.n:
            raise DataError(
                f"lmm: {k} {LEVEL_NAMES[name]} levels for {b.n} rows; a random intercept needs at least 2 levels "
                "and fewer levels than rows (drop the council:wave term when each council has one answer per "
                "wave, and the respondent term when respondents do not recur)"
            )


@dataclass(frozen=True, eq=False)
class LmmFit:
    """A fitted REML linear mixed model; every number matches lme4/lmerTest/pbkrtest for the same data."""

    terms: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray  # REML covariance of beta, as lme4's vcov()
    var_council: float
    var_council_wave: float | None  # None when the model has no council x wave term
    var_respondent: float | None  # None when the model has no respondent term
    var_residual: float
    theta: np.ndarray  # random-effect SDs relative to the residual SD, in the order of ``components``
    components: tuple[str, ...]  # the model's random terms (names from COMPONENTS)
    reml_criterion: float  # -2 * REML log-likelihood, as lme4's REMLcrit()
    n_obs: int
    n_groups: dict[str, int]
    converged: bool
    warnings: tuple[str, ...]
    ddf: Ddf  # the df method contrast() uses unless told otherwise
    vcov_varpar: np.ndarray = field(repr=False)  # covariance of (theta..., sigma), lmerTest's vcov_varpar
    vcov_jacobian: np.ndarray = field(repr=False)  # d vcov / d (theta..., sigma): (k, p, p), lmerTest's Jac_list
    vcov_kr: np.ndarray = field(repr=False)  # pbkrtest's vcovAdj: Kenward-Roger adjusted covariance of beta
    kr_p: np.ndarray = field(repr=False)  # vcovAdj's attribute P: (k, p, p)
    kr_w: np.ndarray = field(repr=False)  # vcovAdj's attribute W: (k, k)

    @property
    def sd_council(self) -> float:
        return float(np.sqrt(self.var_council))

    @property
    def sd_council_wave(self) -> float | None:
        return None if self.var_council_wave is None else float(np.sqrt(self.var_council_wave))

    @property
    def sd_respondent(self) -> float | None:
        return None if self.var_respondent is None else float(np.sqrt(self.var_respondent))

    @property
    def sd_residual(self) -> float:
        return float(np.sqrt(self.var_residual))

    @property
    def boundary(self) -> tuple[str, ...]:
        """The random terms whose variance is estimated at (or within lme4's tolerance of) zero."""
        return tuple(name for name, th in zip(self.components, self.theta) if th < SINGULAR_TOL)

    @property
    def singular(self) -> bool:
        """True for a boundary fit, as lme4's ``isSingular()``."""
        return bool(self.boundary)

    @property
    def formula_terms(self) -> str:
        """The random part of the lme4 formula, e.g. ``(1 | council_code) + (1 | council_code:wave)``."""
        return " + ".join(R_TERMS[c] for c in self.components)

    def contrast(self, L: np.ndarray, level: float = 0.95, ddf: Ddf | None = None) -> dict[str, float]:
        """Wald t-test of ``L @ beta = 0``, as lmerTest's ``contest1D(ddf = ...)``.

        Satterthwaite: ``df = 2 (L V L')^2 / (g' A g)``, with ``g`` the gradient of ``L V L'`` in
        ``(theta, sigma)`` and ``A`` their asymptotic covariance; the SE from ``vcov``. Kenward-Roger:
        the SE from pbkrtest's adjusted covariance and its ``Lb_ddf`` df.
        """
        method = ddf or self.ddf
        lv = np.asarray(L, dtype=float)
        if lv.shape != self.beta.shape:
            raise ValueError(f"contrast vector has shape {lv.shape}; expected {self.beta.shape} ({self.terms})")
        estimate = float(lv @ self.beta)
        if method == "kenward-roger":
            var = float(lv @ self.vcov_kr @ lv)
            df = kenward_roger_df(lv, self.vcov, self.kr_p, self.kr_w)
        elif method == "satterthwaite":
            var = float(lv @ self.vcov @ lv)
            grad = np.einsum("i,kij,j->k", lv, self.vcov_jacobian, lv)
            denom = float(grad @ self.vcov_varpar @ grad)
            df = 2.0 * var**2 / denom if denom > 0 else np.inf
        else:
            raise ValueError(f"ddf must be one of {', '.join(DDF_METHODS)}, not {method!r}")
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

    def summary_frame(self, level: float = 0.95, ddf: Ddf | None = None) -> pd.DataFrame:
        """Tidy table of the fixed effects: term, estimate, std_error, df, t, p_value, ci_low, ci_high."""
        rows = [{"term": term, **self.contrast(row, level, ddf)} for term, row in zip(self.terms, np.eye(len(self.terms)))]
        return pd.DataFrame(rows, columns=["term", "estimate", "std_error", "df", "t", "p_value", "ci_low", "ci_high"])


def _optimise(b: _Blocks) -> tuple[np.ndarray, bool, list[str]]:
    """Minimise the profiled REML deviance over the active variance ratios ``t >= 0``: L-BFGS-B, then
    projected Newton steps (Hessian from central differences of the exact gradient) to the optimum."""
    k = len(b.active)
    res = optimize.minimize(
        lambda t: _profiled_deviance(b, t),
        x0=np.ones(k),  # lme4's start: theta = 1
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * k,
        # moderate tolerances: the Newton steps below polish the optimum (each L-BFGS-B step costs ~1 ms)
        options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 1000},
    )
    t = np.asarray(res.x, dtype=float)
    dev, grad = _profiled_deviance(b, t)
    for _ in range(8):  # only when L-BFGS-B stopped on its function tolerance short of a flat gradient
        free = (t > 0) | (grad < 0)
        if not free.any() or np.max(np.abs(grad[free]) * np.maximum(t[free], 1.0)) < 1e-8:
            break
        h = 1e-5 * np.maximum(t, 1e-3)
        hess = _jacobian(lambda v: _profiled_deviance(b, v)[1], t, h)  # defined for t slightly below 0 too
        hf = (hess + hess.T)[np.ix_(free, free)] / 2.0
        if np.any(np.linalg.eigvalsh(hf) <= 0):
            break
        step = np.zeros(k)
        step[free] = -np.linalg.solve(hf, grad[free])
        candidate = np.maximum(t + step, 0.0)
        new_dev, new_grad = _profiled_deviance(b, candidate)
        if not new_dev <= dev + 1e-12 * abs(dev):
            break
        done = np.max(np.abs(candidate - t)) <= 1e-12 * max(1.0, float(np.max(t)))
        t, dev, grad = candidate, new_dev, new_grad
        if done:
            break
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
    wave: np.ndarray | None = None,
    ddf: Ddf = "satterthwaite",
) -> LmmFit:
    """Fit ``y ~ X + (1 | council) [+ (1 | council:wave)] [+ (1 | council:respondent)]`` by REML.

    ``X`` includes the intercept column; ``columns`` names its columns. Respondent ids and waves are
    nested within council (the same id in two councils is two respondents), as ``council:respondent``
    and ``council:wave`` in lme4; within a council, waves and respondents are crossed. ``wave`` gives
    each row's wave for the council x wave term (omit it for the model without that term). ``ddf``
    is the default df method of :meth:`LmmFit.contrast` (both are computed).
    Raises :class:`DataError` for missing values, fewer than two levels of a term, as many levels as
    rows, or a rank-deficient ``X``.
    """
    if ddf not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {', '.join(DDF_METHODS)}, not {ddf!r}")
    yv = np.asarray(y, dtype=float)
    xv = np.asarray(X, dtype=float)
    cv = np.asarray(council)
    rv = None if respondent is None else np.asarray(respondent)
    wv = None if wave is None else np.asarray(wave)
    names = tuple(columns)
    _check_inputs(yv, xv, names, cv, rv, wv)
    b = _block_stats(yv, xv, cv, rv, wv)
    _check_levels(b)
    t, converged, messages = _optimise(b)
    tt = _terms(b, _full(b, t))
    dev, _ = _profiled_deviance(b, t)
    dof = b.n - b.p
    sigma2 = tt.rss / dof
    a_inv = linalg.cho_solve((tt.a_chol, True), np.eye(b.p))
    theta = np.sqrt(t)
    sigma = np.sqrt(sigma2)
    vcov = sigma2 * a_inv

    vcov_varpar, hess_messages = _varpar_covariance(_hessian(b, np.r_[theta, sigma]), sigma)
    messages += hess_messages
    converged = converged and not any(m.startswith("failed") for m in hess_messages)
    jac = [sigma2 * 2.0 * th * a_inv @ g[: b.p, : b.p] @ a_inv for th, g in zip(theta, tt.gram[list(b.active)])]
    jac.append(2.0 * sigma * a_inv)
    try:
        kr = _kenward_roger(b, np.r_[t * sigma2, sigma2], vcov)
    except (DataError, np.linalg.LinAlgError) as err:  # as lmerTest: the fit stands, KR is unavailable
        k = len(b.active) + 1
        kr = _KenwardRoger(vcov=np.full_like(vcov, np.nan), p_mats=np.full((k, b.p, b.p), np.nan),
                           w=np.full((k, k), np.nan), condition=np.nan)
        messages.append(f"Kenward-Roger adjustment not available ({err})")

    components = tuple(COMPONENTS[k] for k in b.active)
    variances = dict(zip(components, t * sigma2))
    boundary = [LEVEL_NAMES[name] for name, th in zip(components, theta) if th < SINGULAR_TOL]
    if boundary:
        messages.append(f"boundary (singular) fit: {' and '.join(boundary)} variance estimated as (near) zero")
    return LmmFit(
        terms=names,
        beta=tt.beta,
        vcov=vcov,
        var_council=float(variances["council"]),
        var_council_wave=float(variances["council_wave"]) if "council_wave" in variances else None,
        var_respondent=float(variances["respondent"]) if "respondent" in variances else None,
        var_residual=float(sigma2),
        theta=theta,
        components=components,
        reml_criterion=dev,
        n_obs=b.n,
        n_groups=dict(b.levels),
        converged=converged,
        warnings=tuple(messages),
        ddf=ddf,
        vcov_varpar=vcov_varpar,
        vcov_jacobian=np.stack(jac),
        vcov_kr=kr.vcov,
        kr_p=kr.p_mats,
        kr_w=kr.w,
    )


def fit_summary(fit: LmmFit) -> dict[str, Any]:
    """JSON-ready record of a fit for ``models.json``: variance components, criterion, diagnostics."""
    return {
        "terms": list(fit.terms),
        "beta": fit.beta.tolist(),
        "random": fit.formula_terms,
        "var_council": fit.var_council,
        "var_council_wave": fit.var_council_wave,
        "var_respondent": fit.var_respondent,
        "var_residual": fit.var_residual,
        "reml_criterion": fit.reml_criterion,
        "n_obs": fit.n_obs,
        "n_groups": dict(fit.n_groups),
        "converged": fit.converged,
        "boundary": [LEVEL_NAMES[c] for c in fit.boundary],
        "ddf": DDF_NAMES[fit.ddf],
        "warnings": list(fit.warnings),
    }
