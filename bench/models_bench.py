"""Time each contrast model on one national-scale measure: 152 councils x 200 respondents x 5 waves.

    .venv/bin/python bench/models_bench.py [model ...]

Prints wall and CPU seconds per model, overall and by a two-level group (the model stage fits both
for every measure, so a 30-measure national study costs about 60 times one line's sum). The data are
a proportional-odds panel with council and respondent effects and 20% of answers missing at random.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from impactstudy.model.fitting import lmm_rows
from impactstudy.model.stats import tidy
from impactstudy.model.stats.gee import fit_gee
from impactstudy.model.stats.ordinal import fit_ordinal
from impactstudy.model.stats.paired import paired_t, wilcoxon_signed_rank

WAVES = ["baseline", "early_impact", "follow_up", "follow_up_2", "follow_up_3"]


def national_measure(councils: int = 152, respondents: int = 200, seed: int = 0) -> pd.DataFrame:
    """One Likert measure in the long layout the models take."""
    rng = np.random.default_rng(seed)
    council = np.repeat(np.arange(councils), respondents * len(WAVES))
    resp = np.tile(np.repeat(np.arange(respondents), len(WAVES)), councils)
    wave = np.tile(np.arange(len(WAVES)), councils * respondents)
    latent = (0.2 * wave + rng.normal(0, 0.4, councils)[council]
              + rng.normal(0, 0.3, councils * respondents)[council * respondents + resp] + rng.logistic(size=len(wave)))
    keep = rng.random(len(wave)) < 0.8
    return pd.DataFrame({
        "council_code": pd.Series([f"E{c:08d}" for c in council[keep]], dtype="str"),
        "respondent_id": pd.Series(resp[keep].astype(str), dtype="str"),
        "wave": pd.Series(np.array(WAVES)[wave[keep]], dtype="str"),
        "value": np.digitize(latent, [-1.5, -0.5, 0.5, 1.5])[keep] + 1.0,
        "status": pd.Series(np.where(council[keep] % 3 == 0, "Notice to Improve", "Intervention"), dtype="str"),
    })


def main(models: list[str]) -> None:
    data = national_measure()
    pairs = tidy.default_contrasts(WAVES)
    fits = {
        "lmm": lambda g: lmm_rows(data, WAVES, g)[0],
        "gee": lambda g: fit_gee(data, WAVES, pairs, group=g),
        "ordinal": lambda g: fit_ordinal(data, WAVES, pairs, group=g),
        "paired_t": lambda g: paired_t(data, WAVES, pairs, group=g),
        "wilcoxon": lambda g: wilcoxon_signed_rank(data, WAVES, pairs, group=g),
    }
    print(f"{len(data)} answers, {data['council_code'].nunique()} councils")
    for name in models or list(fits):
        for group in (None, "status"):
            wall, cpu = time.perf_counter(), time.process_time()
            fits[name](group)
            print(f"{name:9s} {group or 'all':7s} wall {time.perf_counter() - wall:6.2f} s  "
                  f"cpu {time.process_time() - cpu:6.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
