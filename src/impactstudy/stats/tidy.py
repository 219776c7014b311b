"""The tidy result row every non-LMM model returns, and the input handling they share.

Every model function takes the long frame of ONE measure (``council_code``, ``respondent_id``,
``wave``, ``value`` and optionally a group covariate column), a ``wave_order`` and a list of
``(later_wave, earlier_wave)`` contrasts, and returns a DataFrame with :data:`COLUMNS` — one row per
contrast and group level, whatever happened. A model that cannot be fitted for a reason in the data
(too few councils, one category, separation, nothing observed) returns its rows with NaN numbers and a
``warning`` that says why; it never raises for data reasons. Why tidy rows: reports and tests read
tables, not model objects (broom's lesson), and ``tables/contrasts.csv`` is these rows plus ``measure``
and ``q_value``.

Also here: the treatment-coded wave (x group) design that GEE and the ordinal model share, so that a
contrast is always ``x(later, level) - x(earlier, level)`` and "evaluated within each level" means the
same thing in both.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = (
    "model",
    "contrast",
    "group",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "n_obs",
    "n_councils",
    "df",
    "correction",
    "warning",
)
_NUMERIC = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "df")

Contrast = tuple[str, str]  # (later_wave, earlier_wave)


def default_contrasts(wave_order: Sequence[str]) -> list[Contrast]:
    """Every wave against the first, then each wave against the one before (no duplicates)."""
    pairs = [(w, wave_order[0]) for w in wave_order[1:]]
    pairs += [(later, earlier) for earlier, later in zip(wave_order[1:], wave_order[2:])]
    return list(dict.fromkeys(pairs))


def contrast_label(later: str, earlier: str) -> str:
    """The ``contrast`` text of contrasts.csv: ``follow_up - baseline``."""
    return f"{later} - {earlier}"


def group_label(group: str | None, level: object = None) -> str:
    """``all`` for the whole sample, else ``<covariate>=<level>``."""
    return "all" if group is None else f"{group}={level}"


def make_row(model: str, later: str, earlier: str, group: str, **values: object) -> dict[str, object]:
    """One result row; numbers not given are NaN, ``correction`` and ``warning`` default to ''."""
    row: dict[str, object] = {"model": model, "contrast": contrast_label(later, earlier), "group": group}
    row.update({c: np.nan for c in _NUMERIC})
    row.update({"n_obs": 0, "n_councils": 0, "correction": "", "warning": ""})
    row.update(values)
    return row


def to_frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """Rows as a DataFrame with exactly :data:`COLUMNS`, counts as int and numbers as float."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame[list(_NUMERIC)] = frame[list(_NUMERIC)].astype(float)
    frame[["n_obs", "n_councils"]] = frame[["n_obs", "n_councils"]].astype("int64")
    return frame


def join_warnings(*messages: str) -> str:
    """Distinct non-empty messages, in order, joined by '; '."""
    return "; ".join(dict.fromkeys(m for m in messages if m))


