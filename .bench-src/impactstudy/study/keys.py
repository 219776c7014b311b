"""The settings a step reads, by name: what its manifest record hashes, key by key.

A step declares the keys of the loaded study it depends on, as dotted paths over :class:`Study`
(``"title"``, ``"models.flag_councils"``, ``"councils.group_by"``); through a tuple (waves, measures,
aims …) a path maps over its items, so ``"waves.label"`` is every wave's label in order. The names
are the study.toml keys, except where loading renames or moves them: ``[ingest] duplicates`` is
``duplicates``, ``[report] min_cell`` is ``min_cell``, a measure's ``labels`` are ``level_labels``, and
``measures`` are the expanded measures (one per option of an option set).

:func:`settings` returns ``{key: value}``; the manifest keeps one hash per key, so a stale reason
names the keys that changed, and a key a step does not declare never reruns it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from typing import Any

from impactstudy.study.config import Study


def plain(value: Any) -> Any:
    """``value`` as JSON-able data (dataclasses as dicts, tuples as lists, dates as ISO text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "raw"}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _select(value: Any, path: list[str], key: str) -> Any:
    if not path:
        return plain(value)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_select(item, path, key) for item in value]
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        return _select(value.get(head), rest, key)
    if not dataclasses.is_dataclass(value) or head not in {f.name for f in dataclasses.fields(value)}:
        names = sorted(f.name for f in dataclasses.fields(value)) if dataclasses.is_dataclass(value) else []
        raise KeyError(f"'{key}': {type(value).__name__} has no setting '{head}' (it has {', '.join(names)})")
    return _select(getattr(value, head), rest, key)


def settings(study: Study, *keys: str) -> dict[str, Any]:
    """``{key: value}`` for each dotted key of ``study`` (see the module docstring)."""
    return {key: _select(study, key.split("."), key) for key in keys}
