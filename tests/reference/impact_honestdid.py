"""Reference values from the ``honestdid`` package for the relative-magnitudes sensitivity analysis.

``honestdid`` (Rambachan & Roth's HonestDiD ported to Python) needs PyTorch, so it is not a
dependency of impactstudy. This script, run once by hand where it is installed
(``.venv/bin/pip install honestdid``), takes the universal-base Callaway & Sant'Anna event study of
``fixtures/impact_panel.csv`` (the panel ``impact_reference.R`` writes; event times -5..5) and writes
``fixtures/impact_honestdid.json``: the event study (times, estimates, covariance) and HonestDiD's
relative-magnitudes (Δ^RM, method C-LF) robust interval for the average post effect at each M̄.
tests/impact/test_sensitivity.py checks that impactstudy's Bonferroni intervals contain them.

Run from the repository root:  .venv/bin/python tests/reference/impact_honestdid.py
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import honestdid.core

from impactstudy.impact.estimate import DidOptions, callaway_santanna
from impactstudy.impact.panel import Panel

# honestdid 0.1.1 calls float() on 1x1 matrix products, which NumPy 2.x refuses: run its module
# with those products flattened first (the computation itself is unchanged).
_source = Path(honestdid.core.__file__).read_text()
_source = re.sub(r"float\(([A-Za-z_]+\.T @ [^)]*)\)", r"float(np.ravel(\1)[0])", _source)
exec(compile(_source, honestdid.core.__file__, "exec"), honestdid.core.__dict__)
createSensitivityResults_relativeMagnitudes = honestdid.core.createSensitivityResults_relativeMagnitudes

HERE = Path("tests/reference/fixtures")
MBARS = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0]

frame = pd.read_csv(HERE / "impact_panel.csv", dtype={"council_code": str})
panel = Panel("y", frame[["council_code", "year", "y", "cohort"]], tuple(sorted(frame["year"].unique())))
fit = callaway_santanna(panel, DidOptions(window=(-5, 5), bootstrap=49))
times, est, vcov = fit.event_times, fit.event_estimates, fit.event_vcov
keep = times != -1  # HonestDiD leaves out the reference period
betahat, sigma = est[keep], vcov[np.ix_(keep, keep)]
n_pre, n_post = int((times[keep] < 0).sum()), int((times[keep] >= 0).sum())
l_vec = np.full((n_post, 1), 1 / n_post)
result = createSensitivityResults_relativeMagnitudes(betahat, sigma, n_pre, n_post, Mbarvec=MBARS, l_vec=l_vec)
table = result if isinstance(result, pd.DataFrame) else pd.DataFrame(result)
out = {
    "honestdid_version": version("honestdid"), "method": "C-LF", "alpha": 0.05,
    "times": times.tolist(), "estimates": est.tolist(), "vcov": vcov.tolist(),
    "mbar": table["Mbar"].astype(float).tolist(), "lb": table["lb"].astype(float).tolist(),
    "ub": table["ub"].astype(float).tolist(),
}
(HERE / "impact_honestdid.json").write_text(json.dumps(out, indent=1) + "\n")
print(table)
