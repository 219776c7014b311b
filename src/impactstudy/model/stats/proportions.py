"""Paired binary outcomes: McNemar's test, the paired difference in proportions, expectations met.

The unit is the respondent: a pair is one respondent (``council_code`` + ``respondent_id``) answering
the binary item (0/1) at both contrasted waves. Council-level pairs would need an arbitrary rule to
turn a council's several answers into one 0/1, so McNemar is only for items respondents answer
repeatedly, or for an expected outcome (asked at baseline) against the achieved one (follow-up). When
respondents do not recur there are no pairs, and the rows say so.

- p-value: exact McNemar, the two-sided binomial test on the discordant pairs (statsmodels
  ``mcnemar(table, exact=True)``; R: ``binom.test(b, b + c, 0.5)``).
- estimate: difference in proportions, later - earlier, ``(n01 - n10) / n``.
- CI: the interval that inverts the same exact test (:func:`exact_mcnemar_interval`: Clopper–Pearson on
  the discordant pairs, R ``binom.test(n01, n01 + n10)$conf.int`` mapped to the difference), so a row's
  interval excludes 0 exactly when its p is below 0.05 — an interval and a p-value that can disagree
  would let a table say two things. Newcombe's (1998) hybrid score interval (method 10; Fagerland,
  Lydersen & Laake 2017, ch. 8) stays available (``mcnemar_row(..., interval="newcombe")``).
  ``std_error`` is the large-sample ``sqrt(n10 + n01 - (n10 - n01)^2 / n) / n``, for reference; the CI
  is not built from it.
- Wilson intervals for single proportions: statsmodels ``proportion_confint(method="wilson")``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from impactstudy.model.stats import tidy

CORRECTION = "exact (binomial McNemar); Newcombe hybrid score CI"
EXACT_CORRECTION = "exact (binomial McNemar) p and the CI that inverts it (Clopper-Pearson on the discordant pairs)"


def wilson_interval(successes: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes / n`` (R: ``prop.test(correct = FALSE)$conf.int``)."""
    lo, hi = proportion_confint(successes, n, alpha=1 - conf_level, method="wilson")
    return float(lo), float(hi)


def newcombe_paired_interval(table: np.ndarray, conf_level: float = 0.95) -> tuple[float, float]:
    """Newcombe (1998) method 10 CI for ``p_later - p_earlier`` from a paired 2x2 table.

    ``table[i, j]`` counts pairs with earlier = 1 - i and later = 1 - j (rows and columns ordered 1, 0).
    """
    (n11, n10), (n01, n00) = np.asarray(table, dtype=float)
    n = n11 + n10 + n01 + n00
    p_later, p_earlier = (n11 + n01) / n, (n11 + n10) / n
    l1, u1 = wilson_interval(int(n11 + n01), int(n), conf_level)
    l2, u2 = wilson_interval(int(n11 + n10), int(n), conf_level)
    margins = (n11 + n01) * (n10 + n00) * (n11 + n10) * (n01 + n00)
    cross = n11 * n00 - n10 * n01
    # Newcombe's corrected phi: a positive cross-product is shrunk by n/2 towards 0 (never past it).
    phi = 0.0 if margins == 0 or 0 <= cross <= n / 2 else (cross - n / 2 * (cross > 0)) / np.sqrt(margins)
    diff = p_later - p_earlier
    dl = np.sqrt((p_later - l1) ** 2 - 2 * phi * (p_later - l1) * (u2 - p_earlier) + (u2 - p_earlier) ** 2)
    du = np.sqrt((u1 - p_later) ** 2 - 2 * phi * (u1 - p_later) * (p_earlier - l2) + (p_earlier - l2) ** 2)
    return float(diff - dl), float(diff + du)


