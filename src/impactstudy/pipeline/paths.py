"""Where a study's files live, relative to the project root.

One place names every file the stages read and write, so the data contracts in the README and the
code cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from impactstudy.errors import ConfigError, DataError


@dataclass(frozen=True)
class StudyPaths:
    """Every path of one study under a project root."""

    root: Path
    study: str

    def __post_init__(self) -> None:
        if not self.study or not all(c.isalnum() or c in "_-" for c in self.study):
            raise ConfigError(f"study name '{self.study}' must be letters, digits, '-' or '_'")

    @property
    def config(self) -> Path:
        return self.root / "pipelines" / self.study / "study.toml"

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / self.study

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed" / self.study

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.study

    @property
    def waves_dir(self) -> Path:
        return self.processed / "waves"

    def wave_file(self, wave_id: str) -> Path:
        return self.waves_dir / f"{wave_id}.parquet"

    def wave_outputs(self, wave_id: str) -> tuple[Path, Path, Path]:
        """What ingesting one wave writes: its Parquet file, its quarantine piece and its report piece."""
        base = self.wave_file(wave_id)
        return base, base.with_suffix(".quarantine.csv"), base.with_suffix(".report.json")

    @property
    def quarantine(self) -> Path:
        return self.processed / "quarantine.csv"

    @property
    def ingest_report(self) -> Path:
        return self.processed / "ingest_report.json"

    @property
    def codes(self) -> Path:
        """Every code read from the returned coding sheets: answer × coder × theme (the ``[[coding]]`` sections)."""
        return self.processed / "codes.parquet"

    @property
    def coding_dir(self) -> Path:
        """Where ``impactstudy verbatims`` writes the coding sheets: respondent-level, so processed data."""
        return self.processed / "coding"

    @property
    def panel_long(self) -> Path:
        return self.processed / "panel_long.parquet"

    @property
    def panel_wide(self) -> Path:
        return self.processed / "panel_wide.parquet"

    @property
    def panel_sav(self) -> Path:
        return self.processed / "panel_long.sav"

    @property
    def panel_wide_sav(self) -> Path:
        return self.processed / "panel_wide.sav"

    @property
    def panel_dta(self) -> Path:
        return self.processed / "panel_long.dta"

    @property
    def panel_wide_dta(self) -> Path:
        return self.processed / "panel_wide.dta"

    @property
    def exports(self) -> tuple[Path, ...]:
        """The panels for SPSS and Stata: long .sav, wide .sav, long .dta, wide .dta."""
        return (self.panel_sav, self.panel_wide_sav, self.panel_dta, self.panel_wide_dta)

    @property
    def linkage(self) -> Path:
        return self.processed / "linkage.csv"

    @property
    def linkage_summary(self) -> Path:
        return self.processed / "linkage_summary.json"

    @property
    def link_quarantine(self) -> Path:
        return self.processed / "quarantine_link.csv"

    @property
    def models_json(self) -> Path:
        return self.processed / "models.json"

    @property
    def impact_json(self) -> Path:
        return self.processed / "impact.json"

    @property
    def impact_quarantine(self) -> Path:
        return self.processed / "impact_quarantine.csv"

    @property
    def impact_table(self) -> Path:
        return self.tables / "impact.csv"

    @property
    def impact_councils(self) -> Path:
        return self.tables / "impact_councils.csv"

    @property
    def impact_triangulation(self) -> Path:
        return self.tables / "impact_triangulation.csv"

    @property
    def report_snapshot(self) -> Path:
        """What the last report saw (raw files, rows, councils, estimates), for the next one's changes."""
        return self.processed / "report_snapshot.json"

    @property
    def manifest(self) -> Path:
        return self.processed / "manifest.json"

    @property
    def tables(self) -> Path:
        """The model and impact stages' tables, unsuppressed: processed data, never part of a bundle."""
        return self.processed / "tables"

    def bundle(self, audience: str) -> Path:
        """The report bundle for ``audience`` (``public`` or ``internal``): complete in itself, ready to send."""
        return self.reports / audience

    @property
    def secret_salt(self) -> Path:
        """Per-study pseudonymisation salt: outside data/processed and reports, never committed."""
        return self.root / ".secrets" / f"{self.study}.salt"

    @property
    def salt_fingerprint(self) -> Path:
        """A one-way fingerprint of the salt the processed data were made with (a replaced salt is refused)."""
        return self.processed / "salt.sha256"

    def raw_file(self, relative: str) -> Path:
        """A file named in the config, which must stay inside the study's raw folder."""
        try:
            path = (self.raw / relative).resolve()
        except (RuntimeError, OSError) as err:  # RuntimeError: a symlink loop (Python before 3.13)
            raise DataError(f"{self.raw / relative}: cannot be followed ({err}); replace the link with the file") from None
        if not path.is_relative_to(self.raw.resolve()):
            raise ConfigError(f"{relative}: path leaves the study's raw folder {self.raw}; keep raw files inside it")
        return path
