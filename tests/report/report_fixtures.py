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
from impactstudy.model import themes as model_themes
from impactstudy.model.stats import agreement
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
                "ci_low", "ci_high", "p_value", "n_obs", "n_councils", "expected_share", "achieved_share", "n_split",
                "correction", "warning"]
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
                             "n_obs": 30, "n_councils": 12, "expected_share": 0.6, "achieved_share": 0.55,
                             "n_split": 3, "correction": "exact", "warning": ""})
    write_csv(paths.tables / "expectations.csv", pd.DataFrame(rows, columns=EXPECTATIONS))
    fits = [{"measure": m, "model": model, "group_by": "all", "formula": "value ~ wave + (1 | council_code)",
             "n_obs": 100, "n_councils": 10, "converged": True, "warnings": [], "correction": "Satterthwaite"}
            for m, model in table[["measure", "model"]].drop_duplicates().itertuples(index=False)]
    described = descriptive_tables(panel, study, table)
    fits += [{"measure": m, "model": "lmm", "group_by": "status", "formula": "value ~ wave * status",
              "interaction": {"F": 2.5, "num_df": 6.0, "den_df": 150.0, "p_value": 0.02}}
             for m in described["distributions"]["measure"].unique()]
    fits.append({"measure": f"took_part:{study.wave_ids[-1]}", "model": "attrition_logit",
                 "separation": "every council (or none) in status=Outstanding took part",
                 "separated_levels": ["status=Outstanding"]})
    for name, frame in described.items():
        if name != "extra_contrasts":
            write_csv(paths.tables / f"{name}.csv", frame)
    write_csv(paths.tables / "contrasts.csv", pd.concat([table, described["extra_contrasts"]], ignore_index=True))
    freq, changes = model_themes.theme_tables(study, panel)  # pure and fast: the real tables of coded themes
    write_csv(paths.tables / "themes.csv", freq)
    write_csv(paths.tables / "theme_changes.csv", changes)
    write_csv(paths.tables / "agreement.csv", pd.DataFrame(columns=agreement.COLUMNS))
    write_json(paths.models_json, {"settings": {"few_councils": study.models.few_councils}, "fits": fits,
                                   "design": {"councils": 40, "respondents_per_council": 2.4, "icc": 0.3,
                                              "minimum_detectable_effect": 0.5}})


def descriptive_tables(panel: pd.DataFrame, study: Study, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Contract-shaped distributions, shares, ordinal check (the first Likert measure failing it), ICC,
    effect sizes, tipping point and retention-weight tables; and the group-difference contrast rows."""
    plain = panel.assign(measure=panel["measure"].astype("string"), wave=panel["wave"].astype("string"))
    likert = [m for m in study.measures if m.type == "likert" and not m.parent and len(m.waves) >= 2]
    waves = list(study.wave_ids)
    dist, shares, check, icc, tipping, extra = [], [], [], [], [], []
    for k, m in enumerate(likert):
        data = plain[(plain["measure"] == m.name) & plain["value"].notna()]
        for wave, at in data.groupby("wave", sort=False):
            for lv in m.levels:
                dist.append({"measure": m.name, "wave": wave, "group": "all", "level": lv,
                             "level_label": m.level_labels.get(lv, f"{lv:g}"), "n": int((at["value"] == lv).sum()),
                             "share": float((at["value"] == lv).mean()), "n_wave": len(at)})
            share = float((at["value"] >= m.levels[-2]).mean())
            shares.append({"measure": m.name, "wave": wave, "group": "all", "share_from": m.levels[-2],
                           "share_label": m.share_threshold[1], "estimate": share, "std_error": 0.05,
                           "ci_low": share - 0.1, "ci_high": share + 0.1, "n_obs": len(at),
                           "n_councils": at["council_code"].nunique(), "df": np.nan, "correction": "CR1", "warning": ""})
            icc.append({"measure": m.name, "wave": wave, "icc": 0.2, "ci_low": 0.05, "ci_high": 0.4, "n_obs": len(at),
                        "n_councils": at["council_code"].nunique(), "mean_per_council": 2.5, "warning": ""})
        contrast = f"{waves[-1]} - {waves[0]}"
        check.append({"measure": m.name, "kind": "brant", "contrast": contrast, "statistic": 9.0, "df": 3.0,
                      "p_value": 0.01 if k == 0 else 0.5, "n_obs": 100, "n_councils": 12, "warning": ""})
        for cut in m.levels[1:]:
            check.append({"measure": m.name, "kind": "cut", "contrast": contrast, "cut": cut,
                          "cut_label": f"{m.level_labels.get(cut, cut)} or above", "estimate": 0.3, "std_error": 0.2,
                          "ci_low": -0.1, "ci_high": 0.7, "p_value": 0.1, "n_obs": 100, "n_councils": 12})
        tipping.append({"measure": m.name, "contrast": contrast, "n_cohort": 90, "n_imputed": 30, "sd": 0.9,
                        "estimate": 0.4, "ci_low": 0.1, "ci_high": 0.7, "df": 20.0, "conclusion": "clear rise",
                        "delta_down": -0.6, "delta_up": np.nan, "points_down": -0.54, "points_up": np.nan,
                        "imputations": 50, "warning": ""})
        extra.append({"measure": m.name, "model": "share", "contrast": contrast, "group": "all", "estimate": 0.1,
                      "std_error": 0.05, "ci_low": 0.0, "ci_high": 0.2, "p_value": 0.05, "q_value": 0.1, "n_obs": 100,
                      "n_councils": 12, "df": np.nan, "correction": "CR1", "flag": "", "warning": ""})
        for model in ("lmm", "change_adjusted"):
            for level in ("Good", "Notice to Improve"):
                extra.append({"measure": m.name, "model": model, "contrast": contrast,
                              "group": f"status={level} - status=Adequate", "estimate": 0.3 if model == "lmm" else 0.1,
                              "std_error": 0.15, "ci_low": 0.0, "ci_high": 0.6, "p_value": 0.05, "q_value": 0.1,
                              "n_obs": 60, "n_councils": 12, "df": 30.0, "correction": "", "flag": "", "warning": ""})
    effect = table[table["model"].isin(["lmm", "gee"])][["measure", "model", "contrast", "group"]].assign(
        sd=0.9, estimate=table["estimate"] / 0.9, ci_low=table["ci_low"] / 0.9, ci_high=table["ci_high"] / 0.9)
    later = waves[1:]
    diagnostics = pd.DataFrame([{"wave": w, "at_risk": 90, "stayed": 70, "returned_later": 3, "weight_min": 0.8,
                                 "weight_max": 1.6, "weight_mean": 1.0, "truncated_min": 0.85, "truncated_max": 1.5,
                                 "truncated_mean": 1.0, "n_truncated": 2, "ess": 66.0, "truncation": "percentiles 1 and 99"}
                                for w in later])
    balance = pd.DataFrame([{"wave": w, "predictor": p, "cohort_mean": 0.0, "stayed_mean": 0.1, "weighted_mean": 0.01,
                             "smd_unweighted": 0.12, "smd_weighted": 0.01}
                            for w in later for p in ("baseline score (standardised)", "status: Good")])
    return {"distributions": pd.DataFrame(dist), "shares": pd.DataFrame(shares), "ordinal_check": pd.DataFrame(check),
            "icc": pd.DataFrame(icc), "effect_sizes": effect, "tipping_point": pd.DataFrame(tipping),
            "ipw_diagnostics": diagnostics, "ipw_balance": balance, "extra_contrasts": pd.DataFrame(extra, columns=CONTRASTS)}


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
