"""The tidy result row every model returns, and the input handling they share.

Every model function takes the long frame of ONE measure (``council_code``, ``respondent_id``,
``wave``, ``value`` and optionally a group covariate column), a ``wave_order`` and a list of
``(later_wave, earlier_wave)`` contrasts, and returns a DataFrame with :data:`COLUMNS` — one row per
contrast and group level, whatever happened. A model that cannot be fitted for a reason in the data
(too few councils, one category, separation, nothing observed) returns its rows with NaN numbers and a
``warning`` that says why; it never raises for data reasons. Why tidy rows: reports and tests read
tables, not model objects (broom's lesson), and ``tables/contrasts.csv`` is these rows plus ``measure``
and ``q_value``.

A measure's models share the preparation of its rows (:class:`Sample`): each model function takes the
frame or a sample of it, and does the same either way.

Also here: :func:`wald_rows`, which turns any fit of the treatment-coded wave (x group) design of
:mod:`impactstudy.model.stats.wave_design` (LMM, GEE, ordinal) into these rows, so that a contrast is always
``x(later, level) - x(earlier, level)`` and "evaluated within each level" means the same thing in all.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy import special

from impactstudy.model.stats.wave_design import (
    Contrast, WaveDesign, contrast_label, design_matrix, group_label, wave_pairs,
)

COLUMNS = (
    "model",
    "contrast",
    "group",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "min_p_value",
    "n_obs",
    "n_councils",
    "n_councils_both",
    "df",
    "correction",
    "warning",
)
_NUMERIC = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "min_p_value", "df")
ESTIMATE_COLUMNS = ["measure", "model", "group_by", "term", "estimate", "std_error", "df", "statistic", "p_value",
                    "ci_low", "ci_high", "warning"]


def default_contrasts(wave_order: Sequence[str]) -> list[Contrast]:
    """Every wave against the first, then each wave against the one before (no duplicates)."""
    return wave_pairs(list(wave_order))


def make_row(model: str, later: str, earlier: str, group: str, **values: object) -> dict[str, object]:
    """One result row; numbers not given are NaN, ``correction`` and ``warning`` default to ''.

    ``min_p_value`` is the smallest p-value the row's test could reach with its councils: 0 unless the
    model says otherwise (a t or normal reference can reach any p; an exact test on n councils cannot go
    below its most extreme arrangement's probability). :func:`to_frame` makes it NaN where ``p_value`` is.
    """
    row: dict[str, object] = {"model": model, "contrast": contrast_label(later, earlier), "group": group}
    row.update({c: np.nan for c in _NUMERIC})
    row.update({"min_p_value": 0.0, "n_obs": 0, "n_councils": 0, "n_councils_both": 0, "correction": "",
                "warning": ""})
    row.update(values)
    return row


def to_frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """Rows as a DataFrame with exactly :data:`COLUMNS`, counts as int and numbers as float."""
    columns: dict[str, object] = {c: [r[c] for r in rows] for c in COLUMNS}  # by column: much faster than by row
    columns.update({c: np.asarray(columns[c], dtype=float) for c in _NUMERIC})
    columns.update({c: np.asarray(columns[c], dtype=np.int64) for c in ("n_obs", "n_councils", "n_councils_both")})
    columns["min_p_value"] = np.where(np.isnan(columns["p_value"]), np.nan, columns["min_p_value"])
    return pd.DataFrame(columns)


def estimates_table(summary: pd.DataFrame, measure: str, model: str, group_by: str) -> pd.DataFrame:
    """A fit's coefficient table (``term, estimate, std_error, df, t, p_value, ci_low, ci_high[, warning]``)
    as rows of ``estimates.csv``: :data:`ESTIMATE_COLUMNS`, labelled with its measure, model and grouping."""
    out = summary.rename(columns={"t": "statistic"}).assign(measure=measure, model=model, group_by=group_by)
    return out.reindex(columns=ESTIMATE_COLUMNS)


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
    """``(ci_low, ci_high, p_value)`` of a Wald statistic: t reference with ``df``, normal when None.

    The quantile and tail come from the ``scipy.special`` functions that ``scipy.stats.norm``/``t``
    evaluate (``ppf`` is ``ndtri``/``stdtrit``, ``sf(x)`` is ``ndtr(-x)``/``stdtr(df, -x)``), called
    directly: the same numbers without the distributions' argument handling, ~0.15 ms a call, which
    adds up over thousands of contrasts.
    """
    quantile = 0.5 + conf_level / 2
    z = abs(estimate / std_error)
    if df is None:
        critical, tail = special.ndtri(quantile), special.ndtr(-z)
    else:
        critical, tail = special.stdtrit(df, quantile), special.stdtr(df, -z)
    half = float(critical) * std_error
    return estimate - half, estimate + half, float(2 * tail)


def prepare(
    data: pd.DataFrame, wave_order: Sequence[str], group: str | None = None, *, require_respondent: bool = False,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows with an observed value at a wave in ``wave_order`` (others are ignored), ``wave`` as an
    ordered categorical; ``respondent_id`` is kept whenever the input has it (so that one prepared
    frame serves every model, :class:`Sample`).

    A missing column is a caller bug (the panel contract guarantees them), so it raises ValueError.
    """
    needed = ["council_code", "wave", "value"] + (["respondent_id"] if require_respondent else [])
    needed += [group] if group is not None else []
    needed += list(extra)
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"model input lacks column(s) {missing}; it needs {needed}")
    needed = list(dict.fromkeys(needed + (["respondent_id"] if "respondent_id" in data.columns else [])))
    keep = data["value"].notna() & data["wave"].isin(list(wave_order))
    if group is not None:
        keep &= data[group].notna()
    out = data.loc[keep, needed].copy()
    out["council_code"] = labels(out["council_code"])
    out["wave"] = ordered_waves(out["wave"], wave_order)
    out["value"] = out["value"].astype(float)
    if group is not None:
        out[group] = labels(out[group])
    return out.reset_index(drop=True)


