"""One archive: its files from the index, the names that map to no id, and a preview."""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from app.format import error_text, fmt_bytes, plural
from app.settings import AppSettings
from app.widgets.image_preview import MAX_PREVIEW_BYTES, ImagePreview, decode_preview, preview_kind
from app.widgets.virtual_table import Column, Row, VirtualTable
from pools import ArchiveInfo, IdRanges, IndexEntry
from pools.text import shown, shown_lines

FILE_COLUMNS = [
    Column("id", "Id", 8, "right"),
    Column("name", "Name", None, min_width=10),
    Column("offset", "Offset", 11, "right"),
    Column("size", "Size", 9, "right"),
    Column("sha256", "SHA-256", None, min_width=10),
]
UNRECOGNIZED_COLUMNS = [Column("name", "Name", None, min_width=16),
                        Column("reason", "Reason", None, min_width=16)]
PREVIEW_MIN_WIDTH = 100  # narrower terminals hide the preview until `p`


class ArchiveScreen(Screen):
    """Files of one archive (fast at tens of thousands of rows), unrecognized names, preview."""

    BINDINGS = [
        Binding("escape", "back", "Archives", id="back"),
        Binding("space", "mark", "Mark", id="mark"),
        Binding("q", "queue", "Queue ids", id="queue"),
        Binding("p", "toggle_preview", "Preview", id="preview"),
        Binding("slash", "focus_filter", "Filter", show=False),
        Binding("s", "sort", "Sort", show=False),
        Binding("u", "show_unrecognized", "Unrecognized", show=False),
    ]

    class Loaded(Message):
        def __init__(self, index, rows: list[Row], unrecognized: list[Row]) -> None:
            super().__init__()
            self.index = index
            self.rows = rows
            self.unrecognized = unrecognized

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

    def __init__(self, pool, settings: AppSettings, archive: str, info: ArchiveInfo) -> None:
        super().__init__()
        self.pool = pool
        self.settings = settings
        self.archive = archive
        self.info = info
        self.index = None
        self.entries: dict[str, IndexEntry] = {}
        self.marked: set[int] = set()
        self._preview_cancel = threading.Event()
        self._preview_key = None
        self.title = shown(archive, 120)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{shown(self.archive)} · loading index…", id="archive-info", markup=False)
        with Horizontal(id="archive-body"):
            with TabbedContent(id="archive-tabs"):
                with TabPane("Files", id="tab-files"):
                    yield Input(placeholder="filter by name or id  (/)", id="file-filter", compact=True)
                    yield VirtualTable(FILE_COLUMNS, id="files", empty_text="Loading the index…")
                with TabPane("Unrecognized", id="tab-unrecognized"):
                    yield VirtualTable(UNRECOGNIZED_COLUMNS, id="unrecognized",
                                       empty_text="Every name maps to an id.", show_cursor=False)
            with Vertical(id="preview-pane"):
                yield Static("Preview", id="preview-title", markup=False)
                yield ImagePreview(id="preview")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#files").focus()
        self.query_one("#preview-pane").display = self.app.size.width >= PREVIEW_MIN_WIDTH
        self.query_one("#preview", ImagePreview).show_message("Select a file to preview it.")
        self._load_index()

    def on_unmount(self) -> None:
        self._preview_cancel.set()

    # ---- the index ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="archive-index", exit_on_error=False)
    def _load_index(self) -> None:
        worker = get_current_worker()
        try:
            index = self.pool.get_index(self.archive)
        except Exception as exc:
            self.post_message(self.LoadFailed(error_text(exc, self.settings.token)))
            return
        if index is None:
            self.post_message(self.LoadFailed("this archive has no index: its files cannot be read"))
            return
        # rows are built here, off the event loop: an index can hold tens of thousands of files
        rows = [
            Row(e.name, (str(e.resource_id), e.name, f"{e.offset:,}", fmt_bytes(e.size),
                         e.sha256 or "–"),
                (e.resource_id, e.name, e.offset, e.size, e.sha256))
            for e in index.entries
        ]
        unrecognized = [Row(name, (name, reason)) for name, reason in index.unrecognized]
        if not worker.is_cancelled:
            self.post_message(self.Loaded(index, rows, unrecognized))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        index = self.index = message.index
        self.entries = {e.name: e for e in index.entries}
        files = self.query_one("#files", VirtualTable)
        files.empty_text = "No file in this archive maps to an id."
        files.set_rows(message.rows)
        files.sort_by("offset", reverse=False)
        self.query_one("#unrecognized", VirtualTable).set_rows(message.unrecognized)
        tabs = self.query_one("#archive-tabs", TabbedContent)
        tabs.get_tab("tab-files").label = f"Files ({len(message.rows):,})"
        tabs.get_tab("tab-unrecognized").label = f"Unrecognized ({len(message.unrecognized):,})"
        span = f" ({index.id_min:,}…{index.id_max:,})" if index.id_min is not None else ""
        self.query_one("#archive-info", Static).update(shown_lines(
            f"{self.archive} · {fmt_bytes(index.filesize or self.info.size)} · "
            f"{plural(index.n_files, 'file')} · {plural(index.n_ids, 'id')}{span} · "
            f"{len(index.unrecognized)} unrecognized\n"
            f"hash {index.hash or '–'}\nLFS  {index.hash_lfs or self.info.lfs_sha256 or '–'}"))
        self._preview_current()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self.query_one("#files", VirtualTable).empty_text = f"✗ {message.error}"
        self.query_one("#files", VirtualTable).refresh()
        self.query_one("#archive-info", Static).update(f"{shown(self.archive)} · ✗ {message.error}")
        self.notify(message.error, title="Index not loaded", severity="error")

    # ---- preview --------------------------------------------------------------------------

    @on(VirtualTable.Highlighted, "#files")
    def _file_highlighted(self) -> None:
        self._preview_current()

    def _preview_current(self) -> None:
        if not self.query_one("#preview-pane").display:
            return
        row = self.query_one("#files", VirtualTable).cursor_row
        preview = self.query_one("#preview", ImagePreview)
        if row is None:
            return
        entry = self.entries.get(row.key)
        if entry is None or entry.name == self._preview_key:
            return
        self._preview_key = entry.name
        self._preview_cancel.set()
        self._preview_cancel = threading.Event()
        title = self.query_one("#preview-title", Static)
        title.update(f"{shown(entry.basename or entry.name, 200)} · {fmt_bytes(entry.size)}")
        if preview_kind(entry.name) is None:
            preview.show_message("No preview for this kind of file.")
            return
        if entry.size > MAX_PREVIEW_BYTES:
            preview.show_message("Too large to preview.")
            return
        preview.show_message("Loading…")
        self._fetch_preview(entry, self._preview_cancel)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _fetch_preview(self, entry: IndexEntry, cancel: threading.Event) -> None:
        try:
            data = self.pool.read_file(self.archive, entry, cancel=cancel)
            content = decode_preview(entry.name, data)
        except Exception as exc:
            if not cancel.is_set():
                self.post_message(self.PreviewReady(entry.name, None,
                                                    error_text(exc, self.settings.token)))
            return
        if not cancel.is_set():
            self.post_message(self.PreviewReady(entry.name, content))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        if message.key != self._preview_key:
            return
        preview = self.query_one("#preview", ImagePreview)
        if message.error:
            preview.show_message(f"✗ {message.error}")
        elif isinstance(message.content, str):
            preview.show_text(message.content)
        else:
            preview.show_image(message.content)

    # ---- marks and queue ------------------------------------------------------------------

    def action_mark(self) -> None:
        files = self.query_one("#files", VirtualTable)
        row = files.cursor_row
        if row is None or self.index is None:
            return
        rid = self.entries[row.key].resource_id
        if rid in self.marked:
            self.marked.discard(rid)
        else:
            self.marked.add(rid)
        for entry in self.index.by_id.get(rid, ()):
            other = files.get_row(entry.name)
            if other is not None:
                other.marked = rid in self.marked
        files.refresh()
        files.action_cursor_down()
        self.sub_title = f"{plural(len(self.marked), 'id')} marked" if self.marked else ""

    def action_queue(self) -> None:
        from app.screens.queue import QueueScreen

        ids = set(self.marked)
        if not ids:
            row = self.query_one("#files", VirtualTable).cursor_row
            if row is not None:
                ids = {self.entries[row.key].resource_id}
        text = str(IdRanges.of(ids)) if ids else ""
        self.app.push_screen(QueueScreen(self.pool, self.settings, text))

    # ---- the rest -------------------------------------------------------------------------

    def action_back(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.id == "file-filter":
            focused.value = ""
            self.query_one("#files").focus()
            return
        self.app.pop_screen()

    def action_toggle_preview(self) -> None:
        pane = self.query_one("#preview-pane")
        pane.display = not pane.display
        self._preview_key = None
        self._preview_current()

    def action_focus_filter(self) -> None:
        self.query_one("#archive-tabs", TabbedContent).active = "tab-files"
        self.query_one("#file-filter").focus()

    def action_sort(self) -> None:
        table = self.query_one("#files", VirtualTable)
        nxt = 0 if table.sort_column is None else (table.sort_column + 1) % len(table.columns)
        table.sort_by(nxt, reverse=False)

    def action_show_unrecognized(self) -> None:
        self.query_one("#archive-tabs", TabbedContent).active = "tab-unrecognized"
        # focus follows: left on the hidden files table, it would fall to the filter and the
        # tabs would switch back to Files
        self.query_one("#unrecognized").focus()

    @on(Input.Changed, "#file-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one("#files", VirtualTable).set_filter(event.value)

    @on(Input.Submitted, "#file-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#files").focus()
