"""``impactstudy init``: a commented template config to start a study from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from impactstudy.errors import ConfigError
from impactstudy.pipeline.atomic import write_text
from impactstudy.pipeline.paths import StudyPaths


def template_text() -> str:
    """The packaged commented template ``study.toml``."""
    return resources.files("impactstudy.study").joinpath("template_study.toml").read_text(encoding="utf-8")


def write_template(root: Path, study: str, force: bool = False) -> Path:
    """Write the template to ``pipelines/<study>/study.toml`` (refusing to overwrite unless ``force``)."""
    paths = StudyPaths(Path(root).resolve(), study)
    if paths.config.exists() and not force:
        raise ConfigError(f"{paths.config}: already exists; edit it, or pass --force to replace it with the template")
    write_text(paths.config, template_text())
    paths.raw.mkdir(parents=True, exist_ok=True)
    return paths.config
