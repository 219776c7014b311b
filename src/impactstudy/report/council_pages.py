"""The internal report's council pages, ``councils/<gss_code>.html``: one council's means against all
councils and its groups, its answers per wave and, with ``[impact]``, its own difference-in-differences on
each administrative outcome (``tables/impact_councils.csv``) beside the overall effect. Facts are gathered for every council in one pass
over the panel (:func:`council_facts`); the pages are built and written by workers
(:func:`write_council_pages`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup

from impactstudy.councils import same_authority_code
from impactstudy.pipeline.atomic import write_text
from impactstudy.report import figures, summaries
from impactstudy.report.inputs import Inputs
from impactstudy.report.tables import from_rows, interval, number
from impactstudy.report.templating import environment
from impactstudy.study.config import Measure, Study

MAX_LISTED = 10  # council pages list answers one by one up to this many respondents per wave


@dataclass(frozen=True)
class CouncilFacts:
    """One council's page as plain values: gathered for every council in one pass over the panel (in
    the report's process), then made into the page by a worker (:func:`council_page`)."""

    code: str
    name: str
    authority_type: str
    region: str
    groups: tuple[str, ...]  # "<covariate>=<level>" of the council's groups
    means: dict[tuple[str, str], float]  # the council's mean by (measure, wave)
    listed: dict[str, dict[str, dict[str, str]]]  # wave -> respondent -> measure -> answer (few respondents)
    roles: dict[tuple[str, str], str]  # (wave, respondent) -> role
    answered: dict[str, list[tuple[str, int, float]]]  # wave -> (measure, respondents, mean), in measure order
    # its own effect on each administrative outcome (in the study's outcome order): label, units, better,
    # estimate, ci_low, ci_high, n_years, n_placebo, and the overall effect's estimate, ci_low, ci_high
    impact: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def council_facts(study: Study, inputs: Inputs) -> list[CouncilFacts]:
    """Every council's :class:`CouncilFacts`, in code order.

    Answers are listed respondent by respondent where a council has at most :data:`MAX_LISTED`
    respondents in a wave; otherwise each question's number of answers and mean are shown. The panel
    is grouped once and every council sliced from dictionaries: a national panel has millions of rows
    and 152 councils, so nothing here filters the panel per council.
    """
    panel = inputs.panel
    group_by = tuple(g for g in (study.councils.group_by if study.councils else ()) if g in panel.columns)
    order = {m.name: i for i, m in enumerate(study.analysed_measures)}
    answered_rows = panel.loc[panel["value"].notna(), ["council_code", "wave", "measure", "value"]]
    summary = (answered_rows.groupby(["council_code", "wave", "measure"], observed=True)["value"]
               .agg(["count", "mean"]).reset_index())
    summary = summary.assign(**{c: summary[c].astype(str) for c in ("council_code", "wave", "measure")})
    summary["order"] = summary["measure"].map(order)
    means: dict[str, dict[tuple[str, str], float]] = {}
    answered: dict[str, dict[str, list[tuple[str, int, float]]]] = {}
    for code, wave, measure, n, mean, _ in summary.sort_values("order", kind="stable").itertuples(index=False):
        means.setdefault(code, {})[(measure, wave)] = mean
        answered.setdefault(code, {}).setdefault(wave, []).append((measure, int(n), mean))
    listed: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    roles: dict[str, dict[tuple[str, str], str]] = {}
    for r in summaries.answers(panel, MAX_LISTED).itertuples(index=False):
        listed.setdefault(r.council_code, {}).setdefault(r.wave, {}).setdefault(r.respondent_id, {})[r.measure] = r.answer
        roles.setdefault(r.council_code, {})[(r.wave, r.respondent_id)] = str(r.role)
    info = (panel[["council_code", "council_name", "authority_type", "region", *group_by]].drop_duplicates("council_code")
            .astype(str).sort_values("council_code"))
    effects = council_impact(study, inputs)
    last = inputs.impact_summary.get("last_period_end")
    outcome_code = {c: same_authority_code(c, date.fromisoformat(last)) for c in info["council_code"]} if last else {}
    return [CouncilFacts(code=row["council_code"], name=row["council_name"], authority_type=row["authority_type"],
                         region=row["region"], groups=tuple(f"{g}={row[g]}" for g in group_by),
                         means=means.get(row["council_code"], {}), listed=listed.get(row["council_code"], {}),
                         roles=roles.get(row["council_code"], {}), answered=answered.get(row["council_code"], {}),
                         impact=tuple(effects.get(outcome_code.get(row["council_code"], ""), ())))
            for row in info.to_dict("records")]


