"""Statistical disclosure control for the public report: which cells to withhold, and how to mark them.

The rules follow ONS practice for small-area and small-population tables:

* **Primary suppression**: a count below ``threshold`` (``study.min_cell``, 5 by default) is withheld,
  and so is any percentage or mean whose base (councils or respondents it rests on) is below it.
  Zero counts are withheld too: "nobody in this group" is itself a disclosure about everybody in it.
* **Secondary suppression**: where a table also publishes row or column totals, a withheld cell must
  not be recoverable by subtraction. A withheld value is recoverable exactly when its unit vector lies
  in the row space of the table's additive constraints restricted to the withheld cells (the
  published cells only move to the right-hand side). While any withheld cell is recoverable, the
  smallest published cell in its row or column is withheld as well; the loop ends because a table
  with every cell withheld reveals nothing.
* Every withheld cell is shown as :data:`MARK` with the footnote :data:`FOOTNOTE`, the same way
  throughout the report, as ONS tables mark confidential cells.

Everything here is pure: DataFrames in, boolean masks out. The report decides where to apply them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MARK = "[c]"
FOOTNOTE = ("[c] Confidential: withheld because it rests on fewer than {threshold} councils or respondents, "
            "or because it would let a withheld figure be worked out from the totals.")
TOTAL = "Total"


def small(values: pd.Series | pd.DataFrame | np.ndarray, threshold: int) -> np.ndarray:
    """True where a count or base is below ``threshold`` (missing bases count as small)."""
    array = np.asarray(values, dtype=float)
    return np.isnan(array) | (array < threshold)


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


def recoverable(mask: np.ndarray, rows: bool = True, columns: bool = True) -> np.ndarray:
    """Which withheld cells (``mask`` True) of a table with margins can be worked out exactly.

    ``mask`` covers the whole table including its margin row/column. A withheld cell is recoverable
    when its unit vector is in the row space of the constraints restricted to withheld cells.
    """
    mask = np.asarray(mask, dtype=bool)
    flat = mask.ravel()
    hidden = np.flatnonzero(flat)
    out = np.zeros_like(flat)
    if hidden.size == 0:
        return out.reshape(mask.shape)
    system = _constraints(mask.shape, rows, columns)[:, hidden]
    system = system[np.abs(system).sum(axis=1) > 0]
    if system.shape[0] == 0:
        return out.reshape(mask.shape)
    rank = np.linalg.matrix_rank(system)
    for position, cell in enumerate(hidden):
        unit = np.zeros(len(hidden))
        unit[position] = 1
        out[cell] = np.linalg.matrix_rank(np.vstack([system, unit])) == rank
    return out.reshape(mask.shape)


def protect_counts(counts: pd.DataFrame, threshold: int, rows: bool = True, columns: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add totals to a table of counts and say which cells to withhold.

    Returns ``(table, mask)``: the counts with a :data:`TOTAL` column (``rows``) and row
    (``columns``), and a same-shaped boolean frame, True for a withheld cell. Every published cell is
    at least ``threshold`` and no withheld cell can be recovered from the published ones.
    """
    table = with_totals(counts.astype(float), rows=rows, columns=columns)
    values = table.to_numpy(dtype=float)
    mask = small(values, threshold)
    while True:
        exposed = recoverable(mask, rows, columns)
        if not exposed.any():
            break
        r, c = np.argwhere(exposed)[0]
        candidates = [(values[r, j], r, j) for j in range(values.shape[1]) if not mask[r, j]]
        candidates += [(values[i, c], i, c) for i in range(values.shape[0]) if not mask[i, c]]
        if not candidates:  # cannot happen for a consistent table; withhold everything rather than leak
            mask[:] = True
            break
        last_row, last_col = values.shape[0] - 1, values.shape[1] - 1

        def cost(candidate: tuple[float, int, int]) -> tuple[bool, float, int, int]:
            value, i, j = candidate  # prefer an interior cell, then the smallest, then the first
            return ((columns and i == last_row) or (rows and j == last_col), value, i, j)

        _, i, j = min(candidates, key=cost)
        mask[i, j] = True
    return table, pd.DataFrame(mask, index=table.index, columns=table.columns)


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
