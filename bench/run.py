"""The national-scale benchmark (``make bench``): time every stage of impactstudy on a national study.

Writes the benchmark study (:mod:`national`: 152 councils x 200 respondents x 5 .sav waves x 30
Likert measures; generating it is not timed), then, each in a fresh process, as a user would run them:

* every stage (``python -m impactstudy <stage>``) from empty processed data: wall time, CPU time and
  peak memory (resident set of the process and its workers, sampled every 0.2 s, and the largest
  single process's ``ru_maxrss``; the sample sums proportional set sizes, so memory forked workers
  share with the stage's process counts once);
* a plain ``pyreadstat.read_sav`` of the same .sav files (the floor for ingest), and ``ingest --force``,
  three times each, interleaved: the ratio is of their medians (one run with ``--tiny``);
* the LMM fits against R's ``lme4::lmer`` on the same rows and formulas (``fitting.lmm_rows`` timed
  in-process; only the ``lmer`` call is timed in R), skipped with a note when ``Rscript`` with lme4
  is missing;
* a no-op rerun (``impactstudy run``, and ``make report`` when the study is under this repository);
* adding a wave (the generator's next wave plus its config entry): time until the new report;
* reruns that match the change: a no-op, a touched raw file (``make report`` when the study is under
  this repository, else ``impactstudy run``), a change to the report's stylesheet (in the code snapshot
  the bench runs from) and to a wave's label, each with its time and the steps that ran.

Results go to ``bench/results.json`` (or ``--out``) and a table on stdout: each target with its
value, limit and pass/fail. ``--tiny`` (12 councils x 10 respondents x 3 waves x 4 measures) runs in
seconds and is what the test suite runs. Timings on a shared machine include its other load: the
results record the load average and CPU times next to wall times.

``--reruns-only`` runs the study once and then only the reruns (a quicker way to those figures).

Run from the repository root:  .venv/bin/python bench/run.py [--tiny] [--reruns-only] [--root DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import national  # noqa: E402  (bench/ is not a package)

REPO = Path(__file__).resolve().parent.parent
STUDY = "national"
STAGES = ("ingest", "link", "model", "report")
TARGETS = {  # name: (limit, unit, what)
    "total_wall": (60.0, "s", "whole run (ingest + link + model + report)"),
    "peak_memory": (2048.0, "MB", "peak memory of any stage (process and its workers)"),
    "ingest_vs_plain_read": (1.5, "x", "ingest wall time / plain pyreadstat.read_sav of the same files "
                                       "(medians of three interleaved runs)"),
    "report_wall": (15.0, "s", "report stage"),
    "noop_rerun": (1.0, "s", "`impactstudy run` with nothing changed"),
    "lmm_vs_lme4": (0.2, "x", "LMM fit time / lme4::lmer on the same rows and formulas (council x wave model)"),
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(council_code = "character", respondent_id = "character", wave = "character"))
fits <- read.csv(args[2], colClasses = "character")
waves <- strsplit(args[3], ",")[[1]]
for (i in seq_len(nrow(fits))) {
  x <- d[d$measure == fits$measure[i], ]
  x$wave <- factor(x$wave, levels = waves[waves %in% x$wave])
  seconds <- system.time(m <- lmer(as.formula(fits$formula[i]), data = x, REML = TRUE))[["elapsed"]]
  cat(sprintf('{"measure": "%s", "group_by": "%s", "seconds": %.4f, "reml": %.10f}\n',
              fits$measure[i], fits$group_by[i], seconds, REMLcrit(m)))
}
"""


# ------------------------------------------------------------------------------------ measuring


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in children.read_text().split())
            except OSError:
                continue
    return found


def _tree_rss_mb(pid: int) -> float:
    """Memory of ``pid`` and its descendants (Linux /proc), MB: proportional set sizes, so pages a forked
    worker shares with its parent count once, not once per process."""
    total = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# Reading smaps_rollup walks the process's page tables under its memory lock: sampled every 20 ms it
