"""The ``impactstudy`` command: a thin layer over :mod:`impactstudy.stages` and friends.

A user's mistake ends with a one-line message on stderr and the exit code of its kind (see
:mod:`impactstudy.errors` and the README's table); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from impactstudy import __version__
from impactstudy.errors import UserError, no_space
from impactstudy.stages import STAGES

EXIT_VALIDATION_FAILED = 6


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _summary(args: argparse.Namespace) -> None:
    """The end-of-run summary (rows read, set aside and why; unmatched councils; warnings)."""
    from impactstudy.pipeline.paths import StudyPaths
    from impactstudy.pipeline.summary import run_summary

    for line in run_summary(StudyPaths(Path(args.root).resolve(), args.study)):
        _log(line)


def _stage_command(stage: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from impactstudy import stages

        ran = stages.run(args.study, [stage], root=args.root, force=args.force, wait=args.wait, log=_log)
        if not ran:
            _log(f"{stage}: up to date (nothing to do)")
        _summary(args)
        if stage == "report":
            _log(_bundles(args))
        return 0

    return command


def _cmd_run(args: argparse.Namespace) -> int:
    from impactstudy import stages

    started = time.monotonic()
    ran = stages.run(args.study, [args.until] if args.until else None, root=args.root, force=args.force,
                     wait=args.wait, log=_log)
    if ran:
        done = sorted({name.split(":")[0] for name in ran}, key=stages.STAGES.index)
        _log(f"done in {time.monotonic() - started:.0f} s: ran {', '.join(done)} "
             f"({len(ran)} step{'s' if len(ran) != 1 else ''})")
    else:
        _log(f"{'all stages' if not args.until else args.until + ' and what it reads'} up to date (nothing to do)")
    _summary(args)
    if args.until in (None, "report"):
        _log(_bundles(args))  # the last line: where the bundles are
    return 0


def _bundles(args: argparse.Namespace) -> str:
    """Where the two report bundles are, as the user would type them (relative to where they ran it)."""
    from impactstudy.pipeline.paths import StudyPaths

    paths = StudyPaths(Path(args.root).resolve(), args.study)

    def shown(path: Path) -> str:
        try:
            return os.path.relpath(path) + "/"
        except ValueError:
            return str(path) + "/"

    return (f"reports: {shown(paths.bundle('public'))} (disclosure-controlled, to publish); "
            f"{shown(paths.bundle('internal'))} (research team only)")


def _cmd_status(args: argparse.Namespace) -> int:
    from impactstudy import stages

    stale = 0
    for name, reasons in stages.status(args.study, root=args.root):
        if reasons:
            stale += 1
            print(f"{name:<28} stale: {'; '.join(reasons)}")
        else:
            print(f"{name:<28} up to date")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from impactstudy.stages import open_study
    from impactstudy.validate import set_aside_preview, validate_study

    study, paths = open_study(args.study, args.root)
    problems = validate_study(study, paths)
    for problem in problems:
        print(problem)
    preview = set_aside_preview(study, paths)
    for line in preview:
        print(line)
    if problems:
        _log(f"{len(problems)} problem(s) in study '{args.study}'")
        return EXIT_VALIDATION_FAILED
    _log(f"study '{args.study}': config and raw files agree ({len(study.waves)} waves, {len(study.measures)} measures)"
         + ("; the rows and answers listed above would be set aside" if preview else "; nothing would be set aside"))
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from impactstudy.study.template import write_template

    path = write_template(Path(args.root), args.name, force=args.force)
    _log(f"wrote {path}; put the raw files in data/raw/{args.name}/ and edit the config")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from impactstudy.demo import run

    summary = run(Path(args.root), study=args.study, councils=args.councils, seed=args.seed,
                  extra_waves=args.extra_waves, force=args.force)
    _log(f"demo study '{args.study}': {len(summary['files'])} files written to data/raw/{args.study}/")
    return 0


def _cmd_verbatims(args: argparse.Namespace) -> int:
    from impactstudy import stages
    from impactstudy.verbatims import write_sheets

    stages.run(args.study, ["link"], root=args.root, log=_log)  # council names resolved, waves up to date
    study, paths = stages.open_study(args.study, args.root)
    write_sheets(study, paths, args.coders.split(","), args.overlap, args.seed, log=_log)
    _log(f"the coding sheets hold respondent-level answers: share them only with the coders; put the returned "
         f"copies in data/raw/{args.study}/ and name them in the config's [[coding]] files (docs/coding.md)")
    return 0


def _cmd_councils_resolve(args: argparse.Namespace) -> int:
    from impactstudy.councils import resolve_to_csv

    sys.stdout.write(resolve_to_csv(args.values, as_of=args.as_of))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the README's command reference and tests)."""
    parser = argparse.ArgumentParser(
        prog="impactstudy",
        description="Survey waves of a longitudinal impact study to linked panels, change-over-time models and an HTML report.",
    )
    parser.add_argument("--version", action="version", version=f"impactstudy {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--study", default=os.environ.get("STUDY", "demo"), help="study name (default: $STUDY or demo)")
    common.add_argument("--root", default=".", help="project folder holding pipelines/, data/ and reports/")
    stage_opts = argparse.ArgumentParser(add_help=False)
    stage_opts.add_argument("--force", action="store_true", help="rerun even if inputs are unchanged")
    stage_opts.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                            help="wait this long for another run of the study to finish")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for stage, text in (
        ("ingest", "read each wave's raw file into waves/<wave>.parquet, quarantine.csv, ingest_report.json"),
        ("link", "resolve councils and link waves into panel_long/panel_wide, linkage.csv, panel_long.sav"),
        ("impact", "estimate impact on administrative outcomes against comparison councils: tables/impact.csv, impact.json"),
        ("model", "fit the change-over-time models: tables/contrasts.csv, estimates.csv, attrition.csv, expectations.csv"),
        ("report", "write both report bundles: reports/<study>/public/ (disclosure-controlled, to publish) and "
                   "reports/<study>/internal/ (with council pages, for the research team)"),
    ):
        p = sub.add_parser(stage, parents=[common, stage_opts], help=text, description=text)
        p.set_defaults(func=_stage_command(stage))
    for name, text, parents, func in (
        ("run", "run every step that is out of date (ingest, link, impact, model, report), then say where the "
                "report bundles are", [common, stage_opts], _cmd_run),
        ("status", "list each stage (and wave) as up to date or stale, and why; changes nothing", [common], _cmd_status),
        ("validate", "check the config against the raw files, reporting every problem at once", [common], _cmd_validate),
    ):
        p = sub.add_parser(name, parents=parents, help=text, description=text)
        p.set_defaults(func=func)
        if name == "run":
            p.add_argument("--until", choices=STAGES, default=None, metavar="STAGE",
                           help=f"run only STAGE and the stages it reads from ({', '.join(STAGES)}); "
                                "what `make <stage>` runs")
    text = "write a commented template pipelines/<name>/study.toml to start a new study"
    p = sub.add_parser("init", help=text, description=text)
    p.add_argument("name", help="study name")
    p.add_argument("--root", default=".", help="project folder holding pipelines/, data/ and reports/")
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.set_defaults(func=_cmd_init)
    text = "write the synthetic demo study with known truth (config and raw files) to try the pipeline on"
    p = sub.add_parser("demo", parents=[common], help=text, description=text)
    p.add_argument("--councils", type=int, default=40, help="number of councils (6 gives the original study's size)")
    p.add_argument("--seed", type=int, default=20130401, help="random seed (the same seed gives the same files)")
    p.add_argument("--extra-waves", type=int, default=0, choices=(0, 1), help="1 adds a second follow-up wave")
    p.add_argument("--force", action="store_true", help="overwrite an existing demo study")
    p.set_defaults(func=_cmd_demo)
    text = ("write every free-text answer to an Excel coding sheet per coder (data/processed/<study>/coding/), "
            "a share of them double-coded")
    p = sub.add_parser("verbatims", parents=[common], help=text, description=text)
    p.add_argument("--coders", default="coder", help="coders' initials, comma-separated (default: one coder, 'coder')")
    p.add_argument("--overlap", type=float, default=0.0, metavar="SHARE",
                   help="share of answers given to a second coder for agreement, e.g. 0.2 (needs two coders)")
    p.add_argument("--seed", type=int, default=20130401, help="random seed of the split among coders")
    p.set_defaults(func=_cmd_verbatims)
    text = "look councils up in the register of English upper-tier councils"
    p = sub.add_parser("councils", help=text, description=text)
    csub = p.add_subparsers(dest="councils_command", required=True, metavar="SUBCOMMAND")
    text = "resolve council codes or names to GSS codes, printed as CSV"
    r = csub.add_parser("resolve", help=text, description=text)
    r.add_argument("--as-of", default=None, metavar="DATE", help="resolve as of this date (YYYY-MM-DD)")
    r.add_argument("values", nargs="+", metavar="VALUE",
                   help="council names or codes (GSS, e.g. E06000001, or DfE's 3-digit number), as written anywhere")
    r.set_defaults(func=_cmd_councils_resolve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    from impactstudy.pipeline import progress

    progress.enable(sys.stderr)  # long stages: a bar on a terminal, plain lines in a log (this run only)
    try:
        return int(args.func(args))
    except UserError as err:
        print(f"impactstudy: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a full disk outside the atomic writers (the salt, the lock, a folder)
        full = no_space(err, err.filename or args.root)
        if full is None:
            raise
        print(f"impactstudy: error: {full}", file=sys.stderr)
        return full.exit_code
    except KeyboardInterrupt:
        print("impactstudy: interrupted", file=sys.stderr)
        return 130
    finally:
        progress.disable()
