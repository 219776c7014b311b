"""Coded free text in the model stage: how often each theme was coded, by wave, role and group, how that
changed where the question recurs, and how far the coders agreed.

A coded question's themes are the options of a multi measure (its resolved codes: one 0/1 measure per
theme in the panel, missing for answers nobody coded), so a theme's frequency is the share of the coded
answers of a wave that mention it: **respondent-weighted**, as a reader of "a third of respondents
mentioned staff engagement" understands it. Respondents are clustered in councils, so the interval is
the council-clustered CR1 interval of :mod:`impactstudy.model.stats.shares` (t with G - 1 df below
``[models] few_councils`` councils, clipped to 0-1), the same as ``shares.csv``'s. Groupings: all
respondents, each ``role``, and each ``group_by`` covariate level.

Where the question was asked in two or more waves, each contrast of ``tidy.default_contrasts`` gets a
``theme_share`` row (the change in that share, proportion points, same CR1 covariance, so respondents
and councils answering both waves are accounted for) and, below ``few_councils`` councils, a
``sign_flip`` row: the exact sign-flip test on the councils' own changes in the share (the
council-weighted change; its ``min_p_value`` says how far so few councils can go), as every other measure
gets in ``contrasts.csv``. q-values: Benjamini-Hochberg across a question's themes within model, contrast
and group.

Agreement (``tables/agreement.csv``) comes from the coders' own codes (``codes.parquet``, one row per
answer x coder x theme) through :mod:`impactstudy.model.stats.agreement`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from impactstudy.model import fitting
from impactstudy.model.stats import agreement, council_level, shares, tidy
from impactstudy.study.config import Study

THEME_COLUMNS = ["question", "measure", "theme", "wave", "group", "n_selected", "n_obs", "estimate", "std_error",
                 "ci_low", "ci_high", "n_councils", "df", "correction", "warning"]
CHANGE_COLUMNS = ["question", "measure", "theme", "model", "contrast", "group", "estimand", "estimate", "std_error",
                  "ci_low", "ci_high", "p_value", "q_value", "min_p_value", "n_obs", "n_councils", "n_councils_both",
                  "df", "correction", "flag", "warning"]
ESTIMANDS = {"theme_share": "change in the respondent-weighted share of coded answers mentioning the theme",
             "sign_flip": "council-weighted change in the share of coded answers mentioning the theme"}
ROLE = "role"
NO_VARIATION = "every coded answer, or none, mentions the theme, so there is no interval"


def coded_sets(study: Study) -> list[tuple[str, str]]:
    """``(multi measure, text question)`` for every multi set that codes a free-text question
    (``coding_frame_for``), in config order."""
    seen: dict[str, str] = {}
    for m in study.research_measures:
        if m.parent and m.coding_frame_for and m.parent not in seen:
            seen[m.parent] = m.coding_frame_for
    return list(seen.items())


def theme_rows(data: pd.DataFrame, wave_order: Sequence[str], groupings: Sequence[str | None],
               few_councils: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One theme's frequency rows (per wave and grouping) and change rows, from its 0/1 panel rows
    (``council_code, respondent_id, wave, value`` and the grouping columns; NaN values are uncoded)."""
    coded = data[data["value"].notna()]
    if coded.empty:  # nobody coded: no frequency to give
        return pd.DataFrame(columns=[c for c in THEME_COLUMNS if c not in ("question", "measure", "theme")]), tidy.to_frame([])
    present = {str(w) for w in coded["wave"].unique()}
    waves = [w for w in wave_order if w in present]
    contrasts = tidy.default_contrasts(waves) if len(waves) >= 2 else []
    wave = data["wave"].astype(str)
    data = data[wave.isin(waves)].assign(wave=wave[wave.isin(waves)])
    levels, changes = [], []
    councils = coded["council_code"].nunique()
    for group in groupings:
        if group is not None and (group not in data or coded[group].isna().all()):
            continue
        rows, change = shares.share_rows(data, waves, contrasts, 1.0, group, few_councils)
        levels.append(rows)
        changes.append(change.assign(model="theme_share"))
        if contrasts and councils < few_councils:
            changes.append(council_level.sign_flip_rows(data, waves, contrasts, group))
    freq = pd.concat(levels, ignore_index=True) if levels else pd.DataFrame(columns=THEME_COLUMNS)
    freq["n_selected"] = np.rint(freq["estimate"].fillna(0) * freq["n_obs"]).astype(int)
    change = pd.concat(changes, ignore_index=True) if changes else tidy.to_frame([])
    for frame in (freq, change):
        text = frame["warning"].astype(object).where(frame["warning"].notna(), "").astype(str)
        frame["warning"] = text.str.replace(shares.NO_VARIATION, NO_VARIATION, regex=False)
    return freq, change


