"""The machinery every stage runs on, below the stages: study folders (:mod:`.paths`), atomic writes
(:mod:`.atomic`), steps, the manifest, the study lock and code version (:mod:`.steps`), the no-op fast
path (:mod:`.lastrun`), raw-file readers (:mod:`.readers`), the panel reader (:mod:`.panel`) and shared
column names and DataFrame helpers (:mod:`.frames`). It imports no stage.
"""
