"""Simulated council x year outcome panels with known group-time effects.

Used by the demo generator (the synthetic outcome files), the coverage simulation (``make coverage``),
the benchmark and the tests, so all of them share one data-generating process:

``y[i, t] = level + council[i] + year[t] + dip[i, t] + effect[i, t] + noise[i, t]``

* ``council[i] ~ N(0, council_sd)``; ``year[t]`` a common trend plus shocks;
* ``noise[i, t] ~ N(0, noise_sd · sqrt(mean size / size[i]))`` — small councils are noisier;
* selection on a pre-review dip (Ashenfelter's dip): a treated council has a transitory shock
  ``-dip[i]`` (in the *worse* direction) in the year before its review — councils ask for a review
  after a bad year. A before/after comparison of reviewed councils, and any difference-in-differences
  that uses that year as its base, mistakes the rebound for an effect; declaring one year of
  anticipation uses the year before instead;
* heterogeneous, growing effects: ``effect[i, t] = gain[g] · (1 + spread · u[i]) · ramp(t - g)`` for
  ``t >= g`` with ``ramp(e) = min(e + 1, ramp_years) / ramp_years``: later cohorts gain less, effects
  build over ``ramp_years``.

The true ATT(g, t) is the expectation over councils, ``gain[g] · ramp(t - g)`` (``u`` has mean 0).
Values are signed by ``direction``: for an outcome where lower is better, the gain lowers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class OutcomeModel:
    """Parameters of one simulated outcome (a percentage)."""

    name: str
    label: str
    level: float
    council_sd: float
    trend: float  # per year
    noise_sd: float
    gain: float  # effect at full ramp for the first cohort, in the better direction
    direction: str = "higher"  # which direction is better
    dip: float = 2.0
    spread: float = 0.5
    ramp_years: int = 3
    later_cohorts: float = 0.8  # each later cohort's gain is this fraction of the one before

    def sign(self) -> float:
        return 1.0 if self.direction == "higher" else -1.0


def true_att(model: OutcomeModel, cohorts: Sequence[int], years: Sequence[int]) -> dict[tuple[int, int], float]:
    """True ATT(g, t) for t >= g, in the outcome's units (signed by its direction)."""
    first = min(cohorts)
    out = {}
    for g in cohorts:
        gain = model.gain * model.later_cohorts ** (g - first)
        for t in years:
            if t >= g:
                out[(int(g), int(t))] = model.sign() * gain * min(t - g + 1, model.ramp_years) / model.ramp_years
    return out


def simulate_panel(model: OutcomeModel, councils: Sequence[str], sizes: np.ndarray, cohort: np.ndarray,
                   years: Sequence[int], rng: np.random.Generator) -> pd.DataFrame:
    """``council_code, year, value`` for every council and year (values rounded to 0.1, clipped to 0-100).

    ``cohort`` holds each council's first treated year (0 never treated).
    """
    years = np.asarray(years)
    n, T = len(councils), len(years)
    sizes = np.asarray(sizes, dtype=float)
    council = rng.normal(0, model.council_sd, n)
    year = model.trend * (years - years[0]) + rng.normal(0, model.noise_sd * 0.5, T)
    noise = rng.normal(0, 1, (n, T)) * model.noise_sd * np.sqrt(sizes.mean() / sizes)[:, None]
    y = model.level + council[:, None] + year[None, :] + noise
    treated = cohort > 0
    u = rng.uniform(-1, 1, n)
    dips = rng.uniform(0.5, 1.5, n) * model.dip
    truth = true_att(model, sorted(set(cohort[treated].tolist())) or [years[0]], years)
    for i in np.flatnonzero(treated):
        g = cohort[i]
        y[i, years == g - 1] -= model.sign() * dips[i]
        for j, t in enumerate(years):
            if t >= g:
                y[i, j] += truth[(int(g), int(t))] * (1 + model.spread * u[i])
    y = np.clip(np.round(y, 1), 0, 100)
    return pd.DataFrame({"council_code": np.repeat(np.asarray(councils), T), "year": np.tile(years, n),
                         "value": y.reshape(-1)})


def random_cohorts(n: int, n_treated: int, cohorts: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """First treated year per council: ``n_treated`` councils each in a random one of ``cohorts``, the rest 0.

    Cohort sizes vary from panel to panel, as they do when councils choose when to take part (the
    overall ATT's standard error allows for that variation).
    """
    out = np.zeros(n, dtype=int)
    chosen = rng.choice(n, n_treated, replace=False)
    out[chosen] = rng.choice(np.asarray(cohorts), n_treated)
    return out


def dfe_layout(values: pd.DataFrame, register: pd.DataFrame, indicators: Sequence[str],
               rng: np.random.Generator, suppress: float = 0.01, breakdowns: Sequence[str] = ("Total",),
               time_identifier: str = "Financial year") -> pd.DataFrame:
    """Wide ``values`` (``council_code, year`` + one column per indicator) as a DfE open-data CSV table.

    Periods are written ``YYYYZZ`` (``201314`` for the reporting year ending in 2014); national and
    regional rows (means of their councils) and extra ``breakdowns`` rows (the Total with noise) are
    added as the real files have them; ``suppress`` is the share of local-authority cells replaced by a
    DfE symbol (mostly ``c``, some ``x`` and ``low``), more often in small councils (the caller's
    ``size`` column, if any). Every cell is text, as read from a CSV.
    """
    reg = register.set_index("gss_code")
    rows = values.join(reg[["name", "region", "dfe_la_code"]], on="council_code")
    period = (rows["year"] - 1).astype(str) + (rows["year"] % 100).map("{:02d}".format)
    out = []
    for breakdown in breakdowns:
        frame = pd.DataFrame({
            "time_period": period, "time_identifier": time_identifier, "geographic_level": "Local authority",
            "country_code": "E92000001", "country_name": "England", "region_name": rows["region"],
            "old_la_code": rows["dfe_la_code"], "new_la_code": rows["council_code"], "la_name": rows["name"],
            "breakdown": breakdown,
        })
        for column in indicators:
            v = rows[column].to_numpy(dtype=float)
            if breakdown != "Total":
                v = np.clip(np.round(v + rng.normal(0, 3, len(v)), 1), 0, 100)
            frame[column] = pd.Series(v).map("{:.1f}".format).to_numpy()
        out.append(frame)
    la = out[0]
    weight = values["size"].to_numpy(dtype=float) if "size" in values else np.ones(len(values))
    chance = suppress * len(weight) * (1 / weight) / (1 / weight).sum()
    for column in indicators:
        hit = rng.random(len(la)) < chance
        la.loc[hit, column] = rng.choice(["c", "c", "c", "x", "low"], int(hit.sum()))
    summaries = []
    for level, keys in (("National", []), ("Regional", ["region_name"])):
        grouped = rows.assign(region_name=rows["region"]).groupby(["year", *keys])[list(indicators)].mean().reset_index()
        frame = pd.DataFrame({
            "time_period": (grouped["year"] - 1).astype(str) + (grouped["year"] % 100).map("{:02d}".format),
            "time_identifier": time_identifier, "geographic_level": level, "country_code": "E92000001",
            "country_name": "England", "region_name": grouped.get("region_name", ""), "old_la_code": "",
            "new_la_code": "", "la_name": "", "breakdown": "Total",
        })
        for column in indicators:
            frame[column] = grouped[column].map("{:.1f}".format).to_numpy()
        summaries.append(frame)
    table = pd.concat(summaries + out, ignore_index=True)
    return table.sort_values(["time_period", "geographic_level"], kind="stable").reset_index(drop=True)
