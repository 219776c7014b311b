"""The demo's generating model: statuses, response and dropout rates, the latent model of self-rated
effectiveness (:class:`EffectModel`, :data:`MODEL`) and the true effects it implies.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from scipy.stats import norm

from impactstudy.study.config import Study


DEFAULT_SEED = 20130401


CENSUS_DATE = date(2013, 4, 1)


REVIEW_WINDOW = (date(2012, 7, 1), date(2013, 6, 30))


NTI = "Notice to Improve"


STATUSES = (NTI, "Adequate", "Good", "Outstanding")


OTHER_STATUS_SHARES = {"Adequate": 0.45, "Good": 0.40, "Outstanding": 0.15}


ROLES = {
    1: "Director of Children's Services / strategic lead",
    2: "Frontline manager",
    3: "Lead member",
    4: "Partner agency",
}


# Days from a council's review to its respondents' submissions (uniform range) at wave order 0, 1, 2;
# an extra follow-up k years after the review is 365 k ± 30 days.
TIMING_DAYS = ((-120, -60), (70, 110), (335, 395))


REPLACEMENT_RATE = 0.12


# Probability that a seat answers at wave order 1, 2; later waves lose another 0.05 each.
RESPONSE_RATE = {NTI: (0.60, 0.50), "Adequate": (0.82, 0.72), "Good": (0.85, 0.76), "Outstanding": (0.85, 0.76)}


# Probability that a whole council has dropped out by wave order 2 (the follow-up); each later wave adds
# half as much again. Councils in the early-impact wave all stay, so its name variants are all present.
COUNCIL_DROPOUT = {NTI: 0.30, "Adequate": 0.12, "Good": 0.08, "Outstanding": 0.05}


SMALL_STUDY = 12  # below this many councils no council drops out


DONT_KNOW, NOT_APPLICABLE = -8.0, -9.0  # internal sentinels, written as the measure's declared code


SENTINEL_REASONS = {DONT_KNOW: "Don't know", NOT_APPLICABLE: "Not applicable"}


ITEM_MISSING = {DONT_KNOW: 0.03, NOT_APPLICABLE: 0.01}


@dataclass(frozen=True)
class EffectModel:
    """The latent normal model of self-rated effectiveness (see the module docstring)."""

    base: Mapping[str, float]  # measure -> latent mean at baseline of an Adequate council
    gain: Mapping[str, float]  # measure -> latent change by the first follow-up of an Adequate council
    status_offset: Mapping[str, float]
    status_gain: Mapping[str, float]  # multiplies the gain
    trajectory: tuple[float, ...]  # share of the gain reached at wave order 0, 1, 2, ...
    total_sd: float
    icc_council: float
    icc_respondent: float
    # SD of a council's own deviation from its status's change by the first follow-up (trajectory 1):
    # councils used the review differently. Each council draws one deviation per measure, reached along
    # the trajectory (0 at baseline, 0.4 of it at early impact), so council changes vary and a model
    # that assumes every council changed alike gives too narrow intervals.
    council_change_sd: float = 0.15

    @property
    def council_sd(self) -> float:
        return self.total_sd * math.sqrt(self.icc_council)

    @property
    def respondent_sd(self) -> float:
        return self.total_sd * math.sqrt(self.icc_respondent)

    @property
    def residual_sd(self) -> float:
        return self.total_sd * math.sqrt(1.0 - self.icc_council - self.icc_respondent)

    def latent_sd(self, order: int) -> float:
        """SD of the latent score at wave ``order`` across councils, people and answers: the council-level
        change adds ``(council_change_sd × trajectory[order])²`` to the variance."""
        return math.sqrt(self.total_sd ** 2 + (self.council_change_sd * self.trajectory[order]) ** 2)

    def change(self, measure: str, status: str, order: int) -> float:
        """Latent change from baseline at wave ``order``."""
        return self.gain[measure] * self.status_gain[status] * self.trajectory[order]

    def mean(self, measure: str, status: str, order: int) -> float:
        """Marginal latent mean (council, person and noise terms average zero)."""
        return self.base[measure] + self.status_offset[status] + self.change(measure, status, order)


MODEL = EffectModel(
    base={"eff_leadership": 3.5, "eff_performance": 3.3, "eff_partnership": 3.6, "eff_practice": 3.4,
          "eff_voice": 3.2, "eff_workforce": 3.1},
    gain={"eff_leadership": 0.50, "eff_performance": 0.45, "eff_partnership": 0.30, "eff_practice": 0.35,
          "eff_voice": 0.0, "eff_workforce": 0.25},
    status_offset={NTI: -0.8, "Adequate": 0.0, "Good": 0.4, "Outstanding": 0.7},
    status_gain={NTI: 1.8, "Adequate": 1.0, "Good": 0.6, "Outstanding": 0.3},
    trajectory=(0.0, 0.4, 1.0, 1.15, 1.25, 1.3),
    total_sd=0.8,
    icc_council=0.2,
    icc_respondent=0.1,
)


def expected_observed(mean: float, sd: float, levels: tuple[float, ...]) -> float:
    """E[clip(round(X), lo, hi)] for X ~ Normal(mean, sd) and consecutive integer ``levels``.

    The observed answer is at least ``lo`` plus one for each threshold ``k + 0.5`` (k = lo … hi-1)
    that X exceeds, so its expectation is ``lo + Σ P(X > k + 0.5)``.
    """
    thresholds = np.asarray(levels[:-1], dtype=float) + 0.5
    return float(levels[0] + norm.sf(thresholds, loc=mean, scale=sd).sum())


def response_rate(status: str, order: int) -> float:
    """Probability that a seat of a council with ``status`` answers at wave ``order`` (≥ 1)."""
    rates = RESPONSE_RATE[status]
    return rates[min(order, len(rates)) - 1] - 0.05 * max(0, order - len(rates))


def council_dropout(status: str, order: int) -> float:
    """Probability that a council with ``status`` has left the study by wave ``order`` (0 before order 2)."""
    if order < 2:
        return 0.0
    return min(COUNCIL_DROPOUT[status] * (1 + 0.5 * (order - 2)), 0.9)


def true_effects(
    study: Study, status_counts: Mapping[str, int], model: EffectModel = MODEL
) -> list[dict[str, Any]]:
    """True change in the expected observed score of each effectiveness measure, per contrast and group.

    Contrasts are ``<wave> - baseline`` for every later wave and ``<wave> - <previous wave>`` from the
    third wave on; groups are ``all`` and ``status=<level>`` for each status present. ``all`` weights
    the statuses by their number of councils in the sample (each council counts once, whatever its
    number of respondents), which is the population the council-level random intercept targets. The
    council-level change (``council_change_sd``) has mean zero but widens the latent distribution at
    later waves, which moves the expected clipped score slightly (at most ~0.01 for the demo's values):
    the truth allows for it, so a measure with no gain has a true change of almost, not exactly, zero.
    """
    waves = study.waves
    total = sum(status_counts.values())
    rows = []
    for name in model.base:
        measure = study.measure(name)
        expected = {
            status: [expected_observed(model.mean(name, status, w.order), model.latent_sd(w.order), measure.levels)
                     for w in waves]
            for status in status_counts
        }
        expected["all"] = [
            sum(expected[s][w.order] * n for s, n in status_counts.items()) / total for w in waves
        ]
        pairs = [(w, waves[0]) for w in waves[1:]] + [(w, waves[w.order - 1]) for w in waves[2:]]
        for later, earlier in pairs:
            for group, means in expected.items():
                rows.append({
                    "measure": name,
                    "contrast": f"{later.id} - {earlier.id}",
                    "group": group if group == "all" else f"status={group}",
                    "estimate": round(means[later.order] - means[earlier.order], 6),
                    "mean_earlier": round(means[earlier.order], 6),
                    "mean_later": round(means[later.order], 6),
                })
    return rows


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent stream per component, so adding a wave or a measure leaves the others unchanged."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([seed, *words])
