"""Council-level models for few councils: the rows ``cr2``, ``cr2_council``, ``sign_flip`` and
``wild_bootstrap`` of ``tables/contrasts.csv``.

Why: below ``[models] few_councils`` the council, not the respondent, is the unit the conclusions can
rest on. A respondent-level model (the LMM, the GEE) replicates a change by respondents; when councils
change by different amounts, and with six councils, its intervals are too narrow. These models treat
the councils as the independent units and say how far that many councils can take a test:

- ``cr2``: least squares of the answers on ``wave [* group]`` (the respondent-weighted mean change, as
  the LMM and GEE estimate), CR2 cluster-robust errors by council with Bell–McCaffrey degrees of
  freedom (:mod:`impactstudy.model.stats.cluster_robust`, = R clubSandwich);
- ``cr2_council``: least squares of the council x wave mean answers on ``wave [* group]`` plus council
  fixed effects, CR2 by council with Bell–McCaffrey df: the council-weighted mean change from a model
  (every council counts once, whatever its number of respondents; the fixed effects compare each
  council with itself, so councils missing a wave do not shift the waves' means). With two waves and
  every council at both it is exactly the paired t test; with more waves it uses every wave of each
  council;
- ``sign_flip``: the exact sign-flip permutation test on council changes (the councils at both waves;
  council-weighted mean change), with Hartigan's interval, which inverts it
  (:func:`impactstudy.model.stats.permutation.sign_flip`);
- ``wild_bootstrap``: the restricted wild cluster bootstrap with Webb weights of the ``cr2`` model's
  contrast (respondent-weighted), every weight vector enumerated with up to 7 councils; its interval
  inverts the same test (every value the bootstrap test of that value does not reject).

Every row has ``min_p_value``, the smallest p-value its test can reach with that many councils (zero
for the t references of ``cr2`` and ``cr2_council``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.errors import DataError
from impactstudy.model.stats import paired, permutation, tidy
from impactstudy.model.stats.cluster_robust import cr2_vcov, wls
from impactstudy.model.stats.wave_design import WaveDesign, design_matrix

CR2 = "CR2 cluster-robust SE by council, Bell-McCaffrey df (as clubSandwich)"
CR2_COUNCIL = "council x wave means with council fixed effects; CR2 SE by council, Bell-McCaffrey df"
SIGN_FLIP = "exact sign-flip permutation test on council changes; Hartigan subset-mean interval"
WILD = "wild cluster bootstrap (restricted, Webb weights, CRV1 t)"
MIN_COUNCILS = 3  # a paired or council-level test on fewer councils is not estimable


def fit_cr2(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str], contrasts: Sequence[tidy.Contrast],
            group: str | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """``cr2`` rows: OLS of the answers on the wave (x group) design, CR2 by council, Bell–McCaffrey df."""
    sample, design, y, council, failed = _answers("cr2", CR2, data, wave_order, contrasts, group)
    if failed is not None:
        return failed
    beta, resid = wls(design.X, y)
    vcov = cr2_vcov(design.X, resid, council)
    return tidy.wald_rows("cr2", sample, contrasts, correction=CR2, design=design,
                          test=lambda L: vcov.test(L, beta, conf_level), cell_problem=_too_few(sample))


def fit_cr2_council(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
                    contrasts: Sequence[tidy.Contrast], group: str | None = None,
                    conf_level: float = 0.95) -> pd.DataFrame:
    """``cr2_council`` rows: council x wave means on the wave (x group) design plus council fixed
    effects, CR2 by council, Bell–McCaffrey df; ``n_obs`` and ``n_councils`` count the answers and councils
    at the two waves, as the other models' rows."""
    sample = tidy.sample(data, wave_order, group)
    means = paired.council_means(sample, sample.waves, group)
    design, reason = _design(tidy.sample(means.rename(columns={"mean": "value"}), sample.waves, group))
    if design is None:
        return _failed("cr2_council", sample, contrasts, reason, CR2_COUNCIL)
    council = means["council_code"].cat.codes.to_numpy()
    n_councils = int(council.max(initial=-1)) + 1
    # the council dummies come before the wave terms, so a wave effect no council shows within itself is
    # aliased (dropped, not estimable) rather than estimated between councils; group main effects (a
    # council-level covariate) are aliased by the dummies and dropped
    full = np.hstack([design.X[:, :1], np.eye(n_councils)[council][:, 1:], design.X[:, 1:]])
    kept = _independent(full)
    X = full[:, kept]
    beta, resid = wls(X, means["mean"].to_numpy(float))
    vcov = cr2_vcov(X, resid, council)

    def test(L: np.ndarray) -> dict[str, object]:
        lvec = np.concatenate([L[:1], np.zeros(n_councils - 1), L[1:]])
        if np.any(lvec[~kept] != 0):
            return {"warning": "the contrast is not estimable within councils (no council seen at both waves)"}
        return vcov.test(lvec[kept], beta, conf_level)

    return tidy.wald_rows("cr2_council", sample, contrasts, correction=CR2_COUNCIL, design=design, test=test,
                          cell_problem=_too_few(sample))