@contextlib.contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect every warning raised inside the block as text (never printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
        messages.extend(f"{w.category.__name__}: {w.message}" for w in caught)


def interval(estimate: float, std_error: float, df: float | None, conf_level: float) -> tuple[float, float, float]:
    """``(ci_low, ci_high, p_value)`` of a Wald statistic: t reference with ``df``, normal when None."""
    ref = stats.norm() if df is None else stats.t(df)
    z = estimate / std_error
    half = ref.ppf(0.5 + conf_level / 2) * std_error
    return estimate - half, estimate + half, float(2 * ref.sf(abs(z)))


def prepare(
    data: pd.DataFrame, wave_order: Sequence[str], group: str | None = None, *, require_respondent: bool = False,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows with an observed value at a wave in ``wave_order`` (others are ignored), ``wave`` as an
    ordered categorical.

    A missing column is a caller bug (the panel contract guarantees them), so it raises ValueError.
    """
    needed = ["council_code", "wave", "value"] + (["respondent_id"] if require_respondent else [])
    needed += [group] if group is not None else []
    needed += list(extra)
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"model input lacks column(s) {missing}; it needs {needed}")
    keep = data["value"].notna() & data["wave"].isin(list(wave_order))
    if group is not None:
        keep &= data[group].notna()
    out = data.loc[keep, needed].copy()
    out["council_code"] = out["council_code"].astype(str)
    out["wave"] = pd.Categorical(out["wave"], categories=list(wave_order), ordered=True)
    out["value"] = out["value"].astype(float)
    if group is not None:
        out[group] = out[group].astype(str)
    return out.reset_index(drop=True)


def levels(data: pd.DataFrame, group: str | None) -> list[tuple[str, object]]:
    """``(group label, level)`` pairs to report: ``[('all', None)]`` or one per sorted level.

    Pass the raw input, so that a level whose values are all missing still gets (NaN) rows.
    """
    if group is None:
        return [("all", None)]
    return [(group_label(group, lv), lv) for lv in sorted(data[group].dropna().astype(str).unique())]


def cell_mask(data: pd.DataFrame, group: str | None, level: object, waves: Sequence[str]) -> pd.Series:
    """Rows at any of ``waves`` within the group level (all rows' level when ``group`` is None)."""
    mask = data["wave"].isin(list(waves))
    if group is not None:
        mask &= data[group] == level
    return mask


def unobserved(data: pd.DataFrame, group: str | None, level: object, waves: Sequence[str]) -> str:
    """Why a contrast between ``waves`` cannot be estimated within the level ('' when both have data)."""
    where = "" if group is None else f" for {group_label(group, level)}"
    empty = [w for w in waves if not cell_mask(data, group, level, [w]).any()]
    return f"no observations at wave {', '.join(empty)}{where}" if empty else ""


@dataclass(frozen=True)
class WaveDesign:
    """Treatment-coded ``wave`` (x ``group``) design; the reference is the first wave observed.

    ``matrix`` keeps only columns with a non-zero entry (an empty wave x level cell would otherwise make
    the design singular). ``contrast`` is the L vector over the kept columns; callers first check with
    :func:`unobserved` that both cells have data, which guarantees that L needs no dropped column.
    """

    matrix: np.ndarray
    names: list[str]
    waves: list[str]
    group_levels: list[str]
    kept: np.ndarray
    intercept: bool

    @property
    def collinear(self) -> bool:
        """True when the kept columns (with an intercept) are linearly dependent: cells too sparse to
        tell wave from group effects, so the coefficients are not identified."""
        x = self.matrix if self.intercept else np.column_stack([np.ones(len(self.matrix)), self.matrix])
        return bool(np.linalg.matrix_rank(x) < x.shape[1])

    def _row(self, wave: str, level: object) -> np.ndarray:
        x = [1.0] if self.intercept else []
        x += [float(wave == w) for w in self.waves[1:]]
        x += [float(level == g) for g in self.group_levels[1:]]
        x += [float(wave == w and level == g) for w in self.waves[1:] for g in self.group_levels[1:]]
        return np.array(x)

    def contrast(self, later: str, earlier: str, level: object) -> np.ndarray:
        full = self._row(later, level) - self._row(earlier, level)
        assert not np.any(full[~self.kept]), "contrast of an unobserved cell"
        return full[self.kept]


def wave_design(data: pd.DataFrame, group: str | None, *, intercept: bool) -> WaveDesign:
    """Build the design for ``value ~ C(wave)`` or ``value ~ C(wave) * C(group)`` (R's treatment coding)."""
    waves = [w for w in data["wave"].cat.categories if (data["wave"] == w).any()]
    group_levels = sorted(data[group].unique()) if group is not None else []
    cols = [np.ones(len(data))] if intercept else []
    names = ["Intercept"] if intercept else []
    wave_arr = data["wave"].astype(str).to_numpy()
    for w in waves[1:]:
        cols.append((wave_arr == w).astype(float))
        names.append(f"wave[{w}]")
    if group is not None:
        g_arr = data[group].to_numpy()
        for g in group_levels[1:]:
            cols.append((g_arr == g).astype(float))
            names.append(f"{group}[{g}]")
        for w in waves[1:]:
            for g in group_levels[1:]:
                cols.append(((wave_arr == w) & (g_arr == g)).astype(float))
                names.append(f"wave[{w}]:{group}[{g}]")
    full = np.column_stack(cols) if cols else np.empty((len(data), 0))
    kept = np.any(full != 0, axis=0)
    return WaveDesign(
        matrix=full[:, kept],
        names=[n for n, k in zip(names, kept) if k],
        waves=waves,
        group_levels=group_levels,
        kept=kept,
        intercept=intercept,
    )


@dataclass(frozen=True)
class WaldFit:
    """Coefficients, their covariance and the design, enough to evaluate any wave contrast."""

    beta: np.ndarray
    cov: np.ndarray
    design: WaveDesign
    df: float | None  # t reference degrees of freedom; None for the normal


def wald_rows(
    model: str,
    raw: pd.DataFrame,
    data: pd.DataFrame,
    group: str | None,
    contrasts: Sequence[Contrast],
    *,
    correction: str,
    conf_level: float,
    fit: WaldFit | None,
    warning: str = "",
    cell_problem: Callable[[object, str, str], str] | None = None,
) -> pd.DataFrame:
    """Rows for each level x contrast: ``L beta`` with ``sqrt(L V L')``, or NaN with the reason.

    ``fit`` is None when the model could not be fitted (``warning`` says why). ``cell_problem(level,
    later, earlier)`` may veto a single contrast (the ordinal model's separation check).
    ``n_obs``/``n_councils`` count answers and councils at the two contrasted waves within the level.
    """
    out = []
    for label, level in levels(raw, group):
        for later, earlier in contrasts:
            cells = cell_mask(data, group, level, [later, earlier])
            counts = {"n_obs": int(cells.sum()), "n_councils": int(data.loc[cells, "council_code"].nunique())}
            reason = unobserved(data, group, level, [later, earlier])
            if not reason and cell_problem is not None:
                reason = cell_problem(level, later, earlier)
            if reason or fit is None:
                out.append(make_row(model, later, earlier, label, correction=correction,
                                    warning=join_warnings(warning, reason), **counts))
                continue
            lvec = fit.design.contrast(later, earlier, level)
            est = float(lvec @ fit.beta)
            var = float(lvec @ fit.cov @ lvec)
            if not var > 0:
                out.append(make_row(model, later, earlier, label, estimate=est, correction=correction, warning=(
                    join_warnings(warning, "the contrast's estimated variance is not positive")), **counts))
                continue
            se = float(np.sqrt(var))
            lo, hi, p = interval(est, se, fit.df, conf_level)
            out.append(make_row(model, later, earlier, label, estimate=est, std_error=se, ci_low=lo, ci_high=hi,
                                p_value=p, df=np.nan if fit.df is None else fit.df, correction=correction,
                                warning=warning, **counts))
    return to_frame(out)
