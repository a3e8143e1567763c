"""What the archive screen shows of an index: its file rows, and the messages its loader posts."""

from __future__ import annotations

import threading

from textual.message import Message

from app.core.format import fmt_bytes
from app.tui.widgets.virtual_table import Column, Row
from pools import IndexEntry
from pools.text import shown

MARK = "●"
FILE_COLUMNS = [
    Column("mark", MARK, 1),
    Column("id", "Id", 8, "right"),
    Column("name", "Name", None, min_width=10),
    Column("offset", "Offset", 11, "right", drop=1),
    Column("size", "Size", 9, "right"),
    Column("sha256", "SHA-256", None, min_width=10, drop=2),  # too narrow: hashes go first
]
UNRECOGNIZED_COLUMNS = [Column("name", "Name", None, min_width=16),
                        Column("reason", "Reason", None, min_width=16)]
OFFSET = 3  # the offset column: the files' order


def _row_offset(row: Row) -> int:
    return row.values[OFFSET]


def file_row(entry: IndexEntry, marked: bool = False, style: str | None = None) -> Row:
    """One file of the index; names and hashes come from the dataset, so they are escaped."""
    return Row(entry.name,
               (MARK if marked else "", str(entry.resource_id), shown(entry.name),
                f"{entry.offset:,}", fmt_bytes(entry.size), shown(entry.sha256 or "–", 64)),
               (marked, entry.resource_id, entry.name, entry.offset, entry.size, entry.sha256),
               marked=marked, style=style, cell_styles={0: "accent"} if marked else {})


class FirstRows(Message):
    """The first page (smallest offsets) of a big index, before every row is built."""

    def __init__(self, n_files: int, entries: list[IndexEntry], rows: list[Row],
                 painted: threading.Event) -> None:
        super().__init__()
        self.n_files = n_files
        self.entries = entries
        self.rows = rows
        self.painted = painted
        """Set once the page is on screen (or was not wanted)."""

class Loaded(Message):
    def __init__(self, index, rows: list[Row], unrecognized: list[Row],
                 entries: dict[str, IndexEntry]) -> None:
        super().__init__()
        self.index = index
        self.rows = rows
        self.unrecognized = unrecognized
        self.entries = entries

class LoadFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error

class PreviewReady(Message):
    def __init__(self, key, content, error: str | None = None) -> None:
        super().__init__()
        self.key = key
        self.content = content
        self.error = error
