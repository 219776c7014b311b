"""The demo's answers: one generator per family of measures (effectiveness, option sets, expected and
achieved outcomes, lessons ...), each drawing codes or texts for the rows of a wave.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impactstudy.demo.model import DONT_KNOW, ITEM_MISSING, MODEL, NTI, SENTINEL_REASONS, STATUSES, EffectModel, stream
from impactstudy.study.config import Measure, Study, Wave


# Phrases per theme of each coded free-text question (the options of its coding frame in the config);
# an answer joins the phrases of 1–3 themes.
LESSON_PHRASES = {
    "who_took_part": (
        "Involve partners & schools from the start.",
        "Make sure the lead member and the DCS both take part.",
        "Get health colleagues in the room – their “view from outside” helped.",
    ),
    "team_makeup": (
        "A peer team with a serving DCS made the findings credible.",
        "Include a practitioner from a council of similar size (< 200 social workers) on the team.",
        "The team’s mix of regions & backgrounds mattered.",
    ),
    "method": (
        "Keep the scope focused: ask for three \"key lines of enquiry\" at most.",
        "Case-file audits gave the review real depth.",
        "Be flexible – the focus can change on day two.",
    ),
    "staff_engagement": (
        "Brief frontline staff beforehand so they don't feel inspected.",
        "Social workers’ focus groups were the most valuable part.",
        "Staff morale rose once they saw their views in the report.",
    ),
    "findings": (
        "Ask for detailed recommendations, not just headlines.",
        "The feedback presentation was frank; the written report was less so.",
        "Recommendations with timescales (< 6 months) were the easiest to act on.",
    ),
    "monitoring": (
        "Build the recommendations into the improvement plan & monitor them at the LSCB.",
        "Schedule a follow-up visit after six months.",
        "A simple RAG tracker kept the action plan \"live\".",
    ),
    "local_context": (
        "Time it before Ofsted, not in the middle of a restructure.",
        "Our résumé of local issues helped the team understand the context.",
        "Rural districts need a different approach from the towns – café-style drop-ins worked.",
    ),
}


# Phrases per hoped-for outcome (baseline free text)
HOPE_PHRASES = {
    "challenge": (
        "We want honest, external challenge from people who do the job elsewhere.",
        "Fresh eyes on our front door – we have stopped seeing our own blind spots.",
        "A critical friend who will tell us what Ofsted would not.",
    ),
    "inspection": (
        "Readiness for the next Ofsted inspection.",
        "Confidence that our self-assessment is accurate before we are inspected.",
        "To know where we stand against the inspection framework (\"good\" or better).",
    ),
    "practice": (
        "Better quality assessments & plans for children.",
        "Consistent practice across our locality teams.",
        "Case audits that show what good practice looks like here.",
    ),
    "partnership": (
        "Partners – health, police, schools – to own safeguarding with us.",
        "A stronger LSCB that holds agencies to account.",
        "Better information sharing at the MASH.",
    ),
    "leadership": (
        "Assurance for the new DCS and the lead member.",
        "Help for a leadership team that is still bedding in.",
        "A clear steer on priorities for the next 12 months (< 5 of them).",
    ),
}

# Phrases per early change (early-impact free text)
CHANGE_PHRASES = {
    "action_plan": (
        "We turned the recommendations into an action plan within a month.",
        "An improvement board now tracks the review's actions.",
        "The action plan went to cabinet & the LSCB in the same week.",
    ),
    "practice_change": (
        "Supervision is more reflective and more regular.",
        "Thresholds at the front door are applied more consistently.",
        "Social workers now record the child's voice in every assessment.",
    ),
    "culture": (
        "Staff feel listened to – morale is visibly better.",
        "There is a more open, learning culture; less blame.",
        "Teams talk about \"what good looks like\" rather than targets.",
    ),
    "governance": (
        "Scrutiny by members is sharper since the review.",
        "Performance reports to the board are clearer.",
        "The lead member now chairs a monthly performance clinic.",
    ),
    "too_early": (
        "It is too early to say what has changed.",
        "Nothing concrete yet; the new structure starts in April.",
        "We are still digesting the findings.",
    ),
}


def _likert(latent: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    return np.clip(np.round(latent), levels[0], levels[-1])


def _with_missing(values: np.ndarray, rng: np.random.Generator, rates: Mapping[float, float]) -> np.ndarray:
    """Replace a share of ``values`` by the missing sentinels (one uniform draw per value)."""
    u = rng.random(len(values))
    out = values.astype(float).copy()
    low = 0.0
    for sentinel, rate in rates.items():
        out[(u >= low) & (u < low + rate)] = sentinel
        low += rate
    return out


def _declared(measure: Measure) -> dict[float, float]:
    """Missing sentinels this measure can carry: those whose reason it declares."""
    reasons = set(measure.missing.values())
    return {s: r for s, r in ITEM_MISSING.items() if SENTINEL_REASONS[s] in reasons}


def missing_key(measure: Measure, sentinel: float) -> str:
    for key, reason in measure.missing.items():
        if reason == SENTINEL_REASONS[sentinel]:
            return key
    raise ValueError(f"measure {measure.name} declares no missing code for {SENTINEL_REASONS[sentinel]!r}")


def numeric_missing(measure: Measure) -> dict[float, str]:
    """Declared missing codes that are numbers (SPSS user-missing values) -> reason."""
    out = {}
    for key, reason in measure.missing.items():
        try:
            out[float(key)] = reason
        except ValueError:
            continue
    return out


def is_reversed(measure: Measure, wave: Wave) -> bool:
    return wave.id in measure.reverse


@dataclass
class Context:
    """What the measure generators share: the study, councils, persons and the seed."""

    study: Study
    councils: pd.DataFrame
    persons: pd.DataFrame
    seed: int
    model: EffectModel = MODEL
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def person_set(self, parent: str, base_rates: np.ndarray) -> np.ndarray:
        """A person-level 0/1 set (persons × options) drawn once, so later waves can depend on it."""
        if parent not in self._cache:
            rng = stream(self.seed, "person_set", parent)
            nti = (self.councils["status"].to_numpy()[self.persons["council"]] == NTI)[:, None]
            self._cache[parent] = (rng.random((len(self.persons), len(base_rates)))
                                   < base_rates[None, :] + 0.1 * nti).astype(float)
        return self._cache[parent]

    def council_change(self, measure: str) -> np.ndarray:
        """Each council's standard-normal deviation from its status's change in ``measure`` (one draw per
        council and measure, the same at every wave; scaled by ``council_change_sd × trajectory``)."""
        key = f"council_change:{measure}"
        if key not in self._cache:
            self._cache[key] = stream(self.seed, "council-change", measure).standard_normal(len(self.councils))
        return self._cache[key]

    def plan(self) -> np.ndarray:
        """Whether each council has an improvement plan at each wave order (councils × waves)."""
        if "plan" not in self._cache:
            rng = stream(self.seed, "plan", 0)
            nti = (self.councils["status"] == NTI).to_numpy()
            state = rng.random(len(self.councils)) < np.where(nti, 0.40, 0.60)
            columns = [state]
            for order in range(1, len(self.study.waves)):
                gained = stream(self.seed, "plan", order).random(len(self.councils)) < np.where(nti, 0.55, 0.35)
                state = state | gained
                columns.append(state)
            self._cache["plan"] = np.column_stack(columns).astype(float)
        return self._cache["plan"]


MeasureGenerator = Callable[[Context, Wave, pd.DataFrame, list[Measure], np.random.Generator], dict[str, np.ndarray]]


def _nti(rows: pd.DataFrame) -> np.ndarray:
    return (rows["status"] == NTI).to_numpy()


def _effectiveness_of(model: EffectModel) -> MeasureGenerator:
    """Self-rated effectiveness under ``model``: one Likert measure from the latent normal model."""
    def generate(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        (measure,) = measures
        mean = rows["status"].map({s: model.mean(measure.name, s, wave.order) for s in STATUSES}).to_numpy(float)
        own_change = (model.council_change_sd * model.trajectory[wave.order]
                      * ctx.council_change(measure.name)[rows["council"].to_numpy()])
        latent = mean + own_change + rows["council_re"].to_numpy() + rows["resp_re"].to_numpy() + rng.normal(
            0.0, model.residual_sd, len(rows))
        return {measure.name: _with_missing(_likert(latent, measure.levels), rng, _declared(measure))}
    return generate


_effectiveness = _effectiveness_of(MODEL)


def _improvement_plan(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    truth = ctx.plan()[rows["council"].to_numpy(), wave.order]
    reported = np.where(rng.random(len(rows)) < 0.1, 1.0 - truth, truth)
    return {measure.name: _with_missing(reported, rng, {DONT_KNOW: 0.04})}


def _option_set(rates_from: float, rates_to: float) -> MeasureGenerator:
    """A 0/1 set answered in this wave only, NtI councils 0.1 likelier to tick each option."""
    def generate(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        rates = np.linspace(rates_from, rates_to, len(measures))[None, :] + 0.1 * _nti(rows)[:, None]
        ticks = (rng.random((len(rows), len(measures))) < rates).astype(float)
        return {m.name: ticks[:, i] for i, m in enumerate(measures)}
    return generate


EXPECTED_RATES = np.linspace(0.6, 0.3, 6)


def _expected(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    ticks = ctx.person_set(measures[0].parent or measures[0].name, EXPECTED_RATES[: len(measures)])
    return {m.name: ticks[rows["person"].to_numpy(), i] for i, m in enumerate(measures)}


def _achieved(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Achieved outcomes: 0.70 when the person expected the outcome, else 0.25 (+0.05 for NtI)."""
    pairs = {e.achieved: e.expected for e in ctx.study.expectations}
    expected_set = ctx.study.set_members(pairs[measures[0].parent])
    options = [m.option for m in expected_set]
    expected = ctx.person_set(expected_set[0].parent, EXPECTED_RATES[: len(options)])[rows["person"].to_numpy()]
    out = {}
    for m in measures:
        hoped = expected[:, options.index(m.option)] if m.option in options else np.zeros(len(rows))
        rate = 0.25 + 0.45 * hoped + 0.05 * _nti(rows)
        out[m.name] = (rng.random(len(rows)) < rate).astype(float)
    return out


