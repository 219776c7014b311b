"""Which of the package's files a step runs: its code version, so a change reruns only the steps it touches.

A step names the stage package whose code it runs (``Step.code``, e.g. ``("impactstudy.report",)``).
Its code is every file of that package (templates and stylesheets included) and, outside it, every
module of ``impactstudy`` those files import, followed from module to module (a stage imports
only ``study``, ``pipeline``, ``councils`` and ``errors``, see tests/test_layout.py), with the data
files (``councils.csv``) beside each such module. The stage's own declaration module
(``<stage>/steps.py``) is hashed but its imports are not followed: it only says which files and
settings the step uses, and the manifest records those by value. So a change to the report's
template reruns the report alone, a change to the raw-file readers reruns ingest and what reads its
outputs, and a change to the runner (``pipeline/steps.py``) reruns nothing.

Imports are found by scanning each file's ``import`` statements (top-level and inside functions)
with a regular expression: reading a few hundred kilobytes this way takes milliseconds, where
``ast`` took half a second, and ``status`` runs it every time. It errs towards finding too much (an
import in a docstring counts), never too little; ``tests/pipeline/test_code.py`` checks the list
against the modules a stage really loads.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import impactstudy

PACKAGE_DIR = Path(impactstudy.__file__).resolve().parent
ROOT_NAME = "impactstudy"
DECLARATIONS = "steps"  # <stage>/steps.py: hashed, imports not followed
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]+))",
                     re.MULTILINE)


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` of this package (its ``__init__.py`` for a package), or None."""
    if name != ROOT_NAME and not name.startswith(ROOT_NAME + "."):
        return None
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join((ROOT_NAME, *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _absolute(name: str, importer: str, is_package: bool) -> str:
    """``from .x import y`` in ``importer`` as an absolute module name."""
    dots = len(name) - len(name.lstrip("."))
    if not dots:
        return name
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (dots - 1)]
    rest = name[dots:]
    return ".".join(base + ([rest] if rest else []))


def imports_of(path: Path) -> set[str]:
    """The modules of this package that the file at ``path`` imports (with the packages above them)."""
    importer = _module_name(path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for match in _IMPORT.finditer(path.read_text(encoding="utf-8")):
        source, names, plain = match.groups()
        if plain is not None:
            candidates = [part.split(" as ")[0].strip() for part in plain.split(",")]
        else:
            module = _absolute(source, importer, is_package)
            names = names.strip("() \n")
            candidates = [module] + [f"{module}.{part.split(' as ')[0].strip()}" for part in names.split(",") if part.strip()]
        for candidate in candidates:
            if module_file(candidate) is not None:
                parts = candidate.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def _package_files(package: str) -> list[Path]:
    folder = module_file(package)
    if folder is None or folder.name != "__init__.py":
        raise ValueError(f"{package}: not a package of {ROOT_NAME}")
    return sorted(p for p in folder.parent.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo"))


@functools.cache
def code_modules(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Every module the code of ``packages`` imports, outside them, followed transitively; sorted."""
    inside = [p for package in packages for p in _package_files(package) if p.suffix == ".py"]
    todo = [imported for path in inside if not _is_declaration(path) for imported in imports_of(path)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or any(name == p or name.startswith(p + ".") for p in packages):
            continue
        seen.add(name)
        todo.extend(imports_of(module_file(name)))
    return tuple(sorted(seen))


def _is_declaration(path: Path) -> bool:
    return path.name == f"{DECLARATIONS}.py" and (path.parent / "__init__.py").is_file() and path.parent != PACKAGE_DIR


def code_files(packages: tuple[str, ...]) -> list[Path]:
    """The files whose bytes are the code version of a step running ``packages``."""
    files = {p for package in packages for p in _package_files(package)}
    for name in code_modules(packages):
        path = module_file(name)
        files.add(path)
        if path.name == "__init__.py" and path.parent != PACKAGE_DIR:
            continue  # a package's own data belong to its modules: added with them below
        files.update(p for p in path.parent.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc"))
    return sorted(files)


@functools.cache
def code_hashes(packages: tuple[str, ...]) -> dict[str, str]:
    """``{file relative to the package: SHA-256 (16 hex digits)}`` of :func:`code_files`, plus the
    package version under ``"version"``: what a step's manifest record keeps to say what changed."""
    out = {"version": impactstudy.__version__}
    for path in code_files(packages):
        out[path.relative_to(PACKAGE_DIR).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out
