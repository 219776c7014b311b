"""Descriptive summaries the report shows beside the models, computed from ``panel_long``.

Each function takes the long panel (and the study) and returns a tidy DataFrame with the counts the
report needs for disclosure control (``n_councils``, ``n_respondents`` or the base of a share), so
the report never recomputes anything. Groups are named as in ``contrasts.csv``: ``all`` or
``<covariate>=<level>``.

Means are means of council means, with a t interval over councils: councils, not respondents, are
the sampled units, and a council with four respondents should not count four times. Shares are
shares of respondents who answered the item, with Wilson intervals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from impactstudy.study.config import Study

ALL = "all"
NOT_RECORDED = "not recorded"  # the group of councils with no value for a group_by covariate


def recorded(values: pd.Series) -> pd.Series:
    """A covariate's values as text, :data:`NOT_RECORDED` where the council has none (blank, or not in the
    councils file): such councils are shown as a group of their own, never dropped or crashed on."""
    return values.astype("string").fillna(NOT_RECORDED)


def _plain(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with categoricals as plain strings, so group-bys never produce empty categories."""
    out = panel.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("string")
    return out


def groups(panel: pd.DataFrame, by: Iterable[str] = ()) -> Iterable[tuple[str, pd.DataFrame]]:
    """``("all", panel)`` then ``("<covariate>=<level>", subset)`` for each covariate and level, sorted."""
    yield ALL, panel
    for covariate in by:
        if covariate not in panel.columns:
            continue
        levels = recorded(panel[covariate])
        for level in sorted(levels.unique()):
            yield f"{covariate}={level}", panel[(levels == level).to_numpy()]


