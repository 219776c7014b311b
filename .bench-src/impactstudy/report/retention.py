"""Who stayed in the study, and whether it matters: the models of taking part and of staying, the
retention weights' diagnostics, and the not-at-random sensitivity analysis. Called by the sample
section (:mod:`impactstudy.report.sections.sample`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactstudy.report import findings
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import interval, number, table


def _fits(ctx: Context, model: str) -> list[dict]:
    fits = ctx.inputs.models.get("fits", [])
    return [f for f in (fits if isinstance(fits, list) else []) if f.get("model") == model]


def _wave_of(ctx: Context, measure: str) -> str:
    wave = measure.split(":", 1)[-1]
    return ctx.wave_labels.get(wave, wave)


def _coefficients(ctx: Context, s: Section, rows: pd.DataFrame, id_: str, caption: str, hide: bool) -> None:
    shown = pd.DataFrame({
        "Wave": [_wave_of(ctx, m) for m in rows["measure"]],
        "Term": rows["term"].tolist(),
        "Odds ratio": [MARK if hide else ("not estimable" if pd.isna(v) else number(np.exp(v))) for v in rows["estimate"]],
        "95% CI": [MARK if hide else ("–" if pd.isna(lo) else f"{np.exp(lo):.2f} to {np.exp(hi):.2f}")
                   for lo, hi in zip(rows["ci_low"], rows["ci_high"])],
        "p-value": [MARK if hide else findings.fmt_p(p) for p in rows["p_value"]],
        "Note": [("Infinite without Firth's penalty (separation)" if "infinite" in str(w) else
                  "Not estimable: no information in the data" if str(w).startswith("not estimable") else "")
                 for w in rows["warning"].astype(object).fillna("")],
    })
    s.table(table(id_, caption, shown, numeric=["Odds ratio", "95% CI", "p-value"],
                  notes=["Odds ratios above 1: more likely to stay. Firth-penalised logistic regression with "
                         "profile-likelihood intervals and likelihood-ratio p-values. Separation: everyone with some "
                         "combination of characteristics stayed (or left), so the ordinary estimate would be infinite; "
                         "the penalised one is finite and its interval wide."]))


def build_blocks(ctx: Context, s: Section) -> None:
    """The "Who stayed in the study" part of the sample section."""
    estimates = ctx.inputs.estimates
    s.heading("Who stayed in the study")
    hide_councils = ctx.threshold is not None and ctx.inputs.linkage_summary.get("councils", 0) < ctx.threshold
    councils = estimates[estimates["model"] == "attrition_logit"] if "model" in estimates else pd.DataFrame()
    if councils.empty:
        reasons = sorted({f"{_wave_of(ctx, str(f.get('measure', '')))}: {f['error']}" for f in _fits(ctx, "attrition_logit")
                          if f.get("error")})
        s.text("No model of councils taking part was fitted" + (": " + "; ".join(reasons) + "." if reasons else "."))
    else:
        s.text("Do the councils that took part in each later wave differ from those that did not? A logistic model of "
               "taking part, by the council characteristics the study records, answers that.")
        separated = sorted({lv for f in _fits(ctx, "attrition_logit") for lv in f.get("separated_levels", [])})
        if separated or any(f.get("separation") for f in _fits(ctx, "attrition_logit")):
            groups = ", ".join(ctx.group_label(g) for g in separated) or "some groups"
            s.text(f"In {groups} every council (or none) took part, so an ordinary model would give impossible, "
                   "infinite odds ratios. The estimates shown use Firth's penalised method, which stays finite; "
                   "their intervals are wide because the data say little about those groups.")
        _coefficients(ctx, s, councils, "attrition-model", "Councils taking part in each later wave", hide_councils)
    people = estimates[estimates["model"] == "dropout_logit"] if "model" in estimates else pd.DataFrame()
    if len(people):
        s.text("Respondents leave too. A model of each first-wave respondent staying to each later wave (answering every "
               "wave so far), by their earlier answers and council characteristics, shows who left; its predictions give "
               "each remaining answer a weight, so that those like the people who left count for more.")
        _coefficients(ctx, s, people, "dropout-model", "Respondents staying to each later wave", False)
    diag = ctx.inputs.ipw_diagnostics
    if len(diag):
        shown = pd.DataFrame({
            "Wave": [ctx.wave_labels.get(w, w) for w in diag["wave"]],
            "At risk": [f"{int(v):,}" for v in diag["at_risk"]], "Stayed": [f"{int(v):,}" for v in diag["stayed"]],
            "Came back after missing a wave": [f"{int(v):,}" for v in diag["returned_later"]],
            "Weights (range)": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(diag["weight_min"], diag["weight_max"])],
            "After truncation": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(diag["truncated_min"], diag["truncated_max"])],
            "Truncated": [f"{int(v):,}" for v in diag["n_truncated"]],
            "Effective sample size": [f"{v:,.0f}" for v in diag["ess"]],
        })
        s.table(table("ipw-weights", "Retention weights by wave", shown, numeric=list(shown.columns[1:]),
                      notes=[f"Stabilised weights, truncated at the {diag['truncation'].iloc[0]}. The effective sample "
                             "size is the number of equally weighted answers carrying as much information; respondents "
                             "who came back after missing a wave are not used in the weighted model."]))
    bal = ctx.inputs.ipw_balance
    if len(bal):
        shown = pd.DataFrame({
            "Wave": [ctx.wave_labels.get(w, w) for w in bal["wave"]], "Characteristic": bal["predictor"].tolist(),
            "Difference before weighting (SD)": [number(v, signed=True) for v in bal["smd_unweighted"]],
            "After weighting (SD)": [number(v, signed=True) for v in bal["smd_weighted"]],
        })
        worst = float(np.nanmax(np.abs(bal["smd_weighted"]))) if bal["smd_weighted"].notna().any() else np.nan
        verdict = ("" if not np.isfinite(worst) else ", so the weighting balances them well." if worst < 0.1 else
                   ", so the weighting does not fully correct for who left: read the weighted results with that in mind.")
        s.text("Weighting works if, after it, those who stayed look like everyone who answered the first wave. Differences "
               f"below 0.1 standard deviations are the usual target; the largest after weighting here is {worst:.2f}"
               + (verdict or "."))
        s.table(table("ipw-balance", "Those who stayed against the first wave's respondents", shown,
                      numeric=list(shown.columns[2:])))
    _tipping(ctx, s)


def _tipping(ctx: Context, s: Section) -> None:
    tip = ctx.inputs.tipping_point
    if tip.empty:
        return
    s.heading("What if those who left would have answered differently?")
    s.text("The weighted and mixed models assume that people who stopped answering would have answered like similar "
           "people who carried on. Nothing in the data can confirm that, so this asks how different their answers would "
           "have had to be to change each conclusion: their missing answers are filled in many times from those who "
           "carried on, then shifted up or down until the conclusion changes. A large shift needed (say a whole point "
           "on the scale) means the conclusion is robust; a small one means it rests on the assumption.")
    rows = []
    for r in tip.itertuples():
        later, earlier = findings.contrast_waves(r.contrast)
        if pd.isna(r.estimate):
            continue
        if r.conclusion == "clear rise":
            tipping = (f"no longer clear if those who left would have answered {abs(r.points_down):.2f} points lower"
                       if np.isfinite(r.points_down) else "stays clear for any shift up to 3 SD")
        elif r.conclusion == "clear fall":
            tipping = (f"no longer clear if those who left would have answered {abs(r.points_up):.2f} points higher"
                       if np.isfinite(r.points_up) else "stays clear for any shift up to 3 SD")
        else:
            parts = []
            if np.isfinite(r.points_down):
                parts.append(f"a clear fall if {abs(r.points_down):.2f} points lower")
            if np.isfinite(r.points_up):
                parts.append(f"a clear rise if {abs(r.points_up):.2f} points higher")
            tipping = "would become " + " or ".join(parts) if parts else "stays unclear for any shift up to 3 SD"
        rows.append({"Question": ctx.label(r.measure), "Comparison": ctx.contrast_label(r.contrast),
                     "Answers filled in": f"{int(r.n_imputed):,} of {int(r.n_cohort):,}",
                     "Change if they answered alike (95% CI)": f"{number(r.estimate, signed=True)} ({interval(r.ci_low, r.ci_high)})",
                     "Conclusion": r.conclusion, "It would change": tipping})
    if rows:
        shown = pd.DataFrame(rows)
        s.table(table("tipping-point", "How far the missing answers would have to differ to change each conclusion", shown,
                      numeric=["Answers filled in", "Change if they answered alike (95% CI)"],
                      notes=["First-wave respondents only; missing later answers multiply imputed (50 times) from the "
                             "first answer and council characteristics, pooled by Rubin's rules with council-clustered "
                             "(CR2) errors. Points are on the question's own scale."]))