def exact_mcnemar_interval(n01: int, n10: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """CI for ``(n01 - n10) / n`` that inverts the exact McNemar test (so the two always agree).

    Given the ``d = n01 + n10`` discordant pairs, ``n01 ~ Binomial(d, theta)`` and the difference is
    ``d / n * (2 theta - 1)``; the exact test is the binomial test of ``theta = 1/2`` (twice the smaller
    tail), whose inversion is the Clopper–Pearson interval for ``theta``, mapped to the difference.
    The interval excludes 0 exactly when p < 1 - ``conf_level``. Conditional on ``d`` (R:
    ``binom.test(n01, n01 + n10)$conf.int``); with no discordant pair it is the point 0.
    """
    d = n01 + n10
    if d == 0:
        return 0.0, 0.0
    lo, hi = proportion_confint(n01, d, alpha=1 - conf_level, method="beta")
    return float(d / n * (2 * lo - 1)), float(d / n * (2 * hi - 1))


def mcnemar_row(earlier: np.ndarray, later: np.ndarray, conf_level: float = 0.95,
                interval: str = "newcombe") -> dict[str, object]:
    """Estimate, CI and exact p for paired 0/1 arrays (the numeric part of a result row).

    ``interval="exact"`` gives :func:`exact_mcnemar_interval` (agrees with the p-value by
    construction); the default is Newcombe's hybrid score interval (:func:`newcombe_paired_interval`).
    """
    earlier, later = np.asarray(earlier, dtype=int), np.asarray(later, dtype=int)
    table = np.array([[np.sum((earlier == e) & (later == a)) for a in (1, 0)] for e in (1, 0)])
    n = int(table.sum())
    n10, n01 = int(table[0, 1]), int(table[1, 0])
    if interval == "exact":
        lo, hi = exact_mcnemar_interval(n01, n10, n, conf_level)
        correction = EXACT_CORRECTION
    else:
        lo, hi = newcombe_paired_interval(table, conf_level)
        correction = CORRECTION
    return {"estimate": (n01 - n10) / n, "std_error": float(np.sqrt(n10 + n01 - (n10 - n01) ** 2 / n) / n),
            "ci_low": lo, "ci_high": hi, "p_value": float(mcnemar(table, exact=True).pvalue),
            "min_p_value": min(1.0, 2.0 ** (1 - (n10 + n01))),  # every discordant pair the same way
            "correction": correction}


def mcnemar_paired(
    data: pd.DataFrame | tidy.Sample,
    wave_order: Sequence[str],
    contrasts: Sequence[tidy.Contrast],
    group: str | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """McNemar rows for a binary (0/1) measure, respondents answering at both waves of each contrast.

    ``n_obs`` is the number of respondent pairs, ``n_councils`` the councils they belong to.
    """
    sample = tidy.sample(data, wave_order, group, require_respondent=True)
    d = sample.frame
    bad = sorted(set(d["value"].unique()) - {0.0, 1.0})
    rows = []
    for label, level in sample.levels:
        sub = d if group is None else d[d[group] == level]
        for later, earlier in contrasts:
            pairs = _answers(sub, later, "value_later").join(_answers(sub, earlier, "value_earlier"), how="inner")
            n_councils = pairs.index.get_level_values("council_code").nunique()
            counts = {"n_obs": len(pairs), "n_councils": n_councils, "n_councils_both": n_councils}
            if bad:
                reason = f"values other than 0/1 ({', '.join(f'{v:g}' for v in bad[:5])}); not a binary item"
            elif pairs.empty:
                reason = "no respondent answered at both waves; McNemar needs paired answers"
            else:
                reason = ""
            if reason:
                rows.append(tidy.make_row("mcnemar", later, earlier, label, correction=EXACT_CORRECTION,
                                          warning=reason, **counts))
                continue
            values = mcnemar_row(pairs["value_earlier"].to_numpy(), pairs["value_later"].to_numpy(), conf_level,
                                 interval="exact")
            rows.append(tidy.make_row("mcnemar", later, earlier, label, **counts, **values))
    return tidy.to_frame(rows)


def expectations_vs_outcomes(
    pairs: pd.DataFrame,
    later: str = "follow_up",
    earlier: str = "baseline",
    group: str | None = None,
    conf_level: float = 0.95,
    interval: str = "newcombe",
) -> pd.DataFrame:
    """Expected (0/1, asked at ``earlier``) against achieved (0/1, at ``later``), one row each per level.

    ``pairs`` has ``council_code``, ``expected`` and ``achieved`` (one row per unit; rows with either
    missing are dropped). Returns, per level, a ``mcnemar`` row (achieved - expected share, exact p) and
    an ``expectation_met`` row: among units that expected the outcome, the share that achieved it, with
    its Wilson CI; its contrast reads ``follow_up | baseline`` ("achieved at follow_up, given expected
    at baseline") and it has no p-value. ``interval`` is the McNemar row's CI (see :func:`mcnemar_row`).
    """
    missing = [c for c in ["council_code", "expected", "achieved"] + ([group] if group else []) if c not in pairs]
    if missing:
        raise ValueError(f"expectations input lacks column(s) {missing}")
    d = pairs.dropna(subset=["expected", "achieved"] + ([group] if group else []))
    if group is not None:
        d = d.assign(**{group: d[group].astype(str)})
    bad = sorted(set(pd.unique(d[["expected", "achieved"]].to_numpy().ravel())) - {0, 1})
    rows = []
    for label, level in tidy.levels(pairs, group):
        sub = d if group is None else d[d[group] == level]
        counts = {"n_obs": len(sub), "n_councils": sub["council_code"].nunique()}
        reason = (f"values other than 0/1 ({', '.join(f'{v:g}' for v in bad[:5])})" if bad
                  else "no unit has both an expectation and an outcome" if sub.empty else "")
        met = tidy.make_row("expectation_met", later, earlier, label, correction="Wilson score CI", **counts)
        met["contrast"] = f"{later} | {earlier}"
        if reason:
            rows.append(tidy.make_row("mcnemar", later, earlier, label, correction=CORRECTION, warning=reason,
                                      **counts))
            rows.append({**met, "warning": reason})
            continue
        rows.append(tidy.make_row("mcnemar", later, earlier, label, **counts,
                                  **mcnemar_row(sub["expected"].to_numpy(), sub["achieved"].to_numpy(), conf_level,
                                                interval)))
        expected = sub[sub["expected"] == 1]
        n_exp, n_met = len(expected), int((expected["achieved"] == 1).sum())
        met.update(n_obs=n_exp, n_councils=expected["council_code"].nunique())
        if n_exp == 0:
            met["warning"] = "no unit expected the outcome"
        else:
            lo, hi = wilson_interval(n_met, n_exp, conf_level)
            met.update(estimate=n_met / n_exp, ci_low=lo, ci_high=hi)
        rows.append(met)
    return tidy.to_frame(rows)


def _answers(d: pd.DataFrame, wave: str, name: str) -> pd.DataFrame:
    """One answer per (council, respondent) at ``wave`` (the first, if a respondent answered twice)."""
    at = d[d["wave"] == wave]
    return at.groupby(["council_code", "respondent_id"], observed=True)[["value"]].first().rename(
        columns={"value": name})
