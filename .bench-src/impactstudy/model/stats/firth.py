"""Firth-penalised logistic regression with separation detection, for small binary-outcome models.

Why: the models of who stays in a study have few councils (or respondents) per covariate level, and a
level in which everyone (or no one) stayed is *separated*: the maximum-likelihood log odds ratio is
infinite, and an optimiser stops at a huge number with a huge standard error (14.9, CI −871 to 901)
that no reader should see. Firth's penalty (Jeffreys prior: ``l(b) + ½ log|I(b)|``) gives a finite,
less biased estimate whatever the data; its intervals come from the profile of the penalised
likelihood and its p-values from the penalised likelihood-ratio test, which stay accurate where Wald
intervals do not (Heinze & Schemper 2002).

What is reported, per term of the design:

- ``estimate``: the Firth-penalised log odds ratio (``firthmodels.FirthLogisticRegression``, the
  same estimator as R ``logistf::logistf`` and ``brglm2::brglmFit(type = "AS_mean")``);
- ``std_error``: ``sqrt(diag((X'WX)^-1))`` at the penalised estimate, as logistf and brglm2 report it
  (for reference only: the interval is not built from it);
- ``ci_low``/``ci_high``: profile penalised likelihood interval (R ``logistf(pl = TRUE)``);
- ``statistic``/``p_value``: penalised likelihood-ratio chi-square on 1 df and its p (R
  ``logistf``'s default p-values);
- ``warning``: ``"maximum-likelihood estimate infinite (separation) ..."`` for a term whose ordinary
  estimate does not exist (``firthmodels.detect_separation``, the linear-programming check of Konis
  2007, as R ``detectseparation``), and ``"not estimable: ..."`` for a term the data carry no
  information about (a covariate level nobody has, or a column that another determines), whose
  numbers are then NaN rather than an arbitrary value.

Terms carry labels a reader understands (``"status: Good (against Adequate)"``), never raw design
names such as ``const`` or ``status_Good``: see :func:`labelled_design`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from firthmodels import FirthLogisticRegression, detect_separation
from scipy import linalg, stats

from impactstudy.model.stats import tidy

INTERCEPT = "Intercept"
METHOD = "Firth-penalised logistic regression; profile penalised-likelihood CI; penalised likelihood-ratio p (as R logistf)"
NOT_ESTIMABLE = "not estimable"


@dataclass(frozen=True)
class LabelledDesign:
    """A design matrix whose columns are reader-facing term labels (no intercept column: the fit adds
    it), with the reference level chosen for each categorical covariate."""

    X: pd.DataFrame
    reference: Mapping[str, str] = field(default_factory=dict)


def labelled_design(frame: pd.DataFrame, categorical: Sequence[str] = (), numeric: Mapping[str, str] | None = None,
                    names: Mapping[str, str] | None = None) -> LabelledDesign:
    """Treatment-coded dummies for ``categorical`` columns and the ``numeric`` ones as they are.

    Each categorical's reference is its most common level (ties: the first in sorted order), so the
    comparisons rest on the largest group and a small level is compared with it. A dummy's label is
    ``"<name>: <level> (against <reference>)"``; ``names`` gives a covariate's reader-facing name
    (default: the column name with underscores as spaces), ``numeric`` maps a column to its label.
    """
    names = dict(names or {})
    columns: dict[str, pd.Series] = {}
    reference: dict[str, str] = {}
    for column in categorical:
        values = frame[column].astype("string")
        counts = values.value_counts(dropna=True)
        if counts.empty:
            continue
        ref = str(sorted(counts.index[counts == counts.max()])[0])
        reference[column] = ref
        name = names.get(column, column.replace("_", " "))
        for level in sorted(str(v) for v in counts.index if str(v) != ref):
            columns[f"{name}: {level} (against {ref})"] = (values == level).fillna(False).astype(float)
    for column, label in (numeric or {}).items():
        columns[label] = frame[column].astype(float)
    X = pd.DataFrame(columns, index=frame.index)
    return LabelledDesign(X, reference)


def _informative(X: np.ndarray, names: list[str]) -> tuple[list[int], dict[str, str]]:
    """Columns to fit (with the intercept) and, for the others, why they carry no information.

    A column that never varies adds nothing beyond the intercept; a column that the intercept and the
    columns before it determine (pivoted QR) is aliased. Both are "not estimable", as R's ``glm``
    reports NA for an aliased coefficient.
    """
    keep: list[int] = []
    reasons: dict[str, str] = {}
    for j, name in enumerate(names):
        column = X[:, j]
        if np.ptp(column) == 0:
            reasons[name] = f"{NOT_ESTIMABLE}: every unit has the same value, so the data say nothing about it"
            continue
        basis = np.column_stack([np.ones(len(X)), X[:, keep + [j]]])
        if np.linalg.matrix_rank(basis) < basis.shape[1]:
            reasons[name] = f"{NOT_ESTIMABLE}: determined by the other terms (aliased)"
            continue
        keep.append(j)
    return keep, reasons


@dataclass(frozen=True)
class FirthResult:
    """A fitted Firth model: its tidy coefficient rows (intercept first) and what the report needs."""

    table: pd.DataFrame  # term, estimate, std_error, statistic, p_value, ci_low, ci_high, warning
    fitted: np.ndarray  # fitted probabilities, one per row of the input
    separated: tuple[str, ...]  # terms whose maximum-likelihood estimate is infinite
    converged: bool
    warnings: tuple[str, ...]
    method: str = METHOD


def _separation(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per column of ``[X, intercept]``: +1/-1 where the ML estimate is infinite, 0 where finite."""
    try:
        return np.asarray(detect_separation(X, y).directions, dtype=int)
    except (linalg.LinAlgError, ValueError):
        return np.zeros(X.shape[1] + 1, dtype=int)


