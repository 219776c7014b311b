"""Coded free text in an aim's section: how often each theme was coded (chart and table per wave, with
council-clustered intervals from ``tables/themes.csv``), by role and group, how it changed where the
question recurs (``tables/theme_changes.csv``), how far the coders agreed (``tables/agreement.csv``),
and quotes.

Quotes. The internal report shows, per theme, the answers the coders marked as quotes (``codes.parquet``
``quote``), else the shortest distinct answers of at least :data:`MIN_WORDS` words that mention the
theme, with wave and role, never the council. The public report shows a quote only when all of these
hold: the study declares a consent question and the respondent said yes to it; the theme rests on at
least ``min_cell`` respondents in that wave; and the text has been through
:class:`impactstudy.report.redact.Redactor` (council names and aliases, the study's ``redact_names``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from impactstudy.report import figures, findings
from impactstudy.report.context import Context, Section
from impactstudy.report.disclosure import MARK
from impactstudy.report.redact import Redactor
from impactstudy.report.tables import binary_mask, count_mask, counts_text, interval, number, pct, table
from impactstudy.study.config import Measure, Study

ALL = "all"
QUOTES_PER_THEME = 3
MIN_WORDS = 5
LOW_AGREEMENT = "low coder agreement"
FEW_USES = "too few uses to judge"  # agreement.csv's flag for a theme ticked on too few double-coded answers
ROLE = "role"
OTHER_ROLE = "another role"  # a public quote's role given in fewer than min_cell councils


def _theme_labels(members: Sequence[Measure]) -> dict[str, str]:
    return {m.option: m.option_label or m.label for m in members}


def _flags(ctx: Context, question: str) -> dict[str, str]:
    """Theme -> its agreement flag, for the themes whose alpha is below the threshold (those marked beside
    their counts; an interval merely reaching below it is said in the agreement table only, as with
    a few dozen double-coded answers it does for nearly every theme)."""
    a = ctx.inputs.agreement
    if a.empty:
        return {}
    rows = a[(a["question"].astype(str) == question) & (a["statistic"] == "krippendorff_alpha")
             & a["flag"].fillna("").astype(str).str.startswith("alpha below")]
    return dict(zip(rows["theme"].astype(str), rows["flag"].astype(str)))


def _frequency(ctx: Context, s: Section, parent: str, question: str, members: Sequence[Measure],
               rows: pd.DataFrame) -> None:
    """Each theme's percentage of coded answers: a bar chart per wave, or where the question recurs one
    small-multiples chart of every theme across the waves; the table beneath it has the counts."""
    labels = _theme_labels(members)
    flags = _flags(ctx, question)
    order = {m.option: i for i, m in enumerate(members)}
    waves = [w for w in ctx.study.wave_ids if w in set(rows["wave"].astype(str))]
    mine = rows[rows["group"] == ALL].assign(wave=lambda d: d["wave"].astype(str))
    mine = (mine.assign(_w=mine["wave"].map({w: i for i, w in enumerate(waves)}), _t=mine["theme"].map(order))
            .sort_values(["_w", "_t"], kind="stable").drop(columns=["_w", "_t"]).reset_index(drop=True))
    masked = binary_mask(mine["n_selected"], mine["n_obs"], ctx.threshold)
    mine = mine.assign(shown=mine["estimate"].where(~masked), low=mine["ci_low"].where(~masked),
                       high=mine["ci_high"].where(~masked), masked=masked,
                       name=[labels.get(t, t) + (" (low coder agreement)" if t in flags else "") for t in mine["theme"]])

    def table_of(cell: pd.DataFrame, with_wave: bool) -> pd.DataFrame:
        return pd.DataFrame({
            "Theme": cell["name"].tolist(),
            **({"Wave": [ctx.wave_labels.get(w, w) for w in cell["wave"]]} if with_wave else {}),
            "Answers mentioning it": counts_text(cell["n_selected"], cell["masked"].to_numpy()),
            "Coded answers": counts_text(cell["n_obs"], count_mask(cell["n_obs"], ctx.threshold)),
            "Percentage": [MARK if m else pct(v) for v, m in zip(cell["estimate"], cell["masked"])],
            "95% CI (%)": [MARK if m else interval(lo, hi, 0, 100) for lo, hi, m in zip(cell["ci_low"], cell["ci_high"], cell["masked"])],
            "Councils": [f"{int(n):,}" for n in cell["n_councils"]],
        })

    correction = str(mine["correction"].iloc[0]) if len(mine) else ""
    notes = [f"Percentages are of the answers coded in each wave (respondent-weighted); intervals are cluster-robust "
             f"by council ({correction}), because answers from one council are alike."]
    if flags:
        notes.append("Themes marked “low coder agreement” had a Krippendorff's alpha below the study's threshold: "
                     "coders did not apply them consistently, so their counts are less reliable. See the agreement "
                     "table below.")
    noun = ctx.label(question)
    if len(waves) >= 2:
        top = mine.loc[mine["shown"].idxmax()] if mine["shown"].notna().any() else None
        title = (f"“{labels.get(top['theme'], top['theme'])}” was the most common theme "
                 f"({pct(top['estimate'])}, {ctx.wave_labels.get(top['wave'], top['wave'])})" if top is not None
                 else "Themes: too few respondents to publish")
        subtitle = (f"{noun}: percentage of coded answers mentioning each theme in each wave, with 95% intervals "
                    "clustered by council; an answer can mention several themes")
        frame = pd.DataFrame({"measure": mine["theme"], "group": ALL, "wave": mine["wave"], "mean": 100 * mine["shown"],
                              "ci_low": 100 * mine["low"], "ci_high": 100 * mine["high"]})
        withheld = set(mine.groupby("theme")["masked"].all().pipe(lambda x: x[x].index))
        panels = [(m.option, labels[m.option] + (" (low coder agreement)" if m.option in flags else "")
                   + (f": withheld {MARK}" if m.option in withheld else ""))
                  for m in members if m.option in set(mine["theme"])]
        alt = (f"Small multiples of the themes in {noun.lower()} across the waves, one panel per theme: "
               + "; ".join(f"{n}, {ctx.wave_labels.get(w, w)} {MARK if m else pct(v)}"
                           for n, w, v, m in zip(mine["name"], mine["wave"], mine["estimate"], mine["masked"])) + ".")
        data = table_of(mine, with_wave=True)
        job, tab = ctx.chart(figures.trajectory_chart, (frame, panels, [(ALL, "All respondents")],
                                                        [(w, ctx.wave_labels.get(w, w)) for w in waves], title, subtitle,
                                                        (0.0, 100.0)),
                             f"{parent}_themes", title, subtitle, alt, data, f"Themes in {noun.lower()} by wave",
                             numeric=list(data.columns[2:]))
        s.figure(job, replace(tab, notes=tuple(notes)))
        return
    for wave, cell in mine.groupby("wave", sort=False):
        wave_label = ctx.wave_labels.get(wave, wave)
        top = cell.loc[cell["shown"].idxmax()] if cell["shown"].notna().any() else None
        title = (f"“{labels.get(top['theme'], top['theme'])}” was the most common theme ({pct(top['estimate'])})"
                 if top is not None else "Themes: too few respondents to publish")
        subtitle = (f"{noun}, {wave_label}: percentage of coded answers mentioning each theme, with 95% "
                    "intervals clustered by council; an answer can mention several themes")
        frame = pd.DataFrame({"label": cell["name"], "value": cell["shown"], "ci_low": cell["low"], "ci_high": cell["high"]})
        alt = f"Bar chart of the themes in {noun.lower()}, {wave_label}: " + "; ".join(
            f"{n} {MARK if m else pct(v)}" for n, v, m in zip(cell["name"], cell["estimate"], cell["masked"])) + "."
        data = table_of(cell, with_wave=False)
        job, tab = ctx.chart(figures.bar_chart, (frame, title, subtitle, "Percentage of coded answers"),
                             f"{parent}_{wave}_themes", title, subtitle, alt, data, f"Themes in {noun.lower()} ({wave_label})",
                             numeric=list(data.columns[1:]))
        s.figure(job, replace(tab, notes=tuple(notes)))


def public_roles(ctx: Context) -> dict[str, str]:
    """Role (as the panel has it) -> how the public report names it. The role column is free text, so it
    may carry names: each goes through the quotes' :class:`Redactor`; and a role given in fewer than
    ``min_cell`` councils is :data:`OTHER_ROLE`, because a role so few councils use points at them
    (councils are public bodies, their respondents are not). Empty for the internal report."""
    if not ctx.public:
        return {}
    panel = ctx.inputs.panel
    pairs = panel.loc[panel["role"].notna(), ["role", "council_code"]].astype(str).drop_duplicates()
    councils = pairs.groupby("role")["council_code"].nunique()
    redactor = Redactor.create(ctx.inputs.council_names, ctx.study.redact_names)
    return {role: redactor.redact(role)[0] if n >= ctx.threshold else OTHER_ROLE for role, n in councils.items()}


def _by_group(ctx: Context, s: Section, parent: str, question: str, members: Sequence[Measure],
              rows: pd.DataFrame, roles: dict[str, str]) -> None:
    """One table per grouping (role, each group_by covariate): each theme's percentage per level and wave;
    in the public report roles as :func:`public_roles` names them, those it does not name left out."""
    labels = _theme_labels(members)
    groups = rows[rows["group"] != ALL]
    if groups.empty:
        return
    kinds = list(dict.fromkeys(groups["group"].str.partition("=")[0]))
    several_waves = rows["wave"].nunique() > 1
    for kind in kinds:
        cell = groups[groups["group"].str.partition("=")[0] == kind]
        dropped = rare = 0
        if ctx.threshold is not None:  # a group too small to publish anything is left out, name and all
            large = cell.groupby("group", sort=False)["n_obs"].transform("max") >= ctx.threshold
            dropped = cell.loc[~large, "group"].nunique()
            cell = cell[large]
        if ctx.public and kind == ROLE and not cell.empty:
            shown = cell["group"].str.partition("=")[2].map(roles).fillna(OTHER_ROLE)
            keep = shown != OTHER_ROLE
            rare = cell.loc[~keep, "group"].nunique()
            cell = cell[keep].assign(group=ROLE + "=" + _distinct(shown[keep], cell.loc[keep, "group"]))
        if cell.empty:
            continue
        levels = list(dict.fromkeys(cell["group"]))
        masked = binary_mask(cell["n_selected"], cell["n_obs"], ctx.threshold)
        text = pd.Series([MARK if m else f"{pct(e)} ({interval(lo, hi, 0, 100)})" for e, lo, hi, m in
                          zip(cell["estimate"], cell["ci_low"], cell["ci_high"], masked)], index=cell.index)
        out = []
        for (theme, wave), part in cell.groupby(["theme", "wave"], sort=False):
            row = {"Theme": labels.get(theme, theme)}
            if several_waves:
                row["Wave"] = ctx.wave_labels.get(str(wave), str(wave))
            for level, value in zip(part["group"], text[part.index]):
                row[level.partition("=")[2]] = value
            out.append(row)
        shown = pd.DataFrame(out).reindex(columns=["Theme", *(["Wave"] if several_waves else []),
                                                   *[lv.partition("=")[2] for lv in levels]])
        noun = "role" if kind == "role" else kind.replace("_", " ")
        s.table(table(f"themes-{parent}-{kind}", f"Themes in {ctx.label(question).lower()} by {noun}: percentage of coded "
                      "answers (95% CI)", shown, numeric=list(shown.columns[2 if several_waves else 1:]),
                      notes=["Each cell is the share of that group's coded answers mentioning the theme, with a 95% interval "
                             "clustered by council. Groups with few answers have wide intervals: compare groups only "
                             "where the intervals do not overlap. (–): every coded answer in the group, or none, "
                             "mentions the theme, so there is no variation to estimate an interval from.",
                             *([f"{dropped} group{'s' if dropped != 1 else ''} with fewer than {ctx.threshold} coded answers "
                                "in every wave left out."] if dropped else []),
                             *([f"{rare} role{'s' if rare != 1 else ''} given in fewer than {ctx.threshold} councils left "
                                "out: a role so few councils use could point at them. Names of councils, places and "
                                "people are taken out of the roles shown."] if rare else [])]))


def _distinct(shown: pd.Series, groups: pd.Series) -> pd.Series:
    """``shown`` labels made distinct where two groups came out the same ("Officer, [council]" twice):
    numbered in the order of their groups."""
    first = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    out = shown.copy()
    for label, part in groups.groupby(shown, sort=False):
        levels = sorted(set(part), key=first.get)
        if len(levels) > 1:
            for k, level in enumerate(levels, 1):
                out[groups == level] = f"{label} ({k})"
    return out


def _changes(ctx: Context, s: Section, parent: str, question: str, members: Sequence[Measure]) -> None:
    changes = ctx.inputs.theme_changes
    if changes.empty:
        return
    mine = changes[(changes["question"].astype(str) == question) & (changes["group"] == ALL)]
    if mine.empty:
        return
    labels = _theme_labels(members)
    withheld = count_mask(mine["n_councils"], ctx.threshold)
    out = []
    models = [m for m in ("theme_share", "sign_flip") if m in set(mine["model"])]
    for (theme, contrast), part in mine.groupby(["theme", "contrast"], sort=False):
        row = {"Theme": labels.get(theme, theme), "Change": ctx.contrast_label(contrast)}
        for model in models:
            x = part[part["model"] == model]
            if x.empty or pd.isna(x["estimate"].iloc[0]):
                row[model] = "–"
                continue
            r = x.iloc[0]
            if withheld[mine.index.get_loc(x.index[0])]:
                row[model] = MARK
                continue
            ci = findings.ci_text(r["ci_low"], r["ci_high"], r["warning"], 0, 100)
            floor = r.get("min_p_value", 0.0)
            limit = f"; smallest possible p {findings.fmt_floor(floor)}" if pd.notna(floor) and floor > 0 else ""
            row[model] = f"{number(100 * r['estimate'], 0, signed=True)} points ({ci}); q {findings.fmt_p(r['q_value'])}{limit}"
        out.append(row)
    names = {"theme_share": "Change in percentage of coded answers (respondent-weighted, council-clustered)",
             "sign_flip": "Council-weighted change (exact sign-flip test on council changes)"}
    shown = pd.DataFrame(out).rename(columns=names)
    s.table(table(f"theme-changes-{parent}", f"How the themes in {ctx.label(question).lower()} changed between waves",
                  shown, numeric=list(shown.columns[2:]),
                  notes=["Percentage points, with 95% intervals and Benjamini–Hochberg q-values across the question's "
                         "themes. The respondent-weighted change uses a council-clustered covariance, so respondents and "
                         "councils answering in both waves are allowed for.", findings.FLOOR_NOTE]))


def _agreement(ctx: Context, s: Section, parent: str, question: str, members: Sequence[Measure]) -> None:
    a = ctx.inputs.agreement
    if a.empty:
        return
    mine = a[a["question"].astype(str) == question]
    if mine.empty:
        return
    labels = {**_theme_labels(members), "all": "All themes (pooled)"}

    def cell(r: pd.Series) -> str:
        if pd.isna(r["estimate"]):
            return "– (no variation)" if r["n_answers"] else "–"
        if pd.isna(r["ci_low"]):
            return f"{number(r['estimate'])} (too few uses for an interval)"
        return f"{number(r['estimate'])} ({interval(r['ci_low'], r['ci_high'])})"

    alpha = mine[mine["statistic"] == "krippendorff_alpha"]
    kappa = mine[mine["statistic"] == "cohen_kappa"]
    out = []
    for r in alpha.itertuples():
        row = {"Theme": labels.get(str(r.theme), str(r.theme)),
               "Krippendorff's alpha (95% CI)": cell(pd.Series(r._asdict())),
               "Agreement (%)": pct(r.agreement)}
        for pair in dict.fromkeys(kappa["coders"]):
            k = kappa[(kappa["coders"] == pair) & (kappa["theme"].astype(str) == str(r.theme))]
            row[f"Cohen's kappa, {pair} (95% CI)"] = cell(k.iloc[0]) if len(k) else "–"
        row["Flag"] = r.flag if isinstance(r.flag, str) and r.flag else ""
        out.append(row)
    shown = pd.DataFrame(out)
    n = int(alpha["n_answers"].max()) if len(alpha) else 0
    draws = int(alpha["draws"].max()) if len(alpha) else 0
    threshold = float(alpha["threshold"].iloc[0]) if len(alpha) else 0.67
    per_theme = alpha[alpha["theme"].astype(str) != "all"]
    flag = per_theme["flag"].fillna("").astype(str)
    flagged = [labels.get(str(t), str(t)) for t in per_theme.loc[flag.str.startswith("alpha below"), "theme"]]
    uncertain = [labels.get(str(t), str(t)) for t in per_theme.loc[flag.str.startswith("interval reaches"), "theme"]]
    sparse = [labels.get(str(t), str(t)) for t in per_theme.loc[flag == FEW_USES, "theme"]]
    pooled = alpha[alpha["theme"].astype(str) == "all"]
    s.heading(f"How far the coders agreed on “{ctx.label(question)}”")
    if n == 0:
        s.text("No answer was coded by two coders, so their agreement cannot be measured: give a share of the "
               "answers to a second coder (impactstudy verbatims --overlap) before relying on the theme counts.")
        return
    undefined = int(per_theme["estimate"].isna().sum())
    overall = (f" Over all themes, alpha was {number(pooled['estimate'].iloc[0])} "
               f"({interval(pooled['ci_low'].iloc[0], pooled['ci_high'].iloc[0])})."
               if len(pooled) and pd.notna(pooled["estimate"].iloc[0]) else "")
    s.text(f"{n:,} answers were coded by two or more coders. "
           + (f"{len(flagged)} theme{'s' if len(flagged) != 1 else ''} fell short of the study's threshold "
              f"(alpha {threshold:g}): {', '.join(flagged)}." if flagged else
              f"Every theme with an alpha reached the study's threshold (alpha {threshold:g}).")
           + (f" The interval of {len(uncertain)} more reaches below it ({', '.join(uncertain)}): with {n:,} "
              "double-coded answers their agreement is not established either way." if uncertain else "")
           + (f" {len(sparse)} more {'was' if len(sparse) == 1 else 'were'} ticked on too few double-coded answers "
              f"({', '.join(sparse)}) to judge agreement either way, so no interval." if sparse else "")
           + (f" {undefined} had no variation to agree on (no coder used {'it' if undefined == 1 else 'them'} on "
              "these answers), so no alpha." if undefined else "") + overall)
    s.table(table(f"agreement-{parent}", f"Agreement between coders on “{ctx.label(question)}”", shown,
                  numeric=[c for c in shown.columns if c not in ("Theme", "Flag")],
                  notes=[f"Krippendorff's alpha (nominal) over every answer coded by two or more coders ({n:,}); "
                         "Cohen's kappa for each pair of coders over the answers both coded; agreement: the share of "
                         "coder pairs giving the same code. 95% intervals: percentile bootstrap of "
                         f"{draws:,} seeded draws resampling the double-coded answers. A theme is flagged when its alpha "
                         f"is below {threshold:g} (and marked “low coder agreement” beside its counts), or when its "
                         "interval reaches below it. A theme no coder used has no variation to agree on, so no alpha; "
                         "one ticked on only a few double-coded answers gets no interval (in simulation, intervals "
                         "resting on so few uses cover far less than 95%: docs/coding.md)."]))


def _consent(study: Study, question: str) -> str | None:
    """The consent measure of ``question``'s ``[[coding]]`` section (None: no consent question declared)."""
    coding = study.coding_of(question)
    return coding.consent if coding is not None else None


