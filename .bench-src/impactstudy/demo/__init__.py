"""The synthetic demo study with known truth (``impactstudy demo``), so a fresh clone runs every stage.

:func:`generate` writes a study's config, councils file, raw waves and ``truth.json``; :func:`long_frames`
gives the same answers as in-memory frames (from the same :func:`draw`); :func:`run` is
the command's entry point (:mod:`.generator`, whose docstring describes the generating model and the
deliberate mess). The parts, by what they generate: :mod:`.model` (the generating model and true
effects), :mod:`.sample` (councils), :mod:`.people` (respondents and submission times),
:mod:`.answers` (one generator per family of measures), :mod:`.mess` (the deliberate data problems),
:mod:`.files` (raw files as the config lays them out) and :mod:`.config_text` (the study.toml).
"""

from impactstudy.demo.generator import Draw, draw, generate, long_frames, run, study_config
from impactstudy.demo.model import DEFAULT_SEED, MODEL, EffectModel, true_effects

__all__ = ["DEFAULT_SEED", "MODEL", "Draw", "EffectModel", "draw", "generate", "long_frames", "run", "study_config",
           "true_effects"]