def theme_tables(study: Study, panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``themes.csv`` and ``theme_changes.csv`` for every coded set of the study, from the panel rows
    of the sets' theme measures (``council_code, respondent_id, wave, measure, value, role`` and the
    ``group_by`` covariates)."""
    group_by = tuple(study.councils.group_by) if study.councils else ()
    groupings: list[str | None] = [None, ROLE, *group_by]
    freq_frames, change_frames = [], []
    for parent, question in coded_sets(study):
        for member in study.set_members(parent):
            data = panel[panel["measure"].astype(str) == member.name]
            if data.empty or data["value"].notna().sum() == 0:
                continue
            freq, change = theme_rows(data, study.wave_ids, groupings, study.models.few_councils)
            info = {"question": question, "measure": member.name, "theme": member.option}
            freq_frames.append(freq.assign(**info))
            if len(change):
                change_frames.append(change.assign(**info))
    themes = (pd.concat(freq_frames, ignore_index=True).reindex(columns=THEME_COLUMNS) if freq_frames
              else pd.DataFrame(columns=THEME_COLUMNS))
    if not change_frames:
        return themes, pd.DataFrame(columns=CHANGE_COLUMNS)
    changes = pd.concat(change_frames, ignore_index=True)
    changes["q_value"] = pd.concat([fitting.add_q_values(c)["q_value"] for _, c in changes.groupby("question", sort=False)])
    changes["flag"] = fitting.flag_few(changes, study.models.flag_councils)
    changes["estimand"] = changes["model"].map(ESTIMANDS)
    changes["warning"] = changes["warning"].fillna("")
    return themes, changes.reindex(columns=CHANGE_COLUMNS)


def coding_settings(study: Study) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Per coded question: its coding frame's themes (the options of its multi set) and its
    ``[[coding]]`` ``alpha_threshold`` (0.67 unless declared)."""
    themes_of = {question: [m.option for m in study.set_members(parent)] for parent, question in coded_sets(study)}
    return themes_of, {c.question: c.alpha_threshold for c in study.coding}


def agreement_table(codes: pd.DataFrame, themes_of: dict[str, Sequence[str]], thresholds: dict[str, float],
                    draws: int = agreement.DRAWS) -> pd.DataFrame:
    """``agreement.csv``: :func:`agreement.agreement_rows` for each question of ``codes`` (the rows of
    ``codes.parquet``), with the question's declared themes and alpha threshold (default 0.67). An
    adjudicator's codes settle disagreements after the fact, so they are not a coder's independent
    judgement and are left out (``coder_role`` = ``adjudicator``)."""
    if "coder_role" in codes:
        codes = codes[codes["coder_role"].astype(str) != "adjudicator"]
    frames = [agreement.agreement_rows(rows, str(question), thresholds.get(str(question), 0.67), draws,
                                       themes=themes_of.get(str(question)))
              for question, rows in codes.groupby("question", sort=False)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=agreement.COLUMNS)


__all__ = ["CHANGE_COLUMNS", "ESTIMANDS", "THEME_COLUMNS", "agreement_table", "coded_sets", "coding_settings", "theme_rows",
           "theme_tables"]