# slowed the stages being timed by up to a second; memory builds up over seconds, so 0.2 s misses little
# (and each process's own peak, ru_maxrss, is recorded too).
SAMPLE_SECONDS = 0.2
ENV = dict(os.environ, AUDIENCE="internal")  # the report with its council pages, as the targets say


def snapshot_code(root: Path) -> None:
    """Run the package as it is now, from a copy: others editing the tree mid-run would change its code
    version and make every stage rerun inside the one being timed."""
    copy = root / ".bench-src"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(REPO / "src" / "impactstudy", copy / "impactstudy", ignore=shutil.ignore_patterns("__pycache__"))
    ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))


def measure(argv: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``argv`` to completion: wall and CPU seconds, peak memory, exit code."""
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=ENV)
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss_mb(child.pid))
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        if Path("/proc").is_dir():
            sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        child.returncode = os.waitstatus_to_exitcode(status)
    largest = usage.ru_maxrss / (1024 if platform.system() == "Linux" else 1024 * 1024)
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_mb": round(max(peak[0], largest), 1), "largest_process_mb": round(largest, 1),
            "exit_code": child.returncode}


def _impactstudy(command: str, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "impactstudy", command, "--study", STUDY, "--root", str(root), *extra]


# ------------------------------------------------------------------------------------ the study


def prepare(root: Path, scale: national.Scale, seed: int) -> None:
    """Write the study with one wave more than ``scale`` (its config naming ``scale.waves`` waves) unless
    it is already there; clear its processed data and reports."""
    raw = root / "data" / "raw" / STUDY
    marker = raw / "bench_scale.json"
    wanted = {"scale": asdict(scale), "seed": seed}
    if not (marker.is_file() and json.loads(marker.read_text()) == wanted):
        national.write(root, replace(scale, waves=scale.waves + 1), STUDY, seed)
        marker.write_text(json.dumps(wanted))
    set_waves(root, scale, scale.waves)
    for folder in (root / "data" / "processed" / STUDY, root / "reports" / STUDY):
        shutil.rmtree(folder, ignore_errors=True)


def set_waves(root: Path, scale: national.Scale, waves: int) -> None:
    (root / "pipelines" / STUDY / "study.toml").write_text(national.study_toml(replace(scale, waves=waves)),
                                                           encoding="utf-8")


def wave_files(root: Path, scale: national.Scale) -> list[Path]:
    from impactstudy.stages import open_study

    study, paths = open_study(STUDY, root)
    return [paths.raw_file(w.file) for w in study.waves[: scale.waves]]


# ------------------------------------------------------------------------------------------ R


def lme4_comparison(root: Path, measures: int, log: Path) -> dict[str, Any]:
    """impactstudy's LMM (``fitting.lmm_rows``: design, fit, contrasts, Satterthwaite and Kenward-Roger
    pieces) against ``lmer`` (the call alone) on the same rows and formulas: the first ``measures``
    measures, overall and by each grouping covariate, fitted in this process from the linked panel."""
    if shutil.which("Rscript") is None:
        return {"skipped": "Rscript is not installed"}
    probe = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, text=True)
    if probe.returncode != 0:
        return {"skipped": "R package lme4 is not installed"}
    from impactstudy.model import fitting
    from impactstudy.stages import open_study

    study, paths = open_study(STUDY, root)
    group_by = list(study.councils.group_by) if study.councils else []
    panel = pd.read_parquet(paths.panel_long)
    names = [m.name for m in fitting.modelled_measures(study, panel) if "lmm" in fitting.models_for(m)][:measures]
    panel = panel[panel["measure"].isin(names)]
    for column in ("council_code", "wave", "measure", "respondent_id"):
        panel[column] = panel[column].astype(str)
    fits, frames = [], []
    for name in names:
        data = fitting.measure_data(panel, name, group_by)
        frames.append(data.assign(measure=name))
        waves = [w for w in study.wave_ids if w in set(data["wave"])]
        for group in (None, *group_by):
            started = time.perf_counter()
            _, _, record = fitting.lmm_rows(data, waves, group)
            fits.append({"measure": name, "group_by": group or "", "formula": record["formula"],
                         "n_obs": record["n_obs"], "seconds": time.perf_counter() - started,
                         "reml_criterion": record.get("reml_criterion")})
    fits_frame = pd.DataFrame(fits)
    with tempfile.TemporaryDirectory() as tmp:
        data_csv, spec, script = Path(tmp) / "d.csv", Path(tmp) / "fits.csv", Path(tmp) / "fit.R"
        pd.concat(frames)[["measure", "council_code", "respondent_id", "wave", "value", *group_by]].to_csv(data_csv, index=False)
        fits_frame[["measure", "group_by", "formula"]].to_csv(spec, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(data_csv), str(spec), ",".join(study.wave_ids)],
                             capture_output=True, text=True)
    with open(log, "a") as handle:
        handle.write(out.stdout + out.stderr)
    if out.returncode != 0:
        return {"skipped": f"lmer failed: {out.stderr.strip().splitlines()[-1:]}"}
    r = pd.DataFrame([json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")])
    both = fits_frame.merge(r, on=["measure", "group_by"], suffixes=("", "_r"))
    python_s, r_s = float(both["seconds"].sum()), float(both["seconds_r"].sum())
    return {"fits": len(both), "measures": names, "rows_per_fit": int(both["n_obs"].median()),
            "impactstudy_s": round(python_s, 3), "lme4_s": round(r_s, 3), "ratio": round(python_s / r_s, 4),
            "max_abs_reml_difference": float((both["reml_criterion"] - both["reml"]).abs().max()),
            "formulas": sorted(set(both["formula"])),
            "note": "impactstudy: fitting.lmm_rows (design, fit, contrasts, Satterthwaite and Kenward-Roger); "
                    "lme4: system.time(lmer(...)) only"}


# ---------------------------------------------------------------------------- ingest vs plain read


def ingest_against_plain_read(root: Path, scale: national.Scale, log: Path,
                              repeats: int = 3) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plain ``pyreadstat.read_sav`` of the waves' files (its first run), and the ratio of the ingest
    stage's wall time to it: medians of ``repeats`` runs of each, alternated (``ingest --force`` in a
    fresh process, then the plain read).

    Why repeated: both take two or three seconds, and on a shared virtual machine the speed of the
    same command varies by a third from one minute to the next; medians of interleaved runs compare
    the two under the same conditions, where one run of each compares two moments.
    """
    files = [str(f) for f in wave_files(root, scale)]
    read = ("import sys, pyreadstat\nfor f in sys.argv[1:]:\n    pyreadstat.read_sav(f, user_missing=True)")
    ingests, reads = [], []
    for _ in range(repeats):
        ingests.append(measure(_impactstudy("ingest", root, "--force"), REPO, log)["wall_s"])
        reads.append(measure([sys.executable, "-c", read, *files], REPO, log))
    plain = {**reads[0], "files": len(files)}
    ingest_s, read_s = statistics.median(ingests), statistics.median(r["wall_s"] for r in reads)
    return plain, {"ingest_wall_s": ingests, "plain_read_wall_s": [r["wall_s"] for r in reads],
                   "ratio_of_medians": round(ingest_s / read_s, 3)}


