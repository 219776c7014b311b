"""The report stage: two bundles per study, one to publish and one for the research team.

``run_report(study, paths)`` reads the link and model stages' outputs once and writes, for each audience,
a bundle complete in itself: ``reports/<study>/public/`` and ``reports/<study>/internal/``, each with
``index.html`` (CSS and SVG inline, no network request, a print stylesheet), ``figures/<name>.svg|png|csv``
and ``tables/<table>.csv`` (every table of the report as published), ``tables.xlsx`` (the same tables as an
accessible workbook) and ``report.docx`` (the report in Word); the internal bundle also has
``councils/<gss_code>.html``. Sections follow the study's ``[[aims]]``; each measure appears in the
section of its aim.

Audiences. ``public`` applies disclosure control (:mod:`impactstudy.report.disclosure`) to every answer
count, percentage, mean and estimate resting on fewer than ``study.min_cell`` councils or respondents,
everywhere in its bundle (page, figure data, tables), and leaves out council pages and free-text quotes.
``internal`` shows everything; the unsuppressed model tables stay in ``data/processed/<study>/tables/``.

Sections are modules of :mod:`impactstudy.report.sections`, each built from one frozen
:class:`~impactstudy.report.context.Context`; their reading order is the data below
(:data:`BEFORE_AIMS`, one section per aim, :data:`AFTER_CHANGE`, :data:`AFTER_AIMS`). Templates
(:mod:`impactstudy.report.templating`) are rendered with autoescaping on: text from the data (answers,
roles, quarantine reasons) is always text, never markup. Only SVG this package generated is marked safe.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from impactstudy.pipeline.atomic import staged_folders, write_json, write_text
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.progress import progress
from impactstudy.report import changes, figures, published
from impactstudy.report.context import AUDIENCES, Context, Section
from impactstudy.report.council_pages import council_facts, write_council_pages
from impactstudy.report.disclosure import FOOTNOTE
from impactstudy.report.document import write_document
from impactstudy.report.inputs import Inputs, read_inputs
from impactstudy.report.sections import aim, expectations, groups, impact, methods, provenance, sample, summary
from impactstudy.report.steps import council_aliases
from impactstudy.report.templating import environment
from impactstudy.report.workbook import write_workbook
from impactstudy.study.config import Study

SectionBuilder = Callable[[Context], Section | None]  # None: the section does not apply to this study

# The sections in reading order: BEFORE_AIMS, then one section per [[aims]] entry of the config
# (sections.aim), with AFTER_CHANGE after the first aim about the expected outcomes or about change
# (at the end of the aims when there is none), then AFTER_AIMS. A new section: a module in
# report/sections/ and its build function in one of these tuples.
BEFORE_AIMS: tuple[SectionBuilder, ...] = (summary.build, sample.build, impact.build)
AFTER_CHANGE: tuple[SectionBuilder, ...] = (expectations.build, groups.build)
AFTER_AIMS: tuple[SectionBuilder, ...] = (methods.build, provenance.build)


def build_sections(ctx: Context) -> list[Section]:
    """Every section in reading order, leaving out those with nothing in them.

    Built in another order: the aims' sections and :data:`AFTER_CHANGE` first, because they have the
    largest charts and each chart starts drawing as soon as its section submits it.
    """
    study = ctx.study
    aims = [aim.build(ctx, a) for a in study.aims]
    later = [s for s in (build(ctx) for build in AFTER_CHANGE) if s is not None]
    out = [s for s in (build(ctx) for build in BEFORE_AIMS) if s is not None]
    achieved_aim = {study.set_members(p.achieved)[0].aim for p in study.expectations if study.set_members(p.achieved)}
    change_aims = {m.aim for m in ctx.change_measures()}
    for a, section in zip(study.aims, aims, strict=True):
        out.append(section)
        if later and a.id in (achieved_aim or change_aims):
            out += later
            later = []
    out += later + [s for s in (build(ctx) for build in AFTER_AIMS) if s is not None]
    return [s for s in out if s.blocks or s.intro]


def render_report(study: Study, inputs: Inputs, audience: str, out_dir: Path, workers: int | None = None,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Any]:
    """Build and write one bundle under ``out_dir``; return what was written and how long it took."""
    started = now()
    clock = time.perf_counter()
    figures_dir = out_dir / "figures"
    for folder in (figures_dir, out_dir / "tables", out_dir / "councils"):
        if folder.exists():
            shutil.rmtree(folder)  # a bundle holds only what this run wrote
    env = environment()
    css = env.get_template("report.css").render()

    # each chart starts drawing in a worker as soon as its section is built; the council pages are
    # rendered and written by the workers too, after the charts
    with progress(f"report {audience}", "charts and pages") as bar, figures.Drawer(workers, bar) as drawer:
        ctx = Context.create(study, inputs, audience, figures_dir, started, drawer.submit)
        sections = build_sections(ctx)
        councils_dir = out_dir / "councils"
        facts = [] if ctx.public else council_facts(study, inputs)
        trajectories = ctx.trajectories.set_index(["measure", "group", "wave"])["mean"].to_dict()
        chunk = max(1, -(-len(facts) // (2 * drawer.workers)))
        written = [drawer.call(write_council_pages, study, facts[i:i + chunk], ctx.change_measures(), trajectories,
                               css, councils_dir) for i in range(0, len(facts), chunk)]
        if not ctx.public:
            index = [{"code": f.code, "name": f.name} for f in facts]
            write_text(councils_dir / "index.html",
                       env.get_template("councils_index.html.j2").render(study=study, councils=index, css=css))
        title = study.title + (" (internal)" if not ctx.public else "")
        workbook = drawer.call(write_workbook, out_dir / "tables.xlsx", published.report_tables(sections), title,
                               audience, ctx.threshold)
        for done in (*written, workbook):
            if isinstance(done, Future):
                done.result()
        charts = drawer.charts()
    for section in sections:
        for block in section.blocks:
            if block["kind"] == "figure":
                block["chart"] = charts[block["job"].name]
                block["svg"] = Markup(block["chart"].svg)  # generated here, text in it escaped by matplotlib
    tables = published.write_tables(sections, out_dir / "tables")
    footnote = FOOTNOTE.format(threshold=study.min_cell)
    html = env.get_template("report.html.j2").render(
        study=study, sections=sections, audience=audience, css=css, footnote=footnote,
        withheld=ctx.public, councils_linked=not ctx.public)
    write_text(out_dir / "index.html", html)
    write_document(out_dir / "report.docx", sections, title, BANNERS[audience].format(threshold=study.min_cell),
                   footnote if ctx.public else None)
    return {"index": str(out_dir / "index.html"), "figures": sorted(charts), "tables": tables,
            "layout_problems": {name: list(c.layout_problems) for name, c in charts.items() if c.layout_problems},
            "councils": [f.code for f in facts], "audience": audience,
            "seconds": round(time.perf_counter() - clock, 3)}


BANNERS = {"public": "Public report: figures resting on fewer than {threshold} councils or respondents are withheld "
                      "and shown as [c].",
           "internal": "Internal report: not for publication. It contains small numbers and quotes."}

# what reports/<study>/ held before the bundles (issue #17): removed, so no unsuppressed table is left beside them
OLD_LAYOUT = ("index.html", "report.json", "figures", "tables", "councils")


def run_report(study: Study, paths: StudyPaths) -> dict[str, dict[str, Any]]:
    """Read the inputs once and write both bundles, ``reports/<study>/public/`` and ``internal/``.

    Returns each audience's result. Files of the layout before the bundles (``reports/<study>/index.html``,
    ``tables/``, ``figures/``, ``councils/``) are removed.
    """
    inputs = read_inputs(paths, council_aliases(study, paths))
    results = {}
    # both bundles are written aside and swapped in together once complete: a report failing part-way
    # (in its figures, a full disk) leaves the previous bundles as they were, never new figures by an old page
    with staged_folders([paths.bundle(audience) for audience in AUDIENCES]) as staging:
        for audience, bundle in zip(AUDIENCES, staging, strict=True):
            result = render_report(study, inputs, audience, bundle)
            # only what the run decided, relative to the bundle, so two runs from the same inputs write the same bytes
            write_json(bundle / "report.json", {"index": "index.html", "figures": result["figures"],
                                                "tables": result["tables"], "councils": result["councils"],
                                                "audience": audience})
            results[audience] = {**result, "index": str(paths.bundle(audience) / "index.html")}
    for name in OLD_LAYOUT:
        old = paths.reports / name
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    write_json(paths.report_snapshot, changes.snapshot(paths))  # what the next report compares with
    return results
