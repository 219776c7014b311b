"""Do the coded themes' intervals cover? A simulation of coded answers with known truth (``make coverage``).

Two parts, each fitted by the model stage's own functions and judged against an exact population value:

* **Agreement** (:func:`agreement_study`): ``answers`` double-coded answers spread over ``councils``
  councils, two coders, the four themes of :data:`AGREEMENT_THEMES`. Each council has its own prevalence
  of each theme, logit-normal around the theme's (SD :data:`COUNCIL_SD`), so answers from one council are
  alike. An answer truly mentions a theme with its council's prevalence ``pi``; each coder independently
  records the true code with probability ``rho`` and otherwise guesses, ticking the theme with
  probability ``pi`` (so both coders share the margins). Given ``pi`` two coders then disagree with
  probability ``(1 - rho^2) 2 pi (1 - pi)``, and the agreement of a theme is exactly
  ``1 - E[(1 - rho^2) 2 pi (1 - pi)] / (2 pibar (1 - pibar))`` with ``pibar = E[pi]``: Krippendorff's
  alpha and Cohen's kappa have the same value with equal margins; pooled over the themes (``all``), the
  mean disagreement over the pooled prevalence's (:func:`alpha_of`). **Which expectation** is the
  estimand's: the double-coded answers are a random share of *this study's* answers, so what they
  estimate is how consistently the coders applied the frame to the study's answers — the expectation
  over the study's councils (each council's share of the answers, here equal), not over councils the
  study did not ask (:func:`agreement_study` returns it with the codes; :func:`agreement_truth` is the
  superpopulation value over councils, by Gauss-Hermite quadrature, for reference). The intervals are
  those of ``agreement.csv``: :func:`impactstudy.model.themes.agreement_table`.
* **Theme shares** (:func:`share_study`): ``councils`` councils with a random number of respondents each
  (``respondents``), in two waves; half of a council's first-wave respondents answer again at the second,
  the rest are new. A respondent mentions theme ``k`` with probability ``expit(logit p_k + delta_k [wave 2]
  + u + v [wave 2] + e)``: a council effect ``u`` (SD :data:`COUNCIL_SD`), a council's own change ``v``
  (SD :data:`CHANGE_SD`) and a respondent effect ``e`` (SD :data:`RESPONDENT_SD`), each theme its own.
  The true share of a wave is ``E[expit(.)]`` over those effects (quadrature), the true change their
  difference: the respondent-weighted and the council-weighted estimands are equal here, because a
  council's size does not depend on its effects. The intervals are ``themes.csv``'s and
  ``theme_changes.csv``'s: :func:`impactstudy.model.themes.theme_rows` (council-clustered CR1 with t on
  G - 1 df below ``few_councils``, else normal; the exact sign-flip test below ``few_councils``).

A row covers when its interval contains the truth; a row without an interval (a theme nobody, or
everybody, used in a study) is counted as undefined, not as a miss. :func:`markdown` writes the
summary into docs/coding.md between :data:`START` and :data:`END`. ``python -m impactstudy.coverage.themes
--help``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, logit

from impactstudy.model import themes
from impactstudy.model.stats import agreement
from impactstudy.pipeline.atomic import write_text

LEVEL = 0.95
TOLERANCE = 0.02
JUDGED_FROM = 200  # intervals a cell needs before a miss is marked (Monte-Carlo SE at most 1.5 points)
FEW_COUNCILS = 20  # the default [models] few_councils
COUNCIL_SD = 0.6  # SD of a council's effect on a theme's prevalence (logit scale)
CHANGE_SD = 0.4  # SD of a council's own change between the waves (logit scale)
RESPONDENT_SD = 0.5  # SD of a respondent's effect (logit scale)
RECUR = 0.5  # share of a council's first-wave respondents answering again
QUADRATURE = 80
SEED_BASE = 7_300_000
START = "<!-- theme-coverage:start (written by `python -m impactstudy.coverage.themes`; do not edit by hand) -->"
END = "<!-- theme-coverage:end -->"


@dataclass(frozen=True)
class CodedTheme:
    """A theme of the agreement simulation: its centre prevalence and the chance ``rho`` a coder records the true code."""

    name: str
    prevalence: float
    rho: float


@dataclass(frozen=True)
class SharedTheme:
    """A theme of the share simulation: its centre prevalence at the first wave and its change (logit scale)."""

    name: str
    prevalence: float
    change: float


AGREEMENT_THEMES = (CodedTheme("common_clear", 0.40, 0.92), CodedTheme("common_vague", 0.30, 0.78),
                    CodedTheme("uncommon", 0.15, 0.78), CodedTheme("rare_vague", 0.08, 0.65))
SHARE_THEMES = (SharedTheme("rising", 0.30, 0.5), SharedTheme("rare_flat", 0.08, 0.0),
                SharedTheme("falling", 0.50, -0.4))
AGREEMENT_ANSWERS = (30, 100, 400)
AGREEMENT_COUNCILS = (6, 20, 40)
SHARE_COUNCILS = (6, 20, 40)
SHARE_RESPONDENTS = ((1, 4), (5, 15))


def _expect(f, centre: float, sd: float) -> float:
    """``E[f(centre + sd Z)]``, Z standard normal, by Gauss-Hermite quadrature."""
    x, w = hermegauss(QUADRATURE)
    return float(np.sum(w * f(centre + sd * x)) / math.sqrt(2 * math.pi))


def alpha_of(names: Sequence[str], pbar: Sequence[float], disagree: Sequence[float]) -> dict[str, float]:
    """Theme (and ``all``) -> alpha (= kappa) from each theme's mean prevalence and disagreement probability."""
    out = {n: 1 - d / (2 * p * (1 - p)) for n, p, d in zip(names, pbar, disagree)}
    pooled = float(np.mean(pbar))
    out[agreement.ALL] = 1 - float(np.mean(disagree)) / (2 * pooled * (1 - pooled))
    return out


