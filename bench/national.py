"""The national-scale benchmark study: every English council, many respondents, waves and measures.

The demo (:mod:`impactstudy.demo`) replicates the original six-to-forty-council study. The benchmark
needs the national layout instead: all 152 upper-tier councils live on 2013-04-01, 200 respondent
seats each, 5 waves all in SPSS .sav files and 30 Likert measures. This module only writes that
layout's ``study.toml`` and an effect model for its measures; the data come from the demo's
generator (:func:`impactstudy.demo.generate`), so the generating model, attrition and deliberate
mess are the same. Wave ids and council columns are the demo's (baseline keyed by GSS code with a
name check, early impact by name, follow-ups by DfE number); each extra follow-up is a year later.

Because the generator draws each wave from its own random stream, ``waves=6`` writes the same first
five files byte for byte plus a sixth: the benchmark's "adding a wave" scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from impactstudy.demo import MODEL, EffectModel, generate

LEVELS = [1, 2, 3, 4, 5]
LABELS = ["Very ineffective", "Ineffective", "Neither effective nor ineffective", "Effective", "Very effective"]
FOLLOW_UP_START, FOLLOW_UP_END = date(2013, 6, 1), date(2014, 12, 31)


@dataclass(frozen=True)
class Scale:
    """How big the benchmark study is."""

    councils: int = 152
    respondents: int = 200
    waves: int = 5
    measures: int = 30


FULL = Scale()
TINY = Scale(councils=12, respondents=10, waves=3, measures=4)


def _wave_blocks(n: int) -> list[tuple[str, str]]:
    """(wave id, [[waves]] TOML block) for the first ``n`` waves."""
    blocks = [
        ("baseline", 'label = "Before the review"\nfile = "wave1_baseline.sav"\n'
                     "fieldwork_start = 2012-03-01\nfieldwork_end = 2013-09-30\n"
                     'council = "la_code"\ncouncil_check = "la_name"\n'),
        ("early_impact", 'label = "Early impact (about 3 months after)"\nfile = "wave2_early_impact.sav"\n'
                         "fieldwork_start = 2012-09-01\nfieldwork_end = 2014-01-31\ncouncil = \"la_name\"\n"),
    ]
    for k in range(1, n - 1):
        wave_id = "follow_up" if k == 1 else f"follow_up_{k}"
        start, end = FOLLOW_UP_START.replace(year=FOLLOW_UP_START.year + k - 1), FOLLOW_UP_END.replace(
            year=FOLLOW_UP_END.year + k - 1)
        blocks.append((wave_id, f'label = "Follow-up {k} (about {k} year{"s" if k > 1 else ""} after)"\nfile = "wave{k + 2}_{wave_id}.sav"\n'
                                f"fieldwork_start = {start}\nfieldwork_end = {end}\ncouncil = \"dfe_la\"\n"))
    common = 'respondent = "resp_id"\nrole = "role"\nsubmitted = "submitted_at"\n'
    return [(wave_id, f'[[waves]]\nid = "{wave_id}"\n{body}{common}') for wave_id, body in blocks[:n]]


def measure_names(scale: Scale) -> list[str]:
    return [f"eff_{i + 1:02d}" for i in range(scale.measures)]


def study_toml(scale: Scale) -> str:
    """The benchmark's study.toml: ``scale.measures`` Likert measures asked in every wave."""
    waves = _wave_blocks(scale.waves)
    follow_ups = [w for w, _ in waves if w.startswith("follow_up")]
    parts = [
        f'title = "National benchmark ({scale.councils} councils, {scale.respondents} respondents each, '
        f'{scale.waves} waves, {scale.measures} measures; synthetic)"\n',
        '[ingest]\nduplicates = "latest"\n',
        '[councils]\nfile = "councils.csv"\nkey = "council"\n'
        'covariates = { status = "category", review_date = "date" }\ngroup_by = ["status"]\n',
        *(block for _, block in waves),
        '[[aims]]\nid = "change"\ntitle = "What changed"\nintro = "Self-rated effectiveness over time."\n',
    ]
    for i, name in enumerate(measure_names(scale)):
        column = f"q{i + 1:02d}"
        columns = ", ".join(f'{w} = "{column}"' for w, _ in waves)
        reverse = ", ".join(f'"{w}"' for w in follow_ups)
        parts.append(
            f'[[measures]]\nname = "{name}"\nlabel = "Effectiveness: domain {i + 1}"\ntype = "likert"\naim = "change"\n'
            f"levels = {LEVELS}\nlabels = {LABELS!r}\n".replace("'", '"')
            + f'missing = {{ 8 = "Don\'t know", 9 = "Not applicable" }}\ncolumns = {{ {columns} }}\n'
            f"reverse = [{reverse}]\n"
        )
    parts.append("[models]\nfew_councils = 20\nflag_councils = 10\n\n"
                 '[models.time_since_intervention]\ndate = "review_date"\nknots = [6]\n\n[report]\nmin_cell = 5\n')
    return "\n".join(parts)


def effect_model(scale: Scale) -> EffectModel:
    """The demo's effect model, with base levels and gains spread over the benchmark's measures."""
    names = measure_names(scale)
    base = np.linspace(3.1, 3.6, len(names))
    gain = np.linspace(0.0, 0.5, len(names))
    return EffectModel(
        base={n: round(float(b), 4) for n, b in zip(names, base, strict=True)},
        gain={n: round(float(g), 4) for n, g in zip(names, gain, strict=True)},
        status_offset=MODEL.status_offset, status_gain=MODEL.status_gain, trajectory=MODEL.trajectory,
        total_sd=MODEL.total_sd, icc_council=MODEL.icc_council, icc_respondent=MODEL.icc_respondent,
        council_change_sd=MODEL.council_change_sd,
    )


def write(root: Path, scale: Scale = FULL, study: str = "national", seed: int = 20130401) -> dict[str, Any]:
    """Write the benchmark study's config and raw files under ``root``; the generator's summary."""
    return generate(Path(root), study, councils=scale.councils, seed=seed,
                    respondents=(scale.respondents, scale.respondents), config_text=study_toml(scale),
                    model=effect_model(scale), all_authorities=True)
