"""Synthetic model-stage tables for report tests, shaped exactly as docs/data-contracts.md says.

The numbers are simple (differences of mean council means with normal intervals), not the model
stage's: the report only reads tables, so its tests need the contract, not the statistics. This keeps
the report tests fast and independent of the model stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from impactstudy import demo, stages
from impactstudy.pipeline.atomic import read_parquet_metadata, write_csv, write_json, write_parquet
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.report.summaries import groups
from impactstudy.study.config import Study, load_study

CONTRASTS = ["measure", "model", "contrast", "group", "estimate", "std_error", "ci_low", "ci_high", "p_value",
             "q_value", "n_obs", "n_councils", "df", "correction", "flag", "warning"]
ESTIMATES = ["measure", "model", "group_by", "term", "estimate", "std_error", "df", "statistic", "p_value",
             "ci_low", "ci_high", "warning"]
ATTRITION = ["wave", "group", "councils_baseline", "councils_present", "council_retention", "respondents_baseline",
             "respondents_present", "respondent_retention"]
EXPECTATIONS = ["expected", "achieved", "option", "option_label", "model", "contrast", "group", "estimate", "std_error",
                "ci_low", "ci_high", "p_value", "n_obs", "n_councils", "correction", "warning"]
HOSTILE = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>']
MODELS = {"likert": ("lmm", "gee", "ordinal", "paired_t", "wilcoxon"), "numeric": ("lmm", "gee", "paired_t"),
          "binary": ("mcnemar", "gee")}


def _diff(later: pd.Series, earlier: pd.Series, shift: float) -> dict:
    se = float(np.sqrt(later.var(ddof=1) / len(later) + earlier.var(ddof=1) / len(earlier)))
    estimate = float(later.mean() - earlier.mean()) + shift
    p = float(2 * stats.norm.sf(abs(estimate / se))) if se > 0 else np.nan
    return {"estimate": estimate, "std_error": se, "ci_low": estimate - 1.96 * se, "ci_high": estimate + 1.96 * se,
            "p_value": p}


def contrasts(panel: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Each later wave against the first, per modelled measure, model and group."""
    rows = []
    by = study.councils.group_by if study.councils else ()
    plain = panel.assign(measure=panel["measure"].astype("string"), wave=panel["wave"].astype("string"))
    for measure in study.measures:
        waves = [w for w in study.wave_ids if w in measure.waves]
        if measure.type not in MODELS or len(waves) < 2 or measure.parent:
            continue
        data = plain[(plain["measure"] == measure.name) & plain["value"].notna()]
        for k, model in enumerate(MODELS[measure.type]):
            for group, subset in groups(data, by):
                means = subset.groupby(["wave", "council_code"])["value"].mean()
                for later in waves[1:]:
                    if later not in means.index or waves[0] not in means.index:
                        continue
                    row = _diff(means[later], means[waves[0]], shift=0.01 * k)
                    n_councils = subset["council_code"].nunique()
                    rows.append({"measure": measure.name, "model": model, "contrast": f"{later} - {waves[0]}",
                                 "group": group, **row, "n_obs": len(subset), "n_councils": n_councils,
                                 "df": np.nan, "correction": "none", "flag": "few councils" if n_councils < 10 else "",
                                 "warning": ""})
    out = pd.DataFrame(rows, columns=CONTRASTS)
    out["q_value"] = np.nan
    for _, index in out.groupby(["model", "contrast", "group"]).groups.items():
        p = out.loc[index, "p_value"]
        ok = p.notna()
        if ok.any():
            out.loc[p[ok].index, "q_value"] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def write_model_outputs(root: Path, study: Study) -> None:
    """Write contrasts, estimates, attrition, expectations and models.json for ``study`` under ``root``."""
    paths = StudyPaths(Path(root), study.name)
    panel = pd.read_parquet(paths.panel_long)
    table = contrasts(panel, study)
    write_csv(paths.tables / "contrasts.csv", table)
    estimates = pd.DataFrame([{"measure": f"took_part:{w}", "model": "attrition_logit", "group_by": "", "term": term,
                               "estimate": est, "std_error": 0.3, "df": np.nan, "statistic": est / 0.3,
                               "p_value": 0.2, "ci_low": est - 0.6, "ci_high": est + 0.6, "warning": ""}
                              for w in study.wave_ids[1:] for term, est in (("Intercept", 1.2), ("status[T.Notice to Improve]", -0.8))],
                             columns=ESTIMATES)
    write_csv(paths.tables / "estimates.csv", estimates)
    attrition = pd.DataFrame([{"wave": w, "group": "all", "councils_baseline": 10, "councils_present": 9,
                               "council_retention": 0.9, "respondents_baseline": 20, "respondents_present": 15,
                               "respondent_retention": 0.75} for w in study.wave_ids], columns=ATTRITION)
    write_csv(paths.tables / "attrition.csv", attrition)
    rows = []
    for pair in study.expectations:
        for member in study.set_members(pair.expected):
            for model, est in (("expectation_met", 0.6), ("mcnemar", -0.05)):
                rows.append({"expected": pair.expected, "achieved": pair.achieved, "option": member.option,
                             "option_label": member.option_label, "model": model,
                             "contrast": f"{study.wave_ids[-1]} - {study.wave_ids[0]}", "group": "all", "estimate": est,
                             "std_error": 0.05, "ci_low": est - 0.1, "ci_high": est + 0.1, "p_value": 0.3,
                             "n_obs": 30, "n_councils": 12, "correction": "exact", "warning": ""})
    write_csv(paths.tables / "expectations.csv", pd.DataFrame(rows, columns=EXPECTATIONS))
    fits = [{"measure": m, "model": model, "group_by": "all", "formula": "value ~ wave + (1 | council_code)",
             "n_obs": 100, "n_councils": 10, "converged": True, "warnings": [], "correction": "Satterthwaite"}
            for m, model in table[["measure", "model"]].drop_duplicates().itertuples(index=False)]
    write_json(paths.models_json, {"settings": {"few_councils": study.models.few_councils}, "fits": fits})


def build_study(root: Path, councils: int) -> tuple:
    """A demo study linked, with contract-shaped model tables and hostile free text and roles."""
    demo.generate(root, "demo", councils=councils)
    stages.run("demo", ["link"], root=root)
    study = load_study(root / "pipelines" / "demo" / "study.toml", "demo")
    paths = StudyPaths(root, "demo")
    panel = pd.read_parquet(paths.panel_long)
    meta = read_parquet_metadata(paths.panel_long)
    lessons = panel.index[(panel["measure"] == "lessons") & panel["value_label"].notna()]
    panel.loc[lessons[0], "value_label"] = HOSTILE[0]
    panel.loc[lessons[1], "value_label"] = HOSTILE[1]
    panel["role"] = panel["role"].astype("string")
    first = panel["respondent_id"] == panel["respondent_id"].iloc[0]
    panel.loc[first, "role"] = HOSTILE[1]
    write_parquet(paths.panel_long, panel, meta)
    write_model_outputs(root, study)
    return study, paths
