"""Rerun only what changed: no-op runs, touched and changed files, new waves, late returns, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from impactstudy import stages
from impactstudy.errors import DataError, LockError
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.pipeline.steps import study_lock
from impactstudy.report.changes import compare

from conftest import write_mini_study

LATE_ROW = "Hartlepool,F,Partner,Good,Yes,late return\r\n"


@pytest.fixture()
def mini(tmp_path):
    write_mini_study(tmp_path)
    stages.run("mini", ["link"], root=tmp_path)
    return StudyPaths(tmp_path.resolve(), "mini")


def stale(paths: StudyPaths) -> dict[str, list[str]]:
    return {name: reasons for name, reasons in stages.status("mini", root=paths.root)
            if reasons and name.split(":")[0] in ("ingest", "link")}


def test_second_run_does_nothing(mini):
    assert stages.run("mini", ["link"], root=mini.root) == []
    assert stale(mini) == {}


def test_touched_file_does_not_rerun(mini):
    raw = mini.raw / "w1.sav"
    later = time.time() + 60
    os.utime(raw, (later, later))
    assert stale(mini) == {}
    assert stages.run("mini", ["link"], root=mini.root) == []


def test_changed_file_reruns_its_wave_and_what_follows_and_status_names_it(mini):
    csv = mini.raw / "w2.csv"
    csv.write_bytes(csv.read_bytes().replace(b"Very good", b"Good"))
    reasons = stale(mini)
    assert reasons["ingest:w2"] == ["data/raw/mini/w2.csv changed"]  # the file the user gave, as they put it
    assert "ingest:w1" not in reasons
    assert stages.run("mini", ["link"], root=mini.root) == ["ingest:w2", "ingest", "link"]


def test_changed_setting_reruns(mini):
    toml = mini.config
    toml.write_text(toml.read_text().replace('label = "Percent"', 'label = "Per cent"'))
    reasons = stale(mini)
    assert reasons["ingest:w1"] == ["study.toml changed: measures (as asked in w1)"]
    upstream = "reads what ingest:w1 (wave “Wave one”, w1.sav) writes, which will rerun"  # the wave, not waves/w1.parquet
    assert reasons["link"] == ["study.toml changed: measures.label", upstream]
    assert reasons["ingest"] == [upstream]  # status cannot know they come out the same
    # the wave is re-ingested; its quarantine and report pieces are unchanged, so "ingest" need not rerun
    assert stages.run("mini", ["link"], root=mini.root) == ["ingest:w1", "link"]


def test_a_relabelled_wave_is_not_read_again_and_its_panel_comes_out_the_same(mini):
    panel, sav = mini.panel_long.read_bytes(), mini.panel_sav.read_bytes()
    mini.config.write_text(mini.config.read_text().replace('label = "Wave one"', 'label = "First wave"'))
    assert stages.run("mini", ["link"], root=mini.root) == ["ingest", "link"]
    assert mini.panel_long.read_bytes() == panel  # so the model, reading it, would not rerun
    assert mini.panel_sav.read_bytes() != sav  # the .sav's wave value labels say the new label
    report = json.loads(mini.ingest_report.read_text())
    assert [w["label"] for w in report["waves"]] == ["First wave", "Wave two"]


def test_late_returns_reingest_that_wave_only(mini):
    before = pd.read_parquet(mini.wave_file("w2"))
    csv = mini.raw / "w2.csv"
    csv.write_bytes(csv.read_bytes() + LATE_ROW.encode())
    ran = stages.run("mini", ["link"], root=mini.root)
    assert ran == ["ingest:w2", "ingest", "link"]
    after = pd.read_parquet(mini.wave_file("w2"))
    assert len(after) == len(before) + 1
    assert after["note"].iloc[-1] == "late return"


def test_new_wave_is_a_config_edit(mini):
    (mini.raw / "w3.csv").write_bytes("Council,ID,Role,Q1 effectiveness\r\nHartlepool,A,Strategic lead,Good\r\n".encode())
    text = mini.config.read_text()
    text = text.replace('[[measures]]\nname = "eff"', '[[waves]]\nid = "w3"\nfile = "w3.csv"\nfieldwork_end = 2016-03-31\n'
                        'council = "Council"\nrespondent = "ID"\nrole = "Role"\n\n[[measures]]\nname = "eff"', 1)
    text = text.replace('columns = { w1 = "q1", w2 = "Q1 effectiveness" }',
                        'columns = { w1 = "q1", w2 = "Q1 effectiveness", w3 = "Q1 effectiveness" }')
    mini.config.write_text(text)
    ran = stages.run("mini", ["link"], root=mini.root)
    assert "ingest:w3" in ran and "ingest:w2" not in ran and "link" in ran
    panel = pd.read_parquet(mini.panel_long)
    assert set(panel["wave"].astype(str)) == {"w1", "w2", "w3"}


def test_a_second_run_stops_with_a_clear_message_while_one_holds_the_lock(mini):
    with study_lock(mini):
        with pytest.raises(LockError, match="another impactstudy run is working on study 'mini'"):
            stages.run("mini", ["link"], root=mini.root)


def test_a_waiting_run_goes_ahead_once_the_lock_is_free(mini):
    held = threading.Event()

    def hold() -> None:
        with study_lock(mini):
            held.set()
            time.sleep(0.6)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    started = time.monotonic()
    assert stages.run("mini", ["link"], root=mini.root, wait=10) == []
    assert time.monotonic() - started >= 0.3  # it waited for the holder
    thread.join()


def test_compare_reports_rows_councils_and_estimates():
    previous = {"raw_files": {"a.sav": "1", "b.csv": "2"}, "rows_accepted": {"w1": 10, "w2": 5},
                "councils": ["E1", "E2"], "estimates": {"m|w2 - w1|all": 0.5, "m2|w2 - w1|all": 0.1}}
    current = {"raw_files": {"a.sav": "1", "b.csv": "3", "c.sav": "4"}, "rows_accepted": {"w1": 10, "w2": 7, "w3": 4},
               "councils": ["E1", "E2", "E3"], "estimates": {"m|w2 - w1|all": 0.6, "m2|w2 - w1|all": 0.1}}
    diff = compare(previous, current)
    assert diff["rows_added"] == {"w2": 2, "w3": 4}
    assert diff["new_waves"] == ["w3"]
    assert diff["councils_newly_linked"] == ["E3"]
    assert diff["raw_files_changed"] == ["b.csv"]
    assert [m["key"] for m in diff["estimates_moved"]] == ["m|w2 - w1|all"]
    assert diff["estimates_moved"][0]["change"] == pytest.approx(0.1)
    assert compare(None, current) == {"first_run": True}


def test_a_run_removes_temporary_files_a_killed_run_left(mini):
    leftover = mini.processed / "waves" / ".w1.parquet.abc123.tmp"
    leftover.write_bytes(b"partial")
    kept = mini.processed / "notes.tmp"  # not one of ours: left alone
    kept.write_bytes(b"x")
    stages.run("mini", ["link"], root=mini.root)
    assert not leftover.exists()
    assert kept.exists()


# ------------------------------------------------------------- light planning: no stage code, no pandas

HEAVY = ("pandas", "pyarrow", "numpy", "statsmodels", "matplotlib", "scipy")


def _in_subprocess(code: str) -> object:
    done = subprocess.run([sys.executable, "-c", "import sys, json\n" + code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_noop_rerun_and_status_import_no_heavy_library(mini):
    root = str(mini.root)
    heavy = f"[m for m in {HEAVY!r} if m in sys.modules]"
    ran = _in_subprocess(f"from impactstudy import stages\nran = stages.run('mini', ['link'], root={root!r})\n"
                         f"print(json.dumps([ran, {heavy}]))")
    assert ran == [[], []]
    cli = _in_subprocess(f"import contextlib, io\nfrom impactstudy.cli import main\n"
                         f"with contextlib.redirect_stdout(io.StringIO()):\n    main(['status', '--study', 'mini', '--root', {root!r}])\n"
                         f"print(json.dumps({heavy}))")
    assert cli == []


def test_changed_config_comment_reruns_nothing(mini):
    mini.config.write_text(mini.config.read_text() + "\n# a comment\n")
    assert stale(mini) == {}
    assert stages.run("mini", ["link"], root=mini.root) == []


def test_replaced_salt_is_refused(mini):
    mini.secret_salt.write_bytes(b"another-salt" * 4)
    with pytest.raises(DataError, match="not the salt the processed data"):  # pseudonyms would not link
        stages.run("mini", ["link"], root=mini.root)


def test_changed_output_is_rewritten(mini):
    before = mini.linkage.read_bytes()
    mini.linkage.write_bytes(before + b"x")
    assert stale(mini) == {"link": ["its output linkage.csv was changed outside the pipeline"]}
    assert stages.run("mini", ["link"], root=mini.root) == ["link"]
    assert mini.linkage.read_bytes() == before


def test_retargeted_raw_symlink_reruns_that_wave(mini):
    elsewhere = mini.raw / "versions"  # raw files must resolve inside the raw folder
    elsewhere.mkdir()
    raw = mini.raw / "w2.csv"
    original = elsewhere / "w2_v1.csv"
    original.write_bytes(raw.read_bytes())
    raw.unlink()
    raw.symlink_to(original)
    stages.run("mini", ["link"], root=mini.root)
    assert stale(mini) == {}
    changed = elsewhere / "w2_v2.csv"
    changed.write_bytes(original.read_bytes() + LATE_ROW.encode())
    raw.unlink()
    raw.symlink_to(changed)
    assert stages.run("mini", ["link"], root=mini.root) == ["ingest:w2", "ingest", "link"]


def test_force_reruns_the_stage_asked_for_only(mini):
    assert stages.run("mini", ["link"], root=mini.root, force=True) == ["link"]


def test_a_noop_run_removes_leftovers_under_the_lock(mini):
    leftover = mini.processed / ".linkage.csv.abc123.tmp"
    leftover.write_bytes(b"partial")
    with study_lock(mini):
        with pytest.raises(LockError):
            stages.run("mini", ["link"], root=mini.root)
    assert leftover.exists()
    assert stages.run("mini", ["link"], root=mini.root) == []
    assert not leftover.exists()


def test_run_until_a_stage_is_what_make_runs_and_a_noop_says_so(mini, capsys):
    from impactstudy.cli import main

    assert main(["run", "--study", "mini", "--root", str(mini.root), "--until", "link"]) == 0
    err = capsys.readouterr().err
    assert "link and what it reads up to date (nothing to do)" in err
    assert "reports:" not in err  # no bundles were asked for
    assert not (mini.tables / "contrasts.csv").exists()  # the model was not run
    makefile = (Path(__file__).parents[2] / "Makefile").read_text(encoding="utf-8")
    for stage in stages.STAGES:
        assert f"{stage}: $(VENV)/.installed demo ##" in makefile
    assert makefile.count("@$(IS) run --study $(STUDY) --until $@") == len(stages.STAGES)


def test_stale_reasons_name_the_wave_and_its_file_not_intermediate_files(mini):
    """After `run --until ingest` the panel lags the waves: link's reason names the wave that changed, as
    the user knows it (label and raw file), never waves/w2.parquet; a deleted output is named in the
    study's folder."""
    csv = mini.raw / "w2.csv"
    csv.write_bytes(csv.read_bytes().replace(b"Very good", b"Good"))
    assert stages.run("mini", ["ingest"], root=mini.root) == ["ingest:w2", "ingest"]
    reasons = stale(mini)
    assert reasons == {"link": ["what ingest:w2 (wave “Wave two”, w2.csv) writes changed since it last ran"]}
    mini.wave_file("w1").unlink()
    reasons = stale(mini)
    assert reasons["ingest:w1"] == ["its output waves/w1.parquet is missing"]
    assert not any(".parquet" in r for name, rs in reasons.items() if name != "ingest:w1" for r in rs), reasons
