"""Folders of outputs (report bundles) change together or not at all: pipeline.atomic.staged_folders."""

from __future__ import annotations

import os

import pytest

from impactstudy.pipeline.atomic import RETIRED_SUFFIX, STAGING_SUFFIX, recover_staged_folders, staged_folders


def _folders(tmp_path, content: str):
    targets = [tmp_path / "public", tmp_path / "internal"]
    for target in targets:
        (target / "figures").mkdir(parents=True)
        (target / "index.html").write_text(content)
        (target / "figures" / "a.svg").write_text(content)
    return targets


def test_success_swaps_every_folder_in(tmp_path):
    targets = _folders(tmp_path, "old")
    with staged_folders(targets) as staging:
        for folder in staging:
            assert not any(folder.iterdir())
            (folder / "index.html").write_text("new")
    assert [sorted(p.name for p in t.iterdir()) for t in targets] == [["index.html"], ["index.html"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["internal", "public"]


def test_failure_part_way_leaves_every_folder_as_it_was(tmp_path):
    targets = _folders(tmp_path, "old")
    with pytest.raises(RuntimeError), staged_folders(targets) as staging:
        (staging[0] / "index.html").write_text("new")
        (staging[0] / "figures").mkdir()
        (staging[0] / "figures" / "b.svg").write_text("new")
        raise RuntimeError("the second bundle failed")
    for target in targets:
        assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["figures", "figures/a.svg", "index.html"]
        assert (target / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["internal", "public"]


def test_a_swap_killed_half_way_is_undone_at_the_next_run(tmp_path):
    [public, internal] = _folders(tmp_path, "old")
    # killed after the old public bundle was retired, before its replacement was renamed in
    os.replace(public, tmp_path / f".public{RETIRED_SUFFIX}")
    (tmp_path / f".public{STAGING_SUFFIX}").mkdir()
    (tmp_path / f".internal{STAGING_SUFFIX}").mkdir()
    assert len(recover_staged_folders(tmp_path)) == 3
    assert (public / "index.html").read_text() == "old" and (internal / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["internal", "public"]
