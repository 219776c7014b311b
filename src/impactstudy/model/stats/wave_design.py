"""Design matrices and contrast vectors for the change-over-time models (LMM, GEE, ordinal).

``value ~ wave`` and ``value ~ wave * group`` with treatment coding against the first wave (and the
first group level), in R's column order, so a fit can be reproduced with ``lmer``/``geeglm``/``clm``
and the same contrast vectors. Every contrast is a difference of cell means: the row of the design
for (later wave, level) minus the row for (earlier wave, level). Building ``X`` from those same cell
rows makes the contrasts correct by construction, for any number of waves and levels.

An empty wave x group cell makes the saturated design rank deficient. By default that raises
:class:`DataError`; with ``empty_cells="drop"`` the aliased columns are dropped as R's ``lm`` does
(a column that is a linear combination of earlier ones), the fit uses the others, and only the
contrasts that touch an empty cell are inestimable (:meth:`WaveDesign.contrast` returns None). This
is exact: a contrast between two observed cells lies in the row space of the observed cells, so its
value and variance do not depend on which aliased coefficients are fixed at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from impactstudy.errors import DataError

CONTRAST_KINDS = ("baseline", "successive")
Contrast = tuple[str, str]  # (later_wave, earlier_wave)


def wave_pairs(waves: Sequence[str], kinds: Sequence[str] = CONTRAST_KINDS) -> list[Contrast]:
    """``(later, earlier)`` pairs: every wave against the first (``baseline``), then each wave against
    the one before (``successive``; from the third wave on when both kinds are asked, so no pair repeats)."""
    unknown = set(kinds) - set(CONTRAST_KINDS)
    if unknown:
        raise ValueError(f"unknown contrast kinds {sorted(unknown)}; use {CONTRAST_KINDS}")
    pairs: list[Contrast] = []
    if "baseline" in kinds:
        pairs += [(w, waves[0]) for w in waves[1:]]
    if "successive" in kinds:
        start = 2 if "baseline" in kinds else 1
        pairs += [(waves[k], waves[k - 1]) for k in range(start, len(waves))]
    return pairs


def contrast_label(later: str, earlier: str) -> str:
    """The ``contrast`` text of contrasts.csv: ``follow_up - baseline``."""
    return f"{later} - {earlier}"


def group_label(group: str | None, level: object = None) -> str:
    """``all`` for the whole sample, else ``<covariate>=<level>``."""
    return "all" if group is None else f"{group}={level}"


@dataclass(frozen=True, eq=False)
class WaveContrast:
    """One linear combination ``L @ beta``: ``contrast`` reads ``follow_up - baseline`` (wave ids),
    ``group`` is ``all`` or ``<covariate>=<level>``."""

    contrast: str
    group: str
    L: np.ndarray


@dataclass(frozen=True, eq=False)
class WaveDesign:
    """Design matrix of ``value ~ wave [* group]`` and the cell-mean contrasts it supports.

    ``X`` (built at first use) and ``columns`` hold the kept columns only (all of them unless an empty
    cell aliased some); without an intercept (``intercept=False``, for the ordinal model, whose
    thresholds play its part) the first column of the full design is left out.
    """

    columns: tuple[str, ...]
    waves: tuple[str, ...]  # waves present, in study order; waves[0] is the reference (baseline)
    group: str | None
    levels: tuple[str, ...]  # group levels, levels[0] the reference; () without a group
    observed: np.ndarray  # (waves, levels or 1) bool: does the cell have rows
    kept: np.ndarray  # bool over the full design's columns (intercept included)
    cell_X: np.ndarray  # (cells, kept columns): the design row of each (wave, level) cell, wave-major
    cell_index: np.ndarray  # (rows,): the cell of each row of df, so X == cell_X[cell_index]
    intercept: bool = True

    @cached_property
    def X(self) -> np.ndarray:
        """The design matrix, a row per data row: built at first use, since the ordinal model needs only
        the cell rows and ``X`` is the largest thing here (rows x columns)."""
        return self.cell_X[self.cell_index]

    def _cell(self, wave: str, level: str | None) -> np.ndarray:
        n_levels = max(len(self.levels), 1)
        j = self.levels.index(level) if self.group is not None else 0
        return _cell_rows(len(self.waves), n_levels)[self.waves.index(wave) * n_levels + j]

    def contrast(self, later: str, earlier: str, level: str | None = None) -> np.ndarray | None:
        """``L`` over the columns of ``X`` for ``mean(later) - mean(earlier)`` within ``level``; None
        when either wave or the level is absent (a two-wave fit may hold a level only at other waves) or its
        cell (within the level) is empty, so it is not estimable."""
        if later not in self.waves or earlier not in self.waves:
            return None
        if self.group is not None and level not in self.levels:
            return None
        j = self.levels.index(level) if self.group is not None else 0
        if not (self.observed[self.waves.index(later), j] and self.observed[self.waves.index(earlier), j]):
            return None
        full = self._cell(later, level) - self._cell(earlier, level)
        return full[self.kept]

    def contrasts(self, kinds: Sequence[str] = CONTRAST_KINDS) -> list[WaveContrast]:
        """The estimable contrasts of :func:`wave_pairs` over the waves present, overall or, with a
        group, within each group level."""
        strata = [(None, "all")] if self.group is None else [(lv, group_label(self.group, lv)) for lv in self.levels]
        out = []
        for lv, label in strata:
            for later, earlier in wave_pairs(self.waves, kinds):
                L = self.contrast(later, earlier, lv)
                if L is not None:
                    out.append(WaveContrast(contrast_label(later, earlier), label, L))
        return out


def _cell_rows(n_waves: int, n_levels: int) -> np.ndarray:
    """Full design rows (intercept included) of every (wave, level) cell, wave-major."""
    wave_part = np.eye(n_waves)[:, 1:]
    level_part = np.eye(n_levels)[:, 1:]
    # R orders interaction columns with the wave varying fastest: w2:B, w3:B, w2:C, ...
    inter = np.einsum("jb,ka->kjba", level_part, wave_part).reshape(n_waves, n_levels, -1)
    rows = np.concatenate([
        np.ones((n_waves, n_levels, 1)),
        np.broadcast_to(wave_part[:, None, :], (n_waves, n_levels, n_waves - 1)),
        np.broadcast_to(level_part[None, :, :], (n_waves, n_levels, n_levels - 1)),
        inter,
    ], axis=2)
    return rows.reshape(n_waves * n_levels, -1)


def _column_names(waves: Sequence[str], group: str | None, levels: Sequence[str]) -> tuple[str, ...]:
    wave_cols = [f"wave[T.{w}]" for w in waves[1:]]
    if group is None:
        return ("Intercept", *wave_cols)
    level_cols = [f"{group}[T.{lv}]" for lv in levels[1:]]
    inter = [f"{wc}:{lc}" for lc in level_cols for wc in wave_cols]
    return ("Intercept", *wave_cols, *level_cols, *inter)


def _independent_columns(rows: np.ndarray) -> np.ndarray:
    """Columns kept as R's ``lm`` keeps them: each one not in the span of the kept earlier ones."""
    kept = np.zeros(rows.shape[1], dtype=bool)
    rank = 0
    for j in range(rows.shape[1]):
        kept[j] = True
        new_rank = np.linalg.matrix_rank(rows[:, kept]) if rows.size else 0
        if new_rank > rank:
            rank = new_rank
        else:
            kept[j] = False
    return kept


