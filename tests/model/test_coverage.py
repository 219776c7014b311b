"""The coverage simulation (``impactstudy.coverage``): its Dask run, resume and summary, and a fast seeded
version of it that fails when the key findings' intervals cover less than 90%.

The full simulation (``make coverage``, docs/coverage.md) is thousands of fits; here a few dozen studies.
"""

from __future__ import annotations

import pandas as pd
import pytest
from distributed import LocalCluster

from impactstudy import coverage
from impactstudy.coverage import simulation
from impactstudy.model import fitting
from impactstudy.report import findings

FEW = 20  # the demo's [models] few_councils
SESSION_MARK = "IMPACTSTUDY_COVERAGE_TEST_PID"


def key_model(councils: int) -> str:
    """The model whose interval the key findings state for a Likert measure with ``councils`` councils:
    the council-level one below ``few_councils`` where the findings have one, else the primary model."""
    council_level = getattr(findings, "COUNCIL_LEVEL", None)
    return council_level if council_level and councils < FEW else findings.PRIMARY["likert"]


def test_two_worker_local_cluster_writes_each_task_and_resumes(tmp_path, monkeypatch):
    import os
    import time

    started = time.time()
    monkeypatch.setenv(SESSION_MARK, str(os.getpid()))  # inherited by the processes this test starts
    cells = [coverage.Cell(6, 0.3)]
    first = coverage.run(cells, 4, tmp_path, chunk=2, workers=2, progress=False, pooled_councils=30)
    assert first["where"] == "a LocalCluster of 2 workers"
    folder = tmp_path / cells[0].key
    assert first["tasks_run"] == 3  # the pseudo-truth and two chunks of two studies
    assert sorted(p.name for p in folder.iterdir()) == ["all", "pseudo-truth.parquet"]
    assert sorted(p.name for p in (folder / "all").iterdir()) == [
        "studies-00000-00002.parquet", "studies-00002-00004.parquet"]
    (folder / "all" / "studies-00002-00004.parquet").unlink()  # as if the run had been interrupted
    # resumed on an existing cluster (as SCHEDULER=tcp://... does): only the missing task runs
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                      scheduler_kwargs={"dashboard": False}) as cluster:
        again = coverage.run(cells, 4, tmp_path, chunk=2, scheduler=cluster.scheduler_address, progress=False)
        assert again["tasks_run"] == 1 and again["where"] == f"scheduler {cluster.scheduler_address}"
        assert coverage.run(cells, 4, tmp_path, chunk=2, scheduler=cluster.scheduler_address)["tasks_run"] == 0
    rows = coverage.load(tmp_path)
    assert rows["seed"].nunique() == 4
    # each row records its model's code version; a run of some models skips studies their current code
    # has fitted already ...
    assert set(rows["code"]) == {simulation.code_version(m) for m in rows["model"].unique()}
    assert not rows["stale"].any()
    assert coverage.run(cells, 2, tmp_path, chunk=2, workers=1, progress=False, models=["paired_t"])["tasks_run"] == 0
    # ... and after a change to a model's code (here: its rows relabelled as an older version) refits
    # them and replaces its rows, never mixing two versions, and leaves the other models' rows
    for path in (folder / "all").iterdir():
        frame = pd.read_parquet(path)
        frame.loc[frame["model"] == "paired_t", "code"] = "older"
        frame.to_parquet(path)
    again = coverage.run(cells, 2, tmp_path, chunk=2, workers=1, progress=False, models=["paired_t"])
    assert again["tasks_run"] == 1 and (folder / "paired_t").is_dir()
    mixed = coverage.load(tmp_path)
    assert mixed.loc[mixed["model"] == "paired_t", "seed"].nunique() == 2
    assert set(mixed.loc[mixed["model"] == "paired_t", "code"]) == {simulation.code_version("paired_t")}
    assert mixed.loc[mixed["model"] == "lmm", "seed"].nunique() == 4 and not mixed["stale"].any()
    # with no rows of the current version a model's newest rows are shown, marked stale in the summary
    for path in (folder / "paired_t").iterdir():
        path.unlink()
    old = coverage.load(tmp_path)
    assert set(old.loc[old["stale"], "model"]) == {"paired_t"} and set(old.loc[old["stale"], "code"]) == {"older"}
    assert coverage.summarise(old).query("stale")["model"].unique().tolist() == ["paired_t"]
    assert set(rows["measure"]) == set(simulation.MEASURES)
    assert {"lmm", "gee", "ordinal", "paired_t", "wilcoxon"} <= set(rows["model"])
    # each row judged against its estimand's truth: the pseudo-true log odds ratio, pseudo-median and
    # respondent-weighted change where truth.json (council-weighted change) is not the estimand
    ordinal = rows[rows["model"] == "ordinal"]
    assert ordinal["truth"].notna().all()
    pseudo = pd.read_parquet(folder / "pseudo-truth.parquet")
    assert {fitting.ORDINAL_ESTIMAND, "pseudo-median shift of council changes", "respondent-weighted mean change"} <= set(
        pseudo["estimand"])
    truth = coverage.truth(cells[0]).set_index(["measure", "contrast", "group"])["truth"]
    for model, same in (("paired_t", True), ("lmm", False), ("wilcoxon", False)):
        row = rows[(rows["model"] == model) & (rows["group"] == "all")].iloc[0]
        assert (row["truth"] == truth[(row["measure"], row["contrast"], "all")]) == same, model
    status = rows[(rows["model"] == "lmm") & (rows["group"] != "all")].iloc[0]  # within a status: one truth
    assert status["truth"] == truth[(status["measure"], status["contrast"], status["group"])]
    summary = coverage.summarise(rows)
    key = summary[(summary["contrast"] == simulation.KEY_CONTRAST) & (summary["groups"] == "all")]
    assert (key["studies"] == 4).all()
    text = coverage.markdown(summary, {"date": "today", "commit": "abc", "seconds": 1.0, "where": "here",
                                       "studies": "4", "requested": 4})
    assert "| lmm (satterthwaite) | 6 | 1-4 |" in text and "| lmm (kenward-roger) | 6 | 1-4 |" in text and "τ = 0.3" in text
    # the key findings' rows (below few_councils: the sign-flip test), with their verdicts
    assert "| sign_flip | 6 | 1-4 | 0.3 | 4 | " in text and "too few intervals to judge (8)" in text
    assert "pooled over τ" in text
    # the workers' child processes end with the clusters (they were left behind as orphans once)
    assert _our_orphans(started) == []


