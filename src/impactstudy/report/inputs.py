"""The report's inputs: the link and model stages' outputs, loaded (:func:`read_inputs`), with the
provenance of the raw files and the changes since the previous report."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from impactstudy.councils import name_keys
from impactstudy.errors import DataError
from impactstudy.pipeline.panel import read_long
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.report import changes
from impactstudy.report.steps import DESCRIPTIVE, THEMES, input_files


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
    # the model stage's descriptive and retention tables (DESCRIPTIVE); empty when a test leaves them out
    distributions: pd.DataFrame = field(default_factory=pd.DataFrame)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    ordinal_check: pd.DataFrame = field(default_factory=pd.DataFrame)
    icc: pd.DataFrame = field(default_factory=pd.DataFrame)
    effect_sizes: pd.DataFrame = field(default_factory=pd.DataFrame)
    tipping_point: pd.DataFrame = field(default_factory=pd.DataFrame)
    ipw_diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    ipw_balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    impact: pd.DataFrame = field(default_factory=pd.DataFrame)  # tables/impact.csv (empty without [impact])
    impact_summary: dict[str, Any] = field(default_factory=dict)  # impact.json
    impact_triangulation: pd.DataFrame = field(default_factory=pd.DataFrame)  # tables/impact_triangulation.csv
    impact_councils: pd.DataFrame = field(default_factory=pd.DataFrame)  # tables/impact_councils.csv (council pages)
    # coded free text (THEMES): themes.csv, theme_changes.csv, agreement.csv; codes.parquet when the ingest wrote it
    themes: pd.DataFrame = field(default_factory=pd.DataFrame)
    theme_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    codes: pd.DataFrame = field(default_factory=pd.DataFrame)
    council_names: frozenset[str] = frozenset()  # every register name and alias (the study's too), to redact quotes


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True) if path.stat().st_size else pd.DataFrame()


def read_inputs(paths: StudyPaths, aliases: Path | None = None) -> Inputs:
    """Load every input, or stop with a message naming the stage to run; ``aliases``: the study's own
    council aliases file, whose names are taken out of public quotes with the register's."""
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
        **{name: _csv(paths.tables / f"{name}.csv") for name in (*DESCRIPTIVE, *THEMES)},
        codes=pd.read_parquet(paths.codes) if paths.codes.is_file() else pd.DataFrame(),
        council_names=name_keys(aliases),
        impact=_csv(paths.impact_table) if paths.impact_table.is_file() else pd.DataFrame(),
        impact_summary=json.loads(paths.impact_json.read_text(encoding="utf-8")) if paths.impact_json.is_file() else {},
        impact_triangulation=(_csv(paths.impact_triangulation) if paths.impact_triangulation.is_file()
                              else pd.DataFrame()),
        impact_councils=(pd.read_csv(paths.impact_councils, dtype={"council_code": str})
                         if paths.impact_councils.is_file() and paths.impact_councils.stat().st_size else pd.DataFrame()),
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