# ------------------------------------------------------------------------------------------ run


def run(root: Path, scale: national.Scale, seed: int, r_measures: int | None, log: Path, out: Path) -> dict[str, Any]:
    prepare(root, scale, seed)
    snapshot_code(root)
    started = time.time()
    load = os.getloadavg()
    results: dict[str, Any] = {
        "scale": asdict(scale), "seed": seed, "root": str(root),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load]},
        "stages": {}, "notes": [],
    }

    def save() -> None:  # after each measurement, so an interrupted run keeps what it measured
        out.write_text(json.dumps(results, indent=2) + "\n")

    for stage in STAGES:
        results["stages"][stage] = measure(_impactstudy(stage, root), REPO, log)
        save()
        if results["stages"][stage]["exit_code"] != 0:
            raise SystemExit(f"bench: `impactstudy {stage}` failed; see {log}")
    stages = results["stages"].values()
    results["stages"]["total"] = {"wall_s": round(sum(s["wall_s"] for s in stages), 3),
                                  "cpu_s": round(sum(s["cpu_s"] for s in stages), 3),
                                  "peak_mb": max(s["peak_mb"] for s in stages),
                                  "largest_process_mb": max(s["largest_process_mb"] for s in stages)}

    results["noop_rerun"] = {"impactstudy_run": measure(_impactstudy("run", root), REPO, log)}
    if root.resolve() == REPO:  # `make report` is one `impactstudy run --until report`
        results["noop_rerun"]["make_report"] = measure(_make_report(), REPO, log)
    else:
        results["notes"].append("make-level no-op rerun skipped: the study is not under the repository root")

    # after the no-op: rerunning ingest alone makes the next full run check every step once
    results["plain_read"], results["ingest_vs_plain_read"] = ingest_against_plain_read(
        root, scale, log, repeats=1 if scale == national.TINY else 3)
    save()

    if r_measures == 0:
        results["lmm_vs_lme4"] = {"skipped": "not requested (--r-measures 0)"}
    else:
        results["lmm_vs_lme4"] = lme4_comparison(root, r_measures or 10**6, log)
    if "skipped" in results["lmm_vs_lme4"]:
        results["notes"].append(f"LMM vs lme4 skipped: {results['lmm_vs_lme4']['skipped']}")
    save()

    set_waves(root, scale, scale.waves + 1)
    results["new_wave"] = measure(_impactstudy("run", root), REPO, log)
    results["new_wave"]["steps_run"] = _steps_run(log)
    set_waves(root, scale, scale.waves)
    results["reruns"] = reruns(root, scale, log)
    save()
    set_waves(root, scale, scale.waves)
    results["targets"] = targets(results)
    results["seconds_elapsed"] = round(time.time() - started, 1)
    save()
    return results