def ordered_waves(wave: pd.Series, wave_order: Sequence[str]) -> pd.Series:
    """``wave`` as an ordered categorical of ``wave_order`` (every value is one of them). A categorical
    input (the panel's) is recategorised, not rebuilt: constructing a Categorical from one whose categories
    include other waves is deprecated in pandas (Pandas4Warning) even when no row holds them."""
    if isinstance(wave.dtype, pd.CategoricalDtype):
        return wave.cat.set_categories(list(wave_order), ordered=True)
    return pd.Series(pd.Categorical(wave, categories=list(wave_order), ordered=True), index=wave.index, name=wave.name)


def labels(values: pd.Series) -> pd.Series:
    """``values`` as text labels: a categorical whose categories are the observed values as text, sorted.

    Why: models group on labels, and a categorical's integer codes follow the labels' sorted order, so
    code-based grouping (GEE's clusters, design levels) visits them in the same order as the text
    would, while nothing converts every row to a string.
    """
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(str).astype("category")
    used = np.bincount(values.cat.codes.to_numpy() + 1, minlength=len(values.cat.categories) + 1)[1:] > 0
    out = values if used.all() else values.cat.remove_categories(values.cat.categories[~used])
    text = out.cat.categories.astype(str)
    if not text.equals(out.cat.categories):
        out = out.cat.rename_categories(text)
    if not text.is_monotonic_increasing:
        out = out.cat.reorder_categories(text.sort_values())
    return out


