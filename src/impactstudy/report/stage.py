"""The report stage: one self-contained HTML report per study, and per-council pages for internal use.

``run_report(study, paths, audience)`` reads the link and model stages' outputs, builds every table
and chart, and writes ``reports/<study>/index.html`` (CSS and SVG inline, no network request, a print
stylesheet), ``figures/<name>.svg|png|csv`` and, for the internal audience only,
``councils/<gss_code>.html``. Sections follow the study's ``[[aims]]``; each measure appears in the
section of its aim.

Audiences. ``public`` (the default) applies disclosure control (:mod:`impactstudy.disclosure`) to
every count, percentage, mean and estimate resting on fewer than ``study.min_cell`` councils or
respondents, leaves out council pages and free-text quotes, and removes council pages a previous
internal run left behind. ``internal`` shows everything.

Templates (``impactstudy/templates``) are rendered with autoescaping on: text from the data (answers,
roles, quarantine reasons) is always text, never markup. Only SVG this package generated is marked safe.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from impactstudy import __version__, changes, figures, findings, summaries
from impactstudy.atomic import write_json, write_text
from impactstudy.config import Aim, Measure, Study
from impactstudy.disclosure import FOOTNOTE, MARK, protect_counts
from impactstudy.errors import ConfigError, DataError
from impactstudy.panel import read_long
from impactstudy.paths import StudyPaths
from impactstudy.pipeline import Step
from impactstudy.tables import Table, count_mask, counts_text, from_rows, interval, number, partition_mask, pct, table

AUDIENCES = ("public", "internal")
PACKAGES = ("impactstudy", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "pyarrow", "pyreadstat")
PANELS_PER_CHART = 6  # trajectory small multiples per chart: readable, and charts render in parallel
TRAJECTORY_NUMERIC = ("Mean", "95% CI", "Councils", "Respondents")
MAX_LISTED = 10  # council pages list answers one by one up to this many respondents per wave
MODEL_ORDER = ("lmm", "gee", "gee_ipw", "ordinal", "paired_t", "wilcoxon", "mcnemar")


# --------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """Everything the report reads, loaded."""

    panel: pd.DataFrame
    linkage_summary: dict[str, Any]
    ingest_report: dict[str, Any]
    quarantine: pd.DataFrame
    link_quarantine: pd.DataFrame
    contrasts: pd.DataFrame
    estimates: pd.DataFrame
    attrition: pd.DataFrame
    expectations: pd.DataFrame
    models: dict[str, Any]
    provenance: list[dict[str, str]] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=lambda: {"first_run": True})


def input_files(paths: StudyPaths) -> tuple[Path, ...]:
    """The files the report reads (the manifest and config are read for provenance only)."""
    return (paths.panel_long, paths.linkage_summary, paths.ingest_report, paths.quarantine, paths.link_quarantine,
            paths.tables / "contrasts.csv", paths.tables / "estimates.csv", paths.tables / "attrition.csv",
            paths.tables / "expectations.csv", paths.models_json)


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True) if path.stat().st_size else pd.DataFrame()


def read_inputs(paths: StudyPaths) -> Inputs:
    """Load every input, or stop with a message naming the stage to run."""
    for path in input_files(paths):
        if not path.is_file():
            stage = "model" if paths.tables in path.parents or path == paths.models_json else "link"
            raise DataError(f"{path}: not found; run `impactstudy {stage} --study {paths.study}` first")
    contrasts = _csv(paths.tables / "contrasts.csv")
    for column in ("flag", "warning", "correction"):
        if column in contrasts:
            contrasts[column] = contrasts[column].astype(object).where(contrasts[column].notna(), "").astype(str)
    return Inputs(
        panel=read_long(paths.panel_long),
        linkage_summary=json.loads(paths.linkage_summary.read_text(encoding="utf-8")),
        ingest_report=json.loads(paths.ingest_report.read_text(encoding="utf-8")),
        quarantine=_csv(paths.quarantine),
        link_quarantine=_csv(paths.link_quarantine),
        contrasts=contrasts,
        estimates=_csv(paths.tables / "estimates.csv"),
        attrition=_csv(paths.tables / "attrition.csv"),
        expectations=_csv(paths.tables / "expectations.csv"),
        models=json.loads(paths.models_json.read_text(encoding="utf-8")),
        provenance=provenance(paths),
        changes=changes.compare(changes.load_previous(paths), changes.snapshot(paths)),
    )


def provenance(paths: StudyPaths) -> list[dict[str, str]]:
    """SHA-256 of the config and of every raw input the pipeline recorded in its manifest."""
    rows = []
    if paths.config.is_file():
        rows.append({"file": f"pipelines/{paths.study}/study.toml", "role": "study config",
                     "sha256": hashlib.sha256(paths.config.read_bytes()).hexdigest()})
    manifest = json.loads(paths.manifest.read_text(encoding="utf-8")) if paths.manifest.is_file() else {}
    raw_prefix = f"data/raw/{paths.study}/"
    seen: dict[str, str] = {}
    for step in manifest.get("steps", {}).values():
        for file, digest in step.get("inputs", {}).items():
            if file.startswith(raw_prefix) and digest:
                seen[file] = digest
    rows += [{"file": f, "role": "raw input", "sha256": d} for f, d in sorted(seen.items())]
    return rows


def versions() -> list[dict[str, str]]:
    """Installed versions of the packages the results depend on."""
    out = []
    for package in PACKAGES:
        try:
            out.append({"package": package, "version": metadata.version(package)})
        except metadata.PackageNotFoundError:
            out.append({"package": package, "version": "not installed"})
    return out


# ----------------------------------------------------------------------------------------- building


@dataclass
class Section:
    """A report section: heading, intro and an ordered list of blocks (paragraphs, tables, figures)."""

    id: str
    title: str
    intro: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def text(self, text: str, kind: str = "p") -> None:
        self.blocks.append({"kind": kind, "text": text})

    def heading(self, text: str) -> None:
        self.blocks.append({"kind": "h3", "text": text})

    def table(self, item: Table) -> None:
        self.blocks.append({"kind": "table", "table": item})

    def figure(self, job: figures.Job, data: Table) -> None:
        self.blocks.append({"kind": "figure", "job": job, "table": data})

    def items(self, values: Sequence[str]) -> None:
        self.blocks.append({"kind": "ul", "items": list(values)})


class Builder:
    """Builds the report's sections for one study, audience and figures folder."""

    def __init__(self, study: Study, inputs: Inputs, audience: str, figures_dir: Path,
                 draw: Callable[[figures.Job], None] = lambda job: None):
        if audience not in AUDIENCES:
            raise ConfigError(f"--audience must be one of {', '.join(AUDIENCES)}, got '{audience}'")
        self.study, self.inputs, self.audience, self.figures_dir = study, inputs, audience, figures_dir
        self.public = audience == "public"
        self.threshold = study.min_cell if self.public else None
        self.group_by = tuple(study.councils.group_by) if study.councils else ()
        self.wave_labels = {w.id: w.label for w in study.waves}
        self.jobs: list[figures.Job] = []
        self.draw = draw  # e.g. figures.Drawer.submit: each chart starts drawing as soon as its section makes it
        panel = inputs.panel
        answered = panel.loc[panel["value"].notna(), ["measure", "wave"]]
        self.observed = answered.groupby("measure", observed=True)["wave"].nunique().to_dict()
        scored = [m.name for m in study.analysed_measures if m.type in ("likert", "numeric")]
        self.trajectories = summaries.trajectories(panel, study, scored, self.group_by)  # once, sliced by every section

    # -- helpers -------------------------------------------------------------------------------------

    def label(self, name: str) -> str:
        try:
            return self.study.measure(name).label
        except KeyError:
            return name

    def group_label(self, group: str) -> str:
        if group == summaries.ALL:
            return "All councils"
        covariate, _, level = group.partition("=")
        return f"{level} ({covariate})"

    def contrast_label(self, contrast: str) -> str:
        later, earlier = findings.contrast_waves(contrast)
        return f"{self.wave_labels.get(later, later)} vs {self.wave_labels.get(earlier, earlier)}"

    def chart(self, draw: Callable[..., Any], args: tuple, name: str, title: str, subtitle: str, alt: str,
              data: pd.DataFrame, caption: str, numeric: Sequence[str] = ()) -> tuple[figures.Job, Table]:
        """A chart, handed to the builder's ``draw`` callback (drawn in parallel while the rest is built), and its data table."""
        job = figures.Job(name, draw, args, title, subtitle, alt, data, self.figures_dir)
        self.jobs.append(job)
        self.draw(job)
        return job, table(f"data-{name}", caption, data, numeric=numeric)

    def change_measures(self, aim: str | None = None) -> list[Measure]:
        """Likert and numeric measures observed in two or more waves (optionally of one aim)."""
        return [m for m in self.study.analysed_measures
                if m.type in ("likert", "numeric") and self.observed.get(m.name, 0) >= 2 and (aim is None or m.aim == aim)]

    # -- summary ---------------------------------------------------------------------------------------

    def summary(self) -> Section:
        s = Section("summary", "Summary", self.study.description)
        s.text(findings.ATTRIBUTION_CAVEAT, kind="callout")
        found = findings.key_findings(self.inputs.contrasts, self.study, min_cell=self.threshold)
        if found:
            s.heading("Key findings")
            s.items([f.sentence for f in found])
        else:
            s.text("The model stage produced no contrasts, so there are no key findings to report.")
        councils = self.inputs.linkage_summary.get("councils", 0)
        if councils < self.study.models.flag_councils:
            s.text(f"Only {councils} councils took part. With so few councils, intervals are wide, a change that "
                   "is real can easily go undetected, and no result should be read as applying to councils in general.",
                   kind="callout")
        return s

    # -- the sample ------------------------------------------------------------------------------------

    def sample(self) -> Section:
        s = Section("sample", "The sample", "Who answered each wave, how many councils stayed in the study, and "
                    "how the councils compare with all English upper-tier councils.")
        part = summaries.participation(self.inputs.panel, self.study)
        counts = ["councils", "respondents", "councils_retained", "respondents_retained"]
        masks = {c: count_mask(part[c], self.threshold) for c in counts}
        shown = pd.DataFrame({
            "Wave": part["wave_label"],
            "Councils": counts_text(part["councils"], masks["councils"]),
            "Respondents": counts_text(part["respondents"], masks["respondents"]),
            "Councils also in the first wave": counts_text(part["councils_retained"], masks["councils_retained"]),
            "Council retention": [MARK if m else pct(v) for v, m in zip(part["council_retention"], masks["councils_retained"] | masks["councils"][0])],
            "Respondents also in the first wave": counts_text(part["respondents_retained"], masks["respondents_retained"]),
            "Respondent retention": [MARK if m else pct(v) for v, m in zip(part["respondent_retention"], masks["respondents_retained"] | masks["respondents"][0])],
        })
        s.table(table("responses", "Responses and retention by wave", shown, numeric=list(shown.columns[1:])))

        flow = summaries.flow(self.inputs.linkage_summary.get("participation", {}), self.study)
        flow_text = flow.astype(object)
        flow_text["councils"] = counts_text(flow["councils"], count_mask(flow["councils"], self.threshold))
        for k in range(len(flow)):
            moves = flow.loc[k, ["stayed", "left", "joined"]].to_numpy(dtype=float)
            # the three moves of a transition are withheld together: any two and the totals give the third
            hide = self.threshold is not None and k > 0 and bool((moves < self.threshold).any())
            for column in ("stayed", "left", "joined"):
                flow_text.loc[k, column] = MARK if hide else ("–" if k == 0 else f"{int(flow.loc[k, column]):,}")
        data = flow_text.rename(columns={"wave_label": "Wave", "councils": "Councils", "stayed": "Stayed from the previous wave",
                                         "left": "Left after the previous wave", "joined": "Joined"}).drop(columns="wave")
        title, subtitle = ("How councils moved through the waves",
                           "Councils present at each wave; stayed, left and joined relative to the previous wave")
        fig = (figures.flow_chart, (flow_text, title, subtitle))
        first, last = flow_text.iloc[0], flow_text.iloc[-1]
        alt = (f"Flow diagram: {first['councils']} councils at {first['wave_label']}, {last['councils']} at "
               f"{last['wave_label']}. The table below gives every number.")
        s.figure(*self.chart(*fig, "council_flow", title, subtitle, alt,
                             data, "Councils through the waves", numeric=list(data.columns[1:])))

        register = summaries.sample_vs_register(self.inputs.linkage_summary)
        for dimension, title in (("authority_type", "authority type"), ("region", "region")):
            sub = register[register["dimension"] == dimension].reset_index(drop=True)
            if sub.empty:
                continue
            counts = pd.DataFrame({"sample": sub["sample"].to_numpy(dtype=float)}, index=sub["category"])
            if self.threshold is not None:
                full, hidden = protect_counts(counts, self.threshold, rows=False, columns=True)
                sample_mask = hidden["sample"].to_numpy()
            else:
                full = counts.copy()
                full.loc["Total"] = counts.sum()
                sample_mask = np.zeros(len(full), dtype=bool)
            reg = np.append(sub["register"].to_numpy(dtype=float), sub["register"].sum())
            shown = pd.DataFrame({
                title.capitalize(): [str(c).replace("_", " ") for c in full.index],
                "Councils in the study": counts_text(full["sample"], sample_mask),
                "Councils in England": [f"{int(v):,}" for v in reg],
                "Share of councils in the study": [MARK if m else pct(a / b if b else np.nan)
                                                   for a, b, m in zip(full["sample"], reg, sample_mask)],
            })
            s.table(table(f"sample-{dimension}", f"The sample against the register of English upper-tier councils, by {title}",
                          shown, numeric=list(shown.columns[1:])))

        attrition = self.inputs.estimates[self.inputs.estimates.get("model", pd.Series(dtype=str)) == "attrition_logit"] \
            if "model" in self.inputs.estimates else pd.DataFrame()
        s.heading("Who stayed in the study")
        if attrition.empty:
            fits = self.inputs.models.get("fits", [])
            reasons = sorted({f"{str(f.get('measure', '')).replace('took_part:', 'Taking part at ')}: {f['error']}"
                              for f in (fits if isinstance(fits, list) else []) if f.get("model") == "attrition_logit" and f.get("error")})
            s.text("No attrition model was fitted." + (" " + "; ".join(reasons) + "." if reasons else ""))
        else:
            s.text("A logistic model of taking part in each later wave, by the council characteristics the study records, "
                   "shows whether the councils that stayed differ from those that left. Estimates are log odds ratios; "
                   "a retention-weighted GEE (gee_ipw) in the methods tables checks whether the conclusions depend on who stayed.")
            hide = self.threshold is not None and self.inputs.linkage_summary.get("councils", 0) < self.threshold
            shown = pd.DataFrame({
                "Outcome and term": [f"{m.replace('took_part:', 'Took part at ')}: {t}" for m, t in zip(attrition["measure"], attrition["term"])],
                "Log odds ratio": [MARK if hide else number(v) for v in attrition["estimate"]],
                "95% CI": [MARK if hide else interval(lo, hi) for lo, hi in zip(attrition["ci_low"], attrition["ci_high"])],
                "p-value": [MARK if hide else findings.fmt_p(p) for p in attrition["p_value"]],
            })
            s.table(table("attrition-model", "Attrition model: taking part in each later wave", shown,
                          numeric=["Log odds ratio", "95% CI", "p-value"]))
        return s

    # -- option sets -----------------------------------------------------------------------------------

    def option_set(self, s: Section, parent: str, coded: bool = False) -> None:
        members = self.study.set_members(parent)
        shares = summaries.option_shares(self.inputs.panel, self.study, parent)
        shares = shares[shares["group"] == summaries.ALL]
        if shares.empty:
            return
        set_label = members[0].label.rsplit(":", 1)[0] if members else parent
        for wave, cell in shares.groupby("wave", sort=False):
            cell = cell.reset_index(drop=True)
            masked = count_mask(cell["selected"], self.threshold) | count_mask(cell["base"], self.threshold)
            value = cell["share"].where(~masked)
            base_text = counts_text(cell["base"], count_mask(cell["base"], self.threshold))
            data = pd.DataFrame({
                "Option": cell["option_label"],
                "Respondents selecting it": counts_text(cell["selected"], masked),
                "Respondents answering": base_text,
                "Percentage": [MARK if m else pct(v) for v, m in zip(cell["share"], masked)],
                "95% CI (%)": [MARK if m else interval(lo, hi, 0, 100) for lo, hi, m in zip(cell["ci_low"], cell["ci_high"], masked)],
            })
            top = cell.loc[value.idxmax()] if value.notna().any() else None
            noun = "Themes coded in the lessons" if coded else set_label
            title = (f"“{top['option_label']}” was the most common: {pct(top['share'])} of respondents" if top is not None
                     else f"{noun}: too few respondents to publish")
            subtitle = (f"{set_label}, {self.wave_labels.get(wave, wave)}: percentage of respondents selecting each option, "
                        f"with 95% Wilson intervals; respondents could select more than one")
            frame = pd.DataFrame({"label": cell["option_label"], "value": value,
                                  "ci_low": cell["ci_low"].where(~masked), "ci_high": cell["ci_high"].where(~masked)})
            fig = (figures.bar_chart, (frame, title, subtitle, "Percentage of respondents",))
            alt = f"Bar chart of {set_label.lower()}: " + "; ".join(
                f"{lab} {MARK if m else pct(v)}" for lab, v, m in zip(cell["option_label"], cell["share"], masked)) + "."
            s.figure(*self.chart(*fig, f"{parent}_{wave}", title, subtitle, alt, data, f"{set_label} ({self.wave_labels.get(wave, wave)})",
                                 numeric=list(data.columns[1:])))

    # -- single-wave measures --------------------------------------------------------------------------

    def single_wave(self, s: Section, measures: list[Measure]) -> None:
        """Questions asked in one wave: mean of council means (t interval), or % yes (Wilson interval)."""
        if not measures:
            return
        scored = [m.name for m in measures if m.type != "binary"]
        binary = [m.name for m in measures if m.type == "binary"]
        traj = self.trajectories[self.trajectories["measure"].isin(scored) & (self.trajectories["group"] == summaries.ALL)]
        shares = summaries.binary_shares(self.inputs.panel, binary)
        shares = shares[shares["group"] == summaries.ALL]
        shares = shares.assign(n_respondents=shares["base"], n_councils=shares["n_councils"],
                               wave_label=shares["wave"].map(self.wave_labels), mean=shares["share"])
        rows = []
        order = {m.name: i for i, m in enumerate(measures)}
        both = pd.concat([traj, shares], ignore_index=True).sort_values("measure", key=lambda c: c.map(order), kind="stable")
        for r in both.itertuples():
            measure = self.study.measure(r.measure)
            hidden = self.threshold is not None and (r.n_councils < self.threshold or r.n_respondents < self.threshold)
            if measure.type == "binary":
                value, ci, scale = pct(r.mean), interval(r.ci_low, r.ci_high, 0, 100), "% answering yes (Wilson 95% CI)"
            else:
                value, ci = number(r.mean), interval(r.ci_low, r.ci_high)
                scale = (f"mean, {measure.levels[0]:g} = {measure.level_labels.get(measure.levels[0], '')} to "
                         f"{measure.levels[-1]:g} = {measure.level_labels.get(measure.levels[-1], '')}"
                         if measure.type == "likert" and measure.levels else "mean")
            rows.append({"Question": measure.label, "Wave": r.wave_label, "Value": MARK if hidden else value,
                         "95% CI": MARK if hidden else ci, "Councils": MARK if hidden else f"{int(r.n_councils):,}",
                         "Respondents": MARK if hidden else f"{int(r.n_respondents):,}", "Statistic": scale})
        shown = pd.DataFrame(rows)
        s.table(table(f"single-{s.id}", "Questions asked in one wave", shown,
                      numeric=["Value", "95% CI", "Councils", "Respondents"],
                      notes=["Means are means of council means (each council's respondents averaged first, so every "
                             "council counts once), with t intervals over councils; percentages are of respondents."]))

    # -- change over time ------------------------------------------------------------------------------

    def change(self, s: Section, measures: list[Measure]) -> None:
        if not measures:
            return
        names = [m.name for m in measures]
        traj = self.trajectories[self.trajectories["measure"].isin(names)]
        self._trajectory_figure(s, traj, measures, [summaries.ALL], f"{s.id}_trajectories",
                                "How self-rated effectiveness moved across the waves")
        contrasts = self.inputs.contrasts
        if contrasts.empty:
            return
        mine = contrasts[contrasts["measure"].isin(names) & (contrasts["group"] == summaries.ALL)].copy()
        mine["withheld"] = count_mask(mine["n_councils"], self.threshold)
        primary = mine[mine["model"] == "lmm"]
        if not primary.empty:
            series = [(c, self.contrast_label(c)) for c in dict.fromkeys(primary["contrast"])]
            frame = pd.DataFrame({"row": primary["measure"], "series": primary["contrast"],
                                  "estimate": primary["estimate"].where(~primary["withheld"]),
                                  "ci_low": primary["ci_low"].where(~primary["withheld"]),
                                  "ci_high": primary["ci_high"].where(~primary["withheld"])})
            rows = [(m.name, m.label) for m in measures]
            n_clear = int(((primary["ci_low"] > 0) | (primary["ci_high"] < 0))[~primary["withheld"]].sum())
            title = (f"{n_clear} of {len(primary)} changes have intervals that exclude zero" if n_clear
                     else "No change has an interval that excludes zero")
            subtitle = "Change in mean score from the first wave (linear mixed model), with 95% confidence intervals; dashed line: no change"
            data = self._contrast_data(primary)
            alt = (f"Forest plot of the change in each measure from the first wave: {title.lower()}. "
                   "The table below gives every estimate and interval.")
            fig = (figures.forest_chart, (frame, rows, series, title, subtitle, "Change in mean score",))
            s.figure(*self.chart(*fig, f"{s.id}_forest", title, subtitle, alt, data, "Change from the first wave (linear mixed model)",
                                 numeric=["Estimate", "95% CI", "q-value", "Councils"]))
        self._model_tables(s, mine)

    def _trajectory_figure(self, s: Section, traj: pd.DataFrame, measures: list[Measure], groups: list[str], name: str,
                           title: str) -> None:
        """Small multiples of trajectories, at most :data:`PANELS_PER_CHART` measures per chart."""
        chunks = [measures[i:i + PANELS_PER_CHART] for i in range(0, len(measures), PANELS_PER_CHART)]
        for k, chunk in enumerate(chunks):
            names = {m.name for m in chunk}
            self._trajectory_chunk(s, traj[traj["measure"].isin(names)], chunk, groups,
                                   name if len(chunks) == 1 else f"{name}_{k + 1}",
                                   title if len(chunks) == 1 else f"{title} ({k + 1} of {len(chunks)})")

    def _trajectory_chunk(self, s: Section, traj: pd.DataFrame, measures: list[Measure], groups: list[str], name: str,
                          title: str) -> None:
        traj = traj[traj["group"].isin(groups)].reset_index(drop=True)
        if traj.empty:
            return
        plotted, data = self._trajectory_data(traj)
        levels = [lv for m in measures for lv in m.levels]
        ylim = (min(levels) - 0.2, max(levels) + 0.2) if levels and all(m.type == "likert" for m in measures) else None
        series = [(g, self.group_label(g)) for g in groups if g in set(traj["group"])]
        waves = [(w.id, w.label) for w in self.study.waves if w.id in set(traj["wave"])]
        subtitle = ("Mean of council means at each wave, with 95% confidence intervals"
                    + (f"; points resting on fewer than {self.threshold} councils or respondents are not shown" if self.threshold else ""))
        fig = (figures.trajectory_chart, (plotted, [(m.name, m.label) for m in measures], series, waves, title, subtitle, ylim,))
        alt = (f"Line charts, one per measure, of the mean score at each wave for {', '.join(lbl for _, lbl in series)}. "
               "The table below gives every mean and interval.")
        s.figure(*self.chart(*fig, name, title, subtitle, alt, data, f"{title}: the data",
                             numeric=list(TRAJECTORY_NUMERIC)))

    def _trajectory_data(self, traj: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Trajectory rows as plotted (withheld points NaN) and as published (withheld cells [c])."""
        mask = (partition_mask(traj, ["measure", "wave"], "group", summaries.ALL, "n_councils", self.threshold)
                | partition_mask(traj, ["measure", "wave"], "group", summaries.ALL, "n_respondents", self.threshold))
        small_base = count_mask(traj["n_councils"], self.threshold) | count_mask(traj["n_respondents"], self.threshold)
        plotted = traj.assign(mean=traj["mean"].where(~small_base), ci_low=traj["ci_low"].where(~small_base),
                              ci_high=traj["ci_high"].where(~small_base))
        data = pd.DataFrame({
            "Measure": [self.label(m) for m in traj["measure"]], "Group": [self.group_label(g) for g in traj["group"]],
            "Wave": traj["wave_label"],
            "Mean": [MARK if b else number(v) for v, b in zip(traj["mean"], small_base)],
            "95% CI": [MARK if b else interval(lo, hi) for lo, hi, b in zip(traj["ci_low"], traj["ci_high"], small_base)],
            "Councils": counts_text(traj["n_councils"], mask | small_base),
            "Respondents": counts_text(traj["n_respondents"], mask | small_base),
        })
        return plotted, data

    def headline_measures(self, measures: list[Measure], groups: list[str]) -> list[Measure]:
        """At most :data:`PANELS_PER_CHART` measures whose groups' LMM changes from the first wave to the last
        differ most (published estimates only), in study order; the first ones when there are no contrasts."""
        if len(measures) <= PANELS_PER_CHART:
            return measures
        contrasts = self.inputs.contrasts
        spread = pd.Series(dtype=float)
        if not contrasts.empty:
            last = f"{self.study.wave_ids[-1]} - {self.study.wave_ids[0]}"
            rows = contrasts[(contrasts["model"] == "lmm") & (contrasts["contrast"] == last)
                             & contrasts["group"].isin([g for g in groups if g != summaries.ALL])]
            rows = rows[~count_mask(rows["n_councils"], self.threshold) & rows["estimate"].notna()]
            spread = rows.groupby("measure")["estimate"].agg(lambda e: e.max() - e.min())
        order = {m.name: i for i, m in enumerate(measures)}
        ranked = sorted(measures, key=lambda m: (-spread.get(m.name, -np.inf), order[m.name]))
        keep = {m.name for m in ranked[:PANELS_PER_CHART]}
        return [m for m in measures if m.name in keep]

    def _contrast_data(self, rows: pd.DataFrame) -> pd.DataFrame:
        hidden = rows["withheld"].to_numpy()
        return pd.DataFrame({
            "Measure": [self.label(m) for m in rows["measure"]],
            "Comparison": [self.contrast_label(c) for c in rows["contrast"]],
            "Group": [self.group_label(g) for g in rows["group"]],
            "Estimate": [MARK if h else number(v, signed=True) for v, h in zip(rows["estimate"], hidden)],
            "95% CI": [MARK if h else interval(lo, hi) for lo, hi, h in zip(rows["ci_low"], rows["ci_high"], hidden)],
            "q-value": [MARK if h else findings.fmt_p(q) for q, h in zip(rows["q_value"], hidden)],
            "Councils": counts_text(rows["n_councils"], np.asarray(hidden, dtype=bool)),
            "Note": [str(f) for f in rows.get("flag", pd.Series([""] * len(rows)))],
        })

    def _model_tables(self, s: Section, rows: pd.DataFrame) -> None:
        """Each contrast's estimates from every model side by side: does the conclusion depend on the model?"""
        models = [m for m in MODEL_ORDER if m in set(rows["model"])] + sorted(set(rows["model"]) - set(MODEL_ORDER))
        for contrast in dict.fromkeys(rows["contrast"]):
            cell = rows[rows["contrast"] == contrast]
            found = {(r.measure, r.model): r for r in cell.itertuples()}
            measures = list(dict.fromkeys(cell["measure"]))
            out = {"Measure": [self.label(m) for m in measures]}
            for model in models:
                values = []
                for measure in measures:
                    x = found.get((measure, model))
                    if x is None or pd.isna(x.estimate):
                        values.append("–")
                    elif x.withheld:
                        values.append(MARK)
                    else:
                        ci = findings.ci_text(x.ci_low, x.ci_high, getattr(x, "warning", ""))
                        values.append(f"{number(x.estimate, signed=True)} ({ci}); q {findings.fmt_p(x.q_value)}")
                out[findings.MODEL_NAMES.get(model, model)] = values
            shown = pd.DataFrame(out)
            not_95 = any(findings.NOT_95 in v for column in list(out)[1:] for v in out[column])
            s.table(table(f"models-{s.id}-{contrast.replace(' ', '')}", f"{self.contrast_label(contrast)}: estimate (95% CI) and q-value by model",
                          shown, numeric=list(shown.columns[1:]),
                          notes=["Linear and GEE models estimate the change in mean score; the ordinal model a log odds ratio; "
                                 "paired tests use councils present in both waves. Agreement in sign and in whether the "
                                 "interval excludes zero means the conclusion does not depend on the model.",
                                 *([findings.NOT_95_NOTE] if not_95 else [])]))

    # -- expectations and groups -----------------------------------------------------------------------

    def expectations(self) -> Section | None:
        frame = self.inputs.expectations
        if not self.study.expectations or frame.empty:
            return None
        s = Section("expectations", "Expectations against outcomes",
                    "Whether the outcomes respondents expected before the review were the ones they reported achieving a year on.")
        for pair in self.study.expectations:
            names = {pair.expected, *(m.name for m in self.study.set_members(pair.expected))}
            cell = frame[frame["expected"].isin(names) & (frame["group"] == summaries.ALL)]
            met = cell[cell["model"] == "expectation_met"].set_index("option")
            diff = cell[cell["model"] == "mcnemar"].set_index("option")
            options = list(dict.fromkeys(cell["option"]))
            if not options:
                continue
            labels = [cell[cell["option"] == o]["option_label"].iloc[0] for o in options]

            def hidden(table_: pd.DataFrame, option: str) -> bool:
                if option not in table_.index:
                    return True
                r = table_.loc[option]
                return self.threshold is not None and (r["n_obs"] < self.threshold or r["n_councils"] < self.threshold)

            expected = summaries.option_shares(self.inputs.panel, self.study, pair.expected)
            achieved = summaries.option_shares(self.inputs.panel, self.study, pair.achieved)
            share = {}
            for name, sh in (("expected", expected), ("achieved", achieved)):
                sh = sh[sh["group"] == summaries.ALL].set_index("option")
                small = count_mask(sh["selected"], self.threshold) | count_mask(sh["base"], self.threshold)
                share[name] = sh["share"].where(~small)
            data = pd.DataFrame({
                "Outcome": labels,
                "Expected before (%)": [pct(share["expected"].get(o, np.nan)) if pd.notna(share["expected"].get(o, np.nan)) else MARK for o in options],
                "Achieved a year on (%)": [pct(share["achieved"].get(o, np.nan)) if pd.notna(share["achieved"].get(o, np.nan)) else MARK for o in options],
                "Of those expecting it, % achieving it (95% CI)": [
                    MARK if hidden(met, o) else f"{pct(met.loc[o, 'estimate'])} ({interval(met.loc[o, 'ci_low'], met.loc[o, 'ci_high'], 0, 100)})"
                    for o in options],
                "Achieved − expected, points (95% CI); p": [
                    MARK if hidden(diff, o) else (f"{number(100 * diff.loc[o, 'estimate'], 0, signed=True)} "
                                                  f"({interval(diff.loc[o, 'ci_low'], diff.loc[o, 'ci_high'], 0, 100)}); "
                                                  f"p {findings.fmt_p(diff.loc[o, 'p_value'])}")
                    for o in options],
            })
            frame_ = pd.DataFrame({"label": labels, "first": [share["expected"].get(o, np.nan) for o in options],
                                   "second": [share["achieved"].get(o, np.nan) for o in options]})
            title = "Outcomes expected before the review against outcomes achieved a year on"
            subtitle = "Percentage of respondents selecting each outcome at each wave; McNemar's exact test in the table"
            fig = (figures.dumbbell_chart, (frame_, "Expected", "Achieved", title, subtitle,))
            alt = "Dot plot pairing, for each outcome, the percentage expecting it with the percentage achieving it. The table below gives the values."
            s.figure(*self.chart(*fig, f"expectations_{pair.expected}", title, subtitle, alt, data,
                                 "Expected against achieved outcomes", numeric=list(data.columns[1:])))
        return s

    def groups(self) -> Section | None:
        if not self.group_by:
            return None
        measures = self.change_measures()
        if not measures:
            return None
        s = Section("groups", "Differences by group",
                    f"Change broken down by {', '.join(self.group_by)}. Groups are small, so intervals are wide; a "
                    "difference between groups is only suggested where their intervals barely overlap.")
        names = [m.name for m in measures]
        traj = self.trajectories[self.trajectories["measure"].isin(names)]
        for covariate in self.group_by:
            groups = [summaries.ALL] + sorted(g for g in set(traj["group"]) if g.startswith(f"{covariate}="))
            headline = self.headline_measures(measures, groups)
            title = f"Effectiveness over time by {covariate}"
            if len(headline) < len(measures):
                s.text(f"With {len(measures)} measures, the chart shows the {len(headline)} whose change from the first "
                       f"wave to the last differs most between groups of {covariate}; the table after it gives every "
                       "measure's group means, and the forest plot below every measure's change by group.")
                title += f": the {len(headline)} measures whose groups differ most"
            self._trajectory_figure(s, traj, headline, groups, f"trajectories_by_{covariate}", title)
            if len(headline) < len(measures):
                every = traj[traj["group"].isin(groups)].reset_index(drop=True)
                s.table(table(f"trajectories-by-{covariate}-all", f"Mean of council means by {covariate}, every measure",
                              self._trajectory_data(every)[1], numeric=list(TRAJECTORY_NUMERIC)))
            contrasts = self.inputs.contrasts
            if contrasts.empty:
                continue
            last = f"{self.study.wave_ids[-1]} - {self.study.wave_ids[0]}"
            rows = contrasts[contrasts["measure"].isin(names) & (contrasts["model"] == "lmm") & (contrasts["contrast"] == last)
                             & contrasts["group"].isin(groups)].copy()
            if rows.empty:
                continue
            rows["withheld"] = count_mask(rows["n_councils"], self.threshold)
            sec_mask = partition_mask(rows, ["measure"], "group", summaries.ALL, "n_councils", self.threshold)
            frame = pd.DataFrame({"row": rows["measure"], "series": rows["group"],
                                  "estimate": rows["estimate"].where(~rows["withheld"]),
                                  "ci_low": rows["ci_low"].where(~rows["withheld"]), "ci_high": rows["ci_high"].where(~rows["withheld"])})
            title = f"Change from {self.wave_labels[self.study.wave_ids[0]].lower()} to the last wave, by {covariate}"
            subtitle = "Change in mean score (linear mixed model with a wave × group interaction), 95% confidence intervals"
            data = self._contrast_data(rows)
            data["Councils"] = counts_text(rows["n_councils"], sec_mask | rows["withheld"].to_numpy())
            fig = (figures.forest_chart, (frame, [(m.name, m.label) for m in measures],
                                       [(g, self.group_label(g)) for g in groups if g in set(rows["group"])], title, subtitle,
                                       "Change in mean score",))
            alt = f"Forest plot of the change in each measure by {covariate}. The table below gives every estimate."
            s.figure(*self.chart(*fig, f"forest_by_{covariate}", title, subtitle, alt, data, f"Change by {covariate}",
                                 numeric=["Estimate", "95% CI", "q-value", "Councils"]))
        return s

    # -- lessons ---------------------------------------------------------------------------------------

    def quotes(self, s: Section, text_measure: str) -> None:
        if self.public:
            s.text("Free-text answers are quoted only in the internal report.")
            return
        panel = self.inputs.panel
        rows = panel[(panel["measure"].astype(str) == text_measure) & panel["value_label"].notna()
                     & (panel["value_label"].astype(str).str.strip() != "")]
        if rows.empty:
            return
        s.heading(f"In their own words: {self.label(text_measure).lower()}")
        s.blocks.append({"kind": "quotes", "items": [
            {"text": str(r.value_label), "who": f"{r.council_name}, {r.role}, {self.wave_labels.get(str(r.wave), r.wave)}"}
            for r in rows.itertuples()]})

    # -- methods ---------------------------------------------------------------------------------------

    def methods(self) -> Section:
        s = Section("methods", "Methods and data quality",
                    "How the results were produced, what is missing and why, and which rows the pipeline set aside.")
        settings = self.inputs.models.get("settings", {})
        s.heading("Models")
        s.text("Change over time is estimated with a linear mixed model (random intercepts for councils, and for "
               "respondents who answered more than once; Satterthwaite degrees of freedom), with a GEE (exchangeable "
               "correlation within councils, robust errors), a proportional-odds model for Likert items and paired "
               "council-level tests as checks. Binary items use McNemar's exact test. q-values are Benjamini–Hochberg "
               "adjusted across measures within each model, comparison and group.")
        if settings:
            s.items([f"{k.replace('_', ' ')}: {v}" for k, v in sorted(settings.items()) if not isinstance(v, (dict, list))])
        fits = self.inputs.models.get("fits", [])
        if isinstance(fits, dict):
            fits = [{"key": k, **v} for k, v in fits.items()]
        if fits:
            frame = pd.DataFrame(fits)
            keep = [c for c in ("measure", "model", "group_by", "formula", "n_councils", "converged", "correction", "error") if c in frame]
            shown = frame[keep].copy()
            if "n_councils" in shown:
                shown["n_councils"] = counts_text(shown["n_councils"], count_mask(shown["n_councils"], self.threshold))
            if "measure" in shown:
                shown["measure"] = [self.label(str(m)) for m in shown["measure"]]
            shown = shown.astype(object).where(shown.notna(), "")
            shown.columns = [c.replace("_", " ").capitalize() for c in shown.columns]
            s.table(table("model-fits", "Models fitted", shown, numeric=["N councils"]))

        s.heading("Missing answers")
        missing = summaries.missing_reasons(self.inputs.panel, self.study)
        if missing.empty:
            s.text("No answers are missing.")
        else:
            pivot = missing.groupby(["measure", "reason"])["n"].sum().unstack(fill_value=0)
            shown = pd.DataFrame({"Question": [self.label(m) for m in pivot.index]})
            for reason in pivot.columns:
                shown[reason] = counts_text(pivot[reason], count_mask(pivot[reason], self.threshold))
            s.table(table("missing", "Missing answers by question and reason (all waves)", shown, numeric=list(shown.columns[1:]),
                          notes=["'No answer' is an item left blank; other reasons are the survey's own answer options "
                                 "or values the pipeline could not accept (quarantined below)."]))

        s.heading("Rows and values set aside")
        waves = self.inputs.ingest_report.get("waves", [])
        if waves:
            counts = pd.DataFrame({"accepted": [w["rows_accepted"] for w in waves],
                                   "quarantined": [w["rows_quarantined"] for w in waves]},
                                  index=[self.wave_labels.get(w["wave"], w["wave"]) for w in waves]).astype(float)
            if self.threshold is not None:
                full, hidden = protect_counts(counts, self.threshold, rows=True, columns=True)
            else:
                full = counts.copy()
                full["Total"] = full.sum(axis=1)
                full.loc["Total"] = full.sum()
                hidden = pd.DataFrame(False, index=full.index, columns=full.columns)
            shown = pd.DataFrame({"Wave": list(full.index),
                                  "Rows accepted": counts_text(full["accepted"], hidden["accepted"].to_numpy()),
                                  "Rows set aside": counts_text(full["quarantined"], hidden["quarantined"].to_numpy()),
                                  "Rows read": counts_text(full["Total"], hidden["Total"].to_numpy())})
            s.table(table("ingest", "Rows read from each raw file", shown, numeric=list(shown.columns[1:])))
        quarantine = summaries.quarantine_summary(self.inputs.quarantine, self.inputs.link_quarantine)
        if not quarantine.empty:
            shown = pd.DataFrame({"Wave": [self.wave_labels.get(w, w) for w in quarantine["wave"]],
                                  "What": ["Whole row" if sc == "row" else "Single answer" for sc in quarantine["scope"]],
                                  "Reason": quarantine["reason"],
                                  "Number": counts_text(quarantine["n"], count_mask(quarantine["n"], self.threshold))})
            s.table(table("quarantine", "Rows and answers set aside, by reason", shown, numeric=["Number"],
                          notes=["Set-aside rows are listed one by one in quarantine.csv and quarantine_link.csv for the research team."]))
        methods = self.inputs.linkage_summary.get("rows_by_method", {})
        if methods:
            names = {"code": "GSS or DfE code", "exact": "Exact name", "alias": "Known alternative name",
                     "fuzzy": "Close spelling (checked)", "unmatched": "Not matched (set aside)"}
            values = pd.Series([float(methods[k]) for k in methods])
            if self.threshold is not None:
                full, hidden = protect_counts(pd.DataFrame({"n": values.to_numpy()}), self.threshold, rows=False, columns=True)
                mask = hidden["n"].to_numpy()
            else:
                full = pd.DataFrame({"n": np.append(values.to_numpy(), values.sum())})
                mask = np.zeros(len(full), dtype=bool)
            shown = pd.DataFrame({"How the council was identified": [names.get(k, k) for k in methods] + ["Total"],
                                  "Rows": counts_text(full["n"], mask)})
            s.table(table("linkage", "How each response was linked to its council", shown, numeric=["Rows"]))
        return s

    def provenance(self, started: datetime) -> Section:
        s = Section("provenance", "Provenance", "Exactly what this report was built from, so it can be reproduced.")
        files = pd.DataFrame(self.inputs.provenance or [{"file": "–", "role": "–", "sha256": "–"}])
        s.table(table("inputs", "Input files and their SHA-256", files.rename(columns={"file": "File", "role": "Role", "sha256": "SHA-256"})))
        v = pd.DataFrame(versions()).rename(columns={"package": "Package", "version": "Version"})
        s.table(table("versions", "Software versions", v))
        s.heading("What changed since the previous report")
        s.items(self.change_notes())
        s.items([f"Report built {started.strftime('%Y-%m-%d %H:%M:%S')} UTC by impactstudy {__version__}",
                 f"Audience: {self.audience}" + (f"; cells resting on fewer than {self.threshold} councils or respondents are withheld"
                                                 if self.public else "; not for publication")])
        return s

    def change_notes(self) -> list[str]:
        """Sentences on what new or replaced data changed since the previous report."""
        diff = self.inputs.changes
        if diff.get("first_run"):
            return ["This is the first report of this study: there is no earlier one to compare with."]
        notes = [f"Raw file {f} was replaced since the previous report (its content changed)."
                 for f in diff["raw_files_changed"]]
        notes += [f"New wave: {self.wave_labels.get(w, w)}." for w in diff["new_waves"]]
        notes += [f"{self.wave_labels.get(w, w)}: {n:+d} accepted rows." for w, n in diff["rows_added"].items()
                  if w not in diff["new_waves"]]
        if diff["councils_newly_linked"]:
            notes.append(f"{len(diff['councils_newly_linked'])} council(s) newly linked"
                         + ("" if self.public else f": {', '.join(diff['councils_newly_linked'])}") + ".")
        if diff["councils_no_longer_linked"]:
            notes.append(f"{len(diff['councils_no_longer_linked'])} council(s) no longer linked.")
        moved = diff["estimates_moved"]
        if moved:
            largest = max(moved, key=lambda m: abs(m["change"]))
            measure, contrast, group = largest["key"].split("|")
            notes.append(f"{len(moved)} LMM estimate(s) moved; the largest: {self.label(measure)}, "
                         f"{self.contrast_label(contrast)}, {self.group_label(group)}: "
                         f"{largest['previous']:+.2f} → {largest['current']:+.2f}.")
        return notes or ["Nothing changed since the previous report: same raw data, same estimates."]

    # -- the whole report ------------------------------------------------------------------------------

    def aim_section(self, aim: Aim, coded_text: set[str]) -> Section:
        """One research aim's section: its option sets, change over time, single-wave measures and themes."""
        s = Section(f"aim-{aim.id}", aim.title, aim.intro)
        measures = [m for m in self.study.analysed_measures if m.aim == aim.id]
        parents = list(dict.fromkeys(m.parent for m in measures if m.parent))
        for parent in parents:
            members = self.study.set_members(parent)
            if members[0].type == "binary" and parent not in coded_text and not any(
                    parent == p.achieved for p in self.study.expectations):
                self.option_set(s, parent)
        self.change(s, self.change_measures(aim.id))
        single = [m for m in measures if m.type in ("likert", "numeric", "binary") and self.observed.get(m.name, 0) == 1
                  and not (m.parent and m.type == "binary")]
        self.single_wave(s, single)
        for parent in parents:
            if parent in coded_text:
                frame_measure = next(m for m in self.study.set_members(parent))
                s.heading(f"Themes in “{self.label(frame_measure.coding_frame_for)}”")
                self.option_set(s, parent, coded=True)
                self.quotes(s, frame_measure.coding_frame_for)
        return s

    def sections(self, started: datetime) -> list[Section]:
        """Every section in reading order: summary, sample, the aims (expectations and groups after the
        first aim about outcomes or change), methods, provenance.

        Built in another order: the aims' and the groups' sections first, because they have the largest
        charts and each chart starts drawing as soon as its section submits it.
        """
        coded_text = {m.parent for m in self.study.measures if m.coding_frame_for}
        aims = [self.aim_section(aim, coded_text) for aim in self.study.aims]
        groups, expectations = self.groups(), self.expectations()
        out = [self.summary(), self.sample()]
        achieved_aim = {self.study.set_members(p.achieved)[0].aim for p in self.study.expectations if self.study.set_members(p.achieved)}
        change_aims = {m.aim for m in self.change_measures()}
        later = [x for x in (expectations, groups) if x is not None]
        for aim, section in zip(self.study.aims, aims, strict=True):
            out.append(section)
            if later and aim.id in (achieved_aim or change_aims):
                out += later
                later = []
        out += later + [self.methods(), self.provenance(started)]
        return [s for s in out if s.blocks or s.intro]


# ----------------------------------------------------------------------------------------- council pages


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
    return [CouncilFacts(code=row["council_code"], name=row["council_name"], authority_type=row["authority_type"],
                         region=row["region"], groups=tuple(f"{g}={row[g]}" for g in group_by),
                         means=means.get(row["council_code"], {}), listed=listed.get(row["council_code"], {}),
                         roles=roles.get(row["council_code"], {}), answered=answered.get(row["council_code"], {}))
            for row in info.to_dict("records")]


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
            "responses": responses}


