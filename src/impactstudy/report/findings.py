"""Key findings as plain-English sentences generated from ``contrasts.csv``.

Every sentence states the estimate, its 95% confidence interval and its q-value, and is worded by
rules rather than by hand so that it can never say more than the table does:

* a change is described as a rise or fall only when the interval excludes zero; otherwise the sentence
  says there was *no clear change* and that *the interval includes zero*;
* an interval that excludes zero with a q-value of 0.05 or more is reported as a change that may be
  chance once the number of measures tested is allowed for;
* a contrast resting on few councils (flagged by the model stage, or below the study's
  ``flag_councils``) carries a caveat;
* with fewer councils than ``[models] few_councils`` the finding rests on the council-level exact
  sign-flip test of council changes (:data:`COUNCIL_LEVEL`; estimand: the council-weighted mean change),
  not on a respondent-level model, and where that test cannot reach p < 0.05 with so few councils
  (its ``min_p_value`` is above 0.05) the finding says "inconclusive with N councils" instead of
  describing a change;
* where the other models fitted to the same measure that estimate the same thing (the ``estimand``
  column) reach a different conclusion, the sentence says so; models of other estimands are not
  compared (a log odds ratio and a council-weighted mean change answer different questions);
* nothing is ever said to be *caused by* the intervention: the design has no comparison group, and
  the study's caveat (:attr:`~impactstudy.study.config.Intervention.caveat_text`) says so once at the
  top of the summary;
* in the public report, an estimate resting on fewer than ``min_cell`` councils is withheld.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from impactstudy.report.disclosure import MARK
from impactstudy.report.tables import interval
from impactstudy.study.config import Measure, Study

PRIMARY = {"likert": "lmm", "numeric": "lmm", "binary": "mcnemar"}
COUNCIL_LEVEL = "sign_flip"  # below few_councils (the model stage fits it only then) the findings rest on it
ALPHA = 0.05
MODEL_NAMES = {"lmm": "linear mixed model", "gee": "GEE", "gee_ipw": "retention-weighted GEE",
               "ordinal": "ordinal (proportional-odds) model", "paired_t": "paired t-test",
               "wilcoxon": "Wilcoxon signed-rank test", "mcnemar": "McNemar's test",
               "cr2": "CR2 cluster-robust regression", "cr2_council": "council-level regression (CR2)",
               "sign_flip": "sign-flip permutation test", "wild_bootstrap": "wild cluster bootstrap",
               "lmm_time": "linear mixed model on time since the intervention",
               "attrition_logit": "which councils took part (Firth logistic regression)",
               "dropout_logit": "which respondents stayed (logistic regression for the retention weights)",
               "theme_share": "theme share (council-clustered)"}
# rows of contrasts.csv that estimate something other than the change in the measure's mean or odds (a share
# of top answers, a difference between groups): never compared with the change models nor tabled beside them
OTHER_ESTIMANDS = ("share", "share_diff", "change_adjusted")
NOT_95 = "\u2020"  # marks an interval whose level is below 95% (stated beside it)
NOT_95_NOTE = (f"{NOT_95} Not a 95% interval: with this few councils an exact test (sign-flip, Wilcoxon) cannot "
               "reach 95%, so the interval is shown at the highest level it can reach, stated beside it (never "
               "below 80%; below that no interval is shown). It is narrower than a 95% interval would be and is "
               "weaker evidence.")


@dataclass(frozen=True)
class Finding:
    """One key finding: its sentence and the table row it was generated from."""

    measure: str
    model: str
    contrast: str
    group: str
    sentence: str
    estimate: float
    ci_low: float
    ci_high: float
    q_value: float
    withheld: bool = False
    estimand: str = ""
    inconclusive: bool = False  # the test cannot reach p < 0.05 with this many councils


def fmt_number(value: float, digits: int = 2, signed: bool = False) -> str:
    """A number for prose: fixed digits, a true minus sign, '–' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:+.{digits}f}" if signed and round(value, digits) != 0 else f"{abs(value) if round(value, digits) == 0 else value:.{digits}f}"
    return text.replace("-", "\u2212")


FLOOR_NOTE = ("Smallest possible p: the lowest p-value an exact test can give with this many councils, whatever the "
              "data (five councils that all change the same way give 2/32 = 0.0625). Where it is above 0.05 the test "
              "cannot show a change, and the key findings say the result is inconclusive with that many councils.")


