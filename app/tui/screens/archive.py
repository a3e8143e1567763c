"""One archive: its files from the index, the names that map to no id, and a preview.

Its rows and the loader's messages are in :mod:`app.tui.screens.archive_rows`."""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from app.core.format import error_text, fmt_bytes, plural
from app.core.settings import AppSettings
from app.tui.dialogs.goto import FIRST_ROW, GoToIdScreen
from app.tui.dialogs.queue import QueueScreen
from app.tui.screens.archive_rows import (
    FILE_COLUMNS,
    OFFSET,
    UNRECOGNIZED_COLUMNS,
    FirstRows,
    Loaded,
    LoadFailed,
    PreviewReady,
    _row_offset,
    file_row,
)
from app.tui.widgets.preview_decode import MAX_PREVIEW_BYTES, decode_preview, preview_kind
from app.tui.widgets.preview_pane import PreviewPane
from app.tui.widgets.virtual_table import Row, VirtualTable
from pools import ArchiveInfo, IdRanges, IndexEntry
from pools.text import shown

PREVIEW_MIN_WIDTH = 100  # narrower terminals hide the preview until `p`
FIRST_PAGE = 100  # rows of a big index shown before the rest are built
FIRST_PAGE_WAIT_S = 2.0  # the most the rest waits for the first page to be painted


