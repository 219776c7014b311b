"""The study's config (``pipelines/<study>/study.toml``): loading and checking it (:mod:`.config`),
the measure metadata the outputs carry (:mod:`.metadata`) and the template ``impactstudy init`` writes
(:mod:`.template`). Every stage reads it; it imports no stage.
"""
