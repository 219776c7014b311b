"""The summary section: key findings, the attribution caveat, and a warning when few councils took part.
"""

from __future__ import annotations

from impactstudy.report import findings
from impactstudy.report.context import Context, Section
from impactstudy.report.sections import impact


def build(ctx: Context) -> Section:
    """Key findings, with the attribution caveat and a warning when few councils took part."""
    s = Section("summary", "Summary", ctx.study.description)
    s.text(ctx.study.intervention.caveat_text, kind="callout")
    found = findings.key_findings(ctx.inputs.contrasts, ctx.study, min_cell=ctx.threshold)
    effects = impact.key_findings(ctx)  # against comparison councils: these lead
    if found or effects:
        s.heading("Key findings")
        s.items(effects + [f.sentence for f in found])
        if any(f.inconclusive for f in found):  # the council-level test's floor, explained once
            s.text(findings.FLOOR_NOTE)
        if any(findings.NOT_95 in f.sentence for f in found):
            s.text(findings.NOT_95_NOTE)
    else:
        s.text("The model stage produced no contrasts, so there are no key findings to report.")
    councils = ctx.inputs.linkage_summary.get("councils", 0)
    if councils < ctx.study.models.flag_councils:
        s.text(f"Only {councils} councils took part. With so few councils, intervals are wide, a change that "
               "is real can easily go undetected, and no result should be read as applying to councils in general.",
               kind="callout")
    return s
