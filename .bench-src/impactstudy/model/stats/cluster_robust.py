"""Cluster-robust covariance for (weighted) least squares with few clusters: CR2 and CR3, with
Bell–McCaffrey (Satterthwaite) degrees of freedom for any linear contrast.

Why: with few councils the plain sandwich (CR0/CR1) is biased downwards and a normal or ``G - 1``
reference over-rejects. CR2, the "bias-reduced linearisation" of Bell & McCaffrey (2002), adjusts
each cluster's residuals so the estimator is exactly unbiased when the working model (independent
errors of equal variance) holds; its Satterthwaite degrees of freedom (Bell & McCaffrey 2002;
Pustejovsky & Tipton 2018) reflect how many clusters really inform a contrast, which can be far fewer
than ``G - 1`` (a contrast within one group level of three councils gets about 2). CR3 is the
``(I - H_jj)^{-1}`` adjustment that approximates the leave-one-cluster-out jackknife (the linear-model
counterpart of Mancl & DeRouen's bias-reduced GEE covariance).

Conventions are R clubSandwich's (``vcovCR(lm_fit, cluster, type = "CR2")`` and ``coef_test(...,
test = "Satterthwaite")`` / ``linear_contrast``), checked in ``tests/model/test_cluster_robust.py`` against
``tests/reference/cluster_robust_reference.R``:

- ``weights`` are analytic weights of a WLS fit, ``beta = (X'WX)^-1 X'Wy``; as clubSandwich does for
  a weighted ``lm``, the working model for the CR2 adjustment is independent errors of constant
  variance (target ``Theta = I``), and unweighted fits are the special case ``W = I``;
- the adjustment matrix of cluster j is ``A_j = G_j^{-1/2}`` with ``G_j = [(I - H)(I - H)']_jj`` and
  ``H = X (X'WX)^-1 X'W`` (for OLS ``G_j = I - H_jj``); eigenvalues below 1e-12 are dropped (the
  symmetric pseudo-inverse square root), which is what makes absorbed fixed effects work;
- no further factor: ``V = M (sum_j X_j'W_j A_j e_j e_j' A_j' W_j X_j) M`` with ``M = (X'WX)^-1``.

Cost: ``G_j`` is the identity plus a term of rank at most ``2p`` (``p`` columns), so ``A_j`` is applied
through a thin orthonormal basis of ``[X_j, W_j X_j]`` instead of an ``n_j x n_j`` eigendecomposition:
linear in the number of rows, so a council of 1,000 answers costs what 1,000 rows of ``X`` cost.

Use: :func:`cr2_vcov` (or :func:`cr3_vcov`) returns a :class:`ClusterRobust`; its ``vcov`` is the
covariance, ``bm_df(L)`` the degrees of freedom for the contrast ``L @ beta`` and ``test(L, beta)``
the estimate, standard error, t interval and p-value. :func:`wls` fits the coefficients and residuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from impactstudy.model.stats.tidy import interval

EIGEN_TOL = 1e-12  # clubSandwich's matrix_power: eigenvalues at or below 10^-12 are taken as zero
TYPES = ("CR2", "CR3")


@dataclass(frozen=True, eq=False)
class ClusterRobust:
    """A cluster-robust covariance and what its Bell–McCaffrey degrees of freedom need.

    ``vcov`` is the (p x p) covariance of the coefficients. ``T[j]`` is ``A_j' W_j X_j M`` for cluster
    j (its rows x p), from which ``vcov = sum_j T_j' e_j e_j' T_j``; ``TT``, ``XT``, ``XWT`` are its
    per-cluster p x p products and ``M``, ``Omega`` the bread ``(X'WX)^-1`` and ``M X'W^2X M`` (weights
    normalised to mean one, which leaves every result unchanged).
    """

    type: str
    vcov: np.ndarray
    n_clusters: int
    M: np.ndarray
    Omega: np.ndarray
    TT: np.ndarray  # (clusters, p, p)
    XT: np.ndarray  # (clusters, p, p)
    XWT: np.ndarray  # (clusters, p, p)

    def bm_df(self, L: Sequence[float] | np.ndarray) -> float:
        """Bell–McCaffrey (Satterthwaite) degrees of freedom for ``L @ beta`` (clubSandwich's
        ``coef_test(test = "Satterthwaite")`` for a coefficient, ``linear_contrast`` for a contrast).

        Under the working model ``c' V c`` is a quadratic form ``sum_jk a_j' P_jk a_k`` in normal
        errors; the df is ``2 E^2 / Var = tr(P)^2 / sum(P^2)``, with ``P_jk = a_j'[(I - H)(I - H)']_jk a_k``
        and ``a_j = T_j c``.
        """
        c = np.asarray(L, dtype=float)
        tc = self.TT @ c  # (J, p): T_j'T_j c
        xt = self.XT @ c  # (J, p): X_j'a_j
        xwt = self.XWT @ c  # (J, p): X_j'W_j a_j
        cross = xt @ self.M @ xwt.T
        P = xt @ self.Omega @ xt.T - cross - cross.T
        P[np.diag_indices_from(P)] += tc @ c
        total = float(np.sum(P * P))
        return float(np.trace(P) ** 2 / total) if total > 0 else float("nan")

    def test(self, L: Sequence[float] | np.ndarray, beta: np.ndarray, conf_level: float = 0.95) -> dict[str, float]:
        """``L @ beta`` with its cluster-robust standard error, a t interval and p-value on the
        Bell–McCaffrey df (NaN when the contrast's variance is not positive)."""
        c = np.asarray(L, dtype=float)
        est = float(c @ beta)
        var = float(c @ self.vcov @ c)
        nan = float("nan")
        if not var > 0:
            return {"estimate": est, "std_error": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "df": nan}
        df = self.bm_df(c)
        se = float(np.sqrt(var))
        lo, hi, p = interval(est, se, df, conf_level)
        return {"estimate": est, "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p, "df": df}


def wls(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residuals of the (weighted) least-squares fit of ``y`` on ``X`` (full column rank)."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    return beta, y - X @ beta


def cr2_vcov(X: np.ndarray, resid: np.ndarray, clusters: np.ndarray, weights: np.ndarray | None = None) -> ClusterRobust:
    """CR2 cluster-robust covariance of a (weighted) least-squares fit, as clubSandwich's
    ``vcovCR(fit, cluster, type = "CR2")`` (see the module docstring for the conventions).

    ``X`` is the (n x p, full column rank) design, ``resid`` the fit's residuals, ``clusters`` any
    labels or codes (n), ``weights`` the fit's analytic weights (n, positive) or None.
    """
    return cluster_robust_vcov(X, resid, clusters, weights, "CR2")


def cr3_vcov(X: np.ndarray, resid: np.ndarray, clusters: np.ndarray, weights: np.ndarray | None = None) -> ClusterRobust:
    """CR3 covariance, ``A_j = (I - H_jj)^{-1}`` (clubSandwich ``type = "CR3"``: the jackknife-like,
    Mancl–DeRouen-type adjustment; more conservative than CR2)."""
    return cluster_robust_vcov(X, resid, clusters, weights, "CR3")


def cluster_robust_vcov(X: np.ndarray, resid: np.ndarray, clusters: np.ndarray, weights: np.ndarray | None = None,
                        type: str = "CR2") -> ClusterRobust:
    """CR2 or CR3 (``type``) covariance of a (weighted) least-squares fit; see :func:`cr2_vcov`."""
    if type not in TYPES:
        raise ValueError(f"unknown cluster-robust type {type!r}; use one of {TYPES}")
    X = np.asarray(X, dtype=float)
    e = np.asarray(resid, dtype=float)
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if np.any(~(w > 0)):
        raise ValueError("cluster-robust covariance needs positive weights (drop rows of weight zero first)")
    w = w / w.mean()  # clubSandwich's w_scale; every result is invariant to it
    codes, _ = _cluster_codes(clusters)
    n_clusters = int(codes.max(initial=-1)) + 1
    if n_clusters < 2:
        raise ValueError("cluster-robust covariance needs at least two clusters")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_clusters + 1))
    M = np.linalg.inv((X * w[:, None]).T @ X)
    Omega = M @ ((X * (w * w)[:, None]).T @ X) @ M
    K = np.block([[Omega, -M], [-M, np.zeros((p, p))]])  # G_j = I + Z_j K Z_j', Z_j = [X_j, W_j X_j]
    meat = np.zeros((p, p))
    TT, XT, XWT = (np.empty((n_clusters, p, p)) for _ in range(3))
    for j in range(n_clusters):
        rows = order[bounds[j]:bounds[j + 1]]
        Xj, wj, ej = X[rows], w[rows], e[rows]
        V = (Xj * wj[:, None]) @ M  # W_j X_j M
        if type == "CR2":
            Tj = _cr2_apply(Xj, wj, K, V)
        else:
            Tj = _cr3_apply_transpose(Xj, wj, M, V)
        u = Tj.T @ ej
        meat += np.outer(u, u)
        TT[j], XT[j], XWT[j] = Tj.T @ Tj, Xj.T @ Tj, (Xj * wj[:, None]).T @ Tj
    return ClusterRobust(type=type, vcov=meat, n_clusters=n_clusters, M=M, Omega=Omega, TT=TT, XT=XT, XWT=XWT)


def _cr2_apply(Xj: np.ndarray, wj: np.ndarray, K: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``G_j^{-1/2} V`` with ``G_j = I + Z K Z'`` (``Z = [X_j, W_j X_j]``), via an orthonormal basis Q of
    Z's columns: ``G_j = I + Q S Q' - Q Q'`` with ``S = I + R K R'``, so ``f(G_j) = I + Q (f(S) - I) Q'``."""
    Z = np.hstack([Xj, Xj * wj[:, None]])
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(Z.shape) * np.finfo(float).eps
    Q, R = U[:, keep], s[keep, None] * Vt[keep]  # Z = Q R
    S = np.eye(len(R)) + R @ K @ R.T
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    power = np.zeros_like(vals)
    positive = vals > EIGEN_TOL
    power[positive] = vals[positive] ** -0.5
    F = (vecs * power) @ vecs.T - np.eye(len(R))
    return V + Q @ (F @ (Q.T @ V))


def _cr3_apply_transpose(Xj: np.ndarray, wj: np.ndarray, M: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``(I - H_jj)^{-T} V`` with ``H_jj = X_j M X_j' W_j``: by Woodbury,
    ``(I - W_j X_j M X_j')^{-1} = I + W_j X_j (I - M X_j'W_j X_j)^{-1} M X_j'``."""
    WX = Xj * wj[:, None]
    inner = np.linalg.pinv(np.eye(M.shape[0]) - M @ (WX.T @ Xj))
    return V + WX @ (inner @ (M @ (Xj.T @ V)))


def _cluster_codes(clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(clusters)
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.ravel(), uniques


__all__ = ["ClusterRobust", "cluster_robust_vcov", "cr2_vcov", "cr3_vcov", "wls"]
