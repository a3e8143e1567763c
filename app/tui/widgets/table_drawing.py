"""How a :class:`~app.tui.widgets.virtual_table.VirtualTable` draws: column widths, the header, one row.

A mixin of the table (it reads the table's columns, widths, rows, cursor and styles): only the
lines on screen are drawn, each cell escaped through :func:`pools.text.shown` whoever built it.
"""

from __future__ import annotations

from typing import Hashable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip

from app.tui.widgets.progress import text_bar
from app.tui.widgets.table_rows import BarCell, Row
from pools.text import shown

GAP = 1  # blank cells left of every column
CELL_LIMIT = 1000  # characters of a cell escaped for display (a cell is never wider than this)


class TableDrawing:
    """The drawing half of the table: geometry and the Line API's ``render_line``."""

    def _compute_widths(self, width: int) -> list[int]:
        """Each column's width; 0 for a column hidden because the table is too narrow for it."""
        shown_cols = self._columns_that_fit(width)
        fixed = sum(c.width or 0 for c in shown_cols) + GAP * len(shown_cols)
        flex = [c for c in shown_cols if c.width is None]
        spare = max(0, width - fixed - 1)
        # flexible columns share what is left evenly, never below their minimum, and never
        # more than what is left (a cell too many brings a scrollbar, which takes more cells)
        share = [c.min_width for c in flex]
        extra = spare - sum(share)
        if extra > 0 and flex:
            # level up from the narrowest: equal shares where the minimums allow
            target = (sum(share) + extra) // len(flex)
            grow = [max(0, target - w) for w in share]
            while sum(grow) > extra:
                target -= 1
                grow = [max(0, target - w) for w in share]
            share = [w + g for w, g in zip(share, grow)]
            left = extra - sum(grow)
            for i in range(left):
                share[i % len(share)] += 1
        flex_widths = iter(share)
        kept = {id(c) for c in shown_cols}
        return [0 if id(col) not in kept
                else col.width if col.width is not None else next(flex_widths) for col in self.columns]

    def _columns_that_fit(self, width: int) -> list:
        """The columns left once those with the highest ``drop`` are hidden until the rest fit."""
        cols = list(self.columns)

        def need() -> int:
            return sum((c.width if c.width is not None else c.min_width) + GAP for c in cols) + 1

        while need() > width:
            droppable = [c for c in cols if c.drop > 0]
            if not droppable:
                break
            top = max(c.drop for c in droppable)
            cols.remove([c for c in droppable if c.drop == top][-1])
        return cols

    def _fit(self, text: str, width: int, justify: str) -> str:
        if cell_len(text) > width:
            return set_cell_size(text, width - 1) + "…" if width > 1 else text[:width]
        pad = width - cell_len(text)
        return " " * pad + text if justify == "right" else text + " " * pad

    def _header_strip(self, base: Style) -> Strip:
        style = base + self.get_component_rich_style("virtual-table--header")
        segments = []
        for i, (col, width) in enumerate(zip(self.columns, self._widths)):
            if not width:  # hidden: the table is too narrow for it
                continue
            label = col.label
            if i == self.sort_column:
                label = f"{label} {'▼' if self.sort_reverse else '▲'}"
            segments.append(Segment(" " * GAP + self._fit(label, width, col.justify), style))
        segments.append(Segment(" ", style))
        return Strip(segments)

    def _row_strip(self, row: Row, index: int, base: Style) -> Strip:
        style = base
        if row.style:
            style += self.get_component_rich_style(f"virtual-table--{row.style}")
        if row.marked:
            style += self.get_component_rich_style("virtual-table--marked")
        is_cursor = self.show_cursor and index == self.cursor
        cursor_style = self.get_component_rich_style("virtual-table--cursor")
        segments = []
        for i, (col, width) in enumerate(zip(self.columns, self._widths)):
            if not width:  # hidden: the table is too narrow for it
                continue
            cell = row.cells[i] if i < len(row.cells) else ""
            cell_style = style
            extra = row.cell_styles.get(i)
            if extra:
                cell_style += self.get_component_rich_style(f"virtual-table--{extra}")
            if is_cursor:
                cell_style += cursor_style
            gap_style = style + cursor_style if is_cursor else style
            segments.append(Segment(" " * GAP, gap_style))
            if isinstance(cell, BarCell):
                text = text_bar(cell.fraction, width)
            else:  # cells hold remote names and reasons: escaped here, whoever built the row
                text = self._fit(shown(cell, CELL_LIMIT), width, col.justify)
            segments.append(Segment(text, cell_style))
        segments.append(Segment(" ", style + cursor_style if is_cursor else style))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if not self._widths:
            self._update_virtual_size()
        if y == 0:
            strip = self._header_strip(base)
        else:
            index = scroll_y + y - 1
            if 0 <= index < len(self._view):
                strip = self._row_strip(self._view[index], index, base)
            elif index == 0 and (self.empty_text or self._rows):
                empty = base + self.get_component_rich_style("virtual-table--empty")
                strip = Strip([Segment(" " * GAP + self.shown_empty_text, empty)])
            else:
                return Strip.blank(width, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def refresh_row(self, key: Hashable) -> None:
        for i, row in enumerate(self._view):
            if row.key == key:
                y = i - round(self.scroll_y) + 1
                if 0 < y < self.size.height:
                    self.refresh(Region(0, y, self.size.width, 1))
                return