def _standard_errors(X: np.ndarray, beta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sqrt(diag((X'WX)^-1))`` at the penalised estimate, as R logistf and brglm2 report them
    (firthmodels' own ``bse_`` inverts a different matrix)."""
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    info = (X * (weights * p * (1.0 - p))[:, None]).T @ X
    try:
        return np.sqrt(np.diag(np.linalg.inv(info)))
    except np.linalg.LinAlgError:
        return np.full(len(beta), np.nan)


def firth_logit(y: np.ndarray | pd.Series, X: pd.DataFrame, conf_level: float = 0.95,
                weights: np.ndarray | None = None) -> FirthResult:
    """Firth logistic regression of 0/1 ``y`` on the labelled columns of ``X`` plus an intercept.

    Raises ValueError only for a caller's mistake (``y`` not 0/1, lengths differ); data that defeat
    the model (one outcome class, nothing left to fit) give rows of NaN with the reason.
    """
    y = np.asarray(y, dtype=float)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} rows, X has {len(X)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("the outcome of a logistic model must be 0/1")
    names = [str(c) for c in X.columns]
    values = X.to_numpy(dtype=float)
    terms = [INTERCEPT, *names]
    out = pd.DataFrame({"term": terms, "estimate": np.nan, "std_error": np.nan, "statistic": np.nan,
                        "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "warning": ""})
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if len(np.unique(y[w > 0])) < 2:
        out["warning"] = f"{NOT_ESTIMABLE}: every unit has the same outcome"
        return FirthResult(out, np.full(len(y), np.nan), (), False, (out["warning"].iloc[0],))
    keep, reasons = _informative(values, names)
    Xk = values[:, keep]
    kept = [names[j] for j in keep]
    directions = _separation(Xk, y) if weights is None else np.zeros(len(keep) + 1, dtype=int)
    with tidy.captured_warnings() as caught:
        model = FirthLogisticRegression(backend="numpy", max_iter=100, gtol=1e-7, xtol=1e-7)
        try:
            model.fit(Xk, y, sample_weight=w)
            model.lrt()
            ci = model.conf_int(alpha=1 - conf_level, method="pl", max_iter=200, tol=1e-8)
            fitted = model.predict_proba(Xk)[:, 1]
        except (linalg.LinAlgError, ValueError) as err:
            caught.append(f"{type(err).__name__}: {err}")
            model = None
    problems = tuple(dict.fromkeys(caught))
    if model is None:
        out["warning"] = tidy.join_warnings("the penalised model could not be fitted", *problems)
        return FirthResult(out, np.full(len(y), np.nan), (), False, problems)
    # firthmodels orders [coefficients..., intercept]; ours is intercept first
    order = [len(keep), *range(len(keep))]
    beta = np.r_[model.coef_, model.intercept_][order]
    se = _standard_errors(np.column_stack([np.ones(len(y)), Xk]), beta, w)
    p = np.asarray(model.lrt_pvalues_)[order]
    ci = np.asarray(ci)[order]
    direction = directions[order]
    rows = {INTERCEPT: 0, **{name: k + 1 for k, name in enumerate(kept)}}
    separated = []
    for term in terms:
        at = out.index[out["term"] == term][0]
        if term in reasons:
            out.loc[at, "warning"] = reasons[term]
            continue
        k = rows[term]
        out.loc[at, ["estimate", "std_error", "p_value", "ci_low", "ci_high"]] = [beta[k], se[k], p[k], ci[k, 0], ci[k, 1]]
        out.loc[at, "statistic"] = float(stats.chi2.isf(p[k], 1)) if np.isfinite(p[k]) else np.nan
        notes = []
        if direction[k] != 0:
            separated.append(term)
            notes.append("maximum-likelihood estimate infinite (separation: the outcome is the same for every unit "
                         "on one side); the penalised estimate is finite and its interval wide")
        if not np.isfinite(ci[k]).all():
            notes.append("a profile-likelihood interval bound could not be found")
        out.loc[at, "warning"] = tidy.join_warnings(*notes)
    if not model.converged_:
        problems = (*problems, "the penalised fit did not converge")
    return FirthResult(out, fitted, tuple(separated), bool(model.converged_), problems)


def separation_note(result: FirthResult, unit: str = "council") -> str:
    """One sentence for a reader when some terms were separated, else ''."""
    if not result.separated:
        return ""
    terms = [t for t in result.separated if t != INTERCEPT] or list(result.separated)
    return (f"In {', '.join(terms)} every {unit} (or none) had the same outcome, so the ordinary estimate is "
            "infinite; the estimates shown are Firth-penalised, which stay finite, with profile-likelihood intervals.")


__all__ = ["FirthResult", "LabelledDesign", "firth_logit", "labelled_design", "separation_note"]

