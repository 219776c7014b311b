"""The command line: validate reports every problem at once, init writes a template that loads."""

from __future__ import annotations

import pytest

from impactstudy.cli import EXIT_VALIDATION_FAILED, main
from impactstudy.study.config import load_study

from conftest import write_mini_study


def test_validate_passes_a_sound_study(tmp_path, capsys):
    write_mini_study(tmp_path)
    assert main(["validate", "--study", "mini", "--root", str(tmp_path)]) == 0
    assert "config and raw files agree (2 waves" in capsys.readouterr().err


def test_validate_reports_every_problem_at_once_without_running_a_stage(tmp_path, capsys):
    write_mini_study(tmp_path)
    toml = tmp_path / "pipelines/mini/study.toml"
    text = toml.read_text()
    toml.write_text(text.replace('w1 = "q1"', 'w1 = "q1x"'))
    (tmp_path / "data/raw/mini/w2.csv").rename(tmp_path / "data/raw/mini/w2_old.csv")
    code = main(["validate", "--study", "mini", "--root", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert code == EXIT_VALIDATION_FAILED
    assert any("'q1x'" in line and "closest: 'q1'" in line for line in out)
    assert any("w2.csv: file not found" in line for line in out)
    assert not (tmp_path / "data/processed/mini/waves").exists()


def test_validate_names_a_type_mismatch(tmp_path, capsys):
    write_mini_study(tmp_path)
    toml = tmp_path / "pipelines/mini/study.toml"
    toml.write_text(toml.read_text().replace('columns = { w1 = "q1", w2 = "Q1 effectiveness" }',
                                             'columns = { w1 = "q1", w2 = "Role" }'))
    code = main(["validate", "--study", "mini", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == EXIT_VALIDATION_FAILED
    assert "column 'Role' does not look like likert measure 'eff'" in out


def test_init_writes_a_commented_template_that_loads(tmp_path, capsys):
    assert main(["init", "newstudy", "--root", str(tmp_path)]) == 0
    config = tmp_path / "pipelines/newstudy/study.toml"
    text = config.read_text()
    assert text.count("#") > 20  # commented
    study = load_study(config)
    assert study.name == "newstudy" and study.wave_ids == ("baseline",)
    assert (tmp_path / "data/raw/newstudy").is_dir()
    assert main(["init", "newstudy", "--root", str(tmp_path)]) == 2  # never overwrites silently
    assert "already exists" in capsys.readouterr().err


def test_councils_resolve_prints_csv(capsys):
    assert main(["councils", "resolve", "--as-of", "2014-01-01", "Bristol", "801", "E06000048"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "input,gss_code,name,method,score,note"
    assert [line.split(",")[1] for line in lines[1:]] == ["E06000023", "E06000023", "E06000057"]


@pytest.mark.parametrize("argv", [["ingest", "--study", "nope"], ["status", "--study", "nope"]])
def test_missing_study_is_a_config_error(tmp_path, argv, capsys):
    assert main([*argv, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("impactstudy: error:") and "impactstudy init" in err
