"""HTML-ready tables: the report's one table shape, built from DataFrames with disclosure masks applied.

A :class:`Table` is plain text cells (the template escapes them) with a caption, column headers, the
first column as row headers (``<th scope="row">``) and which columns are numeric (right-aligned). The
data behind every table is kept as a DataFrame with withheld cells already ``[c]``, so the page and
any CSV export show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impactstudy.report.disclosure import MARK, format_cells, protect_binary, protect_counts, protect_rates, small


@dataclass(frozen=True)
class Table:
    """A table for the page: text cells, headers and notes."""

    id: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def withheld(self) -> bool:
        """True when some cell is withheld (the page then shows the [c] footnote)."""
        return any(MARK in cell for row in self.rows for cell in row)


def table(id: str, caption: str, frame: pd.DataFrame, numeric: Sequence[str] = (), notes: Sequence[str] = ()) -> Table:
    """A :class:`Table` from a frame of display text (its columns become headers)."""
    text = frame.astype(object).where(frame.notna(), "–")
    return Table(id=id, caption=caption, header=tuple(str(c) for c in frame.columns),
                 rows=tuple(tuple(str(v) for v in row) for row in text.itertuples(index=False)),
                 numeric=tuple(c in numeric for c in frame.columns), notes=tuple(notes))


def from_rows(id: str, caption: str, header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[str] = (),
              notes: Sequence[str] = ()) -> Table:
    """A :class:`Table` from lists of display text: no DataFrame, for the many small council-page tables."""
    return Table(id=id, caption=caption, header=tuple(header), rows=tuple(tuple(r) for r in rows),
                 numeric=tuple(h in numeric for h in header), notes=tuple(notes))


def pct(value: float) -> str:
    """A share as a whole percentage."""
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.0f}%"


def interval(low: float, high: float, digits: int = 2, scale: float = 1.0) -> str:
    """'low to high' with a true minus sign, or '–' when the interval is missing."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "–"
    return f"{low * scale:.{digits}f} to {high * scale:.{digits}f}".replace("-", "\u2212")


def number(value: float, digits: int = 2, signed: bool = False) -> str:
    """A number with fixed digits and a true minus sign."""
    if value is None or not np.isfinite(value):
        return "–"
    return (f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}").replace("-", "\u2212")


def count_mask(counts: pd.Series, threshold: int | None) -> np.ndarray:
    """Primary suppression of a column of counts with no published total (none when ``threshold`` is None)."""
    if threshold is None:
        return np.zeros(len(counts), dtype=bool)
    return protect_rates(counts.to_numpy(dtype=float), threshold)


def binary_mask(selected: pd.Series, base: pd.Series, threshold: int | None) -> np.ndarray:
    """Suppression of yes/no answers beside their base (none when ``threshold`` is None): see
    :func:`impactstudy.report.disclosure.protect_binary`."""
    if threshold is None:
        return np.zeros(len(selected), dtype=bool)
    return protect_binary(selected.to_numpy(dtype=float), base.to_numpy(dtype=float), threshold)


def partition_mask(frame: pd.DataFrame, keys: Sequence[str], part: str, total: str, count: str,
                   threshold: int | None) -> np.ndarray:
    """Suppression of counts that add up to a published total within each ``keys`` slice.

    ``part`` names the column whose value ``total`` marks the total row (e.g. ``group == "all"``);
    the other rows of a slice are its parts (e.g. status levels). Each slice is protected as a
    one-column table with a column total (primary and secondary suppression).
    """
    mask = np.zeros(len(frame), dtype=bool)
    if threshold is None or frame.empty:
        return mask
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    small_any = pd.Series(small(frame[count], threshold), index=frame.index).groupby(
        [frame[k] for k in keys], sort=False, observed=True).transform("any")
    for _, cell in frame[small_any.to_numpy()].groupby(list(keys), sort=False, observed=True):
        # slices with no small count need no suppression (protect_counts would withhold nothing there)
        parts = cell[cell[part] != total]
        totals = cell[cell[part] == total]
        if parts.empty:
            mask[positions[cell.index]] = count_mask(cell[count], threshold)
            continue
        counts = pd.DataFrame({count: parts[count].to_numpy(dtype=float)})
        _, hidden = protect_counts(counts, threshold, rows=False, columns=True)
        mask[positions[parts.index]] = hidden[count].to_numpy()[:-1]
        if len(totals):
            mask[positions[totals.index]] = hidden[count].to_numpy()[-1]
    return mask


def counts_text(values: pd.Series, mask: np.ndarray) -> list[str]:
    """Counts as text with thousands separators, withheld ones as [c]."""
    return format_cells(pd.DataFrame({"v": values.to_numpy(dtype=float)}), mask.reshape(-1, 1))["v"].tolist()