class ArchiveScreen(Screen):
    """Files of one archive (fast at tens of thousands of rows), unrecognized names, preview."""

    HELP_PLACE = "files"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("space", "mark", "Mark", id="mark"),
        Binding("b", "basket", "Basket", show=False, id="basket"),  # the title says "(b: basket)"
        Binding("q", "queue", "Queue", id="queue"),
        Binding("g", "goto", "Go to id", id="goto"),
        Binding("slash", "focus_filter", "Filter", show=False, id="filter"),  # its placeholder says (/)
        Binding("u", "show_unrecognized", "Unrecognized", id="unrecognized"),
        Binding("p", "toggle_preview", "Preview", show=False, id="preview"),  # in help (f1); 80 columns fit the rest
        Binding("i", "toggle_details", "Hashes", show=False),
        Binding("s", "sort", "Sort", show=False),
        Binding("r", "reverse", "Reverse", show=False),
    ]

    FirstRows = FirstRows
    Loaded = Loaded
    LoadFailed = LoadFailed
    PreviewReady = PreviewReady

    def __init__(self, pool, settings: AppSettings, archive: str, info: ArchiveInfo,
                 goto: int | None = None, goto_next: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.goto = goto
        """An id to highlight once the index is in (`g` from the archives screen)."""
        self.goto_next = goto_next
        """Further candidate archives of ``goto`` (several base levels), tried when not here."""
        self.highlighted_id: int | None = None
        self.show_details = False
        self.pool = pool
        self.settings = settings
        self.archive = archive
        self.info = info
        self.index = None
        self.entries: dict[str, IndexEntry] = {}
        self._marked_here = frozenset()  # a snapshot for the loader thread (the basket is the app's)
        self._preview_cancel = threading.Event()
        self._preview_key = None
        self._first_painted = threading.Event()
        self.title = shown(archive, 120)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{shown(self.archive)} · loading index…", id="archive-info", markup=False)
        with Horizontal(id="archive-body"):
            with TabbedContent(id="archive-tabs"):
                with TabPane("Files", id="tab-files"):
                    yield Input(placeholder="filter: part of a name, an id or a sha256  (/)",
                                id="file-filter", compact=True)
                    yield VirtualTable(FILE_COLUMNS, id="files", empty_text="Loading the index…",
                                       vim_top=False)
                with TabPane("Unrecognized", id="tab-unrecognized"):
                    yield VirtualTable(UNRECOGNIZED_COLUMNS, id="unrecognized",
                                       empty_text="Every name maps to an id.", show_cursor=False,
                                       vim_top=False)
            yield PreviewPane(id="preview-pane")
        yield Footer()

    @property
    def marked(self) -> set[int]:
        """The app's basket of this dataset: marks stay when another archive opens."""
        return self.app.basket.for_repo(self.settings.repo).ids

    def on_screen_resume(self) -> None:
        self.sub_title = self.app.basket.label()

    def on_mount(self) -> None:
        self._marked_here = frozenset(self.marked)
        self.sub_title = self.app.basket.label()
        self.query_one("#files").focus()
        self.query_one("#preview-pane").display = self.app.size.width >= PREVIEW_MIN_WIDTH
        self.query_one(PreviewPane).show_message("Select a file to preview it.")
        self._load_index()

    def on_unmount(self) -> None:
        self._preview_cancel.set()
        self._first_painted.set()  # a loader waiting for the first page goes on (and sees it is cancelled)

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
        # rows are built here, off the event loop: an index can hold tens of thousands of files.
        # A big one shows its first page (the smallest offsets, where the sorted list starts)
        # first; building every entry and row takes longer than the 0.3 s a user waits for it.
        if index.n_files > FIRST_PAGE:
            first = index.first_entries(FIRST_PAGE)
            if worker.is_cancelled:
                return
            shown_first = self._first_painted
            marked = self._marked_here
            self.post_message(self.FirstRows(index.n_files, first, [file_row(e, e.resource_id in marked) for e in first],
                                             shown_first))
            # building the rest holds the GIL: let the event loop paint the first page before
            shown_first.wait(FIRST_PAGE_WAIT_S)
            if worker.is_cancelled:
                return
        entries = index.entries
        marked = self._marked_here  # ids marked in other archives, or before: their marks show here too
        rows = sorted((file_row(e, e.resource_id in marked) for e in entries), key=_row_offset)
        unrecognized = [Row(name, (shown(name), shown(reason))) for name, reason in index.unrecognized]
        by_name = {e.name: e for e in entries}
        if not worker.is_cancelled:
            self.post_message(self.Loaded(index, rows, unrecognized, by_name))

    @on(FirstRows)
    def _first_rows(self, message: FirstRows) -> None:
        if self.index is not None:  # the whole index is in already
            message.painted.set()
            return
        self.call_after_refresh(message.painted.set)
        self.entries = {e.name: e for e in message.entries}
        files = self.query_one("#files", VirtualTable)
        files.set_rows(message.rows)
        files.sort_by("offset", reverse=False)
        self.query_one("#archive-tabs", TabbedContent).get_tab("tab-files").label = \
            f"Files (first {len(message.rows):,} of {message.n_files:,}…)"
        self.query_one("#archive-info", Static).update(
            f"{shown(self.archive)} · {plural(message.n_files, 'file')} · loading the rest of the index…")
        self._preview_current()

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.index = message.index
        self.entries = message.entries
        files = self.query_one("#files", VirtualTable)
        files.empty_text = "No file in this archive maps to an id."
        if files.sort_column is None:  # no first page: sorted as the first page would have been
            files.sort_column, files.sort_reverse = OFFSET, False
        # the rows come sorted by offset; a sort the user chose on the first page is kept
        files.set_rows(message.rows, presorted=files.sort_column == OFFSET and not files.sort_reverse)
        self.query_one("#unrecognized", VirtualTable).set_rows(message.unrecognized)
        tabs = self.query_one("#archive-tabs", TabbedContent)
        tabs.get_tab("tab-files").label = f"Files ({len(message.rows):,})"
        tabs.get_tab("tab-unrecognized").label = f"Unrecognized ({len(message.unrecognized):,})"
        self._update_info()
        if self.goto is not None:
            self._go_to_id(self.goto)
        self._preview_current()

    def _update_info(self) -> None:
        """One line; the full hashes only on `i` (they cost two of 24 lines otherwise)."""
        index = self.index
        if index is None:
            return
        span = f" ({index.id_min:,}…{index.id_max:,})" if index.id_min is not None else ""
        digest = shown(index.hash or "–", 64)
        lfs = shown(index.hash_lfs or self.info.lfs_sha256 or "–", 64)
        line = (f"{shown(self.archive)} · {fmt_bytes(index.filesize or self.info.size)} · "
                f"{plural(index.n_files, 'file')} · {plural(index.n_ids, 'id')}{span} · "
                f"{len(index.unrecognized):,} unrecognized")
        if self.show_details:
            text = f"{line}\nhash {digest}\nLFS  {lfs}"
        else:
            text = f"{line} · hash {digest[:8]} · LFS {lfs[:8]}  (i: full)"
        self.query_one("#archive-info", Static).update(text)

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
        pane = self.query_one(PreviewPane)
        if not pane.display:
            return
        row = self.query_one("#files", VirtualTable).cursor_row
        if row is None:
            return
        entry = self.entries.get(row.key)
        if entry is None or entry.name == self._preview_key:
            return
        self._preview_key = entry.name
        self._preview_cancel.set()
        self._preview_cancel = threading.Event()
        pane.set_title(f"{shown(entry.basename or entry.name, 200)} · {fmt_bytes(entry.size)}")
        if preview_kind(entry.name) is None:
            pane.show_message("No preview for this kind of file.")
            return
        if entry.size > MAX_PREVIEW_BYTES:
            pane.show_message("Too large to preview.")
            return
        pane.show_message("Loading…")
        self._fetch_preview(entry, self._preview_cancel, pane.max_side)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _fetch_preview(self, entry: IndexEntry, cancel: threading.Event, max_side: int) -> None:
        try:
            data = self.pool.read_file(self.archive, entry, cancel=cancel)
            content = decode_preview(entry.name, data, max_side)
        except ValueError as exc:  # the decoder's own one-line reasons (too large, unreadable)
            if not cancel.is_set():
                self.post_message(self.PreviewReady(entry.name, None, shown(str(exc))))
            return
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
        pane = self.query_one(PreviewPane)
        if message.error:
            pane.show_message(f"✗ {message.error}")
        elif isinstance(message.content, str):
            pane.show_text(message.content)
        else:
            pane.show_image(message.content)

    # ---- marks, go to id, queue --------------------------------------------------------

    def _restyle(self, rid: int) -> None:
        """Redraw every file of ``rid`` (its sidecars too) with its mark and highlight."""
        files = self.query_one("#files", VirtualTable)
        style = "accent" if rid == self.highlighted_id else None
        files.update_rows([file_row(e, rid in self.marked, style)
                           for e in self.index.by_id.get(rid, ())], resort=False)

    def restyle_all(self) -> None:
        """After the basket changed elsewhere (cleared): every row shows its mark as it is now."""
        if self.index is None:
            return
        files = self.query_one("#files", VirtualTable)
        marked = self.marked
        stale = [r for r in files.all_rows if r.marked != (self.entries[r.key].resource_id in marked)]
        files.update_rows([file_row(self.entries[r.key], not r.marked) for r in stale], resort=False)

    def action_basket(self) -> None:
        self.app.action_basket()

    def action_mark(self) -> None:
        """Mark (or unmark) the id under the cursor: all its files, then go to the next id."""
        files = self.query_one("#files", VirtualTable)
        row = files.cursor_row
        if row is None or self.index is None:
            return
        rid = self.entries[row.key].resource_id
        self.app.basket.for_repo(self.settings.repo).toggle(rid)
        self._restyle(rid)
        # `200.png` and `200.json` share an id: the next press marks the next id, not a sidecar
        rows = files.rows
        for i in range(files.cursor + 1, len(rows)):
            if self.entries[rows[i].key].resource_id != rid:
                files.cursor = i
                break
        self.sub_title = self.app.basket.label()

    def action_goto(self) -> None:

        self.app.push_screen(GoToIdScreen(), self._goto_chosen)

    def _goto_chosen(self, result: int | str | None) -> None:

        if result == FIRST_ROW:
            self.query_one("#files", VirtualTable).action_first()
        elif isinstance(result, int) and self.index is None:
            self.goto = result  # the index is still loading: gone to once it is in
        elif isinstance(result, int):
            self._go_to_id(result)

    def _go_to_id(self, rid: int) -> None:
        """Highlight ``rid``'s files here, or open the archive the layout puts it in."""
        self.goto = None
        if self.index is not None and rid in self.index.by_id:
            previous, self.highlighted_id = self.highlighted_id, rid
            if previous is not None:
                self._restyle(previous)
            self._restyle(rid)
            files = self.query_one("#files", VirtualTable)
            self.query_one("#archive-tabs", TabbedContent).active = "tab-files"
            if files.row_count < files.total_count:
                self.query_one("#file-filter", Input).value = ""
                files.set_filter("")
            first = min((e for e in self.index.by_id[rid]), key=lambda e: e.offset)
            files.move_cursor_to_key(first.name)
            files.focus()
            return
        if self.goto_next:
            nxt, *rest = self.goto_next
            self.app.switch_screen(ArchiveScreen(self.pool, self.settings, nxt,
                                                 self.app.archive_info(self.pool, nxt),
                                                 goto=rid, goto_next=tuple(rest)))
            return
        candidates = self._archives_of(rid)
        if candidates and self.archive not in candidates:
            self.app.switch_screen(ArchiveScreen(self.pool, self.settings, candidates[0],
                                                 self.app.archive_info(self.pool, candidates[0]),
                                                 goto=rid, goto_next=tuple(candidates[1:])))
            return
        self.notify(f"Id {rid:,} is in no archive of this dataset: it would be missing.",
                    title="Not found", severity="warning", timeout=4)

    def _archives_of(self, rid: int) -> list[str]:
        """The archives the layout puts ``rid`` in that the repo has (all, before the listing)."""
        try:
            candidates = self.pool.archives_for(rid)
        except Exception:  # a layout without an id -> archive rule
            return []
        known = self.app.known_archives(self.pool)
        return [a for a in candidates if known is None or a in known]

    def action_queue(self) -> None:

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
        tabs = self.query_one("#archive-tabs", TabbedContent)
        if isinstance(focused, Input) and focused.id == "file-filter":
            focused.value = ""
            self.query_one("#files").focus()
            return
        if tabs.active != "tab-files":
            tabs.active = "tab-files"
            self.query_one("#files").focus()
            return
        self.app.pop_screen()

    def action_toggle_preview(self) -> None:
        pane = self.query_one("#preview-pane")
        pane.display = not pane.display
        self._preview_key = None
        self._preview_current()

    def action_toggle_details(self) -> None:
        self.show_details = not self.show_details
        self._update_info()

    def action_focus_filter(self) -> None:
        self.query_one("#archive-tabs", TabbedContent).active = "tab-files"
        self.query_one("#file-filter").focus()

    def action_sort(self) -> None:
        table = self.query_one("#files", VirtualTable)
        table.sort_by(table.next_sort_column(first=1), reverse=False)

    def action_reverse(self) -> None:
        table = self.query_one("#files", VirtualTable)
        table.sort_by(table.sort_column if table.sort_column is not None else 1,
                      reverse=not table.sort_reverse)

    def action_show_unrecognized(self) -> None:
        # focus goes with the tab: a focused table in a hidden pane hands focus to the next
        # widget, the filter of the Files pane, which switched the tab straight back
        self.query_one("#archive-tabs", TabbedContent).active = "tab-unrecognized"
        self.query_one("#unrecognized").focus()

    @on(Input.Changed, "#file-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one("#files", VirtualTable).set_filter(event.value)

    @on(Input.Submitted, "#file-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#files").focus()