def fmt_floor(value: float) -> str:
    """A smallest possible p-value: '< 0.001' below a thousandth, else three significant digits (0.0625)."""
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def fmt_p(value: float) -> str:
    """A p- or q-value as published: '< 0.001' below a thousandth, else three decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _units(measure: Measure) -> tuple[float, int, str]:
    """Scale factor, decimals and unit words for a measure's estimate."""
    if measure.type == "binary":
        return 100.0, 0, " percentage points"
    if measure.type == "likert" and measure.levels:
        return 1.0, 2, f" points on the {measure.levels[0]:g}–{measure.levels[-1]:g} scale"
    return 1.0, 2, ""


def contrast_waves(contrast: str) -> tuple[str, str]:
    """``'later - earlier'`` → ``(later, earlier)``."""
    later, _, earlier = contrast.partition(" - ")
    return later.strip(), earlier.strip()


_ACHIEVED = re.compile(r"not achievable.*?the CI is an? ([0-9.]+) interval")
_NOT_AVAILABLE = re.compile(r"not available with \d+ councils?")


def achieved_level(warning: object) -> float | None:
    """The confidence level of an interval that could not reach 95%, from the model stage's ``warning``
    (with few councils an exact Wilcoxon interval cannot be 95%; like R's ``wilcox.test``, the model
    stage then gives the nearest achievable interval and says which); None for a 95% interval."""
    match = _ACHIEVED.search(str(warning or ""))
    return float(match.group(1)) if match else None


def ci_text(low: float, high: float, warning: object, digits: int = 2, scale: float = 1.0) -> str:
    """An interval as published: 'low to high' for a 95% interval, else prefixed with its real level and
    marked :data:`NOT_95` (e.g. '60% CI −2.00 to 0.75†'), so it is never read as a 95% interval."""
    text = interval(low, high, digits, scale)
    level = achieved_level(warning)
    if text == "–":
        missing = _NOT_AVAILABLE.search(str(warning or ""))
        return f"interval {missing.group(0)}" if missing else text
    return text if level is None else f"{100 * level:.0f}% CI {text}{NOT_95}"


def inconclusive(row: Mapping[str, Any]) -> bool:
    """True when the row's test cannot reach p < :data:`ALPHA` with its councils (``min_p_value``)."""
    floor = row.get("min_p_value", 0.0)
    return floor is not None and not pd.isna(floor) and float(floor) > ALPHA


def _conclusion(row: Mapping[str, Any]) -> int:
    """+1 a clear rise, -1 a clear fall, 0 no clear change (the interval includes zero)."""
    if row["ci_low"] > 0:
        return 1
    if row["ci_high"] < 0:
        return -1
    return 0


def agreement(contrasts: pd.DataFrame, row: pd.Series) -> list[str]:
    """Names of the other models of the same measure, contrast, group and estimand that conclude
    differently (models of another estimand answer another question and are not compared)."""
    same = contrasts[(contrasts["measure"] == row["measure"]) & (contrasts["contrast"] == row["contrast"])
                     & (contrasts["group"] == row["group"]) & (contrasts["model"] != row["model"])
                     & ~contrasts["model"].isin(OTHER_ESTIMANDS)]
    if "estimand" in same and isinstance(row.get("estimand"), str):
        same = same[same["estimand"] == row["estimand"]]
    same = same.dropna(subset=["ci_low", "ci_high"])
    if "warning" in same:  # an interval below 95% does not support a conclusion comparable with the others
        same = same[same["warning"].map(lambda w: achieved_level(w) is None).astype(bool)]
    mine = _conclusion(row)
    return [MODEL_NAMES.get(m, m) for m, r in zip(same["model"], same.itertuples()) if _conclusion(r._asdict()) != mine]


