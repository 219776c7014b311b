"""The provenance section: input files and their SHA-256, software versions, what changed since the
previous report, when and by what the report was built.
"""

from __future__ import annotations

from importlib import metadata

import pandas as pd

from impactstudy import __version__
from impactstudy.report.context import Context, Section
from impactstudy.report.tables import table

PACKAGES = ("impactstudy", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "pyarrow", "pyreadstat")


def build(ctx: Context) -> Section:
    """Input files and their SHA-256, software versions, what changed since the previous report."""
    s = Section("provenance", "Provenance", "Exactly what this report was built from, so it can be reproduced.")
    files = pd.DataFrame(ctx.inputs.provenance or [{"file": "–", "role": "–", "sha256": "–"}])
    s.table(table("inputs", "Input files and their SHA-256", files.rename(columns={"file": "File", "role": "Role", "sha256": "SHA-256"})))
    v = pd.DataFrame(versions()).rename(columns={"package": "Package", "version": "Version"})
    s.table(table("versions", "Software versions", v))
    s.heading("What changed since the previous report")
    s.items(_change_notes(ctx))
    s.items([f"Report built {ctx.started.strftime('%Y-%m-%d %H:%M:%S')} UTC by impactstudy {__version__}",
             f"Audience: {ctx.audience}" + (f"; cells resting on fewer than {ctx.threshold} councils or respondents are withheld"
                                             if ctx.public else "; not for publication")])
    return s


def _change_notes(ctx: Context) -> list[str]:
    """Sentences on what new or replaced data changed since the previous report."""
    diff = ctx.inputs.changes
    if diff.get("first_run"):
        return ["This is the first report of this study: there is no earlier one to compare with."]
    notes = [f"Raw file {f} was replaced since the previous report (its content changed)."
             for f in diff["raw_files_changed"]]
    notes += [f"New wave: {ctx.wave_labels.get(w, w)}." for w in diff["new_waves"]]
    notes += [f"{ctx.wave_labels.get(w, w)}: {n:+d} accepted rows." for w, n in diff["rows_added"].items()
              if w not in diff["new_waves"]]
    if diff["councils_newly_linked"]:
        notes.append(f"{len(diff['councils_newly_linked'])} council(s) newly linked"
                     + ("" if ctx.public else f": {', '.join(diff['councils_newly_linked'])}") + ".")
    if diff["councils_no_longer_linked"]:
        notes.append(f"{len(diff['councils_no_longer_linked'])} council(s) no longer linked.")
    moved = diff["estimates_moved"]
    if moved:
        largest = max(moved, key=lambda m: abs(m["change"]))
        measure, contrast, group = largest["key"].split("|")
        notes.append(f"{len(moved)} LMM estimate(s) moved; the largest: {ctx.label(measure)}, "
                     f"{ctx.contrast_label(contrast)}, {ctx.group_label(group)}: "
                     f"{largest['previous']:+.2f} → {largest['current']:+.2f}.")
    return notes or ["Nothing changed since the previous report: same raw data, same estimates."]


def versions() -> list[dict[str, str]]:
    """Installed versions of the packages the results depend on."""
    out = []
    for package in PACKAGES:
        try:
            out.append({"package": package, "version": metadata.version(package)})
        except metadata.PackageNotFoundError:
            out.append({"package": package, "version": "not installed"})
    return out
