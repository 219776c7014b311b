"""Report sections as modules: each built from one frozen Context, the reading order as data.

The sections are built here without drawing (the context's ``draw`` only records the charts), on the
6-council demo with contract-shaped model tables (report_fixtures).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from datetime import UTC, datetime

import pytest
from report_fixtures import build_study

from impactstudy.errors import ConfigError
from impactstudy.report import sections as sections_package
from impactstudy.report import stage
from impactstudy.report.context import Context, Section
from impactstudy.report.inputs import read_inputs

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    study, paths = build_study(tmp_path_factory.mktemp("sections"), 6)
    return study, paths, read_inputs(paths)


def context(built, audience: str = "public", draw=lambda job: None) -> Context:
    study, paths, inputs = built
    return Context.create(study, inputs, audience, paths.reports / "figures", STARTED, draw)


def test_every_section_module_has_one_build_function_and_is_listed():
    listed = {f.__module__ for f in (*stage.BEFORE_AIMS, *stage.AFTER_CHANGE, *stage.AFTER_AIMS)}
    modules = {f"{sections_package.__name__}.{m.name}" for m in pkgutil.iter_modules(sections_package.__path__)}
    assert modules == listed | {"impactstudy.report.sections.aim"}  # the aims' sections come from the config
    for name in modules:
        assert callable(importlib.import_module(name).build), name


def test_the_context_is_frozen_and_checks_the_audience(built):
    ctx = context(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.audience = "internal"  # type: ignore[misc]
    assert ctx.public and ctx.threshold == built[0].min_cell
    assert not context(built, "internal").public and context(built, "internal").threshold is None
    with pytest.raises(ConfigError, match="--audience must be one of public, internal"):
        context(built, "everyone")


def test_reading_order_summary_sample_aims_then_methods_and_provenance(built):
    study = built[0]
    ids = [s.id for s in stage.build_sections(context(built))]
    aims = [f"aim-{a.id}" for a in study.aims]
    assert ids[:2] == ["summary", "sample"] and ids[-2:] == ["methods", "provenance"]
    assert [i for i in ids if i.startswith("aim-")] == [a for a in aims if a in ids]
    assert {"expectations", "groups"} <= set(ids)
    first_after = min(ids.index("expectations"), ids.index("groups"))
    assert ids[first_after - 1].startswith("aim-")  # right after the aim about outcomes or change


def test_a_section_is_one_function_and_one_line(built, monkeypatch):
    def build(ctx: Context) -> Section:
        s = Section("extra", "An extra section", f"{len(ctx.study.waves)} waves")
        s.text("Built from the context alone.")
        return s

    monkeypatch.setattr(stage, "AFTER_AIMS", (*stage.AFTER_AIMS[:-1], build, stage.AFTER_AIMS[-1]))
    ids = [s.id for s in stage.build_sections(context(built))]
    assert ids[-3:] == ["methods", "extra", "provenance"]


def test_sections_build_alone_and_submit_their_charts(built):
    drawn = []
    ctx = context(built, "internal", drawn.append)
    provenance = importlib.import_module("impactstudy.report.sections.provenance").build(ctx)
    assert any("Report built 2026-01-02 03:04:05 UTC" in item for b in provenance.blocks if b["kind"] == "ul"
               for item in b["items"])
    sample = importlib.import_module("impactstudy.report.sections.sample").build(ctx)
    figures = [b["job"].name for b in sample.blocks if b["kind"] == "figure"]
    assert figures == ["council_flow"] and [j.name for j in drawn] == figures
