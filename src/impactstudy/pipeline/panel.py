"""Reading the linked long panel (``panel_long.parquet``) for the stages after link.

The panel has a row per respondent, wave and measure: millions of rows at national scale, most of
their text repeated (council codes, waves, measures, answer labels). Read as dictionary codes, that
text becomes pandas categoricals: reading takes half the time, and every group-by or comparison works
on small integer codes instead of hashing strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def read_long(path: Path, columns: Sequence[str] | None = None, measures: Sequence[str] | None = None) -> pd.DataFrame:
    """``columns`` of the panel (default: all), text columns as categoricals; with ``measures``, only those
    measures' rows."""
    schema = pq.read_schema(path)
    wanted = list(columns) if columns is not None else schema.names
    text = [c for c in wanted if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
    if measures is not None and not list(measures):
        return schema.empty_table().select(wanted).to_pandas()
    filters = [("measure", "in", list(measures))] if measures is not None else None
    return pq.read_table(path, columns=wanted, read_dictionary=text, filters=filters).to_pandas()
