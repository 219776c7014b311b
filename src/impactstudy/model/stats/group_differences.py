"""Do groups of councils change by different amounts? The difference in change, the wave x group
interaction test, and the change adjusted for where each council started.

Comparing two groups' intervals for overlap is not a test: two 95% intervals can overlap while the
difference between the groups is clearly non-zero. What answers the question is the difference in
change itself, ``(later - earlier in group A) - (later - earlier in the reference group)``, with its
own interval from the same model (:func:`difference_rows`), and the joint test that the change is the
same in every group (:func:`joint_test`: the wave x group interaction, F with Satterthwaite
denominator df as R lmerTest's ``contestMD``/``anova``).

Regression to the mean: a group that starts low tends to rise at the next measurement even if nothing
acts on it, because part of a low score is chance that does not repeat. A group that starts lower and
gains more is what regression to the mean predicts, so :func:`baseline_adjusted_rows` also estimates
the difference in change adjusted for each council's own starting mean (a council-level ANCOVA:
``change ~ group + earlier mean``, ordinary least squares, t on ``K - p`` df; R ``lm``). If the
adjusted difference is much smaller than the unadjusted one, the group's larger gain may be mostly
regression to the mean.

The reference group is the one with most councils (ties: first in sorted order), so each comparison
rests on the largest group. Group labels read ``status=Notice to Improve - status=Adequate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from impactstudy.model.stats import tidy
from impactstudy.model.stats.lmm import kenward_roger_f
from impactstudy.model.stats.paired import council_means
from impactstudy.model.stats.wave_design import Contrast, WaveDesign, group_label

ANCOVA = "council-level ANCOVA (change ~ group + earlier council mean), OLS, t reference df=K-p"


def reference_level(frame: pd.DataFrame, group: str) -> str | None:
    """The level of ``group`` with most councils (ties: first sorted); None without any."""
    sizes = frame.groupby(pd.Series(tidy.as_text(frame[group]), index=frame.index), observed=True)["council_code"].nunique()
    if sizes.empty:
        return None
    return str(sorted(sizes.index[sizes == sizes.max()])[0])


def difference_label(group: str, level: object, reference: str) -> str:
    """``status=A - status=B``: the ``group`` value of a difference-in-change row."""
    return f"{group_label(group, level)} - {group_label(group, reference)}"


def difference_rows(model: str, sample: tidy.Sample, contrasts: Sequence[Contrast], *, correction: str,
                    design: WaveDesign | None, test: tidy.Test | None, warning: str = "") -> pd.DataFrame:
    """Difference in change between each group level and the reference level, for each contrast, from
    a fitted wave x group model (``test`` evaluates a contrast vector over ``design``'s columns).
    Empty without a group or with one level."""
    group = sample.group
    if group is None or sample.frame.empty:
        return tidy.to_frame([])
    reference = reference_level(sample.frame, group)
    counts = sample.counts
    rows = []
    for _, level in sample.levels:
        if reference is None or str(level) == reference:
            continue
        label = difference_label(group, level, reference)
        for later, earlier in contrasts:
            n = [counts(lv, [later, earlier]) for lv in (level, reference)]
            total = {key: n[0][key] + n[1][key] for key in ("n_obs", "n_councils", "n_councils_both")}
            vectors = [design.contrast(later, earlier, lv) for lv in (str(level), reference)] if design is not None else [None]
            if test is None or any(v is None for v in vectors):
                # a fitted model's own warning (a boundary fit) goes with the reason, never instead of it
                empty = "not estimable: a group has no answers at one of the waves"
                reason = (warning or empty) if test is None else tidy.join_warnings(empty, warning)
                rows.append(tidy.make_row(model, later, earlier, label, correction=correction, warning=reason, **total))
                continue
            values = {k: v for k, v in test(vectors[0] - vectors[1]).items() if k in tidy.COLUMNS}
            values["warning"] = tidy.join_warnings(warning, str(values.get("warning", "")))
            rows.append(tidy.make_row(model, later, earlier, label, correction=correction, **total, **values))
    return tidy.to_frame(rows)


def interaction_matrix(design: WaveDesign) -> np.ndarray:
    """Rows picking the design's wave x group interaction columns (none without a group)."""
    picks = [j for j, name in enumerate(design.columns) if name.startswith("wave[") and ":" in name]
    return np.eye(len(design.columns))[picks]


def joint_test(fit: Any, L: np.ndarray, ddf: str = "satterthwaite") -> dict[str, float]:
    """F test of ``L beta = 0`` (several rows), as lmerTest's ``contestMD`` (the ``anova()`` table of an
    ``lmer`` fit): ``fit`` is an :class:`impactstudy.model.stats.lmm.LmmFit`, ``ddf`` its df method.

    Kenward-Roger: pbkrtest's ``KRmodcomp`` (= lmerTest's ``anova(ddf = "Kenward-Roger")``), the scaled F
    on the adjusted covariance (:func:`impactstudy.model.stats.lmm.kenward_roger_f`), on the hypothesis
    rotated as below (the same hypothesis, of full rank). Satterthwaite:

    The hypothesis is rotated to the eigenvectors of ``L V L'``; each rotated row has a 1-df t statistic
    and Satterthwaite df ``nu_m``; ``F = sum t_m^2 / q`` and, with ``E = sum nu_m / (nu_m - 2)`` over
    ``nu_m > 2``, the denominator df is ``2E / (E - q)`` (lmerTest's rule, including its fallbacks).
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = L.shape[0]
    if q == 0:
        return {"F": np.nan, "num_df": 0.0, "den_df": np.nan, "p_value": np.nan}
    VL = L @ fit.vcov @ L.T
    values, vectors = np.linalg.eigh(VL)
    keep = values > 1e-8 * max(values.max(initial=0.0), 1e-300)
    values, vectors = values[keep], vectors[:, keep]
    q = int(keep.sum())
    if q == 0:
        return {"F": np.nan, "num_df": 0.0, "den_df": np.nan, "p_value": np.nan}
    PtL = vectors.T @ L
    if ddf == "kenward-roger":
        return {"method": ddf, **kenward_roger_f(PtL, fit.beta, fit.vcov, fit.vcov_kr, fit.kr_p, fit.kr_w)}
    t2 = (PtL @ fit.beta) ** 2 / values
    nu = []
    for row, var in zip(PtL, values):
        grad = np.einsum("i,kij,j->k", row, fit.vcov_jacobian, row)
        denom = float(grad @ fit.vcov_varpar @ grad)
        nu.append(2.0 * var ** 2 / denom if denom > 0 else np.inf)
    nu = np.asarray(nu)
    F = float(t2.sum() / q)
    if q == 1:
        den = float(nu[0])
    else:
        big = nu > 2
        E = float(np.sum(nu[big] / (nu[big] - 2)))
        den = 2 * E / (E - q) if E > q else float(max(nu.min(), 1.0))  # lmerTest: fall back to the smallest nu
    p = float(stats.f.sf(F, q, den)) if np.isfinite(den) else float(stats.chi2.sf(F * q, q))
    return {"method": "satterthwaite", "F": F, "num_df": float(q), "den_df": den, "p_value": p}


def baseline_adjusted_rows(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str], contrasts: Sequence[Contrast],
                           group: str, conf_level: float = 0.95) -> pd.DataFrame:
    """Difference in change between each group level and the reference, adjusted for the council's mean
    at the earlier wave (model ``change_adjusted``): council means of councils answering both waves,
    ``change ~ C(group) + earlier mean`` by ordinary least squares."""
    sample = tidy.sample(data, wave_order, group)
    if sample.frame.empty:
        return tidy.to_frame([])
    reference = reference_level(sample.frame, group)
    means = council_means(sample, sample.waves, group)
    wide = means.pivot_table(index=["council_code", group], columns="wave", values="mean", observed=True)
    rows = []
    levels = [lv for _, lv in sample.levels if str(lv) != reference]
    for later, earlier in contrasts:
        have = [w for w in (later, earlier) if w in wide.columns]
        both = wide.dropna(subset=have).reset_index() if len(have) == 2 else wide.iloc[:0].reset_index()
        change = (both[later] - both[earlier]).to_numpy(float) if len(have) == 2 else np.array([])
        level_of = both[group].astype(str).to_numpy() if len(both) else np.array([], dtype=str)
        present = [str(lv) for lv in levels if np.any(level_of == str(lv))]
        X = np.column_stack([np.ones(len(both))] + [(level_of == lv).astype(float) for lv in present]
                            + [both[earlier].to_numpy(float) if len(have) == 2 else np.array([])])
        k = X.shape[1]
        fit = None
        if len(change) > k and np.any(level_of == reference) and np.linalg.matrix_rank(X) == k:
            beta, *_ = np.linalg.lstsq(X, change, rcond=None)
            resid = change - X @ beta
            df = len(change) - k
            cov = np.linalg.inv(X.T @ X) * float(resid @ resid) / df
            fit = tidy.WaldFit(beta, cov, float(df), conf_level)
        for level in levels:
            label = difference_label(group, level, reference)
            n_both = int(np.sum(np.isin(level_of, [str(level), reference])))  # councils answering both waves
            counts = {"n_obs": n_both, "n_councils": n_both, "n_councils_both": n_both}
            if fit is None or str(level) not in present:
                rows.append(tidy.make_row("change_adjusted", later, earlier, label, correction=ANCOVA, **counts,
                                          warning="not estimable: too few councils answering both waves in the groups"))
                continue
            lvec = np.zeros(k)
            lvec[1 + present.index(str(level))] = 1.0
            values = {c: v for c, v in fit.test(lvec).items() if c in tidy.COLUMNS}
            rows.append(tidy.make_row("change_adjusted", later, earlier, label, correction=ANCOVA, **counts, **values))
    return tidy.to_frame(rows)


__all__ = ["ANCOVA", "baseline_adjusted_rows", "difference_label", "difference_rows", "interaction_matrix",
           "joint_test", "reference_level"]