def run_reruns(root: Path, scale: national.Scale, seed: int, log: Path, out: Path) -> dict[str, Any]:
    """``--reruns-only``: the whole pipeline once (timed), then :func:`reruns`."""
    prepare(root, scale, seed)
    snapshot_code(root)
    results: dict[str, Any] = {"scale": asdict(scale), "seed": seed, "root": str(root),
                               "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]},
                               "first_run": measure(_impactstudy("run", root), REPO, log)}
    results["reruns"] = reruns(root, scale, log)
    set_waves(root, scale, scale.waves)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def rerun_table(results: dict[str, Any]) -> list[str]:
    lines = [f"{'rerun after':<24}{'wall s':>9}{'cpu s':>9}  steps that ran"]
    for change, row in results["reruns"].items():
        lines.append(f"{change:<24}{row['wall_s']:>9.2f}{row['cpu_s']:>9.2f}  {', '.join(row['steps_run']) or 'none'}")
    return lines


def _make_report() -> list[str]:
    return ["make", "--no-print-directory", "-C", str(REPO), "report", f"STUDY={STUDY}"]


def reruns(root: Path, scale: national.Scale, log: Path) -> dict[str, Any]:
    """What a rerun costs after each kind of change, and which steps it ran (issue #20). Starts by bringing
    the study back to ``scale.waves`` waves (after the new wave; not a figure); leaves the label edited."""
    def timed(argv: list[str]) -> dict[str, Any]:
        row = measure(argv, REPO, log)
        row["steps_run"] = _steps_run(log)
        return row

    out = {"back_to_declared_waves": timed(_impactstudy("run", root))}  # after the new wave (or the first run): no figure
    out["noop"] = timed(_impactstudy("run", root))
    later = time.time() + 60
    os.utime(wave_files(root, scale)[0], (later, later))
    out["touched_raw_file"] = timed(_make_report() if root.resolve() == REPO else _impactstudy("run", root))
    css = Path(ENV["PYTHONPATH"].split(os.pathsep)[0]) / "impactstudy" / "report" / "templates" / "report.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n/* bench: a stylesheet change */\n", encoding="utf-8")
    out["template_change"] = timed(_impactstudy("run", root))
    config = root / "pipelines" / STUDY / "study.toml"
    first = tomllib.loads(config.read_text(encoding="utf-8"))["waves"][0]["label"]
    config.write_text(config.read_text(encoding="utf-8").replace(f'label = "{first}"', f'label = "{first} (edited)"', 1),
                      encoding="utf-8")
    out["wave_label_change"] = timed(_impactstudy("run", root))
    return out


