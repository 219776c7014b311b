"""Coverage simulation for the impact stage's overall ATT (``make coverage``).

Simulates ``--panels`` council x year panels with the demo's data-generating process
(:mod:`impactstudy.demo.panels`: council and year effects, noise shrinking with council size,
selection on a pre-review dip, heterogeneous effects growing over three years, later cohorts gaining
less), estimates each with the stage's settings (Callaway & Sant'Anna, not-yet-treated comparisons,
one year of anticipation for the dip, multiplier bootstrap) and reports:

* the bias of the overall ATT against the true one, in units of the estimator's own standard
  deviation across panels and of the outcome's noise SD (target: within 0.05);
* the coverage of its 95% interval (target: 95% ± 3);
* the same bias for TWFE and the naive before/after, the benchmarks the report warns about.

Writes ``bench/impact_coverage.json``. ``--panels 400 --workers 2`` takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from impactstudy.impact import estimate as E
from impactstudy.impact.analysis import before_after
from impactstudy.impact.panel import build_panel
from impactstudy.demo.panels import OutcomeModel, random_cohorts, simulate_panel, true_att

MODEL = OutcomeModel("rate", "A rate", level=60, council_sd=6, trend=0.4, noise_sd=2.0, gain=3.0, dip=3.0,
                     direction="higher")
YEARS = tuple(range(2010, 2022))
COHORTS = (2013, 2014, 2015, 2016)
N_COUNCILS, N_TREATED = 150, 40
OPTIONS = E.DidOptions(anticipation=1, bootstrap=199)


def one_panel(seed: int) -> dict[str, float]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = np.random.default_rng(seed)
    councils = [f"E{i:08d}" for i in range(N_COUNCILS)]
    cohort = random_cohorts(N_COUNCILS, N_TREATED, COHORTS, rng)
    values = simulate_panel(MODEL, councils, rng.lognormal(0, 0.6, N_COUNCILS), cohort, YEARS, rng)
    panel = build_panel(values.assign(outcome="rate"), "rate", dict(zip(councils, cohort, strict=True)),
                        anticipation=OPTIONS.anticipation)
    truth = true_att(MODEL, COHORTS, YEARS)
    sizes = panel.cohorts[panel.cohorts > 0].value_counts()
    target = sum(n * np.mean([v for (g, _t), v in truth.items() if g == cohort_year])
                 for cohort_year, n in sizes.items()) / sizes.sum()
    options = E.DidOptions(**{**OPTIONS.__dict__, "seed": seed})
    cs = E.callaway_santanna(panel, options).rows.query("aggregation == 'overall'").iloc[0]
    twfe = E.twfe(panel, options).iloc[0]
    naive = before_after(panel, options).iloc[0]
    return {"truth": target, "cs": cs["estimate"], "cs_se": cs["std_error"], "cs_low": cs["ci_low"],
            "cs_high": cs["ci_high"], "twfe": twfe["estimate"], "before_after": naive["estimate"]}


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    err = np.array([r["cs"] - r["truth"] for r in runs])
    sd = float(np.std([r["cs"] for r in runs], ddof=1))
    covered = np.mean([r["cs_low"] <= r["truth"] <= r["cs_high"] for r in runs])
    out = {
        "panels": len(runs),
        "truth_mean": float(np.mean([r["truth"] for r in runs])),
        "cs_bias": float(err.mean()), "cs_sd": sd, "cs_bias_in_sd": float(err.mean() / sd),
        "cs_bias_in_noise_sd": float(err.mean() / MODEL.noise_sd),
        "cs_bias_mc_se_in_sd": float(1 / np.sqrt(len(runs))),
        "cs_mean_se": float(np.mean([r["cs_se"] for r in runs])),
        "cs_coverage_95": float(covered),
        "coverage_mc_se": float(np.sqrt(0.95 * 0.05 / len(runs))),
    }
    for name in ("twfe", "before_after"):
        bias = np.mean([r[name] - r["truth"] for r in runs])
        out[f"{name}_bias"] = float(bias)
        out[f"{name}_bias_in_cs_sd"] = float(bias / sd)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=400)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", default="bench/impact_coverage.json")
    args = parser.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(one_panel, range(1, args.panels + 1), chunksize=8))
    summary = summarise(runs) | {"seconds": round(time.perf_counter() - start, 1),
                                 "design": {"councils": N_COUNCILS, "treated": N_TREATED, "cohorts": COHORTS,
                                            "years": [YEARS[0], YEARS[-1]], "anticipation": OPTIONS.anticipation,
                                            "bootstrap": OPTIONS.bootstrap, "model": MODEL.__dict__}}
    Path(args.out).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "design"}, indent=1))
    ok = abs(summary["cs_bias_in_sd"]) <= 0.05 + 2 * summary["cs_bias_mc_se_in_sd"] and \
        abs(summary["cs_coverage_95"] - 0.95) <= 0.03
    print("coverage check:", "PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
