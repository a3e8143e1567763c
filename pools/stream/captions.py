"""Captions and metadata rows for samples, looked up a batch of ids at a time."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

from pools.text import plain_text


class Captions:
    """``lookup(ids)`` -> ``{id: (caption or None, row dict or None)}`` from a metadata table
    (one query per batch), a mapping id -> caption, or a callable id -> caption."""

    def __init__(self, lookup: Callable[[Sequence[int]], dict[int, tuple[str | None, dict | None]]]):
        self.lookup = lookup

    @classmethod
    def of(cls, source: Any) -> "Captions | None":
        if source is None:
            return None
        if hasattr(source, "tags_of") and hasattr(source, "info_of"):
            return cls(lambda ids: _from_table(source, ids))
        if isinstance(source, Mapping):
            return cls(lambda ids: {rid: (source[rid], None) for rid in ids if rid in source})
        if callable(source):
            return cls(lambda ids: {rid: (source(rid), None) for rid in ids})
        raise TypeError(f"captions must be a metadata table, a mapping or a callable, not {type(source).__name__}")


def _from_table(table, ids: Sequence[int]) -> dict[int, tuple[str | None, dict | None]]:
    from pools.metadata.captions import caption_text  # lazy: DuckDB, only when a table is given

    tags = table.tags_of(list(ids))
    rows = table.info_of(list(ids))
    out = {}
    for rid in ids:
        row = rows.get(rid)
        caption = caption_text(tags[rid]).strip() if rid in tags else None
        out[rid] = (caption, _plain(dataclasses.asdict(row)) if row is not None else None)
    return out


def _plain(row: dict) -> dict:
    """A row whose values JSON can hold (dates as text), without a table's control characters."""
    return {k: (plain_text(v) if isinstance(v, str) else v if v is None or isinstance(v, (int, float, bool))
                else plain_text(str(v))) for k, v in row.items()}
