"""Disclosure control: no published cell below the threshold, no withheld cell recoverable from totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space

from impactstudy.report.disclosure import MARK, TOTAL, format_cells, protect_counts, protect_rates, recoverable


def determined(table: np.ndarray, mask: np.ndarray, rows: bool, columns: bool) -> np.ndarray:
    """Independent check: a withheld cell is determined when every solution of the margin equations,
    with the published cells fixed, gives it the same value, i.e. the null space is zero on it."""
    n_rows, n_cols = table.shape
    idx = np.arange(table.size).reshape(table.shape)
    inner_r = n_rows - 1 if columns else n_rows
    inner_c = n_cols - 1 if rows else n_cols
    eqs = []
    if rows:
        for r in range(n_rows):
            e = np.zeros(table.size); e[idx[r, :inner_c]] = 1; e[idx[r, -1]] = -1; eqs.append(e)
    if columns:
        for c in range(n_cols):
            e = np.zeros(table.size); e[idx[:inner_r, c]] = 1; e[idx[-1, c]] = -1; eqs.append(e)
    hidden = np.flatnonzero(mask.ravel())
    out = np.zeros(table.size, dtype=bool)
    if not hidden.size or not eqs:
        return out.reshape(table.shape)
    basis = null_space(np.array(eqs)[:, hidden])
    for k, cell in enumerate(hidden):
        out[cell] = basis.shape[1] == 0 or np.allclose(basis[k], 0, atol=1e-9)
    return out.reshape(table.shape)


tables = st.integers(1, 5).flatmap(
    lambda r: st.integers(1, 5).flatmap(
        lambda c: st.lists(st.lists(st.integers(0, 40), min_size=c, max_size=c), min_size=r, max_size=r)))


@settings(max_examples=150, deadline=None)
@given(cells=tables, threshold=st.integers(1, 10), rows=st.booleans(), columns=st.booleans())
def test_no_small_cell_published_and_nothing_recoverable(cells, threshold, rows, columns):
    counts = pd.DataFrame(cells, columns=[f"c{j}" for j in range(len(cells[0]))])
    table, mask = protect_counts(counts, threshold, rows=rows, columns=columns)
    values, hidden = table.to_numpy(), mask.to_numpy()
    assert (values[~hidden] >= threshold).all()
    assert not (determined(values, hidden, rows, columns) & hidden).any()
    # the published totals are the true totals
    if rows:
        assert np.allclose(table[TOTAL].iloc[: len(counts)], counts.sum(axis=1))


def test_single_small_cell_gets_a_partner_in_its_row_and_column():
    counts = pd.DataFrame({"a": [3, 10], "b": [20, 30]}, index=["x", "y"])
    table, mask = protect_counts(counts, 5)
    assert mask.loc["x", "a"]
    assert mask.loc["x"].sum() >= 2 and mask["a"].sum() >= 2
    assert not recoverable(mask.to_numpy()).any()
    assert table.loc[TOTAL, TOTAL] == 63


def test_nothing_small_nothing_withheld():
    table, mask = protect_counts(pd.DataFrame({"a": [5, 6], "b": [7, 8]}), 5)
    assert not mask.to_numpy().any()
    assert list(table.columns) == ["a", "b", TOTAL]


def test_one_column_with_total_hides_a_second_cell():
    counts = pd.DataFrame({"n": [2, 9, 12]}, index=["p", "q", "r"])
    _, mask = protect_counts(counts, 5, rows=False, columns=True)
    assert mask["n"].tolist() == [True, True, False, False]  # the next smallest, not the total


def test_rates_withheld_on_small_base_or_numerator():
    assert protect_rates(pd.Series([4, 10, 10, np.nan]), 5, pd.Series([2, 2, 6, 1])).tolist() == [True, True, False, True]


def test_format_marks_withheld_cells_the_same_way():
    table = pd.DataFrame({"a": [1.0, 1234.0, np.nan]})
    text = format_cells(table, np.array([[True], [False], [False]]))
    assert text["a"].tolist() == [MARK, "1,234", "–"]