def as_text(values: pd.Series) -> np.ndarray:
    """``values`` as an array of text labels; a categorical's from its codes (converting each row of a
    categorical to text costs ~10 ms per 100,000 rows, looking its label up almost nothing)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        labels = np.asarray(values.cat.categories.astype(str), dtype=object)
        return np.append(labels, None)[values.cat.codes.to_numpy()]
    return np.asarray(values.astype(str), dtype=object)


def levels(data: pd.DataFrame, group: str | None) -> list[tuple[str, object]]:
    """``(group label, level)`` pairs to report: ``[('all', None)]`` or one per sorted level.

    Pass the raw input, so that a level whose values are all missing still gets (NaN) rows.
    """
    if group is None:
        return [("all", None)]
    return [(group_label(group, lv), lv) for lv in labels(data[group].dropna()).cat.categories]


Test = Callable[[np.ndarray], Mapping[str, object]]
"""Evaluates a contrast vector: ``estimate, std_error, ci_low, ci_high, p_value, df`` (NaN where none)."""


@dataclass(frozen=True)
class WaldFit:
    """Coefficients and their covariance over a design's columns, with a t (``df``) or normal reference."""

    beta: np.ndarray
    cov: np.ndarray
    df: float | None  # t reference degrees of freedom; None for the normal
    conf_level: float = 0.95

    def test(self, lvec: np.ndarray) -> dict[str, object]:
        """``L beta`` with ``sqrt(L V L')``, its CI and p (a ``warning`` when the variance is not positive)."""
        est = float(lvec @ self.beta)
        var = float(lvec @ self.cov @ lvec)
        if not var > 0:
            return {"estimate": est, "warning": "the contrast's estimated variance is not positive"}
        se = float(np.sqrt(var))
        lo, hi, p = interval(est, se, self.df, self.conf_level)
        return {"estimate": est, "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p,
                "df": np.nan if self.df is None else self.df}


class _CellCounts:
    """Answers and distinct councils in any set of waves within a group level, from one pass."""

    def __init__(self, data: pd.DataFrame, group: str | None) -> None:
        self.waves = {str(w): k for k, w in enumerate(data["wave"].cat.categories)}
        council = pd.factorize(data["council_code"])[0]
        wave = data["wave"].cat.codes.to_numpy()
        if group is None:
            self.levels: dict[object, int] = {None: 0}
            level = np.zeros(len(data), dtype=np.intp)
        else:
            codes, uniques = pd.factorize(data[group])
            self.levels, level = {lv: j for j, lv in enumerate(uniques)}, codes
        shape = (len(self.levels), len(self.waves), int(council.max(initial=-1)) + 1)
        cell = level * shape[1] + wave
        self.rows = np.bincount(cell, minlength=shape[0] * shape[1]).reshape(shape[:2])
        self.present = np.zeros(shape, dtype=bool)
        self.present[level, wave, council] = True

    def __call__(self, level: object, waves: Sequence[str]) -> dict[str, int]:
        j = self.levels.get(level)
        ks = [self.waves[w] for w in waves if w in self.waves]
        if j is None or not ks:
            return {"n_obs": 0, "n_councils": 0, "n_councils_both": 0}
        present = self.present[j, ks]
        return {"n_obs": int(self.rows[j, ks].sum()), "n_councils": int(present.any(axis=0).sum()),
                "n_councils_both": int(present.all(axis=0).sum()) if len(ks) == len(waves) else 0}

    def empty(self, level: object, waves: Sequence[str]) -> list[str]:
        """The waves with no answers within the level."""
        return [w for w in waves if self(level, [w])["n_obs"] == 0]


T = TypeVar("T")


@dataclass(eq=False)
class Sample:
    """One measure's rows for the change models of one grouping (``group``, or none), prepared once.

    ``raw`` is the model input (its group levels are the ones reported, even a level left with no
    usable row), ``frame`` is :func:`prepare`'s output for ``waves`` and ``group``. What the models
    derive from the rows (designs, cell counts, council means) is computed at its first use and kept:
    a measure's models share one sample per grouping (:func:`impactstudy.model.fitting.fit_measure`) instead
    of each repeating that work. Every model function also takes a plain frame (:func:`sample`).
    """

    raw: pd.DataFrame
    frame: pd.DataFrame
    waves: tuple[str, ...]
    group: str | None
    _derived: dict[tuple[Callable[..., Any], tuple[Hashable, ...]], Any] = field(default_factory=dict, repr=False)

    def derive(self, function: Callable[..., T], *args: Hashable) -> T:
        """``function(self, *args)``, computed at the first call with these arguments, then kept."""
        key = (function, args)
        if key not in self._derived:
            self._derived[key] = function(self, *args)
        return self._derived[key]

    @cached_property
    def levels(self) -> list[tuple[str, object]]:
        """:func:`levels` of the raw input."""
        return levels(self.raw, self.group)

    @cached_property
    def counts(self) -> _CellCounts:
        return _CellCounts(self.frame, self.group)

    def design(self, intercept: bool = True) -> WaveDesign:
        """The wave (x group) design of the rows, aliased columns dropped (raises :class:`DataError`
        as :func:`design_matrix` does)."""
        return self.derive(_design, intercept)