def sentence(row: pd.Series, study: Study, contrasts: pd.DataFrame) -> str:
    """The sentence for one contrast row (see the module docstring for the rules)."""
    measure = study.measure(row["measure"])
    later, earlier = contrast_waves(row["contrast"])
    labels = {w.id: w.label for w in study.waves}
    scale, digits, unit = _units(measure)
    estimate, low, high = (row[k] * scale for k in ("estimate", "ci_low", "ci_high"))
    subject = measure.label
    if row["group"] != "all":
        covariate, _, level = row["group"].partition("=")
        subject = f"{subject}, among councils with {covariate} {level},"
    council_level = row["model"] == COUNCIL_LEVEL
    what = "council-weighted mean change" if council_level and measure.type != "binary" else (
        "council-weighted change" if council_level else "estimate")
    ci = ci_text(row["ci_low"], row["ci_high"], row.get("warning", ""), digits, scale)
    ci = ci if "CI" in ci or ci.startswith("interval") else f"95% CI {ci}"
    evidence = (f"({what} {fmt_number(estimate, digits, signed=True)}{unit}, {ci}; "
                f"q {'' if row['q_value'] < 0.001 else '= '}{fmt_p(row['q_value'])})")
    when = f"between “{labels.get(earlier, earlier)}” and “{labels.get(later, later)}”"
    direction = _conclusion(row)
    n = int(row.get("n_councils_both", row["n_councils"]) if council_level else row["n_councils"])
    if pd.isna(row["estimate"]):
        return f"{subject}, {when}: {str(row.get('warning', '') or 'not estimable').split(';')[0]}."
    if inconclusive(row):
        floor = float(row["min_p_value"])
        changed = round(1 - math.log2(floor)) if council_level and floor > 0 else n  # floor = 2 / 2^changed
        why = (f"With {n} councils no exact council-level test can reach p < {ALPHA:g}"
               if n <= 5 or changed >= n else
               f"Only {changed} of the {n} councils changed, so the exact council-level test cannot reach p < {ALPHA:g}")
        if changed < n and n <= 5:
            why += f" (and only {changed} of them changed)"
        return (f"{subject}, {when}: inconclusive with {n} councils ({what} "
                f"{fmt_number(estimate, digits, signed=True)}{unit}, {ci}). {why}; the smallest possible p-value "
                f"is {floor:.3g}.")
    if direction == 0:
        text = f"{subject}: no clear change {when} {evidence}; the interval includes zero."
    else:
        verb = "higher" if direction > 0 else "lower"
        text = f"{subject} was {verb} at “{labels.get(later, later)}” than at “{labels.get(earlier, earlier)}” {evidence}."
        if not row["q_value"] < 0.05:
            text += (" Allowing for the number of measures tested, this could be chance.")
    few = str(row.get("flag", "") or "") == "few councils" or row["n_councils"] < study.models.flag_councils
    if few:
        text += f" It rests on only {int(row['n_councils'])} councils, so treat it with caution."
    others = agreement(contrasts, row)
    if others:
        text += f" Not every model agrees: the {', '.join(others)} reached a different conclusion."
    return text


def key_findings(contrasts: pd.DataFrame, study: Study, min_cell: int | None = None, group: str = "all") -> list[Finding]:
    """One finding per modelled measure: its primary model's contrast of the last wave it was asked
    in against the first, in the study's measure order. With ``min_cell`` (the public report), a
    contrast resting on fewer councils is withheld rather than described."""
    findings = []
    # every model's row of each measure, contrast and group, found once (a national study has thousands of rows)
    keyed = dict(tuple(contrasts.groupby(["measure", "contrast", "group"], sort=False)))
    for measure in study.research_measures:
        model = PRIMARY.get(measure.type)
        waves = [w for w in study.wave_ids if w in measure.waves]
        if model is None or len(waves) < 2:
            continue
        contrast = f"{waves[-1]} - {waves[0]}"
        models = keyed.get((measure.name, contrast, group), contrasts.iloc[:0])
        council_level = models[models["model"] == COUNCIL_LEVEL]
        if not council_level.empty:  # few councils: the council is the unit of the conclusion
            model = COUNCIL_LEVEL
        rows = models[models["model"] == model]
        if rows.empty or (pd.isna(rows.iloc[0]["estimate"]) and model != COUNCIL_LEVEL):
            continue
        row = rows.iloc[0]
        withheld = min_cell is not None and row["n_councils"] < min_cell
        text = (f"{measure.label}: {MARK} withheld because it rests on fewer than {min_cell} councils." if withheld
                else sentence(row, study, models))
        findings.append(Finding(measure.name, model, contrast, group, text, float(row["estimate"]),
                                float(row["ci_low"]), float(row["ci_high"]), float(row["q_value"]), withheld,
                                str(row.get("estimand", "") or ""), inconclusive(row)))
    return findings
