"""What the outputs record about each measure (label, type, levels, option set, aim), from the config.

The ingest stage writes it into each wave's Parquet metadata and the link stage into the panel's, so
labels the survey used travel with the data to the report.
"""

from __future__ import annotations

from typing import Any

from impactstudy.study.config import Study, Wave


def measure_metadata(study: Study, wave: Wave | None = None) -> dict[str, Any]:
    """Labels and types of the analysed measures (those asked in ``wave``, if given), kept with the data."""
    return {
        m.name: {
            "label": m.label,
            "type": m.type,
            "levels": list(m.levels),
            "level_labels": {f"{k:g}": v for k, v in m.level_labels.items()},
            "parent": m.parent,
            "option": m.option,
            "option_label": m.option_label,
            "aim": m.aim,
        }
        for m in study.analysed_measures
        if wave is None or wave.id in m.columns
    }
