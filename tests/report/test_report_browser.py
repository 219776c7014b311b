"""The report in a real browser: headless Debian Chromium, axe-core, no network request, a screenshot.

The node helper (``tests/browser/check_report.mjs``) drives ``/usr/bin/chromium`` with playwright-core
(no browser download: playwright only speaks the DevTools protocol to the system Chromium) and injects
axe-core. Both are pinned in ``tests/browser/package-lock.json``; when ``node_modules`` is missing the
test installs them with ``npm ci``. Without Chromium or Node the tests are skipped with the reason
printed, never silently.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from impactstudy.report.stage import run_report
from report_fixtures import build_study

pytestmark = pytest.mark.browser
BROWSER_DIR = Path(__file__).parents[1] / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SERIOUS = {"serious", "critical"}


def _skip(reason: str) -> None:
    print(f"SKIPPED browser checks: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def checker() -> list[str]:
    """The command prefix that runs the checks, after installing the node helpers if needed."""
    if CHROMIUM is None:
        _skip("Chromium is not installed (apt-get install -y chromium)")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _skip("Node.js and npm are not installed (apt-get install -y nodejs npm)")
    if not (BROWSER_DIR / "node_modules" / "axe-core").is_dir() or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True, timeout=600)
    return [node, str(BROWSER_DIR / "check_report.mjs"), CHROMIUM]


def check(checker: list[str], shots: Path, *pages: Path) -> list[dict]:
    shots.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([*checker, str(shots), *map(str, pages)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_clean(result: dict) -> None:
    serious = [v for v in result["violations"] if v["impact"] in SERIOUS]
    assert not serious, json.dumps(serious, indent=1)
    own = Path(result["page"]).resolve().as_uri()
    assert [r for r in result["requests"] if r != own] == [], result["requests"]  # not even a favicon
    assert result["consoleErrors"] == []
    assert result["passes"] > 20  # axe really ran
    assert Path(result["screenshot"]).stat().st_size > 10_000


def test_public_and_internal_report_pass_axe_and_make_no_request(checker, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    study, paths = build_study(root, 6)
    run_report(study, paths)
    public, internal = paths.bundle("public"), paths.bundle("internal")
    council = sorted((internal / "councils").glob("E*.html"))[0]
    results = check(checker, root / "screenshots", public / "index.html", internal / "index.html", council)
    assert [r["title"].endswith("(internal)") for r in results] == [False, True, True]
    for result in results:
        assert_clean(result)
    shutil.copy(results[0]["screenshot"], paths.reports / "screenshot.png")
