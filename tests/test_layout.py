"""The package layout follows the pipeline: a stage never imports another stage, and what lies below the
stages (study config, pipeline machinery, the council register) imports no stage and nothing above it.

Imports are read with ``ast`` from the source (function-level imports included), so the check covers
lazy imports as well and imports nothing itself. ``impact`` is a stage whether or not it exists yet.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import impactstudy

PACKAGE = Path(impactstudy.__file__).parent
STAGES = ("ingest", "link", "model", "impact", "report")
BELOW = ("study", "pipeline", "councils")  # shared by the stages
ABOVE = ("stages", "validate", "cli", "__main__")  # the API and the command line, over the stages
TOOLS = ("coverage", "verbatims")  # packages over the stages and the demo (the coverage simulation, coding sheets out)


def _part(module: str) -> str | None:
    """The first component under ``impactstudy`` of a dotted module name (None outside the package)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "impactstudy" and len(parts) > 1 else None


def imported_parts(path: Path) -> set[str]:
    """Every top-level part of impactstudy (``ingest``, ``pipeline`` …) that the module at ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "impactstudy":
                found.update(alias.name for alias in node.names)
            elif (part := _part(node.module)) is not None:
                found.add(part)
        elif isinstance(node, ast.Import):
            found.update(p for alias in node.names if (p := _part(alias.name)) is not None)
    return found - {"__version__"}


def modules_of(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [p for p in [PACKAGE / f"{part}.py"] if p.is_file()]


def test_the_parser_sees_every_import_form(tmp_path):
    source = ("import impactstudy.link.stage\nfrom impactstudy import model, __version__\n"
              "from impactstudy.report.tables import table\ndef f():\n    from impactstudy.ingest import harmonise\n"
              "import pandas\nfrom . import sibling\n")
    (tmp_path / "m.py").write_text(source)
    assert imported_parts(tmp_path / "m.py") == {"link", "model", "report", "ingest"}


@pytest.mark.parametrize("stage", [s for s in STAGES if modules_of(s)])
def test_a_stage_never_imports_another_stage_or_what_is_above_it(stage):
    wrong = {f"{path.relative_to(PACKAGE)} imports {part}"
             for path in modules_of(stage) for part in imported_parts(path)
             if part != stage and (part in STAGES or part in ABOVE or part in TOOLS or part == "demo")}
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("part", BELOW + ("demo",))
def test_shared_packages_and_the_demo_import_no_stage(part):
    assert modules_of(part), f"impactstudy/{part} is missing"
    wrong = {f"{path.relative_to(PACKAGE)} imports {p}" for path in modules_of(part) for p in imported_parts(path)
             if p in STAGES or p in ABOVE or p in TOOLS or (p == "demo" and part != "demo")}
    assert not wrong, sorted(wrong)


def test_every_module_has_a_home():
    """Nothing flat at the top but the API, the command line and the errors; each stage is a package."""
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "errors", *ABOVE}
    for stage in STAGES:
        if stage != "impact":  # written by this round's impact issue
            assert (PACKAGE / stage / "__init__.py").is_file(), f"impactstudy/{stage} is not a package"