def t_interval(mean: pd.Series, sd: pd.Series, n: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """95% t intervals for many means at once (NaN below two values or with no spread)."""
    n = n.to_numpy(dtype=float)
    se = sd.to_numpy(dtype=float) / np.sqrt(n)
    ok = (n >= 2) & (se > 0)
    # the t quantile from scipy.special: scipy.stats (same function) takes a second to import
    half = special.stdtrit(np.where(ok, n - 1, 1), 0.975) * np.where(ok, se, np.nan)
    mean = mean.to_numpy(dtype=float)
    return mean - half, mean + half


def trajectories(panel: pd.DataFrame, study: Study, measures: Iterable[str], by: Iterable[str] = ()) -> pd.DataFrame:
    """Mean of council means per measure × wave × group, with its 95% interval and the counts behind it.

    One group-by over the panel makes the council means (and respondents behind each); every grouping
    is then summarised from those few thousand rows, so a national panel of millions of rows takes
    well under a second. Grouping covariates are the council's (one value per council).
    """
    measures = list(measures)
    by = [b for b in by if b in panel]
    data = panel.loc[panel["measure"].isin(measures) & panel["value"].notna(), ["council_code", "measure", "wave", "value"]]
    columns = ["measure", "wave", "wave_label", "wave_order", "group", "mean", "ci_low", "ci_high", "n_councils", "n_respondents"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    # panel_long has one row per respondent, wave and measure, so answers counted are respondents
    council = (data.groupby(["measure", "wave", "council_code"], observed=True, sort=False)["value"]
               .agg(value="mean", n_respondents="size").reset_index())
    covariates = panel[["council_code", *by]].drop_duplicates("council_code")
    covariates = covariates.assign(**{b: recorded(covariates[b]) for b in by})
    council = council.merge(covariates, on="council_code", how="left")
    frames = []
    for covariate in [None, *by]:
        keys = ["measure", "wave"] + ([covariate] if covariate else [])
        summary = (council.groupby(keys, observed=True, dropna=True)
                   .agg(mean=("value", "mean"), sd=("value", "std"), n_councils=("value", "count"),
                        n_respondents=("n_respondents", "sum")).reset_index())
        summary["group"] = ALL if covariate is None else covariate + "=" + summary[covariate].astype(str)
        frames.append(summary.drop(columns=[covariate] if covariate else []))
    out = pd.concat(frames, ignore_index=True)
    out["measure"], out["wave"] = out["measure"].astype(str), out["wave"].astype(str)
    out["ci_low"], out["ci_high"] = t_interval(out["mean"], out["sd"], out["n_councils"])
    out["wave_label"] = out["wave"].map({w.id: w.label for w in study.waves}).fillna(out["wave"])
    out["wave_order"] = out["wave"].map({w.id: w.order for w in study.waves})
    out = out[columns].astype({"n_councils": int, "n_respondents": int, "wave_order": int})
    return out.sort_values(["measure", "group", "wave_order"], kind="stable").reset_index(drop=True)


def binary_shares(panel: pd.DataFrame, measures: Iterable[str], by: Iterable[str] = ()) -> pd.DataFrame:
    """Share of respondents answering yes (1) to each binary measure, per wave and group, Wilson 95% CI.

    ``base`` is respondents who answered (yes or no), ``selected`` those who said yes.
    """
    from statsmodels.stats.proportion import proportion_confint  # a second to import; only studies with shares need it

    measures = list(measures)
    wanted = _plain(panel[panel["measure"].isin(measures) & panel["value"].notna()])
    rows = []
    for group, subset in groups(wanted, by):
        for (measure, wave), cell in subset.groupby(["measure", "wave"], sort=False):
            base, selected = len(cell), int((cell["value"] == 1).sum())
            low, high = proportion_confint(selected, base, alpha=0.05, method="wilson")
            rows.append({"measure": measure, "wave": wave, "group": group, "base": base, "selected": selected,
                         "share": selected / base, "ci_low": float(low), "ci_high": float(high),
                         "n_councils": int(cell["council_code"].nunique())})
    columns = ["measure", "wave", "group", "base", "selected", "share", "ci_low", "ci_high", "n_councils"]
    return pd.DataFrame(rows, columns=columns)


def option_shares(panel: pd.DataFrame, study: Study, parent: str, by: Iterable[str] = ()) -> pd.DataFrame:
    """Share of respondents selecting each option of multi set ``parent``, per wave and group (see :func:`binary_shares`)."""
    members = {m.name: m for m in study.set_members(parent)}
    out = binary_shares(panel, members, by)
    out.insert(0, "parent", parent)
    out.insert(2, "option", out["measure"].map(lambda name: members[name].option))
    out.insert(3, "option_label", out["measure"].map(lambda name: members[name].option_label or members[name].label))
    out["order"] = out["measure"].map({name: i for i, name in enumerate(members)})
    return out.sort_values(["group", "wave", "order"], kind="stable").drop(columns="order").reset_index(drop=True)


def participation(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Councils and respondents per wave, and how many of the first wave's are still there."""
    present = panel[["wave", "council_code", "respondent_id"]].drop_duplicates()
    wave = present["wave"].astype(str).to_numpy()
    council, respondent = (pd.factorize(present[c])[0] for c in ("council_code", "respondent_id"))
    first = wave == study.wave_ids[0]
    first_councils, first_people = np.unique(council[first]), np.unique(respondent[first])
    rows = []
    for w in study.waves:
        here = wave == w.id
        councils, people = np.unique(council[here]), np.unique(respondent[here])
        kept_councils = int(np.isin(councils, first_councils).sum())
        kept_people = int(np.isin(people, first_people).sum())
        rows.append({"wave": w.id, "wave_label": w.label, "councils": len(councils), "respondents": len(people),
                     "councils_retained": kept_councils, "respondents_retained": kept_people,
                     "council_retention": kept_councils / len(first_councils) if len(first_councils) else np.nan,
                     "respondent_retention": kept_people / len(first_people) if len(first_people) else np.nan})
    return pd.DataFrame(rows)


def flow(patterns: Mapping[str, str], study: Study) -> pd.DataFrame:
    """Councils moving between consecutive waves, from linkage_summary's participation patterns.

    One row per wave: councils present, how many of them were also present at the previous wave
    (``stayed``), joined (``joined``: absent at the previous wave) and, of the previous wave's
    councils, how many were absent from this one (``left``).
    """
    rows = []
    for k, wave in enumerate(study.waves):
        here = [p for p in patterns.values() if len(p) > k and p[k] == "X"]
        before = [p for p in patterns.values() if k > 0 and p[k - 1] == "X"]
        stayed = sum(1 for p in here if k > 0 and p[k - 1] == "X")
        rows.append({"wave": wave.id, "wave_label": wave.label, "councils": len(here), "stayed": stayed,
                     "joined": len(here) - stayed if k > 0 else len(here),
                     "left": len(before) - stayed if k > 0 else 0})
    return pd.DataFrame(rows)


def sample_vs_register(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The sample against the register by authority type and region (from linkage_summary.json)."""
    rows = []
    comparison = summary.get("sample_vs_register", {})
    for dimension in ("authority_type", "region"):
        for category, counts in comparison.get(dimension, {}).items():
            rows.append({"dimension": dimension, "category": category, "sample": counts["sample"],
                         "register": counts["register"]})
    out = pd.DataFrame(rows, columns=["dimension", "category", "sample", "register"])
    out["sample_share"] = out["sample"] / out["register"].where(out["register"] > 0)
    return out


def missing_reasons(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Why answers are missing: responses per measure × wave × reason (text measures excluded)."""
    text = {m.name for m in study.measures if m.type == "text"}
    missing = _plain(panel.loc[panel["value"].isna() & panel["missing_reason"].notna() & ~panel["measure"].isin(text),
                               ["measure", "wave", "missing_reason"]])
    out = (missing.groupby(["measure", "wave", "missing_reason"]).size().rename("n").reset_index()
           .rename(columns={"missing_reason": "reason"}))
    return out.sort_values(["measure", "wave", "reason"], kind="stable").reset_index(drop=True)


_ROW_DETAIL = re.compile(r"\s*(?:[;:(]|\bsource row\b).*$")


def reason_kind(reason: str) -> str:
    """A quarantine reason without its row-specific detail, so like reasons count together."""
    kind = _ROW_DETAIL.sub("", str(reason)).strip()
    return re.sub(r"'[^']*'", "…", kind) or str(reason)


def _text(column: pd.Series) -> pd.Series:
    """A column as text with missing cells empty, whatever dtype it was read with."""
    return column.astype(object).where(column.notna(), "").astype(str)


def quarantine_summary(*frames: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows and values per wave, stage reason and scope, from the quarantine files."""
    stacked = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    columns = ["wave", "scope", "reason", "n"]
    if stacked is None:
        return pd.DataFrame(columns=columns)
    # the raw value can be anything typed into the survey (a person's name where a council was expected):
    # it is taken out of the reason before the reason is shortened, so no value reaches a report
    # (a column read as numbers is float: cast to text before filling, as pandas 4 refuses a text fill on floats)
    values = _text(stacked["value"]) if "value" in stacked else pd.Series("", index=stacked.index)
    reasons = [reason.replace(value, "…") if value else reason
               for reason, value in zip(_text(stacked["reason"]), values, strict=True)]
    stacked = stacked.assign(reason=[reason_kind(reason) for reason in reasons])
    out = stacked.groupby(["wave", "scope", "reason"]).size().rename("n").reset_index()
    return out[columns].sort_values(columns[:3], kind="stable").reset_index(drop=True)


def answers(panel: pd.DataFrame, max_listed: int | None = None) -> pd.DataFrame:
    """Every answer as shown to a reader: the survey's label, else the number given (a numeric answer has no
    label), else why it is missing.

    With ``max_listed``, only council-waves with at most that many respondents (a table of
    individual answers is readable for a few respondents, not for two hundred).
    """
    if max_listed is not None:
        # a respondent has at most one row per measure, so only council-waves with few enough rows can
        # qualify: respondents are counted for those candidates, not across a national panel
        rows = panel.groupby(["council_code", "wave"], observed=True).size()
        panel = _council_waves(panel, rows[rows <= max_listed * max(panel["measure"].nunique(), 1)].index)
        size = panel.groupby(["council_code", "wave"], observed=True)["respondent_id"].nunique()
        panel = _council_waves(panel, size[size <= max_listed].index)
    panel = _plain(panel[["council_code", "wave", "wave_order", "respondent_id", "role", "measure", "value",
                          "value_label", "missing_reason"]])
    given = panel["value"].map(lambda v: f"{v:,.10g}", na_action="ignore").astype("string")
    answer = panel["value_label"].fillna(given).fillna(panel["missing_reason"]).fillna("")
    out = panel[["council_code", "wave", "wave_order", "respondent_id", "role", "measure"]].assign(answer=answer)
    return out.sort_values(["council_code", "wave_order", "respondent_id"], kind="stable").reset_index(drop=True)


def _council_waves(panel: pd.DataFrame, keys: pd.Index) -> pd.DataFrame:
    """The rows of ``panel`` whose (council_code, wave) is in ``keys``."""
    if not len(keys):
        return panel.iloc[:0]
    return panel[pd.MultiIndex.from_arrays([panel["council_code"], panel["wave"]]).isin(keys)]
