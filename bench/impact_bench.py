"""Benchmark of the impact stage (part of ``make bench``): every council x 12 years x 10 outcomes.

In a temporary project it generates the demo study, replaces its outcome file with a national one
(every authority of the register, 2010-2021, ten indicators in the DfE layout from
:mod:`impactstudy.demo.panels`) and declares the ten outcomes in ``[impact]`` with 999 bootstrap
draws and 999 reassignments. Then, each in a fresh process as a user would run them:

* ``impactstudy model`` (not timed; it runs the stages before it, impact included);
* ``impactstudy impact --force`` — timed (wall, and CPU over all its processes, workers included);
  target 10 s on 2 cores; the load average before it says how busy the machine was;
* ``impactstudy report``, then a new year of outcome data (2022 appended to the file) and
  ``impactstudy run``: the steps that ran must be exactly the impact and report stages' (``impact``,
  ``impact:triangulation`` when declared, ``report``).

Writes ``bench/impact_results.json`` (or ``--out``) and a line per target on stdout.
Run from the repository root:  .venv/bin/python bench/impact_bench.py [--out FILE]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from impactstudy.councils import load_register
from impactstudy.demo.panels import OutcomeModel, dfe_layout, simulate_panel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import steps_named  # noqa: E402  (bench/ is not a package)

LIMIT_SECONDS = 10.0
YEARS = tuple(range(2010, 2022))
N_OUTCOMES = 10


def outcome_models() -> list[OutcomeModel]:
    rng = np.random.default_rng(10)
    return [OutcomeModel(f"outcome_{k:02d}", f"Outcome {k}", level=float(rng.uniform(20, 80)), council_sd=5,
                         trend=float(rng.normal(0, 0.3)), noise_sd=2, gain=float(rng.uniform(0, 5)),
                         direction="higher" if k % 2 else "lower", dip=2) for k in range(1, N_OUTCOMES + 1)]


def write_file(raw: Path, councils: pd.DataFrame, years: tuple[int, ...], seed: int = 1) -> None:
    """The national outcome file for ``years`` (every live authority; treated = the councils file's)."""
    rng = np.random.default_rng(seed)
    register = load_register()
    live = register[register["valid_to"].isna()]["gss_code"].tolist()
    codes = dict(zip(councils["council"], pd.to_datetime(councils["review_date"]), strict=True))
    cohort = np.array([(d.year if d.month <= 3 else d.year + 1) if c in codes and (d := codes[c]) else 0
                       for c in live])
    sizes = rng.lognormal(0, 0.7, len(live))
    wide = None
    for model in outcome_models():
        v = simulate_panel(model, live, sizes, cohort, years, rng).rename(columns={"value": model.name})
        wide = v if wide is None else wide.merge(v, on=["council_code", "year"])
    wide["size"] = np.repeat(sizes, len(years))
    table = dfe_layout(wide, register, [m.name for m in outcome_models()], rng, suppress=0.001)
    table.to_csv(raw / "national_outcomes.csv", index=False)


IMPACT_TOML = """
[impact]
treatment = "review_date"
anticipation = 1
window = [-3, 6]
bootstrap = 999
permutations = 999

[[impact.files]]
file = "national_outcomes.csv"
layout = "dfe"
year_end = "03-31"
filters = {{ breakdown = "Total" }}
{outcomes}
"""


def configure(config: Path) -> None:
    """Replace the demo's ``[impact]`` section (the last in its study.toml) with the national outcomes'."""
    text = config.read_text(encoding="utf-8")
    text = text[:text.index("\n[impact]\n")]
    outcomes = "".join(f'\n[[impact.files.outcomes]]\nname = "{m.name}"\nlabel = "{m.label}"\ncolumn = "{m.name}"\n'
                       f'better = "{m.direction}"\n' for m in outcome_models())
    config.write_text(text + IMPACT_TOML.format(outcomes=outcomes), encoding="utf-8")


def impactstudy(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    return subprocess.run([sys.executable, "-m", "impactstudy", *args, "--study", "demo"], cwd=root, env=env,
                          capture_output=True, text=True, check=True)


def timed(root: Path, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``impactstudy *args``, the CPU of every process it starts included.

    The stage's workers are children of a forkserver, not of the command, so the command's own
    rusage misses them. This process becomes a *subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): the
    forkserver, orphaned when the command exits, is reparented here and waited for, and with it the
    CPU of the workers it waited for. Elsewhere the CPU counts the command and its waited-for children.
    """
    subreaper = sys.platform.startswith("linux")
    if subreaper:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    impactstudy(root, *args)
    wall = time.perf_counter() - start
    while True:  # reap the orphans reparented here (the forkserver), so their CPU is counted
        try:
            os.wait()
        except ChildProcessError:
            break
    if subreaper:
        ctypes.CDLL(None, use_errno=True).prctl(36, 0, 0, 0, 0)  # later commands' orphans go to init again
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/impact_results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        impactstudy(root, "demo")
        raw = root / "data" / "raw" / "demo"
        councils = pd.read_csv(raw / "councils.csv")
        write_file(raw, councils, YEARS)
        configure(root / "pipelines" / "demo" / "study.toml")
        impactstudy(root, "model")
        load = os.getloadavg()  # of the minutes before the timed run: other work on the machine
        wall, cpu = timed(root, "impact", "--force")  # `model` already ran it: time a fresh run
        impactstudy(root, "report")
        write_file(raw, councils, (*YEARS, YEARS[-1] + 1))
        rerun = impactstudy(root, "run")
        steps = steps_named((rerun.stdout + rerun.stderr).splitlines())
        table = pd.read_csv(root / "data" / "processed" / "demo" / "tables" / "impact.csv")
    result = {
        "impact_wall_s": round(wall, 2), "impact_cpu_s": round(cpu, 2), "limit_s": LIMIT_SECONDS,
        "councils": int(table.query("estimator == 'callaway_santanna' and aggregation == 'overall'")["n_treated"].max()),
        "outcomes": int(table["outcome"].nunique()), "years": len(YEARS), "bootstrap": 999,
        "new_year_reran": steps, "load_average_before": [round(x, 2) for x in load], "cores": os.cpu_count(),
    }
    ok_time = wall <= LIMIT_SECONDS
    ok_rerun = bool(steps) and all(s.split(":")[0] in ("impact", "report") for s in steps)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"impact stage, {result['outcomes']} outcomes x {len(YEARS)} years x every council, 999 draws: "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU over all its processes (limit {LIMIT_SECONDS:.0f} s; load average "
          f"{load[0]:.1f} before on {os.cpu_count()} cores) {'PASS' if ok_time else 'FAIL'}")
    print(f"new year of outcome data reran: {', '.join(steps) or 'nothing'} {'PASS' if ok_rerun else 'FAIL'}")
    return 0 if ok_time and ok_rerun else 1


if __name__ == "__main__":
    raise SystemExit(main())
