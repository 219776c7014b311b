"""What readers quote and how precise the study is: the model stage's descriptive and design tables.

Per repeated Likert measure (one task each, run in the stage's pool with the other fits):

- ``tables/distributions.csv``: answers at each level per wave (and group level): ``measure, wave,
  group, level, level_label, n, share, n_wave``;
- ``tables/shares.csv``: the share of answers at or above the measure's declared level
  (``share_from``/``share_label`` in the config; default the top two levels) per wave and group, with
  council-clustered intervals (:mod:`impactstudy.model.stats.shares`); its change between waves and the
  difference in change between groups go to ``contrasts.csv`` as models ``share`` and ``share_diff``;
- ``tables/ordinal_check.csv``: the proportional-odds check (:mod:`impactstudy.model.stats.po_check`).

Per repeated Likert or numeric measure: the delta-adjusted multiple-imputation tipping point of each
change from the first wave (``tables/tipping_point.csv``, :mod:`impactstudy.model.stats.tipping`), the ICC
of each wave (``tables/icc.csv``), the SD of the first
wave's answers, the effect sizes of the ``lmm``/``gee`` contrasts over it (``tables/effect_sizes.csv``),
and, with grouping covariates, the change adjusted for each council's starting mean (model
``change_adjusted`` in ``contrasts.csv``; :mod:`impactstudy.model.stats.group_differences`). The minimum
detectable effect (:func:`impactstudy.model.stats.precision.minimum_detectable_effect`) goes to
``models.json`` (``design``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.model.stats import po_check, precision, shares, tidy, tipping
from impactstudy.model.stats.group_differences import baseline_adjusted_rows
from impactstudy.study.config import Measure, Study

TABLES = ("distributions", "shares", "ordinal_check", "icc", "effect_sizes", "tipping_point")


def describe_measure(measure: Measure, data: pd.DataFrame, wave_order: list[str], group_by: tuple[str, ...],
                     few_councils: int) -> dict[str, Any]:
    """Every descriptive table's rows for one measure (see the module docstring)."""
    present = {str(w) for w in data["wave"].dropna().unique()}
    waves = [w for w in wave_order if w in present]
    contrasts = tidy.default_contrasts(waves)
    out: dict[str, Any] = {"contrasts": [], "sd": precision.baseline_sd(data, waves)}
    out["icc"] = precision.icc_rows(measure.name, data, waves)
    out["tipping_point"] = tipping.tipping_rows(measure.name, data, waves, group_by)
    for group in group_by:
        out["contrasts"].append(baseline_adjusted_rows(data, waves, contrasts, group).assign(measure=measure.name))
    threshold = measure.share_threshold
    if measure.type == "likert" and threshold is not None:
        level, label = threshold
        frame = data.assign(wave=pd.Categorical(data["wave"].astype(str), categories=waves))
        out["distributions"] = pd.concat(
            [shares.distribution(frame, measure.levels, dict(measure.level_labels), g) for g in (None, *group_by)],
            ignore_index=True).assign(measure=measure.name)
        level_rows = []
        for group in (None, *group_by):
            rows, changes = shares.share_rows(data, waves, contrasts, level, group, few_councils)
            level_rows.append(rows)
            out["contrasts"].append(changes.assign(measure=measure.name))
            if group is not None:
                diffs = shares.difference_in_change(data, waves, contrasts, level, group, few_councils)
                out["contrasts"].append(diffs.assign(measure=measure.name))
        out["shares"] = pd.concat(level_rows, ignore_index=True).assign(measure=measure.name, share_from=level,
                                                                         share_label=label)
        out["ordinal_check"] = po_check.check_rows(measure.name, data, waves, contrasts, measure.levels,
                                                   dict(measure.level_labels), few_councils)
    return out


def describe_tasks(study: Study, measures: Sequence[Measure], frames: dict[str, pd.DataFrame]) -> list[tuple]:
    """A :func:`describe_measure` task per repeated Likert or numeric measure."""
    group_by = study.councils.group_by if study.councils else ()
    return [(describe_measure, (m, frames[m.name], list(study.wave_ids), group_by, study.models.few_councils))
            for m in measures if m.type in ("likert", "numeric")]


def describe_tables(results: Sequence[dict[str, Any]], contrasts: pd.DataFrame) -> dict[str, Any]:
    """The descriptive tables, the extra contrast rows, and the ``design`` record for ``models.json``.

    ``contrasts`` are the main model rows (for the effect sizes). The minimum detectable effect uses
    the study's council count, the mean respondents per council and the median first-wave ICC over
    measures.
    """
    def joined(key: str, columns: Sequence[str]) -> pd.DataFrame:
        frames = [r[key] for r in results if key in r and len(r[key])]
        return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)

    icc = joined("icc", precision.ICC_COLUMNS)
    sds = {str(r["icc"]["measure"].iloc[0]): r["sd"] for r in results if len(r["icc"])}
    extra = [f for r in results for f in r["contrasts"] if len(f)]
    first = icc.drop_duplicates("measure", keep="first") if len(icc) else icc
    councils = int(first["n_councils"].max()) if len(first) else 0
    per_council = float(first["mean_per_council"].median()) if len(first) else float("nan")
    typical_icc = float(first["icc"].median()) if len(first) else float("nan")
    design = {"councils": councils, "respondents_per_council": per_council, "icc": typical_icc,
              "power": 0.8, "alpha": 0.05,
              "minimum_detectable_effect": precision.minimum_detectable_effect(councils, per_council, typical_icc),
              "assumptions": "two waves with different respondents, council levels not persisting between waves; "
                             "standardised (in SDs of individual answers); median first-wave ICC over measures"}
    return {
        "distributions": joined("distributions", shares.DISTRIBUTION_COLUMNS),
        "shares": joined("shares", shares.SHARE_COLUMNS),
        "ordinal_check": joined("ordinal_check", po_check.CHECK_COLUMNS),
        "icc": icc,
        "tipping_point": joined("tipping_point", tipping.TIPPING_COLUMNS),
        "effect_sizes": precision.effect_size_rows(contrasts, sds),
        "contrasts": pd.concat(extra, ignore_index=True) if extra else pd.DataFrame(columns=list(tidy.COLUMNS) + ["measure"]),
        "design": {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in design.items()},
    }


__all__ = ["TABLES", "describe_measure", "describe_tables", "describe_tasks"]
