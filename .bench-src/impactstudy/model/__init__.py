"""The model stage: change-over-time models fitted per measure (:mod:`.fitting`), the attrition model
and retention weights (:mod:`.attrition`), expectations against outcomes (:mod:`.expectations`),
written as the tidy tables under ``tables/`` and ``models.json`` (:mod:`.stage`). The estimators are
in :mod:`.stats`.
"""
