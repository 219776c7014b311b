"""What a report section is built from (:class:`Context`, frozen) and what it builds (:class:`Section`).

Every section of :mod:`impactstudy.report.sections` is a function ``build(ctx) -> Section`` (an aim's
section: ``build(ctx, aim)``) over the same context, so sections share nothing else and each can be
built and tested alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from impactstudy.errors import ConfigError
from impactstudy.report import figures, findings, summaries
from impactstudy.report.inputs import Inputs
from impactstudy.report.steps import AUDIENCES
from impactstudy.report.tables import Table, table
from impactstudy.study.config import Measure, Study


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


@dataclass(frozen=True, eq=False)
class Context:
    """What every section is built from: the study, the loaded inputs, the audience and what is derived
    from them once (disclosure threshold, wave labels, measures observed per wave, trajectories).

    ``draw`` receives each chart as soon as a section makes it (e.g. :meth:`figures.Drawer.submit`, which
    starts drawing it in a worker while the rest is built); ``started`` is when the report was begun.
    Make one with :meth:`create`.
    """

    study: Study
    inputs: Inputs
    audience: str
    figures_dir: Path
    draw: Callable[[figures.Job], None]
    started: datetime
    public: bool
    threshold: int | None  # cells resting on fewer councils or respondents are withheld (public audience)
    group_by: tuple[str, ...]
    wave_labels: dict[str, str]
    observed: dict[str, int]  # measure -> number of waves with an answer
    trajectories: pd.DataFrame  # computed once, sliced by every section

    @classmethod
    def create(cls, study: Study, inputs: Inputs, audience: str, figures_dir: Path, started: datetime,
               draw: Callable[[figures.Job], None] = lambda job: None) -> Context:
        """The context for ``audience`` (``public`` or ``internal``; anything else is a config error)."""
        if audience not in AUDIENCES:
            raise ConfigError(f"--audience must be one of {', '.join(AUDIENCES)}, got '{audience}'")
        public = audience == "public"
        group_by = tuple(study.councils.group_by) if study.councils else ()
        panel = inputs.panel
        answered = panel.loc[panel["value"].notna(), ["measure", "wave"]]
        scored = [m.name for m in study.research_measures if m.type in ("likert", "numeric")]
        return cls(study=study, inputs=inputs, audience=audience, figures_dir=figures_dir, draw=draw, started=started,
                   public=public, threshold=study.min_cell if public else None, group_by=group_by,
                   wave_labels={w.id: w.label for w in study.waves},
                   observed=answered.groupby("measure", observed=True)["wave"].nunique().to_dict(),
                   trajectories=summaries.trajectories(panel, study, scored, group_by))

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

    def measures_noun(self, measures: Sequence[Measure]) -> str:
        """What a chart of ``measures`` is about, from their labels: the one measure's label, the label
        their labels share before a colon ("Wellbeing: sleep", "Wellbeing: mood" → "Wellbeing"), or
        "the measures"."""
        labels = [m.label for m in measures]
        heads = {label.split(":", 1)[0].strip() for label in labels}
        if len(heads) == 1 and all(":" in label for label in labels):
            return heads.pop()
        return labels[0] if len(labels) == 1 else "the measures"

    def contrast_label(self, contrast: str) -> str:
        later, earlier = findings.contrast_waves(contrast)
        return f"{self.wave_labels.get(later, later)} vs {self.wave_labels.get(earlier, earlier)}"

    def chart(self, draw: Callable[..., Any], args: tuple, name: str, title: str, subtitle: str, alt: str,
              data: pd.DataFrame, caption: str, numeric: Sequence[str] = (),
              notes: Sequence[str] = ()) -> tuple[figures.Job, Table]:
        """A chart, handed to the context's ``draw`` callback (drawn in parallel while the rest is built), and its data table."""
        job = figures.Job(name, draw, args, title, subtitle, alt, data, self.figures_dir)
        self.draw(job)
        return job, table(f"data-{name}", caption, data, numeric=numeric, notes=notes)

    def change_measures(self, aim: str | None = None) -> list[Measure]:
        """Likert and numeric measures observed in two or more waves (optionally of one aim)."""
        return [m for m in self.study.research_measures
                if m.type in ("likert", "numeric") and self.observed.get(m.name, 0) >= 2 and (aim is None or m.aim == aim)]
