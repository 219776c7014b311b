"""What readers quote: the response distribution of a Likert measure, and the share of answers at or
above a declared level ("agree or better") per wave, with council-clustered intervals and its change.

The share of a wave (within a group level) is the proportion of that wave's answers at or above the
level: every answer counts once, so it is a **respondent-weighted** share, as a reader of "62% rated it
effective or better" understands it. Answers from one council are alike, so the interval is
council-clustered: the share is the coefficient of its cell in the linear probability model
``at_or_above ~ 0 + cell`` (cells: wave, or wave x group level), whose coefficients are exactly the
cell shares, with the cluster-robust (CR1) sandwich over councils and the small-sample factor
``G/(G-1) * (N-1)/(N-K)``: R ``lm(y ~ 0 + cell)`` + ``sandwich::vcovCL(cluster = ~council, type =
"HC1")`` gives the same numbers (``tests/reference/shares_reference.R``). The change between two waves
is the difference of their coefficients, with their covariance (respondents and councils answering
both waves make the two shares correlated); the difference in change between two group levels is the
difference of those. The reference is t with ``G - 1`` degrees of freedom below ``few_councils``
councils, else normal; intervals for a share are clipped to [0, 1]. A cell where every answer (or
none) is at or above the level has no variation to estimate a standard error from: its share is
reported, its interval is not, and the warning says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactstudy.model.stats import tidy
from impactstudy.model.stats.group_differences import difference_label, reference_level
from impactstudy.model.stats.wave_design import Contrast

MODEL = "share"
CLUSTER_NORMAL = "cluster-robust CR1 SE, normal reference"
CLUSTER_T = "cluster-robust CR1 SE, t reference df=G-1"
SHARE_COLUMNS = ["measure", "wave", "group", "share_from", "share_label", "estimate", "std_error", "ci_low", "ci_high",
                 "n_obs", "n_councils", "df", "correction", "warning"]
NO_VARIATION = "no variation within the waves compared (every answer, or none, at or above the level), so there is no interval"
DISTRIBUTION_COLUMNS = ["measure", "wave", "group", "level", "level_label", "n", "share", "n_wave"]


def distribution(data: pd.DataFrame, levels: Sequence[float], labels: dict[float, str] | None = None,
                 group: str | None = None) -> pd.DataFrame:
    """Answers at each level per wave (and group level): ``wave, group, level, level_label, n, share,
    n_wave`` (``share`` of the wave's answers; every declared level listed, zero counts included)."""
    labels = labels or {}
    rows = []
    d = data[data["value"].notna()]
    waves = list(d["wave"].cat.categories) if isinstance(d["wave"].dtype, pd.CategoricalDtype) else sorted(d["wave"].unique())
    wave_text, value = tidy.as_text(d["wave"]), d["value"].to_numpy(float)
    level_text = tidy.as_text(d[group]) if group is not None else None
    for label, level in tidy.levels(data, group):
        in_level = np.ones(len(d), dtype=bool) if level_text is None else level_text == str(level)
        for wave in waves:
            at = value[in_level & (wave_text == str(wave))]
            for lv in levels:
                n = int(np.sum(at == lv))
                rows.append({"wave": str(wave), "group": label, "level": float(lv),
                             "level_label": labels.get(lv, f"{lv:g}"), "n": n,
                             "share": n / len(at) if len(at) else np.nan, "n_wave": int(len(at))})
    return pd.DataFrame(rows, columns=DISTRIBUTION_COLUMNS[1:])


@dataclass(frozen=True)
class CellShares:
    """Cell shares (wave x group level) with their cluster-robust covariance."""

    cells: list[tuple[object, str]]  # (group level, wave)
    share: np.ndarray
    cov: np.ndarray
    n_obs: np.ndarray
    n_councils: np.ndarray
    present: np.ndarray  # (cells, councils) bool: which councils answered in each cell
    councils: int
    df: float | None
    correction: str

    def index(self, level: object, wave: str) -> int | None:
        try:
            return self.cells.index((level, wave))
        except ValueError:
            return None

    def councils_in(self, cells: Sequence[int | None], every: bool = False) -> int:
        """Councils answering in any of ``cells`` (``every``: in all of them; none when a cell is missing)."""
        rows = [c for c in cells if c is not None]
        if not rows or (every and len(rows) < len(cells)):
            return 0
        present = self.present[rows]
        return int((present.all(axis=0) if every else present.any(axis=0)).sum())


def cell_shares(frame: pd.DataFrame, at_or_above: np.ndarray, group: str | None, few_councils: int) -> CellShares:
    """The share in each observed (group level, wave) cell and the CR1 covariance of the shares."""
    level = tidy.as_text(frame[group]) if group else np.full(len(frame), None, dtype=object)
    wave = tidy.as_text(frame["wave"])
    keys = pd.MultiIndex.from_arrays([level, wave])
    cell, uniques = pd.factorize(keys)
    council = pd.factorize(frame["council_code"])[0]  # a categorical's codes, no text compared
    y = at_or_above.astype(float)
    n_cells, n, g = len(uniques), len(y), int(council.max(initial=-1)) + 1
    n_obs = np.bincount(cell, minlength=n_cells).astype(float)
    share = np.bincount(cell, weights=y, minlength=n_cells) / n_obs
    resid = y - share[cell]
    scores = np.zeros((g, n_cells))
    np.add.at(scores, (council, cell), resid)
    scores /= n_obs[None, :]
    factor = g / (g - 1) * (n - 1) / (n - n_cells) if g > 1 and n > n_cells else np.nan
    cov = factor * scores.T @ scores
    present = np.zeros((n_cells, g), dtype=bool)
    present[cell, council] = True
    small = g < few_councils
    return CellShares([(lv if group else None, w) for lv, w in uniques], share, cov, n_obs.astype(int),
                      present.sum(axis=1), present, g, float(g - 1) if small else None,
                      CLUSTER_T if small else CLUSTER_NORMAL)


def _interval_row(fit: CellShares, lvec: np.ndarray, conf_level: float, bounds: tuple[float, float]) -> dict[str, object]:
    est = float(lvec @ fit.share)
    var = float(lvec @ fit.cov @ lvec)
    if not var > 0 or not np.isfinite(var):
        return {"estimate": est, "warning": NO_VARIATION}
    se = float(np.sqrt(var))
    lo, hi, p = tidy.interval(est, se, fit.df, conf_level)
    return {"estimate": est, "std_error": se, "ci_low": max(lo, bounds[0]), "ci_high": min(hi, bounds[1]),
            "p_value": p, "df": np.nan if fit.df is None else fit.df}


def share_rows(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str], contrasts: Sequence[Contrast],
               threshold: float, group: str | None = None, few_councils: int = 40,
               conf_level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per wave (and group level) the share at or above ``threshold`` (:data:`SHARE_COLUMNS` without
    ``measure``, ``share_from``, ``share_label``), and the change in it for each contrast (tidy rows,
    model ``share``, estimate in proportion points)."""
    sample = tidy.sample(data, wave_order, group)
    d = sample.frame
    fit = cell_shares(d, d["value"].to_numpy(float) >= threshold, group, few_councils) if len(d) else None
    level_rows, change_rows = [], []
    for label, level in sample.levels:
        key = str(level) if group else None
        for wave in wave_order:
            k = fit.index(key, wave) if fit else None
            row: dict[str, object] = {"wave": wave, "group": label, "estimate": np.nan, "std_error": np.nan,
                                      "ci_low": np.nan, "ci_high": np.nan, "n_obs": 0, "n_councils": 0,
                                      "df": np.nan, "correction": fit.correction if fit else "", "warning": ""}
            if k is None:
                row["warning"] = "no answers"
            else:
                lvec = np.zeros(len(fit.share))
                lvec[k] = 1.0
                values = _interval_row(fit, lvec, conf_level, (0.0, 1.0))
                values.pop("p_value", None)
                row.update(values, n_obs=int(fit.n_obs[k]), n_councils=int(fit.n_councils[k]))
            level_rows.append(row)
        for later, earlier in contrasts:
            ks = [fit.index(key, w) if fit else None for w in (later, earlier)]
            counts = {"n_obs": sum(int(fit.n_obs[k]) for k in ks if k is not None) if fit else 0,
                      "n_councils": fit.councils_in(ks) if fit else 0,
                      "n_councils_both": fit.councils_in(ks, every=True) if fit else 0}
            if None in ks:
                change_rows.append(tidy.make_row(MODEL, later, earlier, label, correction=fit.correction if fit else "",
                                                 warning="no answers at one of the waves", **counts))
                continue
            lvec = np.zeros(len(fit.share))
            lvec[ks[0]], lvec[ks[1]] = 1.0, -1.0
            change_rows.append(tidy.make_row(MODEL, later, earlier, label, correction=fit.correction, **counts,
                                             **_interval_row(fit, lvec, conf_level, (-1.0, 1.0))))
    levels = pd.DataFrame(level_rows)
    return levels, tidy.to_frame(change_rows)


def difference_in_change(data: pd.DataFrame | tidy.Sample, wave_order: Sequence[str], contrasts: Sequence[Contrast],
                         threshold: float, group: str, few_councils: int = 40,
                         conf_level: float = 0.95) -> pd.DataFrame:
    """For each contrast and each group level against the reference (the largest level): the change in
    the share in that level minus the change in the reference level (:func:`reference_level`), with its CR1 interval and p (model
    ``share_diff``; ``group`` reads ``status=NTI - status=Adequate``)."""
    sample = tidy.sample(data, wave_order, group)
    d = sample.frame
    if d.empty:
        return tidy.to_frame([])
    fit = cell_shares(d, d["value"].to_numpy(float) >= threshold, group, few_councils)
    reference = reference_level(d, group)
    rows = []
    for label, level in sample.levels:
        if str(level) == reference:
            continue
        name = difference_label(group, level, reference)
        for later, earlier in contrasts:
            ks = [fit.index(lv, w) for lv in (str(level), reference) for w in (later, earlier)]
            counts = {"n_obs": sum(int(fit.n_obs[k]) for k in ks if k is not None),
                      "n_councils": fit.councils_in(ks),
                      "n_councils_both": fit.councils_in(ks[:2], every=True) + fit.councils_in(ks[2:], every=True)}
            if None in ks:
                rows.append(tidy.make_row("share_diff", later, earlier, name, correction=fit.correction,
                                          warning="no answers at one of the waves in one of the groups", **counts))
                continue
            lvec = np.zeros(len(fit.share))
            for k, sign in zip(ks, (1.0, -1.0, -1.0, 1.0)):
                lvec[k] += sign
            rows.append(tidy.make_row("share_diff", later, earlier, name, correction=fit.correction, **counts,
                                      **_interval_row(fit, lvec, conf_level, (-2.0, 2.0))))
    return tidy.to_frame(rows)


__all__ = ["CellShares", "cell_shares", "difference_in_change", "distribution", "share_rows"]
