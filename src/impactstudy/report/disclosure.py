"""Statistical disclosure control for the public report: which cells to withhold, and how to mark them.

The rules follow ONS / GSS output-checking practice (threshold rule, group disclosure, secondary
suppression); docs/report.md "Disclosure control" gives the rule for each kind of table and why.

* **Primary suppression (threshold rule)**: a count of answers from 1 to ``threshold`` − 1
  (``[report] min_cell``, 5 by default) is withheld, and so is any percentage or mean whose base (the
  councils or respondents it rests on) is below ``threshold``.
* **Zeros** are published: "no respondent gave this answer" says nothing about any one respondent unless
  it shows that *every* member of a group gave the same answer (group disclosure). Two cases do, and only
  these withhold a zero: a group's answers to a question as asked all in one category (``partition``
  tables: a wave's answers spread over the levels of a scale), and a yes/no answer (an option of a
  select-all question, a theme mentioned or not) that everybody or nobody gave (:func:`protect_binary`).
* **Secondary suppression**: where published totals tie cells together, a withheld cell must not be
  recoverable by subtraction. A withheld value is recoverable exactly when its unit vector lies in the
  row space of the table's additive equations restricted to the withheld cells (the published cells
  only move to the right-hand side). While any withheld cell is recoverable, one more cell of an
  equation holding it is withheld: an interior cell before a total, a non-zero cell before a zero (a
  zero partner would show the withheld cell's value as the upper bound of its range), the smallest
  first. The loop ends because a table with every cell withheld reveals nothing.
* Every withheld cell is shown as :data:`MARK` with the footnote :data:`FOOTNOTE`, the same way
  throughout the report, as ONS tables mark confidential cells.

Everything here is pure: DataFrames in, boolean masks out. The report decides where to apply them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MARK = "[c]"
FOOTNOTE = ("[c] Confidential: withheld because it rests on fewer than {threshold} councils or respondents, "
            "or because it would let a withheld figure be worked out from the totals.")
TOTAL = "Total"


def small(values: pd.Series | pd.DataFrame | np.ndarray, threshold: int) -> np.ndarray:
    """True where a base (councils or respondents a figure rests on) is below ``threshold``, zero and
    missing included: a share or mean of fewer is withheld."""
    array = np.asarray(values, dtype=float)
    return np.isnan(array) | (array < threshold)


def primary(values: pd.Series | pd.DataFrame | np.ndarray, threshold: int) -> np.ndarray:
    """True where a count of answers is disclosive on its own: 1 to ``threshold`` − 1, or missing.

    Zero is not (module docstring): whether a zero shows a whole group's answer depends on the table,
    which :func:`protect_counts` (``partition``) and :func:`protect_binary` decide.
    """
    array = np.asarray(values, dtype=float)
    return np.isnan(array) | ((array > 0) & (array < threshold))


def with_totals(counts: pd.DataFrame, rows: bool = True, columns: bool = True) -> pd.DataFrame:
    """``counts`` with a :data:`TOTAL` column (row sums) and/or a :data:`TOTAL` row (column sums)."""
    out = counts.copy()
    if rows:
        out[TOTAL] = out.sum(axis=1)
    if columns:
        out.loc[TOTAL] = out.sum(axis=0)
    return out


def _constraints(shape: tuple[int, int], rows: bool, columns: bool) -> np.ndarray:
    """Additive constraints of a table with margins, one per row total and column total, over all cells.

    Cells are indexed row-major over the table *including* its margins: a row total equals the sum
    of its row's interior cells, a column total the sum of its column's (the grand total is both).
    """
    n_rows, n_cols = shape
    index = np.arange(n_rows * n_cols).reshape(shape)
    inner_rows = n_rows - 1 if columns else n_rows  # rows holding interior cells
    inner_cols = n_cols - 1 if rows else n_cols
    equations = []
    if rows:
        for r in range(n_rows):
            eq = np.zeros(n_rows * n_cols)
            eq[index[r, :inner_cols]] = 1
            eq[index[r, n_cols - 1]] = -1
            equations.append(eq)
    if columns:
        for c in range(n_cols):
            eq = np.zeros(n_rows * n_cols)
            eq[index[:inner_rows, c]] = 1
            eq[index[n_rows - 1, c]] = -1
            equations.append(eq)
    return np.array(equations) if equations else np.zeros((0, n_rows * n_cols))


def exposed(hidden: np.ndarray, equations: np.ndarray) -> np.ndarray:
    """Which withheld cells (``hidden`` True, a flat mask over all cells) the published cells determine.

    ``equations`` has one row per published additive relation (coefficients over the cells, summing to
    zero: a total is a cell with coefficient −1). A withheld cell is determined when its unit vector is
    in the row space of the equations restricted to the withheld cells.
    """
    hidden = np.asarray(hidden, dtype=bool)
    out = np.zeros_like(hidden)
    cells = np.flatnonzero(hidden)
    if cells.size == 0 or equations.shape[0] == 0:
        return out
    system = equations[:, cells]
    system = system[np.abs(system).sum(axis=1) > 0]
    if system.shape[0] == 0:
        return out
    rank = np.linalg.matrix_rank(system)
    for position, cell in enumerate(cells):
        unit = np.zeros(len(cells))
        unit[position] = 1
        out[cell] = np.linalg.matrix_rank(np.vstack([system, unit])) == rank
    return out


def recoverable(mask: np.ndarray, rows: bool = True, columns: bool = True) -> np.ndarray:
    """Which withheld cells (``mask`` True) of a table with margins can be worked out exactly.

    ``mask`` covers the whole table including its margin row/column (margins last).
    """
    mask = np.asarray(mask, dtype=bool)
    return exposed(mask.ravel(), _constraints(mask.shape, rows, columns)).reshape(mask.shape)


def suppress(values: np.ndarray, hidden: np.ndarray, equations: np.ndarray, rank: np.ndarray,
             fixed: np.ndarray | None = None) -> np.ndarray:
    """Secondary suppression: ``hidden`` (flat, the primary cells) grown until no withheld cell is exposed.

    While withheld cells are determined by ``equations``, the cheapest published cell of an equation
    holding one of them is withheld too (any published cell when those equations have none left), by
    ``rank`` of the cell (0 interior, higher for totals), then the fewest withheld cells it would leave
    exposed, then a non-zero before a zero, the smaller value, the first. ``fixed`` cells are published whatever happens (a base shown elsewhere).
    Returns the new mask; ``hidden`` is not changed.
    """
    values = np.asarray(values, dtype=float)
    hidden = np.asarray(hidden, dtype=bool).copy()
    free = ~np.asarray(fixed, dtype=bool) if fixed is not None else np.ones_like(hidden)
    while True:
        open_cells = np.flatnonzero(exposed(hidden, equations))
        if open_cells.size == 0:
            return hidden
        linked = np.abs(equations[(equations[:, open_cells] != 0).any(axis=1)]).sum(axis=0) > 0
        candidates = np.flatnonzero(linked & ~hidden & free)
        if candidates.size == 0:
            candidates = np.flatnonzero(~hidden & free)
        if candidates.size == 0:  # cannot happen for a consistent table; withhold everything rather than leak
            hidden[free] = True
            return hidden
        def cost(j: int) -> tuple:
            trial = hidden.copy()
            trial[j] = True  # how many withheld cells the partner would still leave exposed
            return (rank[j], int(exposed(trial, equations).sum()), values[j] == 0, values[j], j)

        hidden[min(candidates, key=cost)] = True


def _rectangles(values: np.ndarray, mask: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Partners for a two-way table with both margins: each withheld cell alone in its row or column gets
    the cheapest rectangle through it (three more cells closing a cycle of rows and columns, which no
    margin can then open): fewest new cells, then fewest totals, then fewest zeros, then the smallest sum.
    In a two-way table a withheld cell can be worked out exactly when it lies on no such cycle."""
    mask = mask.copy()
    n_rows, n_cols = values.shape
    while True:
        lonely = [(r, c) for r, c in np.argwhere(mask) if mask[r].sum() < 2 or mask[:, c].sum() < 2]
        if not lonely:
            return mask
        r, c = lonely[0]
        best = None
        for i in range(n_rows):
            for j in range(n_cols):
                if i == r or j == c:
                    continue
                cells = [(r, j), (i, c), (i, j)]
                new = [x for x in cells if not mask[x]]
                cost = (len(new), sum(margin[x] for x in new), sum(values[x] == 0 for x in new),
                        sum(values[x] for x in new), i, j)
                if best is None or cost < best[0]:
                    best = (cost, new)
        if best is None or not best[1]:  # a single row or column: left to the general loop
            return mask
        for x in best[1]:
            mask[x] = True


