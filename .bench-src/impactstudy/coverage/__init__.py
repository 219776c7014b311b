"""The coverage simulation (``make coverage``): do the model stage's intervals cover and its tests hold size?

It sits above the stages, as the API does: it makes studies with the demo generator
(:func:`impactstudy.demo.long_frames`) and fits them with the model stage's own functions
(:func:`impactstudy.model.fitting.fit_measure`); no stage imports it. :mod:`.simulation` has the parts
(studies, truth, Dask tasks, summary, docs/coverage.md); ``python -m impactstudy.coverage`` runs it.
"""

from impactstudy.coverage.simulation import (
    Cell, fit_study, grid, judge, load, main, markdown, pseudo_truth, run, simulate, summarise, task_rows, truth,
)

__all__ = ["Cell", "fit_study", "grid", "judge", "load", "main", "markdown", "pseudo_truth", "run", "simulate",
           "summarise", "task_rows", "truth"]
