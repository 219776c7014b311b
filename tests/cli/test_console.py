"""The console (#17 item 7): progress of long stages as a bar on a terminal and plain lines otherwise;
every subcommand described, offering only the options it uses."""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from impactstudy import cli
from impactstudy.pipeline import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def shown():
    """Progress enabled on a stream the test reads; disabled again afterwards."""
    def enable(stream):
        progress.enable(stream)
        return stream
    yield enable
    progress.disable()


def _work(bar: progress.Progress, n: int) -> None:
    with ThreadPoolExecutor(2) as pool:
        bar.track([pool.submit(time.sleep, 0.001) for _ in range(n)])


def test_plain_lines_when_not_a_terminal(shown):
    stream = shown(io.StringIO())
    with progress.progress("model", "fits") as bar:
        _work(bar, 8)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[:3] == [f"model: {n} fits done (8 started so far)" for n in (2, 4, 6)]
    assert lines[-1].startswith("model: 8 fits done in ") and len(lines) == 4


def test_a_bar_on_a_terminal(shown):
    stream = shown(Terminal())
    with progress.progress("report public", "charts and pages") as bar:
        _work(bar, 5)
        bar.track(["drawn here already"])
    text = stream.getvalue()
    assert "\r" in text and "report public" in text and "6/6" in text and "100%" in text
    assert "done in" not in text  # the bar is the summary


def test_silent_unless_enabled():
    progress.disable()
    with progress.progress("model", "fits") as bar:
        bar.track([1, 2, 3])
    assert bar.done == 3 and bar.stream is None


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub)
                out.update({f"{name} {k}": v for k, v in nested.items()} if nested else {name: sub})
    return out


def _attributes_read(func) -> set[str]:
    """``args.<name>`` read by ``func`` and by the cli functions it hands ``args`` to."""
    seen, read = set(), set()

    def visit(f) -> None:
        if f in seen:
            return
        seen.add(f)
        tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args":
                read.add(node.attr)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and any(
                    isinstance(a, ast.Name) and a.id == "args" for a in node.args):
                helper = getattr(cli, node.func.id, None)
                if callable(helper):
                    visit(helper)
    visit(func)
    if func.__closure__:  # _stage_command(stage)'s inner command
        for cell in func.__closure__:
            if inspect.isfunction(cell.cell_contents):
                visit(cell.cell_contents)
    return read