def agreement_truth(theme_list: Sequence[CodedTheme] = AGREEMENT_THEMES, sd: float = COUNCIL_SD) -> dict[str, float]:
    """Theme (and ``all``) -> the superpopulation alpha (= kappa): over councils' prevalences, not one study's."""
    pbar, disagree = [], []
    for t in theme_list:
        c = float(logit(t.prevalence))
        pbar.append(_expect(expit, c, sd))
        disagree.append((1 - t.rho ** 2) * 2 * _expect(lambda z: expit(z) * (1 - expit(z)), c, sd))
    return alpha_of([t.name for t in theme_list], pbar, disagree)


def agreement_study(answers: int, councils: int, seed: int,
                    theme_list: Sequence[CodedTheme] = AGREEMENT_THEMES) -> tuple[pd.DataFrame, dict[str, float]]:
    """One study's codes as ``codes.parquet`` has them (``question, answer_id, coder, theme, coded``, and
    ``council_code``): ``answers`` answers, each coded by coders ``A`` and ``B``; and the study's true
    agreement per theme (over its councils, each with an equal share of the answers)."""
    rng = np.random.default_rng(seed)
    council = rng.integers(councils, size=answers)
    centre = logit(np.array([t.prevalence for t in theme_list]))
    prevalence = expit(centre[None, :] + COUNCIL_SD * rng.standard_normal((councils, len(theme_list))))  # council x theme
    rho = np.array([t.rho for t in theme_list])
    truth = alpha_of([t.name for t in theme_list], prevalence.mean(axis=0),
                     (1 - rho ** 2) * 2 * (prevalence * (1 - prevalence)).mean(axis=0))
    pi = prevalence[council]  # answer x theme
    true = rng.random(pi.shape) < pi
    codes = []
    for _ in range(2):
        copy = rng.random(pi.shape) < rho[None, :]
        codes.append(np.where(copy, true, rng.random(pi.shape) < pi))
    coded = np.stack(codes, axis=-1)  # answer x theme x coder
    a, t, c = np.meshgrid(np.arange(answers), np.arange(len(theme_list)), np.arange(2), indexing="ij")
    codes = pd.DataFrame({"question": "q", "answer_id": [f"a{i}" for i in a.ravel()],
                          "council_code": [f"c{i}" for i in council[a.ravel()]],
                          "coder": np.array(["A", "B"])[c.ravel()], "theme": np.array([x.name for x in theme_list])[t.ravel()],
                          "coded": coded.ravel().astype(float)})
    return codes, truth