def council_impact(study: Study, inputs: Inputs) -> dict[str, list[dict[str, Any]]]:
    """Each treated council's own effect per outcome (outcome council codes, as at the outcomes' last
    period end), with the outcome's overall effect beside it; empty without ``[impact]``."""
    effects, outcomes = inputs.impact_councils, inputs.impact_summary.get("outcomes", {})
    if effects.empty or study.impact is None:
        return {}
    order = {o.name: i for i, o in enumerate(study.impact.outcomes)}
    out: dict[str, list[dict[str, Any]]] = {}
    rows = effects[effects["outcome"].isin(outcomes)].assign(order=lambda d: d["outcome"].map(order))
    for r in rows.sort_values("order", kind="stable").to_dict("records"):
        summary = outcomes[r["outcome"]]
        overall = summary.get("overall") or {}
        out.setdefault(r["council_code"], []).append({
            "label": summary["label"], "units": summary.get("units") or "", "better": summary["better"],
            **{k: r[k] for k in ("estimate", "ci_low", "ci_high", "n_years", "n_placebo")},
            "overall": overall.get("estimate", np.nan), "overall_low": overall.get("ci_low", np.nan),
            "overall_high": overall.get("ci_high", np.nan)})
    return out


def impact_table(study: Study, facts: CouncilFacts) -> Any:
    """The council's own effect on each administrative outcome, beside the overall effect (or None)."""
    if not facts.impact:
        return None
    header = ["Outcome", "Better", "This council's own effect", "95% interval", "Years averaged",
              "Overall effect, all treated councils (95% CI)"]
    rows = []
    for r in facts.impact:
        units = f" ({r['units']})" if r["units"] else ""
        own = (interval(r["ci_low"], r["ci_high"]) if np.isfinite(r["ci_low"])
               else f"none: too few placebo councils ({int(r['n_placebo'])})")
        overall = f"{number(r['overall'], signed=True)} ({interval(r['overall_low'], r['overall_high'])})"
        rows.append([f"{r['label']}{units}", r["better"], number(r["estimate"], signed=True), own,
                     str(int(r["n_years"])), overall])
    return from_rows("impact-council", f"{facts.name}'s own difference-in-differences on the administrative outcomes",
                     header, rows, numeric=["This council's own effect", "Years averaged"])


def council_page(study: Study, facts: CouncilFacts, measures: Sequence[Measure], trajectories: dict[tuple[str, str, str], float]) -> dict[str, Any]:
    """One council's page: a small chart per measure (the council, all councils, its groups) with its
    data table, and its responses per wave. ``trajectories`` maps (measure, group, wave) to the mean."""
    wave_labels = {w.id: w.label for w in study.waves}
    wave_ids = [w.id for w in study.waves]
    labels = {m.name: m.label for m in study.measures}
    order = {m.name: i for i, m in enumerate(study.analysed_measures)}
    x_labels = [wave_labels[w] for w in wave_ids]
    header = ["Series", *x_labels]
    charts = []
    for m in measures:
        series = [(facts.name, [facts.means.get((m.name, w), np.nan) for w in wave_ids]),
                  ("All councils", [trajectories.get((m.name, summaries.ALL, w), np.nan) for w in wave_ids])]
        series += [(g.split("=", 1)[1], [trajectories.get((m.name, g, w), np.nan) for w in wave_ids]) for g in facts.groups]
        lo, hi = (m.levels[0], m.levels[-1]) if m.levels else (m.minimum or 0, m.maximum or 100)
        alt = f"{m.label}: {facts.name}'s mean at each wave against all councils and its group."
        data = from_rows(f"data-{m.name}", f"{m.label}: means by wave", header,
                         [[name, *[number(v) for v in values]] for name, values in series], numeric=header[1:])
        charts.append({"title": m.label, "svg": Markup(figures.line_svg(series, x_labels, alt, (lo, hi))), "table": data})
    responses = []
    for wave in wave_ids:
        people = facts.listed.get(wave)
        caption = f"Answers at “{wave_labels[wave]}”"
        if people:
            ids = sorted(people)
            asked = sorted({m for p in ids for m in people[p] if m in order}, key=order.get)
            respondents = ["Question", *[f"{facts.roles[(wave, p)]} ({p[:8]})" for p in ids]]
            responses.append(from_rows(f"responses-{wave}", caption, respondents,
                                       [[labels[m], *[people[p].get(m, "") for p in ids]] for m in asked]))
        elif wave in facts.answered:
            columns = ["Question", "Respondents answering", "Mean code"]
            responses.append(from_rows(f"responses-{wave}", caption + " (summarised: many respondents)", columns,
                                       [[labels.get(m, m), f"{n:,}", number(v)] for m, n, v in facts.answered[wave]],
                                       numeric=columns[1:]))
    return {"code": facts.code, "name": facts.name, "authority_type": facts.authority_type.replace("_", " "),
            "region": facts.region, "groups": [g.replace("=", ": ") for g in facts.groups], "charts": charts,
            "responses": responses, "impact": impact_table(study, facts), "intervention": study.intervention.name}


def write_council_pages(study: Study, facts: Sequence[CouncilFacts], measures: Sequence[Measure],
                        trajectories: dict[tuple[str, str, str], float], css: str, folder: Path) -> None:
    """Build and write ``councils/<code>.html`` for each council (runs in a worker: one compiled template
    per process, and the pages' charts and tables are built there, not in the report's process)."""
    template = environment().get_template("council.html.j2")
    for council in facts:
        page = council_page(study, council, measures, trajectories)
        write_text(folder / f"{council.code}.html", template.render(study=study, page=page, css=css))