def design_matrix(
    df: pd.DataFrame,
    wave_order: Sequence[str],
    group: str | None = None,
    *,
    intercept: bool = True,
    empty_cells: Literal["raise", "drop"] = "raise",
) -> WaveDesign:
    """Design of ``value ~ wave`` (or ``value ~ wave * group``) for the rows of ``df``, in row order.

    ``wave_order`` lists the study's wave ids in time order; waves with no rows in ``df`` are left
    out, so the reference is the first wave the measure was asked in. Group levels follow the
    categorical order when ``df[group]`` is categorical, else sorted order. Raises
    :class:`DataError` for a wave not in ``wave_order``, a missing group value, fewer than two waves,
    or (unless ``empty_cells="drop"``) an empty wave x group cell.
    """
    wave = df["wave"]
    if not isinstance(wave.dtype, pd.CategoricalDtype):
        wave = wave.astype(str)
    present = {str(w) for w in pd.unique(wave.dropna()) if w is not None}
    unknown = sorted(present - {str(w) for w in wave_order})
    if unknown:
        raise DataError(f"design: waves {unknown} are not in the study's wave order {list(wave_order)}")
    waves = tuple(str(w) for w in wave_order if str(w) in present)
    if len(waves) < 2:
        raise DataError(f"design: data has {len(waves)} wave(s) {list(waves)}; a change model needs at least 2")
    wave_idx = _codes(wave, waves)
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
        n_levels = len(levels)
        cell_idx = wave_idx * n_levels + _codes(values, levels)
    observed = np.bincount(cell_idx, minlength=len(waves) * n_levels) > 0
    full_rows = _cell_rows(len(waves), n_levels)
    if observed.all():
        kept = np.ones(full_rows.shape[1], dtype=bool)
    elif empty_cells == "raise":
        empty = [f"{waves[c // n_levels]} in {group}={levels[c % n_levels]}" for c in np.flatnonzero(~observed)]
        raise DataError(f"design: no rows for {', '.join(empty)}; the wave x {group} model needs every cell")
    else:
        kept = _independent_columns(full_rows[observed])
    if not intercept:
        kept[0] = False
    cell_x = full_rows[:, kept]
    return WaveDesign(
        columns=tuple(c for c, k in zip(_column_names(waves, group, levels), kept) if k),
        waves=waves,
        group=group,
        levels=levels,
        observed=observed.reshape(len(waves), n_levels),
        kept=kept,
        cell_X=cell_x,
        cell_index=cell_idx,
        intercept=intercept,
    )


def _codes(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Position of each value in ``categories`` (values compared as text)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories]
        lookup = np.array([categories.index(c) if c in categories else -1 for c in cats] + [-1])
        return lookup[values.cat.codes.to_numpy()]
    return pd.Categorical(values.astype(str), categories=list(categories)).codes.astype(np.intp)
