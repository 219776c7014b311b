"""Library warnings during a step are recorded with the step (manifest.json) and summarised on one
console line, in this process, in forked workers and in steps run side by side; never printed raw."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from impactstudy.pipeline import library_warnings, steps
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import Step, run_steps


def _divide_in_numpy() -> None:
    np.array([0.0]) / np.array([0.0])  # RuntimeWarning: invalid value encountered in divide


def _warn_in_fork() -> int:
    warnings.warn("drawn in a worker", UserWarning, stacklevel=1)
    return 1


def _step(paths: StudyPaths, name: str, body, parallel: bool = False) -> Step:
    out = paths.processed / f"{name}.txt"

    def run() -> None:
        body()
        out.write_text(name)
    return Step(name=name, inputs=(), config={}, code=(), outputs=(out,), run=run, parallel=parallel)


@pytest.fixture()
def paths(tmp_path) -> StudyPaths:
    paths = StudyPaths(tmp_path.resolve(), "w")
    paths.processed.mkdir(parents=True)
    return paths


def test_captured_counts_each_warning_here_and_in_forked_workers(recwarn):
    warnings.simplefilter("default")  # as outside pytest: once per place
    with library_warnings.captured() as shown:
        for _ in range(3):
            line = inspect.currentframe().f_lineno + 1
            warnings.warn("one", UserWarning, stacklevel=1)  # the same place: shown once, as Python does
        _divide_in_numpy()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            assert sum(f.result() for f in [pool.submit(_warn_in_fork) for _ in range(3)]) == 3
    kinds = {(r["category"], r["message"]): r for r in shown}
    assert kinds[("RuntimeWarning", "invalid value encountered in divide")]["count"] == 1
    assert kinds[("UserWarning", "one")]["count"] == 1
    assert kinds[("UserWarning", "one")]["where"] == f"pipeline/test_library_warnings.py:{line}"
    assert 1 <= kinds[("UserWarning", "drawn in a worker")]["count"] <= 3  # once per worker process
    assert not recwarn.list, "a captured warning reached the outer handler"
    assert library_warnings.current_spool() is None


def _warn_in_forkserver_worker(spool: str | None) -> int:
    library_warnings.spool_worker_warnings(spool)
    warnings.warn(f"from a forkserver worker for {spool}", UserWarning, stacklevel=1)
    return 1


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver here")
def test_a_reused_forkserver_records_each_blocks_warnings():
    """A forkserver starts once per session and keeps the environment it started with: a second step's
    workers (the impact stage's, run twice in one Python session) must still record into that step."""
    context = multiprocessing.get_context("forkserver")
    seen = []
    for _ in range(2):
        with library_warnings.captured() as shown:
            spool = library_warnings.current_spool()
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                assert pool.submit(_warn_in_forkserver_worker, spool).result() == 1
        seen.append([r["message"] for r in shown])
    assert seen[0] != seen[1] and all(len(messages) == 1 for messages in seen), seen
    assert all(m[0].startswith("from a forkserver worker for ") for m in seen)


def test_a_step_records_its_warnings_and_says_so_once(paths, capfd):
    lines: list[str] = []
    ran = run_steps(paths, [_step(paths, "quiet", lambda: None), _step(paths, "noisy", _divide_in_numpy)], log=lines.append)
    assert ran == ["quiet", "noisy"]
    record = json.loads(paths.manifest.read_text())["steps"]
    assert "warnings" not in record["quiet"]
    assert record["noisy"]["warnings"] == [{"category": "RuntimeWarning", "message": "invalid value encountered in divide",
                                            "where": record["noisy"]["warnings"][0]["where"], "count": 1}]
    said = [line for line in lines if "library warning" in line]
    assert said == [f"noisy: 1 library warning(s), e.g. RuntimeWarning: invalid value encountered in divide "
                    f"({record['noisy']['warnings'][0]['where']}); recorded in data/processed/w/manifest.json"]
    assert "RuntimeWarning" not in capfd.readouterr().err


def test_steps_run_side_by_side_record_their_own_warnings(paths, monkeypatch):
    monkeypatch.setattr(steps, "_cores", lambda: 2)
    lines: list[str] = []
    batch = [_step(paths, "a", lambda: warnings.warn("from a", UserWarning, stacklevel=1), parallel=True),
             _step(paths, "b", lambda: None, parallel=True)]
    assert sorted(run_steps(paths, batch, log=lines.append)) == ["a", "b"]
    record = json.loads(paths.manifest.read_text())["steps"]
    assert [w["message"] for w in record["a"]["warnings"]] == ["from a"] and "warnings" not in record["b"]
    assert sum("library warning" in line for line in lines) == 1


def test_a_failing_step_records_nothing(paths):
    def fail() -> None:
        _divide_in_numpy()
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        run_steps(paths, [_step(paths, "bad", fail)])
    assert not paths.manifest.exists() or "bad" not in json.loads(paths.manifest.read_text())["steps"]