def level_size(sample: Sample, level: object) -> tuple[int, int]:
    """``(councils, waves)`` with answers within ``level`` (None: every row) at any of the sample's waves:
    how many clusters and mean parameters a group level's contrasts rest on."""
    waves = list(sample.waves)
    return sample.counts(level, waves)["n_councils"], len(waves) - len(sample.counts.empty(level, waves))


def _design(sample: Sample, intercept: bool) -> WaveDesign:
    return design_matrix(sample.frame, sample.waves, sample.group, intercept=intercept, empty_cells="drop")


def sample(data: pd.DataFrame | Sample, wave_order: Sequence[str], group: str | None = None, *,
           require_respondent: bool = False, extra: Sequence[str] = ()) -> Sample:
    """``data`` as a :class:`Sample` for ``wave_order`` and ``group``: itself when it already is one
    with the columns asked for, else :func:`prepare` of it (of its raw input, for another sample)."""
    if isinstance(data, Sample):
        needed = [*extra, *(["respondent_id"] if require_respondent else [])]
        if data.waves == tuple(wave_order) and data.group == group and all(c in data.frame for c in needed):
            return data
        data = data.raw
    frame = prepare(data, wave_order, group, require_respondent=require_respondent, extra=extra)
    return Sample(data, frame, tuple(wave_order), group)


def wald_rows(
    model: str,
    sample: Sample,
    contrasts: Sequence[Contrast],
    *,
    correction: str,
    design: WaveDesign | None,
    test: Test | None,
    warning: str = "",
    cell_problem: Callable[[object, str, str], str] | None = None,
    level_test: Callable[[object], tuple[Test | None, str, str]] | None = None,
) -> pd.DataFrame:
    """Rows for each level x contrast: ``test(L)`` for the design's contrast vector, or NaN with the reason.

    ``level_test(level)``, when given, replaces ``test`` and ``correction`` within a level: ``(test,
    correction, reason)``, a test of None with the reason when the level's rows cannot be tested (the GEE
    and ordinal models' small-sample corrections, which depend on the councils behind the level).

    ``n_councils_both`` counts the councils with answers at both contrasted waves within the level.

    ``test`` is None when the model could not be fitted (``warning`` says why). A contrast with an
    empty cell is NaN with "no observations at wave ...". ``cell_problem(level, later, earlier)`` may
    veto a single contrast (the ordinal model's separation check). ``n_obs``/``n_councils`` count
    answers and councils at the two contrasted waves within the level.
    """
    counts = sample.counts
    group = sample.group
    out = []
    for label, level in sample.levels:
        level_tester, level_correction, level_reason = test, correction, ""
        if level_test is not None and design is not None:
            level_tester, level_correction, level_reason = level_test(level)
        for later, earlier in contrasts:
            n = counts(level, [later, earlier])
            empty = counts.empty(level, [later, earlier])
            where = "" if group is None else f" for {label}"
            reason = f"no observations at wave {', '.join(empty)}{where}" if empty else level_reason
            if not reason and cell_problem is not None:
                reason = cell_problem(level, later, earlier)
            lvec = (None if reason or design is None or level_tester is None
                    else design.contrast(later, earlier, level))
            if lvec is None:
                out.append(make_row(model, later, earlier, label, correction=level_correction,
                                    warning=join_warnings(warning, reason), **n))
                continue
            values = {k: v for k, v in level_tester(lvec).items() if k in COLUMNS}
            values["warning"] = join_warnings(warning, str(values.get("warning", "")))
            out.append(make_row(model, later, earlier, label, **{"correction": level_correction, **n, **values}))
    return to_frame(out)