def _steps_run(log: Path) -> list[str]:
    """The names of the steps the last command in ``log`` ran."""
    lines = log.read_text(errors="replace").splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("$ "))
    return steps_named(lines[start + 1:])


def steps_named(lines: list[str]) -> list[str]:
    """The names of the steps a command's console ``lines`` say it ran: each "<step>: running (…)" or
    "<step> (<what it is about>): running (…)" line gives ``<step>`` (also read by bench/impact_bench.py)."""
    return [line.split(": running")[0].split(" (")[0] for line in lines if ": running" in line]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    stages = results["stages"]
    lmm = results["lmm_vs_lme4"]
    values = {
        "total_wall": stages["total"]["wall_s"],
        "peak_memory": stages["total"]["peak_mb"],
        "ingest_vs_plain_read": results["ingest_vs_plain_read"]["ratio_of_medians"],
        "report_wall": stages["report"]["wall_s"],
        "noop_rerun": results["noop_rerun"]["impactstudy_run"]["wall_s"],
        "lmm_vs_lme4": lmm.get("ratio"),
    }
    out = []
    for name, (limit, unit, what) in TARGETS.items():
        value = values[name]
        out.append({"target": name, "what": what, "value": value, "limit": limit, "unit": unit,
                    "status": "skipped" if value is None else "pass" if value <= limit else "FAIL"})
    return out


def table(results: dict[str, Any]) -> str:
    lines = [f"{'stage':<10}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}"]
    for stage, row in results["stages"].items():
        lines.append(f"{stage:<10}{row['wall_s']:>9.2f}{row['cpu_s']:>9.2f}{row['peak_mb']:>9.0f}")
    plain = results["plain_read"]
    lines.append(f"{'plain read':<10}{plain['wall_s']:>9.2f}{plain['cpu_s']:>9.2f}{plain['peak_mb']:>9.0f}")
    wave = results["new_wave"]
    lines.append(f"{'new wave':<10}{wave['wall_s']:>9.2f}{wave['cpu_s']:>9.2f}{wave['peak_mb']:>9.0f}")
    lines.append("")
    lines.extend(rerun_table(results))
    lines.append("")
    lines.append(f"{'target':<22}{'value':>10}{'limit':>10}  status")
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}{t['unit']}"
        lines.append(f"{t['target']:<22}{value:>10}{t['limit']:>9g}{t['unit']}  {t['status']}")
    lines.extend(f"note: {n}" for n in results["notes"])
    lines.append(f"load average before: {results['machine']['load_average_before']} on {results['machine']['cpus']} CPUs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="12 councils x 10 respondents x 3 waves x 4 measures")
    parser.add_argument("--root", type=Path, default=REPO / "bench" / "work",
                        help="project folder for the study (default: bench/work; the repository root also times `make report`)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: bench/results.json, "
                        "or <root>/bench_results.json with --tiny)")
    parser.add_argument("--seed", type=int, default=20130401)
    parser.add_argument("--reruns-only", action="store_true", help="run the study once, then time only the reruns")
    parser.add_argument("--r-measures", type=int, default=None,
                        help="measures whose LMM fits lme4 repeats (default: 3; 0 skips R; --tiny: 0)")
    args = parser.parse_args(argv)
    scale = national.TINY if args.tiny else national.FULL
    r_measures = args.r_measures if args.r_measures is not None else (0 if args.tiny else 3)
    root = args.root.resolve()
    out = args.out or (root / "bench_results.json" if args.tiny else REPO / "bench" / "results.json")
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    if args.reruns_only:
        print("\n".join(rerun_table(run_reruns(root, scale, args.seed, log, out))))
        print(f"wrote {out} (commands' output in {log})")
        return 0
    results = run(root, scale, args.seed, r_measures, log, out)
    print(table(results))
    print(f"wrote {out} (commands' output in {log})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
