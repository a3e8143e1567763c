"""Query a dataset's metadata table: type a booru query, see the live count and the matching
posts, preview the selected one through its archive's index, queue the matches.

The table is opened in a thread worker (fetched once into the huggingface_hub cache). Counting
runs in an exclusive thread worker that first waits a short debounce, so typing a word costs one
query, not one per key; a new keystroke cancels the worker and interrupts its DuckDB query.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from app.core.format import error_text, fmt_bytes, plural
from app.core.settings import AppSettings
from app.core.tables import TableUsageError, open_repo_table
from app.tui.dialogs.queue import QueueScreen
from app.tui.widgets.image_preview import MAX_PREVIEW_BYTES, ImagePreview, decode_preview, preview_kind
from app.tui.widgets.virtual_table import Column, Row, VirtualTable
from pools.text import shown

DEBOUNCE = 0.25  # seconds of quiet typing before a count starts
ROWS_SHOWN = 500
PLACEHOLDER = "cat_ears solo -comic rating:g,s score:>=10 width:>=1024"

COLUMNS = [
    Column("id", "Id", 9, "right"),
    Column("rating", "Rating", 6),
    Column("score", "Score", 6, "right"),
    Column("size", "Size", 11, "right"),
    Column("tags", "Tags", None, min_width=12),
]


def row_of(post) -> Row:
    """A table row for one post; every value came from the table, so every one goes through shown()."""
    size = f"{post.width}×{post.height}" if post.width is not None and post.height is not None else "–"
    cells = (shown(post.id, 12), shown(post.rating if post.rating is not None else "–", 12),
             shown(post.score if post.score is not None else "–", 8), shown(size, 14),
             shown(post.tags or "", 400))
    return Row(post.id, cells, (post.id, post.rating, post.score, (post.width or 0) * (post.height or 0), post.tags))


class Matches:
    """What the queue dialog queues: the ids a query matched, and the table for captions."""

    def __init__(self, table, query: str, count: int):
        self.table = table
        self.query = query
        self.count = count

    @property
    def label(self) -> str:
        return f"{plural(self.count, 'post')} matching {shown(self.query or '(everything)', 120)}"

    def ids(self):
        return self.table.ids(self.query)


class QueryScreen(Screen):
    """The metadata table of the current dataset, queried as you type."""

    DEFAULT_CSS = """
    QueryScreen #query-source, QueryScreen #query-count { height: 1; padding: 0 1; background: $boost; }
    QueryScreen #query-count.-error { color: $error; }
    QueryScreen #query-input { border: none; margin: 0; height: 1; padding: 0 1; }
    QueryScreen #query-body { height: 1fr; }
    QueryScreen #query-rows { width: 1fr; }
    QueryScreen #query-preview-pane { width: 40; border-left: solid $primary 40%; }
    QueryScreen #query-preview-title { height: 1; padding: 0 1; color: $text-muted; }
    """

    HELP_PLACE = "query"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("escape", "back", "Archives", id="back"),
        Binding("ctrl+s", "queue", "Queue matches", id="queue"),
        Binding("ctrl+l", "focus_query", "Query", id="focus-query"),
    ]

    class TableReady(Message):
        def __init__(self, table) -> None:
            super().__init__()
            self.table = table

    class TableFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Fetching(Message):
        def __init__(self, done: int, total: int | None) -> None:
            super().__init__()
            self.done = done
            self.total = total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, QueryScreen.Fetching)

    class Indexing(Message):
        """How the one-off copy of a big table goes (rows copied of the total)."""

        def __init__(self, done: int, total: int | None) -> None:
            super().__init__()
            self.done = done
            self.total = total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, QueryScreen.Indexing)

    class Counted(Message):
        def __init__(self, query: str, count: int | None, rows: list, error: str = "") -> None:
            super().__init__()
            self.query = query
            self.count = count
            self.rows = rows
            self.error = error

    class PreviewReady(Message):
        def __init__(self, rid: int, content=None, error: str = "", title: str = "") -> None:
            super().__init__()
            self.rid = rid
            self.content = content
            self.error = error
            self.title = title

    def __init__(self, pool, settings: AppSettings, metadata: str | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.settings = settings
        self.metadata = metadata
        self.table = None
        self.query_text = ""
        self.count: int | None = None
        self._cursor = None
        self._cursor_lock = threading.Lock()
        self._preview_rid = None
        self._preview_cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(f"{shown(self.settings.repo, 80)} · opening the metadata table…"), id="query-source")
        yield Input(placeholder=PLACEHOLDER, id="query-input", disabled=True)
        yield Static("", id="query-count")
        with Horizontal(id="query-body"):
            yield VirtualTable(COLUMNS, empty_text="No posts to show yet.", id="query-rows")
            with Vertical(id="query-preview-pane"):
                yield Static("Preview", id="query-preview-title", markup=False)
                yield ImagePreview(id="query-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Query"
        self.sub_title = shown(self.settings.repo, 80)
        self.query_one("#query-preview", ImagePreview).show_message("Select a post to preview it.")
        self._open_table()

    def on_unmount(self) -> None:
        self._interrupt()
        self._preview_cancel.set()

    # ---- the table -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="query-open", exit_on_error=False)
    def _open_table(self) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int | None) -> None:
            if not worker.is_cancelled:
                self.post_message(self.Fetching(done, total))
        def indexing(done: int, total: int | None) -> None:
            if worker.is_cancelled:  # the screen closed: stop the copy (nothing is left behind)
                from pools.metadata.tagindex import IndexBuildCancelled  # lazy: start-up time (DuckDB)
                raise IndexBuildCancelled("the table copy was cancelled")
            self.post_message(self.Indexing(done, total))
        try:
            table = open_repo_table(self.pool.client, self.pool.data_repo_id,
                                    getattr(self.pool, "data_revision", "main"), metadata=self.metadata,
                                    on_progress=progress, on_index=indexing)
        except TableUsageError as exc:
            self.post_message(self.TableFailed(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - access denied, unreachable: one line on screen
            self.post_message(self.TableFailed(error_text(exc, self.settings.token)))
            return
        self.post_message(self.TableReady(table))

    @on(TableReady)
    def _table_ready(self, message: TableReady) -> None:
        self.table = message.table
        self.query_one("#query-source", Static).update(Text(f"metadata: {shown(message.table.source, 200)}"))
        box = self.query_one("#query-input", Input)
        box.disabled = False
        box.focus()
        self._start_count("", debounce=False)

    @on(Fetching)
    def _fetching(self, message: Fetching) -> None:
        if self.table is None:
            total = f" of {fmt_bytes(message.total)}" if message.total else ""
            self.query_one("#query-source", Static).update(
                Text(f"{shown(self.settings.repo, 80)} · fetching the metadata table: {fmt_bytes(message.done)}{total}"))

    @on(Indexing)
    def _indexing(self, message: Indexing) -> None:
        if self.table is None:
            of = f" of {message.total:,}" if message.total else ""
            self.query_one("#query-source", Static).update(
                Text(f"{shown(self.settings.repo, 80)} · copying the metadata table for fast queries (once): "
                     f"{message.done:,}{of} rows"))

    @on(TableFailed)
    def _table_failed(self, message: TableFailed) -> None:
        source = self.query_one("#query-source", Static)
        source.update(Text(f"✗ {shown(message.error, 300)}"))
        count = self.query_one("#query-count", Static)
        count.update(Text("No metadata table: queries need one (give --metadata, or add metadata.parquet)."))
        count.add_class("-error")

    # ---- counting as you type -------------------------------------------------------------

    @on(Input.Changed, "#query-input")
    def _changed(self, event: Input.Changed) -> None:
        self._start_count(event.value, debounce=True)

    @on(Input.Submitted, "#query-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self._start_count(event.value, debounce=False)

    def _start_count(self, text: str, debounce: bool) -> None:
        if self.table is None:
            return
        self.query_text = text
        self._interrupt()
        self.query_one("#query-count", Static).update(Text("counting…"))
        self._count(text, DEBOUNCE if debounce else 0.0)

    def _interrupt(self) -> None:
        with self._cursor_lock:
            cursor, self._cursor = self._cursor, None
        if cursor is not None:
            try:
                cursor.interrupt()
            except Exception:  # noqa: BLE001 - already finished or closed
                pass

    @work(thread=True, exclusive=True, group="query-count", exit_on_error=False)
    def _count(self, text: str, debounce: float) -> None:

        worker = get_current_worker()
        if debounce:
            time.sleep(debounce)  # a key typed meanwhile cancels this worker: only the last count runs
        if worker.is_cancelled:
            return
        from pools.metadata import QueryError  # lazy: start-up time (DuckDB)

        cursor = self.table.cursor()
        with self._cursor_lock:
            self._cursor = cursor
        try:
            count = self.table.count(text, cursor=cursor)
            rows = self.table.rows(text, limit=ROWS_SHOWN, cursor=cursor) if not worker.is_cancelled else []
        except QueryError as exc:
            if not worker.is_cancelled:
                self.post_message(self.Counted(text, None, [], str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - an interrupted query, a broken file
            if not worker.is_cancelled:
                self.post_message(self.Counted(text, None, [], error_text(exc, self.settings.token)))
            return
        finally:
            with self._cursor_lock:
                if self._cursor is cursor:
                    self._cursor = None
            cursor.close()
        if not worker.is_cancelled:
            self.post_message(self.Counted(text, count, rows))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.query != self.query_text:
            return  # typed on since
        label = self.query_one("#query-count", Static)
        label.set_class(bool(message.error), "-error")
        table = self.query_one("#query-rows", VirtualTable)
        if message.error:
            self.count = None
            label.update(Text(f"✗ {shown(message.error, 300)}"))
            return
        self.count = message.count
        more = f" · showing the first {len(message.rows):,}" if message.count > len(message.rows) else ""
        label.update(Text(f"{plural(message.count, 'post')} match{more} · ctrl+s queues them"))
        table.set_rows(row_of(post) for post in message.rows)
        table.empty_text = "No post matches."
        table.refresh()
        self._preview_current()

    # ---- preview through the archive's index ----------------------------------------------

    @on(VirtualTable.Highlighted, "#query-rows")
    def _highlighted(self) -> None:
        self._preview_current()

    def _preview_current(self) -> None:
        row = self.query_one("#query-rows", VirtualTable).cursor_row
        if row is None or row.key == self._preview_rid:
            return
        self._preview_rid = row.key
        self._preview_cancel.set()
        self._preview_cancel = threading.Event()
        self.query_one("#query-preview-title", Static).update(f"post {row.key}")
        self.query_one("#query-preview", ImagePreview).show_message("Loading…")
        self._fetch_preview(row.key, self._preview_cancel)

    @work(thread=True, exclusive=True, group="query-preview", exit_on_error=False)
    def _fetch_preview(self, rid: int, cancel: threading.Event) -> None:
        try:
            found = self.pool.locate(int(rid), cancel)
            if found is None:
                self.post_message(self.PreviewReady(rid, error="in no archive of this dataset (missing)"))
                return
            archive, entries = found
            images = [e for e in entries if preview_kind(e.name) == "image"] or \
                [e for e in entries if preview_kind(e.name)]
            if not images:
                self.post_message(self.PreviewReady(rid, error="no previewable file"))
                return
            entry = images[0]
            title = f"{shown(entry.basename or entry.name, 40)} · {shown(archive, 40)}"
            if entry.size > MAX_PREVIEW_BYTES:
                self.post_message(self.PreviewReady(rid, error="too large to preview", title=title))
                return
            content = decode_preview(entry.name, self.pool.read_file(archive, entry, cancel=cancel))
        except Exception as exc:  # noqa: BLE001 - one line in the pane
            if not cancel.is_set():
                self.post_message(self.PreviewReady(rid, error=error_text(exc, self.settings.token)))
            return
        if not cancel.is_set():
            self.post_message(self.PreviewReady(rid, content, title=title))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        if message.rid != self._preview_rid:
            return
        preview = self.query_one("#query-preview", ImagePreview)
        if message.title:
            self.query_one("#query-preview-title", Static).update(Text(message.title))
        if message.error:
            preview.show_message(f"post {message.rid}: {shown(message.error, 300)}")
        elif isinstance(message.content, str):
            preview.show_text(message.content)
        else:
            preview.show_image(message.content)

    # ---- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_query(self) -> None:
        self.query_one("#query-input", Input).focus()

    def action_queue(self) -> None:

        if self.table is None or self.count is None:
            self.notify("Type a query that matches something first.", severity="warning", timeout=3)
            return
        if self.count == 0:
            self.notify("No post matches: nothing to queue.", severity="warning", timeout=3)
            return
        self.app.push_screen(QueueScreen(self.pool, self.settings,
                                         matches=Matches(self.table, self.query_text, self.count)))
