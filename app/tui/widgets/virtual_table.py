"""A read-only table that renders only the lines on screen (Textual's Line API).

DataTable builds every row up front (about 0.6 s for 40 000 rows, on the event loop); an archive's
file list can hold tens of thousands, so this table keeps plain tuples and draws the visible ones.
Sorting, a text filter, a cursor, marks and per-row/per-cell styles are all it needs to do.
What it holds is in :mod:`app.tui.widgets.table_rows`, how it draws in :mod:`app.tui.widgets.table_drawing`.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView

from app.tui.widgets.table_drawing import CELL_LIMIT, GAP, TableDrawing
from app.tui.widgets.table_rows import BarCell, Column, Row, _sort_key
from pools.text import shown

__all__ = ["BarCell", "CELL_LIMIT", "Column", "GAP", "Row", "VirtualTable"]


class VirtualTable(TableDrawing, ScrollView, can_focus=True):
    """Rows of strings, a fixed header, a cursor; sorted and filtered without rebuilding widgets."""

    COMPONENT_CLASSES = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--marked",
        "virtual-table--dim",
        "virtual-table--ok",
        "virtual-table--warn",
        "virtual-table--error",
        "virtual-table--accent",
        "virtual-table--primary",
        "virtual-table--secondary",
        "virtual-table--empty",
    }

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        width: 100%;  /* never sized by its columns: a flexible column fills what is left */
        & > .virtual-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .virtual-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .virtual-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .virtual-table--marked { color: $accent; text-style: bold; }
        & > .virtual-table--dim { color: $foreground-muted; }
        & > .virtual-table--ok { color: $success; }
        & > .virtual-table--warn { color: $warning; }
        & > .virtual-table--error { color: $error; }
        & > .virtual-table--accent { color: $accent; }
        & > .virtual-table--primary { color: $text-primary; }
        & > .virtual-table--secondary { color: $text-secondary; }
        & > .virtual-table--empty { color: $foreground-muted; text-style: italic; }
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("g", "vim_first", "First", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor = reactive(0, always_update=True, repaint=False)

    class _RowMessage(Message):
        """A message about the row with ``key`` (None: no row) of ``table``."""

        def __init__(self, table: VirtualTable, key: Hashable | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Highlighted(_RowMessage):
        """The cursor moved to a row."""

    class Selected(_RowMessage):
        """Enter (or a click) on a row."""

    class Scrolled(Message):
        """The rows on screen changed (scrolling); lets an owner load what became visible."""

        def __init__(self, table: VirtualTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> VirtualTable:
            return self.table

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, VirtualTable.Scrolled) and message.table is self.table

    class Sorted(Message):
        def __init__(self, table: VirtualTable, column: str, reverse: bool) -> None:
            super().__init__()
            self.table = table
            self.column = column
            self.reverse = reverse

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Iterable[Column] = (),
        *,
        empty_text: str = "",
        show_cursor: bool = True,
        vim_top: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = list(columns)
        self.empty_text = empty_text
        self.show_cursor = show_cursor
        self.vim_top = vim_top
        """`g` goes to the first row; off where the screen gives `g` to "go to id" (then `g g`)."""
        self._rows: list[Row] = []
        self._by_key: dict[Hashable, Row] = {}
        self._view: list[Row] = []
        self._filter = ""
        self._predicate: Callable[[Row], bool] | None = None
        self.sort_column: int | None = None
        self.sort_reverse = False
        self._widths: list[int] = []
        self._last_highlight: Hashable | None = object()

    # ---- data -------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Rows shown (after the filter)."""
        return len(self._view)

    @property
    def total_count(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> list[Row]:
        """Rows shown, in display order."""
        return self._view

    @property
    def all_rows(self) -> list[Row]:
        """Every row, the filtered-out ones too."""
        return self._rows

    @property
    def shown_empty_text(self) -> str:
        """What an empty table says: the filter hid every row, or there is none at all."""
        if self._rows and not self._view:
            what = f"“{shown(self._filter, 60)}”" if self._filter else "the filter"
            return f"No row matches {what} ({len(self._rows):,} hidden): esc clears the filter."
        return shown(self.empty_text, CELL_LIMIT)

    def get_row(self, key: Hashable) -> Row | None:
        return self._by_key.get(key)

    @property
    def cursor_key(self) -> Hashable | None:
        if 0 <= self.cursor < len(self._view):
            return self._view[self.cursor].key
        return None

    @property
    def cursor_row(self) -> Row | None:
        if 0 <= self.cursor < len(self._view):
            return self._view[self.cursor]
        return None

    def set_rows(self, rows: Iterable[Row], *, presorted: bool = False) -> None:
        """Replace every row; ``presorted``: they already are in the current sort's order (tens
        of thousands are then not sorted again on the event loop)."""
        keep = self.cursor_key
        self._rows = list(rows)
        self._by_key = {row.key: row for row in self._rows}
        self._rebuild(keep, presorted)

    def add_rows(self, rows: Iterable[Row]) -> None:
        self.update_rows(rows)

    def update_rows(self, rows: Iterable[Row], *, resort: bool = True) -> None:
        """Replace rows by key, append unknown keys; ``resort=False`` keeps the display order."""
        keep = self.cursor_key
        position = {row.key: i for i, row in enumerate(self._rows)}
        for row in rows:
            i = position.get(row.key)
            if i is None:
                position[row.key] = len(self._rows)
                self._rows.append(row)
            else:
                self._rows[i] = row
            self._by_key[row.key] = row
        if resort:
            self._rebuild(keep)
        else:
            self._view = [self._by_key[r.key] for r in self._view]
            self.refresh()

    def clear(self) -> None:
        self.set_rows([])

    def set_filter(self, text: str = "", predicate: Callable[[Row], bool] | None = None) -> None:
        keep = self.cursor_key
        self._filter = text.strip().lower()
        self._predicate = predicate
        self._rebuild(keep)

    def sort_by(self, column: str | int | None, reverse: bool | None = None) -> None:
        """Sort on a column (by key or index); calling again on the same column flips the order.

        The cursor goes back to the top: after a sort the user looks for the first rows.
        """
        keep = None
        if column is None:
            self.sort_column = None
        else:
            index = column if isinstance(column, int) else self._column_index(column)
            if reverse is None:
                reverse = (not self.sort_reverse) if index == self.sort_column else False
            self.sort_column = index
            self.sort_reverse = reverse
        self._rebuild(keep)
        if self.sort_column is not None:
            self.post_message(
                self.Sorted(self, self.columns[self.sort_column].key, self.sort_reverse)
            )

    def next_sort_column(self, first: int = 0) -> int:
        """The column ``s`` sorts by next: the one after the current, skipping hidden ones."""
        n = len(self.columns)
        i = first if self.sort_column is None else (self.sort_column + 1) % n
        for _ in range(n):
            if not self._widths or self._widths[i]:
                return i
            i = (i + 1) % n
        return i

    def _column_index(self, key: str) -> int:
        for i, col in enumerate(self.columns):
            if col.key == key:
                return i
        raise KeyError(key)

    def _rebuild(self, keep: Hashable | None, presorted: bool = False) -> None:
        view = self._rows
        if self._filter or self._predicate is not None:
            needle, pred = self._filter, self._predicate
            view = [
                r for r in view if (not needle or r.matches(needle)) and (pred is None or pred(r))
            ]
        else:
            view = list(view)
        if self.sort_column is not None and not presorted:
            col = self.sort_column
            view.sort(key=lambda r: _sort_key(r.sort_value(col)), reverse=self.sort_reverse)
            if self.sort_reverse:  # keep "not loaded yet" at the bottom either way
                loaded = [r for r in view if r.sort_value(col) is not None]
                view = loaded + [r for r in view if r.sort_value(col) is None]
        self._view = view
        index = 0
        if keep is not None:
            for i, row in enumerate(view):
                if row.key == keep:
                    index = i
                    break
        self._update_virtual_size()
        self.cursor = min(index, max(0, len(view) - 1))
        self.refresh()

    def visible_keys(self) -> list[Hashable]:
        """Keys of the rows on screen, top to bottom."""
        top = round(self.scroll_y)
        return [row.key for row in self._view[top: top + self._page()]]

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.post_message(self.Scrolled(self))

    def move_cursor_to_key(self, key: Hashable) -> bool:
        """Put the cursor on ``key``'s row and scroll it into view, now and once the table has
        its size (rows just set, a filter just cleared: the scroll range may not be known yet; a
        cursor already at that index would not scroll at all)."""
        for i, row in enumerate(self._view):
            if row.key == key:
                self.cursor = i
                self._scroll_cursor_into_view()
                self.call_after_refresh(self._scroll_cursor_into_view)
                return True
        return False

    def _update_virtual_size(self) -> None:
        # size the columns for the width left once a vertical scrollbar shows, so that a
        # scrollbar appearing never pushes the last column off screen
        width = self.container_size.width or self.size.width  # ScrollView: own size less gutter
        if len(self._view) + 1 > self.size.height and self.styles.overflow_y != "hidden":
            width -= self.styles.scrollbar_size_vertical
        self._widths = self._compute_widths(width)
        total = sum(w + GAP for w in self._widths if w) + 1
        self.virtual_size = Size(total, len(self._view) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    # ---- cursor -----------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._view) - 1)) if self._view else 0

    def watch_cursor(self, value: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        key = self.cursor_key
        if key != self._last_highlight:
            self._last_highlight = key
            self.post_message(self.Highlighted(self, key))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        if not self._view:
            return
        visible = self._page()
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= self._page()

    def action_page_down(self) -> None:
        self.cursor += self._page()

    def action_first(self) -> None:
        self.cursor = 0

    def action_vim_first(self) -> None:
        self.cursor = 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "vim_first":
            return self.vim_top  # False: the key goes on to the screen's own `g`
        return True

    def action_last(self) -> None:
        self.cursor = len(self._view) - 1

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        if y == 0:
            column = self._column_at(x + round(self.scroll_x))
            if column is not None:
                self.sort_by(column)
            return
        index = round(self.scroll_y) + y - 1
        if 0 <= index < len(self._view):
            if index == self.cursor or event.chain >= 2:
                self.cursor = index
                self.action_select()
            else:
                self.cursor = index

    def _column_at(self, x: int) -> int | None:
        left = 0
        for i, width in enumerate(self._widths):
            if not width:  # hidden
                continue
            right = left + GAP + width
            if left <= x < right:
                return i
            left = right
        return None