def _our_orphans(since: float, wait: float = 15.0) -> list[int]:
    """Multiprocessing children of this test's processes started after ``since`` and still alive (after up
    to ``wait`` seconds for them to notice their parent has gone). Recognised by :data:`SESSION_MARK` in
    their environment: the test's name alone also matched another checkout running the same test."""
    import os
    import sys
    import time

    import psutil

    mine = os.environ[SESSION_MARK]
    deadline = time.time() + wait
    while True:
        left = []
        for proc in psutil.process_iter(["pid", "exe", "cmdline", "create_time"]):
            try:
                if (proc.info["create_time"] >= since and proc.info["exe"] == os.path.realpath(sys.executable)
                        and "multiprocessing" in " ".join(proc.info["cmdline"] or [])
                        and proc.environ().get(SESSION_MARK) == mine
                        and proc.ppid() != os.getpid()):
                    left.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)


def test_the_same_seed_gives_the_same_study_and_tau_changes_only_the_later_waves():
    a = coverage.simulate(coverage.Cell(6, 0.3), 7)
    b = coverage.simulate(coverage.Cell(6, 0.3), 7)
    flat = coverage.simulate(coverage.Cell(6, 0.0), 7)
    for name in simulation.MEASURES:
        pd.testing.assert_frame_equal(a[name], b[name])
        baseline = a[name]["wave"] == "baseline"
        assert a[name][baseline].equals(flat[name][flat[name]["wave"] == "baseline"])
        assert not a[name]["value"].equals(flat[name]["value"])


@pytest.fixture(scope="module")
def fast_rows() -> pd.DataFrame:
    """16 seeded studies at 20 councils with tau = 0.15 and 20 at 6 councils with tau = 0.3."""
    parts = []
    for cell, n in ((coverage.Cell(20, 0.15), 16), (coverage.Cell(6, 0.3), 20)):
        rows = coverage.task_rows(cell, list(range(simulation.SEED_BASE, simulation.SEED_BASE + n)))
        rows = simulation.judge(rows.drop(columns=["truth", "covers", "rejects", "level"]), coverage.truth(cell),
                                simulation.pseudo_truth(cell, councils=0))  # 40 studies' worth pooled
        parts.append(rows.assign(councils=cell.councils))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.slow
def test_fast_seeded_coverage_of_the_key_findings_intervals(fast_rows):
    """The key findings' model, every contrast, overall: coverage of its 95% intervals at least 0.90
    (every LMM df method the simulation fits, each on its own)."""
    overall = fast_rows[fast_rows["group"] == "all"]
    for councils, rows in overall.groupby("councils"):
        key = rows[rows["model"] == key_model(councils)]
        for variant, part in key.groupby(key["variant"].fillna("")):
            covers = part["covers"].dropna()
            assert len(covers) >= 90, (councils, variant)
            assert covers.mean() >= 0.90, (councils, variant, covers.mean())
    # and the council-level paired t the key findings fall back on with few councils
    paired = fast_rows[(fast_rows["model"] == "paired_t") & (fast_rows["group"] == "all")]
    assert paired["covers"].dropna().mean() >= 0.90
