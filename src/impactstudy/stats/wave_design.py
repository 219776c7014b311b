"""Design matrices and contrast vectors for the change-over-time mean models.

``value ~ wave`` and ``value ~ wave * group`` with treatment coding against the first wave (and the
first group level), in R's column order, so a fit can be reproduced with ``lmer``/``geeglm`` and the
same contrast vectors. Every contrast is a difference of cell means: the row of the design for
(wave, level) minus the row for (baseline wave, level). Building ``X`` from those same cell rows makes
the contrasts correct by construction, for any number of waves and levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactstudy.errors import DataError

CONTRAST_KINDS = ("baseline", "successive")


@dataclass(frozen=True, eq=False)
class WaveContrast:
    """One linear combination ``L @ beta``: ``contrast`` reads ``follow_up - baseline`` (wave ids),
    ``group`` is ``all`` or ``<covariate>=<level>``."""

    contrast: str
    group: str
    L: np.ndarray


@dataclass(frozen=True, eq=False)
class WaveDesign:
    """Design matrix of ``value ~ wave [* group]`` and the cell-mean contrasts it supports."""

    X: np.ndarray
    columns: tuple[str, ...]
    waves: tuple[str, ...]  # waves present, in study order; waves[0] is the reference (baseline)
    group: str | None
    levels: tuple[str, ...]  # group levels, levels[0] the reference; () without a group

    def cell(self, wave: str, level: str | None = None) -> np.ndarray:
        """Row of the design for the mean at ``wave`` (within group ``level``)."""
        n_levels = max(len(self.levels), 1)
        j = self.levels.index(level) if self.group is not None else 0
        return _cell_rows(len(self.waves), n_levels)[self.waves.index(wave) * n_levels + j]

    def contrasts(self, kinds: Sequence[str] = CONTRAST_KINDS) -> list[WaveContrast]:
        """Contrasts ``wave_k - wave_1`` (``baseline``) and ``wave_k - wave_{k-1}`` (``successive``, for
        k >= 3 so no pair repeats), overall or, with a group, within each group level."""
        unknown = set(kinds) - set(CONTRAST_KINDS)
        if unknown:
            raise ValueError(f"unknown contrast kinds {sorted(unknown)}; use {CONTRAST_KINDS}")
        pairs = []
        if "baseline" in kinds:
            pairs += [(w, self.waves[0]) for w in self.waves[1:]]
        if "successive" in kinds:
            start = 2 if "baseline" in kinds else 1
            pairs += [(self.waves[k], self.waves[k - 1]) for k in range(start, len(self.waves))]
        strata = [(None, "all")] if self.group is None else [(lv, f"{self.group}={lv}") for lv in self.levels]
        return [
            WaveContrast(f"{late} - {early}", label, self.cell(late, lv) - self.cell(early, lv))
            for lv, label in strata
            for late, early in pairs
        ]


def _cell_rows(n_waves: int, n_levels: int) -> np.ndarray:
    """Design rows of every (wave, level) cell, wave-major; columns as :func:`_column_names`."""
    wave_part = np.eye(n_waves)[:, 1:]
    level_part = np.eye(n_levels)[:, 1:]
    rows = []
    for k in range(n_waves):
        for j in range(n_levels):
            # R orders interaction columns with the wave varying fastest: w2:B, w3:B, w2:C, ...
            inter = np.outer(level_part[j], wave_part[k]).ravel()
            rows.append(np.r_[1.0, wave_part[k], level_part[j], inter])
    return np.array(rows)


def _column_names(waves: Sequence[str], group: str | None, levels: Sequence[str]) -> tuple[str, ...]:
    wave_cols = [f"wave[T.{w}]" for w in waves[1:]]
    if group is None:
        return ("Intercept", *wave_cols)
    level_cols = [f"{group}[T.{lv}]" for lv in levels[1:]]
    inter = [f"{wc}:{lc}" for lc in level_cols for wc in wave_cols]
    return ("Intercept", *wave_cols, *level_cols, *inter)


def design_matrix(df: pd.DataFrame, wave_order: Sequence[str], group: str | None = None) -> WaveDesign:
    """Design of ``value ~ wave`` (or ``value ~ wave * group``) for the rows of ``df``, in row order.

    ``wave_order`` lists the study's wave ids in time order; waves with no rows in ``df`` are left
    out, so the reference is the first wave the measure was asked in. Group levels follow the
    categorical order when ``df[group]`` is categorical, else sorted order. Raises
    :class:`DataError` for a wave not in ``wave_order``, a missing group value, fewer than two waves,
    or an empty wave x group cell (its interaction would be inestimable).
    """
    wave = df["wave"].astype(str)
    present = set(wave.unique())
    unknown = sorted(present - {str(w) for w in wave_order})
    if unknown:
        raise DataError(f"design: waves {unknown} are not in the study's wave order {list(wave_order)}")
    waves = tuple(str(w) for w in wave_order if str(w) in present)
    if len(waves) < 2:
        raise DataError(f"design: data has {len(waves)} wave(s) {list(waves)}; a change model needs at least 2")
    wave_idx = pd.Categorical(wave, categories=waves).codes
    if group is None:
        levels: tuple[str, ...] = ()
        cell_idx = wave_idx
        n_levels = 1
    else:
        values = df[group]
        if values.isna().any():
            raise DataError(f"design: {int(values.isna().sum())} rows have no '{group}'; drop them or fill them in")
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = tuple(str(c) for c in values.cat.remove_unused_categories().cat.categories)
        else:
            levels = tuple(sorted(values.astype(str).unique()))
        level_idx = pd.Categorical(values.astype(str), categories=levels).codes
        n_levels = len(levels)
        cell_idx = wave_idx * n_levels + level_idx
        counts = np.bincount(cell_idx, minlength=len(waves) * n_levels)
        empty = [f"{waves[c // n_levels]} in {group}={levels[c % n_levels]}" for c in np.flatnonzero(counts == 0)]
        if empty:
            raise DataError(f"design: no rows for {', '.join(empty)}; the wave x {group} model needs every cell")
    X = _cell_rows(len(waves), n_levels)[cell_idx]
    return WaveDesign(X=X, columns=_column_names(waves, group, levels), waves=waves, group=group, levels=levels)
