"""The Jinja environment of the report's templates (``impactstudy/report/templates``): autoescaping always
on, so text from the data (answers, roles, quarantine reasons) is always text, never markup; only SVG
this package generated is marked safe."""

from __future__ import annotations

import functools

import jinja2

from impactstudy.report.bidi import neutralise_bidi
from impactstudy.report.disclosure import MARK


def _finalize(value: object) -> object:
    """Every value a template prints, with bidirectional controls removed (see :mod:`impactstudy.report.bidi`)."""
    return neutralise_bidi(value) if isinstance(value, str) else value


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: package templates, autoescaping always on, undefined names an error."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("impactstudy.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=_finalize)
    env.globals["MARK"] = MARK
    return env
