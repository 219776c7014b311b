"""Disclosure control: no published cell below the threshold, no withheld cell recoverable from totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space

from impactstudy.report.disclosure import (MARK, TOTAL, exposed, format_cells, protect_binary, protect_counts,
                                           protect_distribution, protect_rates, recoverable)


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
@given(cells=tables, threshold=st.integers(1, 10), rows=st.booleans(), columns=st.booleans(), partition=st.booleans())
def test_no_small_cell_published_and_nothing_recoverable(cells, threshold, rows, columns, partition):
    counts = pd.DataFrame(cells, columns=[f"c{j}" for j in range(len(cells[0]))])
    table, mask = protect_counts(counts, threshold, rows=rows, columns=columns, partition=partition)
    values, hidden = table.to_numpy(), mask.to_numpy()
    assert ((values[~hidden] == 0) | (values[~hidden] >= threshold)).all()  # zeros are published
    assert not (determined(values, hidden, rows, columns) & hidden).any()
    if partition:  # no published row shows a whole group in one category
        body, shown = values[: len(counts), : counts.shape[1]], ~hidden[: len(counts), : counts.shape[1]]
        for r in range(len(counts)):
            if (body[r] > 0).sum() == 1:
                assert not shown[r].any(), (r, body[r])
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


def test_zeros_are_published_and_partners_are_not_zeros():
    """The missing-answers table of a small study: zeros say no respondent gave that reason, which tells
    nobody's answer; a withheld 3 takes a non-zero partner in its row and column where there is one (a
    zero partner would give the 3 as the upper end of its range), not the smaller zero."""
    counts = pd.DataFrame({"dont_know": [3, 8, 6], "no_answer": [0, 0, 9], "not_applicable": [8, 7, 0]},
                          index=["q1", "q2", "q3"])
    table, mask = protect_counts(counts, 5)
    assert mask.loc["q1", "dont_know"]
    assert not (mask.to_numpy() & (table.to_numpy() == 0)).any()  # every zero published, none a partner
    assert mask.loc["q1", "not_applicable"] and mask.loc["q2", "dont_know"]
    assert not recoverable(mask.to_numpy()).any()
    assert mask.to_numpy().sum() == 4  # 3, its row partner 8, its column partner 8, and 7 to close the loop


def test_a_group_all_in_one_category_is_withheld_whole():
    counts = pd.DataFrame({"a": [0, 4], "b": [12, 6], "c": [0, 5]}, index=["all_b", "mixed"])
    _, mask = protect_counts(counts, 5, rows=True, columns=False, partition=True)
    assert mask.loc["all_b", ["a", "b", "c"]].all()  # the zeros would tell every member answered b
    assert not mask.loc["all_b", TOTAL]
    _, plain = protect_counts(counts, 5, rows=True, columns=False)
    assert not plain.loc["all_b"].any()  # not a partition (e.g. missing answers by reason): published


def test_binary_answers_withhold_the_complement_and_everyone_or_nobody():
    selected = np.array([13, 2, 0, 15, 8, 20])
    base = np.array([15, 15, 15, 15, 15, 4])
    assert protect_binary(selected, base, 5).tolist() == [True, True, True, True, False, True]


rows_of_levels = st.lists(st.integers(0, 30), min_size=2, max_size=6)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(rows_of_levels.filter(lambda r: sum(r) > 0), min_size=1, max_size=4).filter(
    lambda rs: len({len(r) for r in rs}) == 1), threshold=st.integers(2, 8), top=st.integers(0, 5))
def test_distribution_plan_hides_nothing_that_follows_from_the_base_or_the_share(rows, threshold, top):
    counts = pd.DataFrame(rows, columns=list(range(1, len(rows[0]) + 1)), dtype=float)
    base = counts.sum(axis=1)
    top_levels = [lv for lv in counts.columns if lv > len(rows[0]) - top] if top else []
    levels, shares = protect_distribution(counts, base, threshold, top_levels)
    for r in counts.index:
        values, n = counts.loc[r].to_numpy(), base[r]
        hidden = levels.loc[r].to_numpy()
        if n < threshold:
            assert hidden.all() and shares[r]
            continue
        assert ((values[~hidden] == 0) | (values[~hidden] >= threshold)).all()
        if (values > 0).sum() == 1:
            assert hidden.all()  # group disclosure
        k = len(values)
        cells = np.append(values, [n, values[[c in top_levels for c in counts.columns]].sum()])
        mask = np.append(hidden, [False, bool(shares[r]) if top_levels else True])
        eqs = [np.r_[np.ones(k), -1, 0]]
        if top_levels:
            eqs.append(np.r_[[1.0 if c in top_levels else 0.0 for c in counts.columns], 0, -1])
            if not shares[r]:
                t = cells[-1]
                assert (t == 0 or t >= threshold) and (n - t == 0 or n - t >= threshold)
        assert not (exposed(mask, np.array(eqs)) & np.append(hidden, [False, False])).any()