def test_every_subcommand_is_described_and_offers_only_options_it_uses():
    commands = _commands(cli.build_parser())
    assert {"ingest", "link", "model", "impact", "report", "run", "status", "validate", "init", "demo"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 20, f"{name}: no description"
        func = parser.get_default("func")
        used = _attributes_read(func)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
            assert action.dest in used, f"`impactstudy {name}` offers {action.option_strings or action.dest} but never reads it"


def test_help_of_each_subcommand_lists_its_own_options(capsys):
    for argv, present, absent in ((["status", "--help"], ["--study", "--root"], ["--force", "--wait", "--audience"]),
                                  (["report", "--help"], ["--force", "--wait"], ["--audience", "--councils"]),
                                  (["init", "--help"], ["--force"], ["--study", "--wait"])):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = capsys.readouterr().out
        assert all(o in text for o in present), (argv, text)
        assert not any(o in text for o in absent), (argv, text)


def test_progress_lines_name_the_wave_and_the_file_the_user_gave(tmp_path, capsys):
    from conftest import write_mini_study

    root = write_mini_study(tmp_path)
    assert cli.main(["ingest", "--study", "mini", "--root", str(root)]) == 0
    err = capsys.readouterr().err
    assert "ingest:w1 (wave “Wave one”, w1.sav): running (never run)" in err
    assert "ingest:w2 (wave “Wave two”, w2.csv): running (never run)" in err
    assert "Traceback" not in err


def test_the_command_line_shows_progress_for_its_own_run_only(tmp_path, capsys):
    assert cli.main(["councils", "resolve", "Bristol"]) == 0
    capsys.readouterr()
    assert progress._STREAM == []  # a later API call (or test) prints nothing to a stream it does not own


def test_ingest_and_link_show_progress_as_plain_lines(tmp_path, capsys, monkeypatch):
    """Not a terminal (a log): ingest counts its waves run side by side, link its parts (the councils, each
    panel and file, the SPSS/Stata files), a line at each quarter and one at the end."""
    from conftest import write_mini_study

    from impactstudy.pipeline import steps

    monkeypatch.setattr(steps, "_cores", lambda: 2)  # the waves side by side, as on any multi-core machine
    root = write_mini_study(tmp_path)
    assert cli.main(["link", "--study", "mini", "--root", str(root)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "ingest: 1 waves done (2 started so far)" in err
    assert any(line.startswith("ingest: 2 waves done in ") for line in err)
    quarters = [line for line in err if line.startswith("link: ") and "started so far" in line]
    done = [int(line.split()[1]) for line in quarters]  # the SPSS/Stata files count 4 when their writer ends
    assert 2 <= len(done) <= 3 and done == sorted(set(done)) and 0 < done[0] and done[-1] < 11
    assert all("(11 started so far)" in q for q in quarters)
    assert any(line.startswith("link: 11 parts done in ") for line in err)
    assert err.index(quarters[0]) > err.index("link: running (never run)")


def test_link_shows_a_bar_on_a_terminal(tmp_path, shown):
    from conftest import write_mini_study

    from impactstudy import stages

    root = write_mini_study(tmp_path)
    stages.run("mini", ["ingest"], root=root)
    stream = shown(Terminal())
    stages.run("mini", ["link"], root=root)
    text = stream.getvalue()
    assert "\r" in text and "link" in text and "11/11" in text and "100%" in text and "done in" not in text


INTERMEDIATE = (".parquet", "waves/", ".report.json", ".quarantine.csv", "manifest.json", ".codes.")


def test_run_status_and_validate_name_what_the_user_knows(tmp_path, capsys):
    """Every console line of run, status and validate on a generated study, through a first run, a changed
    raw file, a changed label, a deleted panel and `run --until ingest`: steps and waves in words, raw files
    by their path, no intermediate file (waves/*.parquet, a wave's report or quarantine piece, the manifest)."""
    from conftest import write_mini_study

    root = write_mini_study(tmp_path)
    said = []

    def cli_says(*argv: str) -> str:
        assert cli.main([*argv, "--study", "mini", "--root", str(root)]) in (0, 6)
        out = capsys.readouterr()
        said.append(out.out + out.err)
        return said[-1]

    cli_says("validate")
    cli_says("run", "--until", "link")
    csv = root / "data" / "raw" / "mini" / "w2.csv"
    csv.write_bytes(csv.read_bytes().replace(b"Very good", b"Good"))
    text = cli_says("status")
    assert "ingest:w2 " in text and "data/raw/mini/w2.csv changed" in text
    assert "reads what ingest:w2 (wave “Wave two”, w2.csv) writes, which will rerun" in text
    cli_says("run", "--until", "ingest")
    assert "what ingest:w2 (wave “Wave two”, w2.csv) writes changed since it last ran" in cli_says("status")
    toml = root / "pipelines" / "mini" / "study.toml"
    toml.write_text(toml.read_text().replace('label = "Percent"', 'label = "Per cent"'))
    (root / "data" / "processed" / "mini" / "panel_long.parquet").unlink()
    text = cli_says("status")
    assert "study.toml changed: measures.label" in text and "its output panel_long.parquet is missing" in text
    cli_says("run", "--until", "link")
    cli_says("validate")
    for line in "".join(said).splitlines():
        shown = line.replace("its output panel_long.parquet is missing", "")  # the file the user deleted
        assert not any(name in shown for name in INTERMEDIATE), line
        assert "Traceback" not in line and str(tmp_path) not in line.replace(str(root / "data" / "raw"), ""), line
