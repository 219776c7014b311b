"""The ingest stage: each wave's raw file read, harmonised onto the study's measures and written as
``waves/<wave>.parquet``, with ``quarantine.csv`` and ``ingest_report.json`` (:mod:`.stage`). The
mapping itself is pure functions over DataFrames (:mod:`.harmonise`); :mod:`.columns` checks a file
has the columns the config names.
"""
