"""The machinery every stage runs on, below the stages: study folders (:mod:`.paths`), atomic writes
(:mod:`.atomic`), steps, the manifest and the study lock (:mod:`.steps`), the checked plan
(:mod:`.plan`), per-stage code versions (:mod:`.code`), raw-file readers (:mod:`.readers`), the panel
reader (:mod:`.panel`) and shared column names and DataFrame helpers (:mod:`.frames`). It imports no stage.
"""
