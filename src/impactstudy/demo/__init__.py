"""The synthetic demo study with known truth (``impactstudy demo``), so a fresh clone runs every stage.

:func:`generate` writes a study's config, councils file, raw waves and ``truth.json``; :func:`run` is
the command's entry point (:mod:`.generator`, whose docstring describes the generating model and the
deliberate mess). The parts, by what they generate: :mod:`.model` (the generating model and true
effects), :mod:`.sample` (councils), :mod:`.people` (respondents and submission times),
:mod:`.answers` (one generator per family of measures), :mod:`.mess` (the deliberate data problems),
:mod:`.files` (raw files as the config lays them out) and :mod:`.config_text` (the study.toml).
"""

from impactstudy.demo.generator import generate, run
from impactstudy.demo.model import DEFAULT_SEED, MODEL, EffectModel, true_effects

__all__ = ["DEFAULT_SEED", "MODEL", "EffectModel", "generate", "run", "true_effects"]