def agreement_rows(answers: int, councils: int, seeds: Sequence[int], draws: int = agreement.DRAWS) -> pd.DataFrame:
    """Per study of ``seeds``: the ``agreement.csv`` rows, each with its truth and whether it covers."""
    names = [t.name for t in AGREEMENT_THEMES]
    out = []
    for seed in seeds:
        codes, truth = agreement_study(answers, councils, seed)
        rows = themes.agreement_table(codes, {"q": names}, {"q": 0.67}, draws)
        out.append(rows[["theme", "statistic", "estimate", "ci_low", "ci_high"]].assign(seed=seed, truth=rows["theme"].map(truth)))
    frame = pd.concat(out, ignore_index=True)
    return _judged(frame.assign(part="agreement", answers=answers, councils=councils, respondents=""))


def share_truth(theme_list: Sequence[SharedTheme] = SHARE_THEMES) -> dict[tuple[str, str], float]:
    """``(theme, wave)`` -> the true share, and ``(theme, "w2 - w1")`` -> the true change."""
    out = {}
    for t in theme_list:
        c = float(logit(t.prevalence))
        first = _expect(expit, c, math.hypot(COUNCIL_SD, RESPONDENT_SD))
        second = _expect(expit, c + t.change, math.sqrt(COUNCIL_SD ** 2 + RESPONDENT_SD ** 2 + CHANGE_SD ** 2))
        out[(t.name, "w1")], out[(t.name, "w2")], out[(t.name, "w2 - w1")] = first, second, second - first
    return out


def share_study(councils: int, respondents: tuple[int, int], seed: int,
                theme_list: Sequence[SharedTheme] = SHARE_THEMES) -> pd.DataFrame:
    """One study's coded answers as the panel has them: ``council_code, respondent_id, wave, measure, value``
    (0/1), one measure per theme."""
    rng = np.random.default_rng(seed)
    k = len(theme_list)
    centre = logit(np.array([t.prevalence for t in theme_list]))
    change = np.array([t.change for t in theme_list])
    frames = []
    for g in range(councils):
        u, v = COUNCIL_SD * rng.standard_normal(k), CHANGE_SD * rng.standard_normal(k)
        first = int(rng.integers(respondents[0], respondents[1] + 1))
        second = int(rng.integers(respondents[0], respondents[1] + 1))
        again = [r for r in range(first) if rng.random() < RECUR][:second]
        people = {"w1": list(range(first)), "w2": again + list(range(first, first + second - len(again)))}
        effect = RESPONDENT_SD * rng.standard_normal((first + second, k))
        for wave, ids in people.items():
            linear = centre + u + (change + v if wave == "w2" else 0.0) + effect[ids]
            y = (rng.random(linear.shape) < expit(linear)).astype(float)
            frames.append(pd.DataFrame({"council_code": f"c{g}", "respondent_id": np.repeat([f"r{g}-{i}" for i in ids], k),
                                        "wave": wave, "measure": np.tile([t.name for t in theme_list], len(ids)),
                                        "value": y.ravel()}))
    return pd.concat(frames, ignore_index=True)


def share_rows(councils: int, respondents: tuple[int, int], seeds: Sequence[int],
               few_councils: int = FEW_COUNCILS) -> pd.DataFrame:
    """Per study of ``seeds``: each theme's ``themes.csv`` rows (``statistic`` = ``share``) and
    ``theme_changes.csv`` rows (``theme_share``, ``sign_flip``), with their truth and coverage."""
    from impactstudy.coverage.simulation import stated_level

    truth = share_truth()
    out = []
    for seed in seeds:
        data = share_study(councils, respondents, seed)
        for name, rows in data.groupby("measure", sort=False):
            freq, change = themes.theme_rows(rows, ["w1", "w2"], [None], few_councils)
            out.append(pd.DataFrame({"theme": name, "statistic": "share", "wave": freq["wave"],
                                     "estimate": freq["estimate"], "ci_low": freq["ci_low"], "ci_high": freq["ci_high"],
                                     "level": LEVEL, "seed": seed}))
            out.append(pd.DataFrame({"theme": name, "statistic": change["model"], "wave": change["contrast"],
                                     "estimate": change["estimate"], "ci_low": change["ci_low"],
                                     "ci_high": change["ci_high"], "level": stated_level(change).to_numpy(), "seed": seed}))
    frame = pd.concat(out, ignore_index=True)
    frame["truth"] = [truth[(t, w)] for t, w in zip(frame["theme"], frame["wave"])]
    return _judged(frame.assign(part="shares", answers=0, councils=councils, respondents=f"{respondents[0]}-{respondents[1]}"))