def sign_flip_rows(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
                   contrasts: Sequence[tidy.Contrast], group: str | None = None,
                   conf_level: float = 0.95) -> pd.DataFrame:
    """``sign_flip`` rows on council changes (the councils observed at both waves of each contrast)."""

    def test(diff: np.ndarray) -> dict[str, object]:
        res = permutation.sign_flip(diff, conf_level)
        return {"estimate": res.estimate, "ci_low": res.ci_low, "ci_high": res.ci_high, "p_value": res.p_value,
                "min_p_value": res.min_p_value, "correction": f"{SIGN_FLIP}; {res.method}", "warning": res.warning}

    return paired.paired_rows("sign_flip", SIGN_FLIP, data, wave_order, contrasts, group, test)


def wild_bootstrap_rows(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
                        contrasts: Sequence[tidy.Contrast], group: str | None = None,
                        conf_level: float = 0.95) -> pd.DataFrame:
    """``wild_bootstrap`` rows: the ``cr2`` model's contrasts tested by the restricted wild cluster
    bootstrap with Webb weights (p-value and its floor), with the interval that inverts the test."""
    sample, design, y, council, failed = _answers("wild_bootstrap", WILD, data, wave_order, contrasts, group)
    if failed is not None:
        return failed

    def test(L: np.ndarray) -> dict[str, object]:
        res = permutation.wild_cluster_bootstrap(design.X, y, council, L, conf_level=conf_level)
        if not np.isfinite(res.p_value):
            return {"estimate": res.estimate, "warning": "the contrast's cluster-robust variance is zero; no bootstrap test"}
        how = f"all {res.draws:,} Webb weight vectors" if res.enumerated else f"{res.draws:,} seeded Webb draws"
        return {"estimate": res.estimate, "p_value": res.p_value, "min_p_value": res.min_p_value,
                "ci_low": res.ci_low, "ci_high": res.ci_high, "correction": f"{WILD}; {how}; interval inverts the test"}

    return tidy.wald_rows("wild_bootstrap", sample, contrasts, correction=WILD, design=design, test=test,
                          cell_problem=_too_few(sample))


def _answers(model: str, correction: str, data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str],
             contrasts: Sequence[tidy.Contrast], group: str | None) -> tuple[
                 tidy.Sample, Any, np.ndarray, np.ndarray, pd.DataFrame | None]:
    """What the answer-level models (``cr2``, ``wild_bootstrap``) fit: the sample, its design (a
    :class:`WaveDesign`), the answers and their councils' codes; or the model's failed rows (last item,
    the design None) when the design cannot be had."""
    sample = tidy.sample(data, wave_order, group)
    design, reason = _design(sample)
    if design is None:
        return sample, design, np.empty(0), np.empty(0, dtype=int), _failed(model, sample, contrasts, reason, correction)
    d = sample.frame
    return sample, design, d["value"].to_numpy(float), d["council_code"].cat.codes.to_numpy(), None


def _design(sample: tidy.Sample) -> tuple[WaveDesign | None, str]:
    """The sample's wave (x group) design, or None and why the council-level models cannot be fitted."""
    d = sample.frame
    n_councils = d["council_code"].nunique()
    if d.empty:
        return None, "no observed values"
    if n_councils < MIN_COUNCILS:
        return None, not_estimable(n_councils)
    try:
        return design_matrix(d, sample.waves, sample.group, empty_cells="drop"), ""
    except DataError as err:
        return None, str(err)


def _too_few(sample: tidy.Sample) -> Callable[[object, str, str], str]:
    """``wald_rows``' veto of a contrast resting on fewer than :data:`MIN_COUNCILS` councils at both waves
    (within the group level): a t interval on a fraction of a degree of freedom is no answer."""

    def problem(level: object, later: str, earlier: str) -> str:
        n = sample.counts(level, [later, earlier])["n_councils_both"]
        return not_estimable(n, "at both waves") if n < MIN_COUNCILS else ""

    return problem


def not_estimable(n: int, where: str = "") -> str:
    """The warning of a council-level test on fewer than :data:`MIN_COUNCILS` councils."""
    councils = f"{n} council{'s' if n != 1 else ''}{' ' + where if where else ''}"
    return f"not estimable with {councils} (a council-level test needs at least {MIN_COUNCILS})"


def _failed(model: str, sample: tidy.Sample, contrasts: Sequence[tidy.Contrast], reason: str,
            correction: str) -> pd.DataFrame:
    return tidy.wald_rows(model, sample, contrasts, correction=correction, design=None, test=None, warning=reason)


def _independent(X: np.ndarray) -> np.ndarray:
    """Columns kept as R's ``lm`` keeps them: each one not in the span of the kept earlier ones."""
    kept = np.zeros(X.shape[1], dtype=bool)
    basis = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        column = X[:, j]
        residual = column - basis @ np.linalg.lstsq(basis, column, rcond=None)[0] if basis.shape[1] else column
        if np.linalg.norm(residual) > 1e-9 * max(np.linalg.norm(column), 1.0):
            kept[j] = True
            basis = np.hstack([basis, residual[:, None] / np.linalg.norm(residual)])
    return kept


MODELS: dict[str, Callable[..., pd.DataFrame]] = {
    "cr2": fit_cr2, "cr2_council": fit_cr2_council, "sign_flip": sign_flip_rows, "wild_bootstrap": wild_bootstrap_rows,
}

__all__ = ["MODELS", "fit_cr2", "fit_cr2_council", "not_estimable", "sign_flip_rows", "wild_bootstrap_rows"]
