"""Expectations against outcomes: did councils achieve what they expected of the review?

Each ``[[expectations]]`` pair in the config names a baseline multiple-response set of expected
outcomes and a follow-up set of achieved outcomes with the same options.

The unit of analysis is the **council**, throughout: every share, test and interval in
``expectations.csv`` counts councils, never respondents (the respondents of the two waves are often
different people, so respondent pairs would be few and unrepresentative, and the study asks what
councils expected and achieved). A council *expected* (or *achieved*) an outcome when **more than
half** of its respondents in that wave selected it, and did not when fewer than half did. A council
whose respondents **split evenly** (say one of two) has no majority either way: it is left out of that
option's comparison and counted in ``n_split`` (rather than counted as a yes, which would favour
councils with two respondents over those with one).

For each option, over the councils classified at both waves (``n_obs``): the share of them that
expected it (``expected_share``) and that achieved it (``achieved_share``); McNemar's exact test of
achieved against expected, with the difference in those shares and the interval that inverts the same
exact test (Clopper–Pearson on the councils that changed, so interval and p-value always agree); and,
among councils that expected it, the share that achieved it (Wilson interval; no test).
"""

from __future__ import annotations

import pandas as pd

import numpy as np

from impactstudy.model.stats import tidy
from impactstudy.model.stats.proportions import expectations_vs_outcomes
from impactstudy.study.config import Study


def _council_shares(units: pd.DataFrame, group: str | None) -> pd.DataFrame:
    """Per group label: the share of classified councils expecting and achieving, and how many councils
    answered at both waves but split evenly at one of them (left out of the comparison)."""
    out = {}
    for label, level in tidy.levels(units, group):
        sub = units if group is None else units[units[group].astype(str) == str(level)]
        answered = sub.dropna(subset=["expected_share", "achieved_share"])
        both = answered.dropna(subset=["expected", "achieved"])
        out[label] = {"expected_share": both["expected"].mean() if len(both) else np.nan,
                      "achieved_share": both["achieved"].mean() if len(both) else np.nan,
                      "n_split": int(len(answered) - len(both))}
    return pd.DataFrame.from_dict(out, orient="index")


COLUMNS = ["expected", "achieved", "option", "option_label", "model", "contrast", "group", "estimate", "std_error",
           "ci_low", "ci_high", "p_value", "n_obs", "n_councils", "expected_share", "achieved_share", "n_split",
           "correction", "warning"]
UNIT = "council"


def council_share(panel: pd.DataFrame, measure: str) -> pd.Series:
    """Per council answering: the share of its respondents who selected the option."""
    rows = panel[(panel["measure"] == measure) & panel["value"].notna()]
    return rows.groupby("council_code", observed=True)["value"].mean()


def majority(share: pd.Series) -> pd.Series:
    """1 where more than half selected the option, 0 where fewer than half, NaN for an even split (no
    majority: see the module docstring) or no answer."""
    return pd.Series(np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, np.nan)), index=share.index)


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
            shares = pd.DataFrame({"expected_share": council_share(panel, expected.name),
                                   "achieved_share": council_share(panel, achieved.name)})
            units = shares.assign(expected=majority(shares["expected_share"]),
                                  achieved=majority(shares["achieved_share"])).join(covariates)
            units = units.rename_axis("council_code").reset_index()
            later, earlier = achieved.waves[0], expected.waves[0]
            for group in (None, *group_by):
                rows = expectations_vs_outcomes(units, later=later, earlier=earlier, group=group, interval="exact")
                rows = rows.join(_council_shares(units, group), on="group")
                rows.loc[rows["model"] == "expectation_met", ["expected_share", "achieved_share"]] = np.nan
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
