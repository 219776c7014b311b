"""The link stage: councils resolved against the register and the waves linked into
``panel_long``/``panel_wide`` (Parquet), ``panel_long.sav``, ``linkage.csv`` and
``linkage_summary.json`` (:mod:`.stage`).
"""
