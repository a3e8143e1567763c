"""What a :class:`~app.tui.widgets.virtual_table.VirtualTable` holds: columns, rows, bar cells, sort keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence


@dataclass
class Column:
    key: str
    label: str
    width: int | None = None
    """Fixed width in cells; None shares what is left between the flexible columns."""
    justify: str = "left"
    min_width: int = 8
    drop: int = 0
    """When the table is too narrow for every column, the column with the highest ``drop`` is
    hidden first (hashes before names); 0: always shown, the table scrolls sideways instead."""


class BarCell(str):
    """A cell drawn as a progress bar as wide as its column (the string is what filters see)."""

    fraction: float | None

    def __new__(cls, fraction: float | None, text: str = "") -> BarCell:
        cell = super().__new__(cls, text)
        cell.fraction = fraction
        return cell


@dataclass
class Row:
    key: Hashable
    cells: Sequence[str]
    values: Sequence[Any] = ()
    """Raw values to sort on (same order as the columns); the cells are used when empty."""
    style: str | None = None
    """A component-class suffix for the whole row, e.g. ``"dim"`` -> ``virtual-table--dim``."""
    cell_styles: dict[int, str] = field(default_factory=dict)
    marked: bool = False

    def sort_value(self, column: int) -> Any:
        source = self.values if self.values else self.cells
        return source[column] if column < len(source) else None

    def matches(self, needle: str) -> bool:
        return any(needle in cell.lower() for cell in self.cells)


def _sort_key(value: Any) -> tuple:
    # None (not loaded yet) always sorts after real values, whatever their type
    if value is None:
        return (1, 0, "")
    if isinstance(value, (int, float)):
        return (0, 0, value)
    return (0, 1, str(value))
