"""Benchmark of impactstudy.model.stats.lmm on a national-size panel (not a test).

Simulates ~80,000 rows: 152 councils, ~30,000 respondents nested in them (~200 a council), 5 waves
with each respondent answering about half of them, and councils changing by different amounts
(a council x wave effect). Times ``fit_lmm`` for the default model
``value ~ wave + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)``
and for the nested model without the council x wave term, and, when ``Rscript`` with lme4 is
installed, the same ``lmer`` calls on the same rows (only the ``lmer`` call is timed, with
``system.time``, not R's start-up or CSV reading). The target (issue #14): at most 0.2x lme4's time.

Run from the repository root:  .venv/bin/python bench/lmm_bench.py [--no-r] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from impactstudy.model.stats.lmm import fit_lmm
from impactstudy.model.stats.wave_design import design_matrix

WAVES = ["w1", "w2", "w3", "w4", "w5"]

FORMULAS = {
    "council_wave": "value ~ wave + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)",
    "nested": "value ~ wave + (1 | council_code) + (1 | council_code:respondent_id)",
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(wave = "factor", council_code = "character", respondent_id = "character"))
timing <- system.time(m <- lmer(as.formula(args[2]), data = d, REML = TRUE))
cat(sprintf('{"seconds": %.4f, "beta": [%s], "reml": %.10f}\n', timing[["elapsed"]],
            paste(sprintf("%.10f", fixef(m)), collapse = ", "), REMLcrit(m)))
"""


def simulate(seed: int = 1, n_councils: int = 152, n_respondents: int = 30_000, tau: float = 0.15) -> pd.DataFrame:
    """A panel like the national survey: respondents nested in councils, each in ~54% of 5 waves; each
    council's wave means vary around the national ones with SD ``tau``."""
    rng = np.random.default_rng(seed)
    council_of = rng.integers(0, n_councils, n_respondents)
    resp = np.repeat(np.arange(n_respondents), len(WAVES))
    wave = np.tile(np.arange(len(WAVES)), n_respondents)
    keep = rng.random(resp.size) < 0.535
    resp, wave = resp[keep], wave[keep]
    council = council_of[resp]
    u_c = rng.normal(0, 0.5, n_councils)
    u_r = rng.normal(0, 0.8, n_respondents)
    u_cw = rng.normal(0, tau, (n_councils, len(WAVES)))
    value = 3.0 + 0.1 * wave + u_c[council] + u_cw[council, wave] + u_r[resp] + rng.normal(0, 1.0, resp.size)
    return pd.DataFrame(
        {
            "council_code": [f"E{c:08d}" for c in council],
            "respondent_id": [f"R{r:06d}" for r in resp],
            "wave": np.array(WAVES)[wave],
            "value": value,
        }
    )


def time_python(df: pd.DataFrame, repeat: int, model: str) -> tuple[float, object]:
    """The fastest of ``repeat`` runs of design + fit (+ Satterthwaite and Kenward-Roger pieces)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        design = design_matrix(df, WAVES)
        fit = fit_lmm(df["value"].to_numpy(), design.X, design.columns, df["council_code"].to_numpy(),
                      df["respondent_id"].to_numpy(), df["wave"].to_numpy() if model == "council_wave" else None)
        times.append(time.perf_counter() - start)
    return min(times), fit


def time_r(df: pd.DataFrame, model: str) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "panel.csv", Path(tmp) / "bench.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv), FORMULAS[model]], capture_output=True, text=True)
    if out.returncode != 0:
        print("lme4 run failed:", out.stderr.strip().splitlines()[-1:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-r", action="store_true", help="skip the lme4 timing")
    parser.add_argument("--repeat", type=int, default=3, help="Python fits to time (the fastest is shown)")
    parser.add_argument("--models", nargs="+", choices=list(FORMULAS), default=list(FORMULAS),
                        help="formulas to time (default: both)")
    args = parser.parse_args()
    df = simulate()
    print(f"rows {len(df)}, councils {df.council_code.nunique()}, "
          f"respondents {df.groupby(['council_code', 'respondent_id']).ngroups}, waves {df.wave.nunique()}")
    for model in args.models:
        print(f"\n{FORMULAS[model]}")
        seconds, fit = time_python(df, args.repeat, model)
        print(f"impactstudy fit_lmm (design + fit + Satterthwaite and Kenward-Roger pieces): {seconds:.3f} s "
              f"(best of {args.repeat})")
        print(f"  beta {np.round(fit.beta, 6).tolist()}  REML {fit.reml_criterion:.6f}  converged {fit.converged}")
        if args.no_r:
            continue
        r = time_r(df, model)
        if r is None:
            print("lme4: not available")
            continue
        print(f"lme4 lmer: {r['seconds']:.3f} s; ratio impactstudy / lme4 {seconds / r['seconds']:.3f}")
        print(f"  beta {np.round(r['beta'], 6).tolist()}  REML {r['reml']:.6f}")
        print(f"  max |beta difference| {np.max(np.abs(np.array(r['beta']) - fit.beta)):.2e}, "
              f"REML difference {fit.reml_criterion - r['reml']:.2e}")


if __name__ == "__main__":
    main()