def quote_marks(codes: pd.DataFrame, question: str) -> dict[str, set[tuple[str, int]]]:
    """Theme -> the answers (``wave, source_row``) a coder marked as a quote while coding that theme."""
    if codes.empty or "quote" not in codes:
        return {}
    rows = codes[(codes["question"].astype(str) == question) & codes["quote"].fillna(False).astype(bool)
                 & (codes["coded"] == 1)]
    out: dict[str, set[tuple[str, int]]] = {}
    for theme, wave, row in zip(rows["theme"].astype(str), rows["wave"].astype(str), rows["source_row"]):
        out.setdefault(theme, set()).add((wave, int(row)))
    return out


def _text_key(text: pd.Series) -> pd.Series:
    return text.str.casefold().str.replace(r"\W+", " ", regex=True).str.strip()


def select_quotes(candidates: pd.DataFrame, marked: set[tuple[str, int]], n: int = QUOTES_PER_THEME,
                  used: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """Up to ``n`` quotes from ``candidates`` (``wave, source_row, text`` …): the coder-marked ones
    (``(wave, source_row)`` in ``marked``) first, then the shortest distinct texts of at least
    :data:`MIN_WORDS` words (shorter ones only if there are no others); duplicates by folded text dropped,
    and texts already quoted for another theme (``used``, folded) only when nothing else is left."""
    c = candidates.assign(text=candidates["text"].astype(str).str.strip())
    c = c[c["text"] != ""]
    key = _text_key(c["text"])
    c = c.assign(_key=key, _marked=[(str(w), int(r)) in marked for w, r in zip(c["wave"], c["source_row"])],
                 _used=key.isin(used), _words=c["text"].str.split().str.len(), _len=c["text"].str.len())
    c = c.assign(_short=c["_words"] < MIN_WORDS)
    c = c.sort_values(["_marked", "_used", "_short", "_len", "text"], ascending=[False, True, True, True, True],
                      kind="stable")
    return c.drop_duplicates("_key").head(n).drop(columns=["_key", "_marked", "_used", "_words", "_len", "_short"])


def _quotes(ctx: Context, s: Section, question: str, members: Sequence[Measure], rows: pd.DataFrame,
            roles: dict[str, str]) -> None:
    panel = ctx.inputs.panel
    measure = panel["measure"].astype(str)
    text = panel[(measure == question) & panel["value_label"].notna()]
    keys = ["council_code", "wave", "respondent_id"]
    answers = pd.DataFrame({"council_code": text["council_code"].astype(str), "wave": text["wave"].astype(str),
                            "respondent_id": text["respondent_id"].astype(str), "role": text["role"].astype(str),
                            "source_row": text["source_row"], "text": text["value_label"].astype(str)})
    consent = _consent(ctx.study, question)
    if ctx.public:
        if consent is None:
            s.text("Free-text answers are quoted in the public report only where respondents agreed to be quoted; "
                   "this study declares no such question, so none are quoted here.")
            return
        yes = panel[(measure == consent) & (panel["value"] == 1)]
        agreed = pd.DataFrame({k: yes[k].astype(str) for k in keys}).drop_duplicates()
        answers = answers.merge(agreed, on=keys, how="inner")
    marked = quote_marks(ctx.inputs.codes, question)
    counts = rows[rows["group"] == ALL].set_index(["theme", "wave"])["n_selected"].to_dict()
    redactor = Redactor.create(ctx.inputs.council_names, ctx.study.redact_names) if ctx.public else None
    shown_any, used = False, set()
    for member in members:
        coded = panel[(measure == member.name) & (panel["value"] == 1)]
        mention = pd.DataFrame({k: coded[k].astype(str) for k in keys})
        candidates = answers.merge(mention, on=keys, how="inner")
        if ctx.public:  # a theme resting on fewer respondents than the threshold is never quoted
            enough = [counts.get((member.option, w), 0) >= ctx.threshold for w in candidates["wave"]]
            candidates = candidates[np.asarray(enough, dtype=bool)]
            candidates = candidates.assign(text=[redactor.redact(t)[0] for t in candidates["text"]])
        chosen = select_quotes(candidates, marked.get(member.option, set()), used=used)
        if chosen.empty:
            continue
        used |= set(_text_key(chosen["text"]))
        if not shown_any:
            s.heading(f"In their own words: {ctx.label(question).lower()}")
            if ctx.public:
                s.text("Quoted with the respondents' consent, with names of councils, places and people taken out; "
                       f"themes mentioned by fewer than {ctx.threshold} respondents in a wave are not quoted.")
            shown_any = True
        s.text(f"{member.option_label or member.label}:")
        s.blocks.append({"kind": "quotes", "items": [
            {"text": r.text, "who": f"{roles.get(r.role, OTHER_ROLE) if ctx.public else r.role}, "
                                    f"{ctx.wave_labels.get(r.wave, r.wave)}"} for r in chosen.itertuples()]})


def build_blocks(ctx: Context, s: Section, parent: str, question: str) -> None:
    """The theme blocks of one coded question (multi set ``parent`` coding text measure ``question``)."""
    members = ctx.study.set_members(parent)
    t = ctx.inputs.themes
    rows = t[t["question"].astype(str) == question] if not t.empty else t
    s.heading(f"Themes in “{ctx.label(question)}”")
    roles = public_roles(ctx)
    if not rows.empty:
        _frequency(ctx, s, parent, question, members, rows)
        _by_group(ctx, s, parent, question, members, rows, roles)
        _changes(ctx, s, parent, question, members)
    _agreement(ctx, s, parent, question, members)
    _quotes(ctx, s, question, members, rows if not rows.empty else pd.DataFrame(columns=["group", "theme", "wave", "n_selected"]),
            roles)


__all__ = ["build_blocks", "select_quotes"]
