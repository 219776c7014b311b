"""One outcome's council x year panel, ready for the estimators, and what was set aside to make it.

The estimators need a *balanced* panel (every council observed in every year of the outcome), a
treatment cohort per council (the first outcome year its intervention could affect; 0 for councils
never treated in the panel's years) and, for a doubly-robust fit, covariates fixed before treatment.
:func:`build_panel` makes that frame and says, in plain words, which councils it set aside and why —
the same treatment R's ``did::att_gt`` applies silently (it balances the panel and drops cohorts
treated in the first period), made visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from impactstudy.errors import DataError

PANEL_COLUMNS = ["council_code", "year", "y", "cohort"]


@dataclass(frozen=True)
class Panel:
    """A balanced panel for one outcome: ``frame`` has ``council_code, year, y, cohort`` + covariates.

    ``cohort`` is 0 for never treated (within the panel). ``notes`` are the plain-words warnings
    about councils and cohorts set aside; ``set_aside`` counts councils by reason.
    """

    outcome: str
    frame: pd.DataFrame
    years: tuple[int, ...]
    notes: tuple[str, ...] = ()
    set_aside: Mapping[str, int] = field(default_factory=dict)

    # The derived views below are computed once per panel (the estimators ask for them dozens of times);
    # ``frame`` is never modified after the panel is built, so they cannot go stale.
    @cached_property
    def cohorts(self) -> pd.Series:
        """Cohort per council (index ``council_code``)."""
        return self.frame.drop_duplicates("council_code").set_index("council_code")["cohort"]

    @property
    def n_treated(self) -> int:
        return int((self.cohorts > 0).sum())

    def matrix(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(Y, cohort, councils)``: Y is councils x years in :attr:`years` order (read-only arrays)."""
        Y, cohort, councils = self._matrix
        return Y, cohort, list(councils)

    @cached_property
    def _matrix(self) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        wide = self.frame.pivot(index="council_code", columns="year", values="y")
        wide = wide[list(self.years)]
        Y = wide.to_numpy(dtype=float)
        cohort = self.cohorts.reindex(wide.index).to_numpy().astype(int)
        Y.setflags(write=False)
        cohort.setflags(write=False)
        return Y, cohort, tuple(wide.index)


def build_panel(
    values: pd.DataFrame,
    outcome: str,
    cohorts: Mapping[str, int] | pd.Series,
    anticipation: int = 0,
    covariates: pd.DataFrame | None = None,
    covariate_names: Sequence[str] = (),
) -> Panel:
    """The balanced panel of ``outcome`` from tidy ``values`` (``council_code, year, value`` …).

    ``cohorts`` maps council codes to their first treated outcome year; councils absent from it are
    never treated. ``covariates`` (index ``council_code``) supplies ``covariate_names``; a council
    without them is set aside from this fit. Raises :class:`DataError` when nothing is left to
    estimate (no treated or no comparison council).
    """
    rows = values[values["outcome"] == outcome]
    if rows.empty:
        raise DataError(f"outcome '{outcome}': no values in the outcome files")
    years = tuple(sorted(int(y) for y in rows["year"].unique()))
    notes: list[str] = []
    set_aside: dict[str, int] = {}

    observed = rows[rows["value"].notna()]
    per_council = observed.groupby("council_code")["year"].nunique()
    all_councils = pd.Index(rows["council_code"].unique())
    complete = per_council[per_council == len(years)].index
    incomplete = all_councils.difference(complete)
    if len(incomplete):
        reasons = rows[rows["council_code"].isin(incomplete) & rows["value"].isna()]["missing_reason"]
        top = ", ".join(f"{r} ({n})" for r, n in reasons.value_counts().head(3).items()) or "years absent"
        set_aside["incomplete_years"] = len(incomplete)
        notes.append(f"{len(incomplete)} council(s) without a value in every year {years[0]}-{years[-1]} "
                     f"set aside (balanced panel; missing cells: {top})")

    cohort = pd.Series(cohorts, dtype="float64").reindex(complete)
    cohort = cohort.where(cohort > 0)  # 0 or absent: never treated
    late = cohort > years[-1]
    if late.any():
        notes.append(f"{int(late.sum())} council(s) first treated after {years[-1]} count as not treated "
                     "in these years")
    cohort = cohort.where(~late)
    early = cohort <= years[0] + anticipation
    if early.any():
        set_aside["treated_before_data"] = int(early.sum())
        notes.append(f"{int(early.sum())} council(s) treated by {years[0] + anticipation} set aside: no "
                     "year before treatment to compare with")
    keep = complete[~early.to_numpy()]
    cohort = cohort.reindex(keep).fillna(0).astype(int)

    frame = observed[observed["council_code"].isin(keep)][["council_code", "year", "value"]]
    frame = frame.rename(columns={"value": "y"}).astype({"year": int})
    frame["cohort"] = frame["council_code"].map(cohort).astype(int)
    if covariate_names:
        if covariates is None:
            raise DataError(f"outcome '{outcome}': covariates {', '.join(covariate_names)} declared but "
                            "no council covariates were given")
        cov = covariates.reindex(keep)[list(covariate_names)]
        lacking = cov.isna().any(axis=1)
        if lacking.any():
            set_aside["missing_covariates"] = int(lacking.sum())
            notes.append(f"{int(lacking.sum())} council(s) without {', '.join(covariate_names)} set aside "
                         "from the covariate-adjusted fit")
            frame = frame[~frame["council_code"].isin(cov.index[lacking])]
        frame = frame.join(cov, on="council_code")
    frame = frame.sort_values(["council_code", "year"]).reset_index(drop=True)
    n_treated = frame.loc[frame["cohort"] > 0, "council_code"].nunique()
    n_never = frame.loc[frame["cohort"] == 0, "council_code"].nunique()
    if n_treated == 0:
        raise DataError(f"outcome '{outcome}': no treated council has values in every year "
                        f"{years[0]}-{years[-1]} with a year before its treatment; nothing to estimate")
    if n_never == 0 and frame["cohort"].nunique() < 2:
        raise DataError(f"outcome '{outcome}': every council is treated in the same year; there is no "
                        "comparison council")
    return Panel(outcome, frame, years, tuple(notes), set_aside)
