"""Reference values from the ``honestdid`` package for the relative-magnitudes sensitivity analysis.

``honestdid`` (Rambachan & Roth's HonestDiD ported to Python) needs PyTorch, so it is not a
dependency of impactstudy. This script, run by hand in a scratch environment where it is installed,
takes universal-base Callaway & Sant'Anna event studies of ``fixtures/impact_panel.csv`` (the panel
``impact_reference.R`` writes) and writes ``fixtures/impact_honestdid.json``: for each case the event
study (times, estimates, covariance), what was handed to HonestDiD (pre/post counts, ``l_vec``, grid)
and its relative-magnitudes (Δ^RM) robust interval for the average post effect at each M̄, with the
seconds the package took. tests/impact/test_sensitivity.py checks impactstudy's intervals against them.

Cases: the event study over -5..5 with HonestDiD's default grid (C-LF, the package's default method;
its grid clips the upper end from M̄ = 1), a single post-treatment period (the package's no-nuisance
code path), the "Conditional" (ARP without the hybrid) method, one year of anticipation (the reference
year is -2 and event time -1 is a post-reference period with weight 0), and the first event study on
a grid wide enough not to clip.

Set-up used (2026-12-01): ``python3 -m venv /tmp/honest-ref && /tmp/honest-ref/bin/pip install
torch==2.13.0 honestdid && /tmp/honest-ref/bin/pip install -e .`` (the CPU build of PyTorch), then from
the repository root:  /tmp/honest-ref/bin/python tests/reference/impact_honestdid.py
"""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import version
from pathlib import Path

import honestdid.core
import numpy as np
import pandas as pd

from impactstudy.impact.estimate import DidOptions, callaway_santanna
from impactstudy.impact.panel import Panel

# honestdid 0.1.1 calls float() on 1x1 and length-1 arrays, which NumPy 2.x refuses: run its module
# with every float() taking the single element of such an array (the computation itself is unchanged).


def _scalar(value):
    array = np.asarray(value)
    return float(array.reshape(-1)[0]) if array.dtype.kind != "U" and array.size == 1 else float(value)


_source = Path(honestdid.core.__file__).read_text()
_source = re.sub(r"(?<![\w.])float\(", "_scalar(", _source)
honestdid.core.__dict__["_scalar"] = _scalar
exec(compile(_source, honestdid.core.__file__, "exec"), honestdid.core.__dict__)
sensitivity = honestdid.core.createSensitivityResults_relativeMagnitudes

HERE = Path("tests/reference/fixtures")
frame = pd.read_csv(HERE / "impact_panel.csv", dtype={"council_code": str})
panel = Panel("y", frame[["council_code", "year", "y", "cohort"]], tuple(sorted(frame["year"].unique())))


def case(name: str, window: tuple[int, int], anticipation: int, mbars: list[float], method: str = "C-LF",
         grid: tuple[float, float] | None = None) -> dict:
    fit = callaway_santanna(panel, DidOptions(window=window, bootstrap=49, anticipation=anticipation))
    times, est, vcov = fit.event_times, fit.event_estimates, fit.event_vcov
    ref = -1 - anticipation
    keep = times != ref  # HonestDiD leaves out the reference period
    betahat, sigma = est[keep], vcov[np.ix_(keep, keep)]
    n_pre, n_post = int((times[keep] < ref).sum()), int((times[keep] > ref).sum())
    post_times = times[keep][n_pre:]
    l_vec = np.where(post_times >= 0, 1.0, 0.0)
    l_vec /= l_vec.sum()
    sd = float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec))
    low, high = grid if grid is not None else (-20 * sd, 20 * sd)  # the package's default grid
    start = time.perf_counter()
    table = pd.DataFrame(sensitivity(betahat, sigma, n_pre, n_post, method=method, Mbarvec=mbars,
                                     l_vec=l_vec.reshape(-1, 1), grid_lb=low, grid_ub=high))
    seconds = time.perf_counter() - start
    print(name, f"{seconds:.1f} s")
    print(table)
    return {"name": name, "window": list(window), "anticipation": anticipation, "method": method, "alpha": 0.05,
            "times": times.tolist(), "estimates": est.tolist(), "vcov": vcov.tolist(),
            "n_pre": n_pre, "n_post": n_post, "l_vec": l_vec.tolist(), "grid": [low, high, 1000],
            "mbar": table["Mbar"].astype(float).tolist(), "lb": table["lb"].astype(float).tolist(),
            "ub": table["ub"].astype(float).tolist(), "seconds": round(seconds, 1)}


# The first case is the event study this script wrote first (honestdid 0.1.1, M̄ 0 to 2); it is kept
# as written and the others are added after it, cheapest first, the file rewritten after each (the
# package solves two linear programs per grid point and per draw: minutes per case on a loaded machine).
FIXTURE = HERE / "impact_honestdid.json"
first = json.loads(FIXTURE.read_text())["cases"][0]
out = {"honestdid_version": version("honestdid"), "torch_version": version("torch"), "cases": [first]}
for args, kwargs in [
    (("one post period", (-4, 0), 0, [0.0, 0.5, 1.0, 2.0]), {"grid": (-15.0, 15.0)}),
    (("conditional", (-5, 5), 0, [0.5]), {"method": "Conditional", "grid": (-10.0, 20.0)}),
    (("anticipation 1", (-5, 5), 1, [0.0, 0.5, 1.0]), {"grid": (-15.0, 25.0)}),
    (("wide grid", (-5, 5), 0, [1.0]), {"grid": (-30.0, 40.0)}),
]:
    out["cases"].append(case(*args, **kwargs))
    FIXTURE.write_text(json.dumps(out, indent=1) + "\n")
