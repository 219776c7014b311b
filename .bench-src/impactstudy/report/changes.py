"""What changed since the previous report: rows per wave, councils newly linked, estimates that moved.

Analysts rerun the pipeline when late returns or a new wave arrive, and a reader of the new report
should see what the new data changed. The report stage saves a small snapshot of what it reported
(``data/processed/<study>/report_snapshot.json``); the next report compares the current outputs with
it. Raw files whose content differs from the previous snapshot are named, since raw files are expected
to be replaced only on purpose.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from impactstudy.pipeline.paths import StudyPaths

MOVE_THRESHOLD = 1e-9  # estimates that differ by more than this are reported as moved


def snapshot(paths: StudyPaths) -> dict[str, Any]:
    """The facts a later report compares against, read from the current outputs."""
    ingest = json.loads(paths.ingest_report.read_text(encoding="utf-8"))
    linkage = pd.read_csv(paths.linkage, keep_default_na=False, dtype={"council_code": str})
    contrasts_path = paths.tables / "contrasts.csv"
    contrasts = pd.read_csv(contrasts_path) if contrasts_path.is_file() else pd.DataFrame()
    lmm = contrasts[contrasts.get("model", pd.Series(dtype=str)) == "lmm"] if len(contrasts) else contrasts
    return {
        "raw_files": {w["source_file"]: w["sha256"] for w in ingest["waves"]},
        "rows_accepted": {w["wave"]: w["rows_accepted"] for w in ingest["waves"]},
        "councils": sorted(c for c in linkage["council_code"].unique() if c),
        "estimates": {f"{r.measure}|{r.contrast}|{r.group}": r.estimate for r in lmm.itertuples()
                      if pd.notna(r.estimate)},
    }


def compare(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """Differences between two snapshots; ``first_run`` when there is no previous one."""
    if previous is None:
        return {"first_run": True}
    old_rows, new_rows = previous.get("rows_accepted", {}), current["rows_accepted"]
    old_est, new_est = previous.get("estimates", {}), current["estimates"]
    moved = [
        {"key": key, "previous": old_est[key], "current": value, "change": value - old_est[key]}
        for key, value in sorted(new_est.items())
        if key in old_est and abs(value - old_est[key]) > MOVE_THRESHOLD
    ]
    return {
        "first_run": False,
        "rows_added": {w: new_rows[w] - old_rows.get(w, 0) for w in new_rows if new_rows[w] != old_rows.get(w, 0)},
        "new_waves": [w for w in new_rows if w not in old_rows],
        "councils_newly_linked": sorted(set(current["councils"]) - set(previous.get("councils", []))),
        "councils_no_longer_linked": sorted(set(previous.get("councils", [])) - set(current["councils"])),
        "raw_files_changed": sorted(f for f, sha in current["raw_files"].items()
                                    if f in previous.get("raw_files", {}) and previous["raw_files"][f] != sha),
        "estimates_moved": moved,
    }


def load_previous(paths: StudyPaths) -> dict[str, Any] | None:
    """The snapshot of the previous report, if any."""
    path = paths.report_snapshot
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