def _judged(frame: pd.DataFrame) -> pd.DataFrame:
    defined = frame["ci_low"].notna() & frame["ci_high"].notna()
    covers = (frame["ci_low"] <= frame["truth"]) & (frame["truth"] <= frame["ci_high"])
    if "level" not in frame:
        frame = frame.assign(level=LEVEL)
    return frame.assign(defined=defined, covers=covers.astype(float).where(defined))


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Coverage per part x cell x statistic x theme (x wave): studies, intervals, coverage, its Monte-Carlo
    SE, the stated level and whether coverage is within :data:`TOLERANCE` of it."""
    keys = ["part", "answers", "councils", "respondents", "statistic", "theme"] + (["wave"] if "wave" in rows else [])
    rows = rows.assign(wave=rows["wave"].fillna("")) if "wave" in rows else rows
    g = rows.groupby(keys, sort=False, dropna=False)
    out = g.agg(studies=("seed", "nunique"), intervals=("defined", "sum"), coverage=("covers", "mean"),
                level=("level", "mean"), truth=("truth", "mean")).reset_index()
    out["mc_se"] = np.sqrt(out["level"] * (1 - out["level"]) / out["intervals"].clip(lower=1))
    out["ok"] = (out["coverage"] - out["level"]).abs() <= TOLERANCE
    return out




def _cells_table(summary: pd.DataFrame, columns: Sequence[str], header: Sequence[str]) -> list[str]:
    """Rows statistic x theme (x wave), one column per cell: ``coverage`` in percent, ✗ outside the band,
    the number of intervals where some studies had none."""
    keyed = summary.assign(cell=[" ".join(str(r[c]) for c in columns) for _, r in summary.iterrows()])
    cells = list(dict.fromkeys(keyed["cell"]))
    index = [c for c in ("statistic", "theme", "wave") if c in keyed and keyed[c].astype(str).ne("").any()]
    lines = ["| " + " | ".join([*index, "truth (mean)", *header]) + " |", "|" + "---|" * (len(index) + 1 + len(header))]
    for key, part in keyed.groupby(index, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        by_cell = part.set_index("cell")
        values = []
        for cell in cells:
            if cell not in by_cell.index:
                values.append("–")
                continue
            r = by_cell.loc[cell]
            judged = r["ok"] or r["intervals"] < JUDGED_FROM
            text = "n/a" if not r["intervals"] else f"{100 * r['coverage']:.1f}" + ("" if judged else " ✗")
            if r["intervals"] and abs(r["level"] - LEVEL) > 0.005:
                text += f" (of {100 * r['level']:.1f})"
            if r["intervals"] < r["studies"]:
                text += f" [{int(r['intervals'])}]"
            values.append(text)
        lines.append("| " + " | ".join([*map(str, key), f"{part['truth'].iloc[0]:.3f}", *values]) + " |")
    return lines


def markdown(summary: pd.DataFrame, info: dict[str, str]) -> str:
    """The section of docs/coding.md between :data:`START` and :data:`END`."""
    agree = summary[summary["part"] == "agreement"]
    share = summary[summary["part"] == "shares"]
    studies = int(summary["studies"].max()) if len(summary) else 0
    mc = 100 * math.sqrt(LEVEL * (1 - LEVEL) / max(studies, 1))
    lines = [START, "", "## Do the agreement and theme-share intervals cover? (`make coverage`)", "",
             f"A simulation with known truth (`python -m impactstudy.coverage.themes`, module "
             f"`impactstudy.coverage.themes`, whose docstring has the generating model): {studies} studies per cell, "
             f"each fitted by the model stage's own functions (`themes.agreement_table`, `themes.theme_rows`). "
             f"Cells give coverage in percent of the 95% intervals; ✗: more than {100 * TOLERANCE:.0f} points from the "
             f"stated level, marked from {JUDGED_FROM} intervals on (Monte-Carlo SE about {mc:.1f} points at {studies} "
             "studies); `[n]`: only n studies had an "
             "interval (a theme nobody, or everybody, used: no agreement or no interval is reported there, not a miss); "
             "`(of x)`: an exact test's interval at the level the councils allow.", "",
             f"- {info.get('run', '')}", ""]
    if len(agree):
        lines += ["### Agreement (`agreement.csv`)", "",
                  "Two coders, four themes whose prevalence varies by council (logit SD "
                  f"{COUNCIL_SD:g}); truth: each study's own alpha (= kappa, equal margins; the column gives its mean). Columns: double-coded answers "
                  "× councils.", ""]
        lines += _cells_table(agree, ["answers", "councils"],
                              [f"{a}×{g}" for a, g in dict.fromkeys(zip(agree["answers"], agree["councils"]))])
        lines.append("")
    if len(share):
        lines += ["### Theme shares and their change (`themes.csv`, `theme_changes.csv`)", "",
                  f"Two waves, council effects (logit SD {COUNCIL_SD:g}), councils' own changes (SD {CHANGE_SD:g}), "
                  f"respondent effects (SD {RESPONDENT_SD:g}), {100 * RECUR:.0f}% of respondents answering again; "
                  f"`share`: a wave's share (CR1, t on G−1 df below {FEW_COUNCILS} councils); `theme_share`: the change "
                  "(CR1); `sign_flip`: the exact council-level test (below few_councils only). Columns: councils × "
                  "respondents per council.", ""]
        lines += _cells_table(share, ["councils", "respondents"],
                              [f"{g}×{r}" for g, r in dict.fromkeys(zip(share["councils"], share["respondents"]))])
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_section(docs: Path, section: str) -> None:
    """Put ``section`` into ``docs`` between :data:`START` and :data:`END` (appended the first time)."""
    text = docs.read_text(encoding="utf-8") if docs.is_file() else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    write_text(docs, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impactstudy.coverage.themes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=500, help="simulated studies per cell (default 500)")
    parser.add_argument("--draws", type=int, default=agreement.DRAWS, help="bootstrap draws per agreement interval")
    parser.add_argument("--parts", default="agreement,shares", help="which parts to run (default both)")
    parser.add_argument("--docs", type=Path, default=None, help="write the summary into this Markdown file")
    parser.add_argument("--results", type=Path, default=None, help="a folder: each cell's rows as Parquet, as it completes")
    parser.add_argument("--summarise", type=Path, nargs="*", default=None, metavar="PARQUET",
                        help="run nothing: summarise the rows of earlier runs' --results files")
    parser.add_argument("--note", default="", help="how the run went, for the summary (machine, load, CPU)")
    args = parser.parse_args(argv)
    started, wall = resource.getrusage(resource.RUSAGE_SELF), time.time()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.summarise is not None:
        rows = pd.concat([pd.read_parquet(p) for p in args.summarise], ignore_index=True)
        info = {"run": f"{when}: summary of {', '.join(p.name for p in args.summarise)}. {args.note}".strip()}
    else:
        seeds = range(SEED_BASE, SEED_BASE + args.studies)
        parts = args.parts.split(",")
        tasks = ([(f"agreement_{a}x{g}", agreement_rows, (a, g, seeds, args.draws))
                  for a in AGREEMENT_ANSWERS for g in AGREEMENT_COUNCILS] if "agreement" in parts else [])
        tasks += ([(f"shares_{g}x{r[0]}-{r[1]}", share_rows, (g, r, seeds)) for g in SHARE_COUNCILS for r in SHARE_RESPONDENTS]
                  if "shares" in parts else [])
        frames = []
        for name, function, task_args in tasks:  # each cell saved as it completes, so an interrupted run keeps it
            frames.append(function(*task_args))
            if args.results is not None:
                args.results.mkdir(parents=True, exist_ok=True)
                frames[-1].to_parquet(args.results / f"{name}_{args.studies}.parquet")
        rows = pd.concat(frames, ignore_index=True)
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = used.ru_utime - started.ru_utime + used.ru_stime - started.ru_stime
        info = {"run": f"{when}: {args.studies} studies per cell, {args.draws:,} bootstrap draws; {cpu:.0f} CPU s, "
                       f"{time.time() - wall:.0f} s wall (load average {os.getloadavg()[0]:.0f} on a shared 2-core "
                       f"machine). {args.note}".strip()}
    summary = summarise(rows)
    section = markdown(summary, info)
    if args.docs is not None:
        write_section(args.docs, section)
    print(section)
    return 0 if bool(summary.loc[summary["intervals"] > 0, "ok"].all()) else 1


__all__ = ["AGREEMENT_THEMES", "SHARE_THEMES", "agreement_rows", "agreement_study", "agreement_truth", "main", "markdown",
           "share_rows", "share_study", "share_truth", "summarise", "write_section"]

if __name__ == "__main__":
    raise SystemExit(main())