def _usefulness(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    latent = 3.2 + 0.4 * _nti(rows) + rows["council_re"].to_numpy() + rng.normal(0.0, 0.8, len(rows))
    return {measure.name: _with_missing(_likert(latent, measure.levels), rng, _declared(measure))}


def _contribution(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Contribution per domain grows with the domain's true change so far (grid option = eff_<option>)."""
    out = {}
    for m in measures:
        domain = f"eff_{m.option}"
        change = rows["status"].map({s: MODEL.change(domain, s, max(wave.order, 1)) for s in STATUSES}).to_numpy(float)
        latent = 1.6 + 2.5 * change + 0.3 * _nti(rows) + rng.normal(0.0, 0.7, len(rows))
        out[m.name] = _with_missing(_likert(latent, m.levels), rng, _declared(m))
    return out


def _attribution(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    share = 5.0 * np.round(20.0 * rng.beta(2.5, 3.0, len(rows)))
    return {measure.name: _with_missing(share, rng, {DONT_KNOW: 0.08})}


def _recommend(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    return {measure.name: (rng.random(len(rows)) < 0.88 + 0.07 * _nti(rows)).astype(float)}


def _coded_text(phrases: Mapping[str, tuple[str, ...]]) -> MeasureGenerator:
    """Free text built from the phrases of 1–3 themes of its coding frame (about 10 % left blank), and the
    themes used: the truth the coders' codes are judged by (the coded set's measures, NaN for a blank)."""
    def generate(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        text = next(m for m in measures if m.type == "text")
        themes = [m for m in measures if m.type != "text"]
        texts = np.full(len(rows), "", dtype=object)
        codes = np.full((len(rows), len(themes)), np.nan)
        for i in range(len(rows)):
            if rng.random() < 0.10:
                continue
            chosen = sorted(rng.choice(len(themes), size=rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]), replace=False))
            texts[i] = " ".join(str(rng.choice(phrases[themes[j].option])) for j in chosen)
            codes[i] = 0.0
            codes[i, chosen] = 1.0
        return {text.name: texts, **{m.name: codes[:, j] for j, m in enumerate(themes)}}
    return generate


def _quote_consent(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Agreement to be quoted anonymously: seven in ten say yes."""
    (measure,) = measures
    return {measure.name: (rng.random(len(rows)) < 0.7).astype(float)}


def _personal(ctx: Context, wave: Wave, rows: pd.DataFrame, measures: list[Measure],
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    (measure,) = measures
    return {measure.name: rows[_PERSONAL[measure.name]].to_numpy(dtype=object)}


_PERSONAL = {"respondent_name": "person_name", "respondent_email": "email"}


_GENERATORS: dict[str, MeasureGenerator] = {
    "improvement_plan": _improvement_plan,
    "reason": _option_set(0.55, 0.25),
    "expected": _expected,
    "achieved": _achieved,
    "usefulness": _usefulness,
    "early_contribution": _contribution,
    "longer_contribution": _contribution,
    "attribution": _attribution,
    "other_factor": _option_set(0.5, 0.3),
    "recommend": _recommend,
    "lessons": _coded_text(LESSON_PHRASES),
    "hopes": _coded_text(HOPE_PHRASES),
    "early_change": _coded_text(CHANGE_PHRASES),
    "quote_consent": _quote_consent,
    "respondent_name": _personal,
    "respondent_email": _personal,
}


def _family(measure: Measure) -> str:
    """Measures generated together: an option set, a text with its coding frame, or a single measure."""
    return measure.coding_frame_for or measure.parent or measure.name


def _generator(family: str, model: EffectModel) -> MeasureGenerator:
    if family in model.base:
        return _effectiveness_of(model)
    if family not in _GENERATORS:
        raise ValueError(f"demo has no generator for measure family '{family}'; add one to _GENERATORS")
    return _GENERATORS[family]


def wave_values(ctx: Context, wave: Wave, rows: pd.DataFrame,
                only: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Every measure asked in ``wave`` (or the families of the measures named in ``only``), as codes
    (floats with missing sentinels) or texts. A family's values do not depend on which others are drawn."""
    families: dict[str, list[Measure]] = {}
    for m in ctx.study.measures:
        if wave.id in m.columns:
            families.setdefault(_family(m), []).append(m)
    if only is not None:
        wanted = {_family(m) for m in ctx.study.measures if m.name in only}
        families = {f: members for f, members in families.items() if f in wanted}
    values: dict[str, np.ndarray] = {}
    for family, members in families.items():
        values.update(_generator(family, ctx.model)(ctx, wave, rows, members, stream(ctx.seed, "measure", family, wave.order)))
    return values
