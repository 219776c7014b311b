"""Expectations against outcomes: did councils achieve what they expected of the review?

Each ``[[expectations]]`` pair in the config names a baseline multiple-response set of expected
outcomes and a follow-up set of achieved outcomes with the same options. The unit is the council, as
the study asks: a council expected (or achieved) an outcome when at least half of its respondents in
that wave selected it. For each option: among councils that expected it, the share that achieved it
(Wilson interval), and McNemar's exact test of achieved against expected over councils answering both.
"""

from __future__ import annotations

import pandas as pd

from impactstudy.config import Study
from impactstudy.stats.proportions import expectations_vs_outcomes

COLUMNS = ["expected", "achieved", "option", "option_label", "model", "contrast", "group", "estimate", "std_error",
           "ci_low", "ci_high", "p_value", "n_obs", "n_councils", "correction", "warning"]


def council_selected(panel: pd.DataFrame, measure: str) -> pd.Series:
    """1 where at least half of a council's respondents selected the option, else 0 (councils answering)."""
    rows = panel[(panel["measure"] == measure) & panel["value"].notna()]
    share = rows.groupby("council_code", observed=True)["value"].mean()
    return (share >= 0.5).astype(float)


def analyse(study: Study, panel: pd.DataFrame) -> pd.DataFrame:
    """The ``expectations.csv`` table for every declared pair, overall and by grouping covariate."""
    group_by = study.councils.group_by if study.councils else ()
    covariates = panel[["council_code", *group_by]].drop_duplicates("council_code").set_index("council_code")
    frames = []
    for pair in study.expectations:
        achieved_by_option = {m.option: m for m in study.set_members(pair.achieved)}
        for expected in study.set_members(pair.expected):
            achieved = achieved_by_option.get(expected.option)
            if achieved is None:
                continue
            units = pd.DataFrame({"expected": council_selected(panel, expected.name),
                                  "achieved": council_selected(panel, achieved.name)}).join(covariates)
            units = units.rename_axis("council_code").reset_index()
            later, earlier = achieved.waves[0], expected.waves[0]
            for group in (None, *group_by):
                rows = expectations_vs_outcomes(units, later=later, earlier=earlier, group=group)
                rows.insert(0, "option_label", expected.option_label)
                rows.insert(0, "option", expected.option)
                rows.insert(0, "achieved", achieved.name)
                rows.insert(0, "expected", expected.name)
                frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["warning"] = out["warning"].fillna("")
    return out.reindex(columns=COLUMNS)