# ------------------------------------------------------------------------------------------------ stage


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: package templates, autoescaping always on, undefined names an error."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("impactstudy", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["MARK"] = MARK
    return env


def write_council_pages(study: Study, facts: Sequence[CouncilFacts], measures: Sequence[Measure],
                        trajectories: dict[tuple[str, str, str], float], css: str, folder: Path) -> None:
    """Build and write ``councils/<code>.html`` for each council (runs in a worker: one compiled template
    per process, and the pages' charts and tables are built there, not in the report's process)."""
    template = environment().get_template("council.html.j2")
    for council in facts:
        page = council_page(study, council, measures, trajectories)
        write_text(folder / f"{council.code}.html", template.render(study=study, page=page, css=css))


def render_report(study: Study, inputs: Inputs, audience: str, out_dir: Path, workers: int | None = None,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Any]:
    """Build and write the report under ``out_dir``; return what was written and how long it took."""
    started = now()
    clock = time.perf_counter()
    figures_dir = out_dir / "figures"
    if figures_dir.exists():
        shutil.rmtree(figures_dir)
    env = environment()
    css = env.get_template("report.css").render()

    # each chart starts drawing in a worker as soon as its section is built; the council pages are
    # rendered and written by the workers too, after the charts
    with figures.Drawer(workers) as drawer:
        builder = Builder(study, inputs, audience, figures_dir, drawer.submit)
        sections = builder.sections(started)
        councils_dir = out_dir / "councils"
        if councils_dir.exists():
            shutil.rmtree(councils_dir)  # a public report never leaves an earlier internal run's pages behind
        facts = [] if builder.public else council_facts(study, inputs)
        trajectories = builder.trajectories.set_index(["measure", "group", "wave"])["mean"].to_dict()
        chunk = max(1, -(-len(facts) // (2 * drawer.workers)))
        written = [drawer.call(write_council_pages, study, facts[i:i + chunk], builder.change_measures(), trajectories,
                               css, councils_dir) for i in range(0, len(facts), chunk)]
        if not builder.public:
            index = [{"code": f.code, "name": f.name} for f in facts]
            write_text(councils_dir / "index.html",
                       env.get_template("councils_index.html.j2").render(study=study, councils=index, css=css))
        for done in written:
            if isinstance(done, Future):
                done.result()
        charts = drawer.charts()
    for section in sections:
        for block in section.blocks:
            if block["kind"] == "figure":
                block["chart"] = charts[block["job"].name]
                block["svg"] = Markup(block["chart"].svg)  # generated here, text in it escaped by matplotlib
    footnote = FOOTNOTE.format(threshold=study.min_cell)
    html = env.get_template("report.html.j2").render(
        study=study, sections=sections, audience=audience, css=css, footnote=footnote,
        withheld=builder.public, councils_linked=not builder.public)
    write_text(out_dir / "index.html", html)
    return {"index": str(out_dir / "index.html"), "figures": sorted(charts), "councils": [f.code for f in facts],
            "audience": audience, "seconds": round(time.perf_counter() - clock, 3)}


def run_report(study: Study, paths: StudyPaths, audience: str = "public") -> dict[str, Any]:
    """Read the inputs, write the report for ``audience``, and record what was written."""
    if audience not in AUDIENCES:
        raise ConfigError(f"--audience must be one of {', '.join(AUDIENCES)}, got '{audience}'")
    result = render_report(study, read_inputs(paths), audience, paths.reports)
    # only what the run decided, relative to the report folder, so two runs from the same inputs write the same bytes
    write_json(paths.reports / "report.json", {"index": "index.html", "figures": result["figures"],
                                               "councils": result["councils"], "audience": audience})
    write_json(changes.snapshot_path(paths), changes.snapshot(paths))  # what the next report compares with
    return result


def report_steps(study: Study, paths: StudyPaths, audience: str = "public") -> list[Step]:
    """The report stage as one step; switching audience reruns it (the audience is part of its config)."""
    config = {"audience": audience, "min_cell": study.min_cell, "title": study.title, "description": study.description,
              "aims": [asdict(a) for a in study.aims], "measures": [asdict(m) for m in study.analysed_measures],
              "group_by": list(study.councils.group_by) if study.councils else [],
              "expectations": [asdict(e) for e in study.expectations]}
    return [Step(name="report", inputs=input_files(paths), config=config,
                 outputs=(paths.reports / "index.html", paths.reports / "report.json", changes.snapshot_path(paths)),
                 run=lambda: run_report(study, paths, audience))]