def protect_counts(counts: pd.DataFrame, threshold: int, rows: bool = True, columns: bool = True,
                   partition: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add totals to a table of answer counts and say which cells to withhold.

    Returns ``(table, mask)``: the counts with a :data:`TOTAL` column (``rows``) and row (``columns``),
    and a same-shaped boolean frame, True for a withheld cell. Every published count is zero or at least
    ``threshold``, and no withheld cell can be recovered from the published ones. ``partition``: each
    row is one group's answers spread over every category of a question (its total is the group), so a
    row with all its answers in one category is withheld whole (group disclosure: the zeros beside it
    would tell every member's answer); otherwise the row leaves some answers out (e.g. missing answers
    by reason, where the respondents who answered are not counted) and its zeros are published.
    """
    table = with_totals(counts.astype(float), rows=rows, columns=columns)
    values = table.to_numpy(dtype=float)
    mask = primary(values, threshold)
    inner = (slice(0, values.shape[0] - 1 if columns else values.shape[0]),
             slice(0, values.shape[1] - 1 if rows else values.shape[1]))
    if partition:
        body = values[inner]
        whole = ((body > 0).sum(axis=1) == 1) & (np.nansum(body, axis=1) > 0)
        mask[inner][whole] = True
    margin = np.ones(values.shape, dtype=int)
    margin[inner] = 0
    if rows and columns:
        mask = _rectangles(values, mask, margin)
    hidden = suppress(values.ravel(), mask.ravel(), _constraints(values.shape, rows, columns), margin.ravel())
    return table, pd.DataFrame(hidden.reshape(values.shape), index=table.index, columns=table.columns)


def protect_binary(selected: pd.Series | np.ndarray, base: pd.Series | np.ndarray, threshold: int) -> np.ndarray:
    """Mask for yes/no answers published with their base (an option selected, a theme mentioned, a yes).

    Withheld where the base is below ``threshold``, or where those who said yes or those who did not
    number 1 to ``threshold`` − 1 (either follows from the other and the base), or where everybody or
    nobody said yes (group disclosure: it tells each member's answer).
    """
    selected, base = np.asarray(selected, dtype=float), np.asarray(base, dtype=float)
    others = base - selected
    return small(base, threshold) | small(selected, threshold) | small(others, threshold)


def protect_distribution(counts: pd.DataFrame, base: pd.Series, threshold: int,
                         top: Sequence[object] = ()) -> tuple[pd.DataFrame, pd.Series]:
    """The plan for answers spread over a scale's levels, one row per wave, published as percentages
    beside the number answering (``base``) and, when ``top`` names levels, the share at or above them.

    The percentages with the base are the counts, so they are protected as counts: each row as a
    partition (:func:`protect_counts`) with its base as the row total, and the share of the ``top``
    levels as one more published sum (so a withheld level never follows from it). A row whose base is
    below ``threshold`` is withheld whole. Returns the mask of the level cells and that of the share.
    """
    levels = counts.astype(float).fillna(0.0)
    top_columns = [c for c in levels.columns if c in set(top)]
    out = pd.DataFrame(False, index=levels.index, columns=levels.columns)
    shares = pd.Series(False, index=levels.index)
    for row, n in zip(levels.index, base.to_numpy(dtype=float)):
        if small(n, threshold):
            out.loc[row], shares[row] = True, True
            continue
        values = np.append(levels.loc[row].to_numpy(), [n] + ([levels.loc[row, top_columns].sum()] if top_columns else []))
        k = levels.shape[1]
        hidden = primary(values, threshold)
        hidden[k] = False  # the base is published (it is at least the threshold)
        if top_columns:  # the share counted: those at or above and those below, either follows from the other
            hidden[k + 1] = bool(primary(values[k + 1], threshold) | primary(n - values[k + 1], threshold))
        if ((values[:k] > 0).sum() == 1) and n > 0:  # every answer at one level: group disclosure
            hidden[:k] = True
        equations = [np.r_[np.ones(k), -1.0, np.zeros(len(values) - k - 1)]]
        if top_columns:
            equations.append(np.r_[[1.0 if c in top_columns else 0.0 for c in levels.columns], 0.0, -1.0])
        rank = np.r_[np.zeros(k, dtype=int), 2, 1][: len(values)]
        fixed = np.arange(len(values)) == k
        hidden = suppress(values, hidden, np.array(equations), rank, fixed)
        out.loc[row] = hidden[:k]
        shares[row] = bool(hidden[k + 1]) if top_columns else False
    return out, shares


def protect_rates(bases: pd.Series | pd.DataFrame, threshold: int, numerators: pd.Series | pd.DataFrame | None = None) -> np.ndarray:
    """Mask for percentages or means: True where the base, or the count behind a share, is small."""
    mask = small(bases, threshold)
    if numerators is not None:
        mask = mask | small(numerators, threshold)
    return mask


def format_cells(table: pd.DataFrame, mask: pd.DataFrame | np.ndarray | None, fmt: str = "{:,.0f}") -> pd.DataFrame:
    """Text for display: each value formatted with ``fmt``, withheld cells as :data:`MARK`, NaN as ``–``."""
    values = table.to_numpy(dtype=object)
    hidden = np.zeros(values.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    text = np.empty(values.shape, dtype=object)
    for index, value in np.ndenumerate(values):
        if hidden[index]:
            text[index] = MARK
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            text[index] = "–"
        else:
            text[index] = fmt.format(value)
    return pd.DataFrame(text, index=table.index, columns=table.columns)
