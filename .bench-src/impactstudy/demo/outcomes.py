"""The demo's administrative outcomes: a synthetic children's social care panel in the DfE CSV layout.

Every authority of the register live at some reporting-year end from 2010 to 2021 (year ending 31
March) gets a yearly series of three indicators (:data:`OUTCOMES`), written to ``cin_outcomes.csv``
in the Department for Education's open-data layout (national, regional and local-authority rows; a
``breakdown`` filter column with ``Total``, ``Female`` and ``Male``; about 0.2% of local-authority cells
suppressed as ``c``, ``x`` or ``low``, more often in small councils). The data-generating process is
:mod:`impactstudy.demo.panels` (council and year effects, noise shrinking with council size, a
dip in the year before a council's review, effects that grow over three years and are smaller for the
later cohort); the demo's reviewed councils are those of ``councils.csv``, first treated in the
reporting year containing their ``review_date``. Repeat child protection plans have no true effect.

Reorganisations follow the register: Gateshead and Northumberland change code in 2013 (one series
under two codes), Bournemouth, Christchurch and Poole, Dorset, Buckinghamshire and the
Northamptonshire unitaries start new series when they exist. ``truth.json`` gets each outcome's true
ATT(g, t) and the true overall ATT (cohort-size weighted) under ``impact``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.councils import councils_on, load_register, same_authority_code
from impactstudy.study.periods import cohort_year
from impactstudy.demo.panels import OutcomeModel, dfe_layout, simulate_panel, true_att
from impactstudy.pipeline.atomic import write_bytes

FILE = "cin_outcomes.csv"
YEARS = tuple(range(2010, 2022))
YEAR_END = (3, 31)
OUTCOMES = (
    OutcomeModel("re_referrals", "Re-referrals within 12 months (%)", level=23, council_sd=4, trend=-0.1,
                 noise_sd=0.7, gain=4.0, direction="lower", dip=3.0),
    OutcomeModel("assessments_45_days", "Assessments completed within 45 working days (%)", level=78,
                 council_sd=8, trend=0.6, noise_sd=2.0, gain=8.0, direction="higher", dip=4.0),
    OutcomeModel("repeat_cp_plans", "Child protection plans that were repeat plans (%)", level=17, council_sd=3,
                 trend=0.15, noise_sd=2.0, gain=0.0, direction="lower", dip=2.0),
)
COLUMNS = {"re_referrals": "re_referral_rate", "assessments_45_days": "assessments_within_45_days_pct",
           "repeat_cp_plans": "repeat_cpp_pct"}


def _units() -> tuple[list[str], dict[tuple[str, int], str]]:
    """Series (the code each authority has at the last year end) and the code written for each year."""
    last = date(YEARS[-1], *YEAR_END)
    written: dict[tuple[str, int], str] = {}
    for year in YEARS:
        for code in councils_on(date(year, *YEAR_END))["gss_code"]:
            written[(same_authority_code(code, last), year)] = code
    return sorted({unit for unit, _ in written}), written


def write_outcomes(raw: Path, councils: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Write ``raw / FILE`` for the reviewed ``councils`` (``council``, ``review_date``); return the truth."""
    rng = np.random.default_rng([seed, 16])
    units, written = _units()
    last = date(YEARS[-1], *YEAR_END)
    reviewed = {same_authority_code(c, last): cohort_year(pd.Timestamp(d), YEAR_END)
                for c, d in zip(councils["council"], councils["review_date"], strict=True)}
    cohort = np.array([reviewed.get(u, 0) for u in units])
    sizes = rng.lognormal(0, 0.7, len(units))
    wide = None
    for model in OUTCOMES:
        values = simulate_panel(model, units, sizes, cohort, YEARS, rng).rename(columns={"value": COLUMNS[model.name]})
        wide = values if wide is None else wide.merge(values, on=["council_code", "year"])
    wide["size"] = np.repeat(sizes, len(YEARS))
    keep = [(u, y) in written for u, y in zip(wide["council_code"], wide["year"], strict=True)]
    wide = wide[keep].copy()
    wide["council_code"] = [written[(u, y)] for u, y in zip(wide["council_code"], wide["year"], strict=True)]
    table = dfe_layout(wide, load_register(), list(COLUMNS.values()), rng, suppress=0.002,
                       breakdowns=("Total", "Female", "Male"), time_identifier="Financial year")
    write_bytes(raw / FILE, table.to_csv(index=False, lineterminator="\n").encode())
    cohorts = sorted({g for g in cohort if g})
    sizes_by_cohort = {g: int((cohort == g).sum()) for g in cohorts}
    truth: dict[str, Any] = {"file": FILE, "years": [YEARS[0], YEARS[-1]], "year_end": "03-31",
                             "cohorts": {str(g): n for g, n in sizes_by_cohort.items()}, "outcomes": {}}
    for model in OUTCOMES:
        att = true_att(model, cohorts, YEARS)
        overall = sum(n * np.mean([v for (g, _t), v in att.items() if g == c]) for c, n in sizes_by_cohort.items())
        truth["outcomes"][model.name] = {
            "label": model.label, "better": model.direction, "dip_before_review": model.dip,
            "overall_att": overall / sum(sizes_by_cohort.values()),
            "att_gt": [{"cohort": g, "year": t, "att": v} for (g, t), v in sorted(att.items())],
            "model": {k: v for k, v in model.__dict__.items() if k not in ("name", "label")},
        }
    return truth
