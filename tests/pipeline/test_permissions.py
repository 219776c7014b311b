"""File permissions: the umask's for what is made to share, owner-only for sensitive outputs (processed
data, the internal report bundle, the salt) whatever the umask (README, docs/data-contracts.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from impactstudy import stages
from impactstudy.pipeline import atomic

from conftest import write_mini_study


@pytest.fixture
def umask_002():
    """A permissive umask (group-writable, world-readable), as on many shared research servers."""
    old = os.umask(0o002)
    atomic.umask.cache_clear()
    yield
    os.umask(old)
    atomic.umask.cache_clear()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_paths_are_owner_only_and_public_ones_follow_the_umask(tmp_path, umask_002):
    private = [tmp_path / "data" / "processed" / "s" / "tables" / "contrasts.csv",
               tmp_path / "reports" / "s" / "internal" / "figures" / "a.svg", tmp_path / ".secrets" / "s.txt"]
    public = [tmp_path / "reports" / "s" / "public" / "figures" / "a.svg", tmp_path / "data" / "raw" / "s" / "w.csv"]
    for path in private + public:
        atomic.write_text(path, "x")
    for path in private:
        assert _mode(path) == 0o600, path
        assert _mode(path.parent) == 0o700, path.parent
    for path in public:
        assert _mode(path) == 0o664, path
        assert _mode(path.parent) == 0o775, path.parent
    assert not atomic.is_private(tmp_path / "reports" / "s" / "public" / "internal.csv")
    assert atomic.is_private(tmp_path / "reports" / "s" / "internal")
    assert atomic.is_private(tmp_path / "reports" / "s" / ".internal.staging.tmp" / "index.html")
    assert not atomic.is_private(tmp_path / "reports" / "s" / ".public.staging.tmp" / "index.html")


def test_bundles_written_through_staging_keep_their_modes(tmp_path, umask_002):
    bundles = [tmp_path / "reports" / "s" / "public", tmp_path / "reports" / "s" / "internal"]
    with atomic.staged_folders(bundles) as (public, internal):
        atomic.write_text(public / "figures" / "a.svg", "x")
        atomic.write_text(internal / "figures" / "a.svg", "x")
    assert _mode(bundles[0] / "figures" / "a.svg") == 0o664 and _mode(bundles[0]) == 0o775
    assert _mode(bundles[1] / "figures" / "a.svg") == 0o600
    assert _mode(bundles[1]) == 0o700 and _mode(bundles[1] / "figures") == 0o700


def test_a_stricter_umask_narrows_public_files_too(tmp_path):
    old = os.umask(0o077)
    atomic.umask.cache_clear()
    try:
        atomic.write_text(tmp_path / "reports" / "s" / "public" / "index.html", "x")
        assert _mode(tmp_path / "reports" / "s" / "public" / "index.html") == 0o600
    finally:
        os.umask(old)
        atomic.umask.cache_clear()


def test_an_existing_private_folder_open_to_others_is_narrowed(tmp_path, umask_002):
    folder = tmp_path / "data" / "processed" / "s"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    atomic.write_text(folder / "manifest.json", "{}")
    assert _mode(folder) == 0o700


def test_a_run_leaves_processed_data_owner_only_under_a_permissive_umask(tmp_path, umask_002):
    root = write_mini_study(tmp_path)
    (root / ".secrets").mkdir()
    os.chmod(root / ".secrets", 0o755)  # made by hand, open to others: narrowed
    (root / "data" / "processed" / "mini").mkdir(parents=True)
    (root / "data" / "processed" / "mini" / ".lock").touch(mode=0o644)
    stages.run("mini", ["link"], root=root)
    processed = root / "data" / "processed" / "mini"
    found = [p for p in processed.rglob("*")]
    assert any(p.suffix == ".parquet" for p in found) and any(p.name == "panel_long.sav" for p in found)
    loose = [(str(p.relative_to(root)), oct(_mode(p))) for p in [processed, *found]
             if _mode(p) & 0o077]
    assert loose == []
    assert _mode(root / ".secrets") == 0o700 and _mode(processed / ".lock") == 0o600
