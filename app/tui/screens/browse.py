"""A repo's archives: the tree listing first, then each archive's index summary as it arrives."""

from __future__ import annotations

import threading
from collections import deque

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from app.core.format import error_text, fmt_bytes, fmt_duration, plural
from app.core.settings import AppSettings, format_base_level
from app.tui.dialogs.goto import FIRST_ROW, GoToIdScreen
from app.tui.messages import ArchiveSummary
from app.tui.screens.archive import ArchiveScreen
from app.tui.screens.browse_loading import INDEX_WORKERS, SummaryLoading
from app.tui.screens.browse_rows import COLUMNS, PANEL_LIMIT, hint_for, summarize, summary_row
from app.tui.screens.query import QueryScreen
from app.tui.widgets.virtual_table import VirtualTable
from pools import ArchiveInfo
from pools.text import shown, shown_lines

__all__ = ["AUTO_LOAD_ALL", "BrowseScreen", "COLUMNS", "INDEX_WORKERS", "hint_for", "summarize", "summary_row"]

AUTO_LOAD_ALL = 256
"""Repos with at most this many archives get every index summary at once; bigger ones (real
datasets hold ~1000 archives, each index a few MB) load what is on screen, and `a` loads all."""


class BrowseScreen(SummaryLoading, Screen):
    """Archives of one repo, their index metadata filled in by background workers."""

    HELP_PLACE = "archives"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("escape", "back", "Datasets", id="back"),
        Binding("slash", "focus_filter", "Filter", id="filter"),
        Binding("s", "sort", "Sort", show=False, id="sort"),  # in help (f1): 80 columns fit the rest
        Binding("r", "reverse", "Reverse", show=False),
        Binding("q", "queue", "Queue ids", id="queue"),
        Binding("b", "basket", "Basket", show=False, id="basket"),
        Binding("m", "query_metadata", "Query", id="query-metadata"),
        Binding("g", "goto", "Go to id", id="goto"),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("a", "load_all", "Load all indexes", show=False),
        Binding("i", "toggle_details", "Hashes", show=False),
    ]

    class Listed(Message):
        def __init__(self, sha: str, archives: list[ArchiveInfo]) -> None:
            super().__init__()
            self.sha = sha
            self.archives = archives

    class Failed(Message):
        """Opening failed; ``listed`` when the archives were listed but their indexes refused."""

        def __init__(self, error: str, hint: str, listed: bool = False) -> None:
            super().__init__()
            self.error = error
            self.hint = hint
            self.listed = listed

    def __init__(self, pool, settings: AppSettings, archives: dict[str, ArchiveInfo] | None = None) -> None:
        """``archives``: where the tree listing goes, shared with whoever made the screen (the app
        answers the other screens' questions about the repo's archives from it)."""
        super().__init__()
        self.pool = pool
        self.settings = settings
        self.sha: str | None = None
        self.archives: dict[str, ArchiveInfo] = archives if archives is not None else {}
        self.summaries: dict[str, ArchiveSummary] = {}
        self.error: str | None = None
        self._wanted: deque[str] = deque()
        self._busy: set[str] = set()
        self._loaders = 0
        self.load_all = False
        self.show_details = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.title = shown(settings.repo or "", 120)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="dataset-info", markup=False)
        yield Input(placeholder="filter: part of an archive's name or hash  (/)", id="archive-filter",
                    compact=True)
        yield VirtualTable(COLUMNS, id="archives", empty_text="Listing archives…", vim_top=False)
        yield Static("", id="load-error", classes="error-panel", markup=False)
        yield Static("", id="archive-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#load-error").display = False
        self.query_one("#archives").focus()
        self._update_info()
        self._list_archives()

    def on_unmount(self) -> None:
        self._stop.set()

    # ---- loading ------------------------------------------------------------------------

    class ListingWait(Message):
        """The listing waits before trying again: ``seconds`` left, ``reason`` (attempt, error)."""

        def __init__(self, seconds: float, reason: str) -> None:
            super().__init__()
            self.seconds = seconds
            self.reason = reason

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, BrowseScreen.ListingWait)

    @work(thread=True, exclusive=True, group="listing", exit_on_error=False)
    def _list_archives(self) -> None:
        worker = get_current_worker()
        stop = self._stop

        def on_wait(seconds: float, reason: str) -> None:
            if not worker.is_cancelled:
                self.post_message(self.ListingWait(seconds, reason))

        try:
            sha = self.pool.resolve_revision(cancel=stop, on_wait=on_wait)
            archives = list(self.pool.list_archives())
        except Exception as exc:  # every failure becomes the error panel, never a crash
            if not worker.is_cancelled:
                self.post_message(self.Failed(error_text(exc, self.settings.token),
                                              hint_for(exc, self.settings.hub_label)))
            return
        if not worker.is_cancelled:
            self.post_message(self.Listed(sha, archives))

    @on(ListingWait)
    def _listing_waits(self, message: ListingWait) -> None:
        if self.archives or self.error:
            return
        # not "Listing archives…" for 20 s: which attempt, why, and when the next one starts
        table = self.query_one("#archives", VirtualTable)
        table.empty_text = (f"Listing archives… {shown(message.reason, 200)} · next try in "
                            f"{fmt_duration(message.seconds)}")
        table.refresh()

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        self.sha = message.sha
        self.archives.clear()
        self.archives.update((a.path, a) for a in message.archives)
        table = self.query_one("#archives", VirtualTable)
        base = self.settings.base_dir.strip("/") or "the repo"
        table.empty_text = f"No .tar archives under {base}/ at this revision: check the base dir."
        table.set_rows(summary_row(a, self.summaries.get(a.path)) for a in message.archives)
        self.load_all = self.load_all or len(message.archives) <= AUTO_LOAD_ALL
        if self.load_all:
            self._want([a.path for a in message.archives])
        else:
            self.call_after_refresh(self._want_visible)
        self._update_info()
        self._update_status()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        if self.error is not None:
            return
        self.error = message.error
        panel = self.query_one("#load-error", Static)
        what = "read the indexes of" if message.listed else "open"
        panel.update(shown_lines(
            f"✗ Could not {what} {self.settings.repo}\n\n{message.error}\n\n{message.hint}\n\n"
            "Esc: back to the dataset picker · ctrl+r: try again", PANEL_LIMIT))
        panel.display = True
        panel.set_class(message.listed, "-below-table")
        self.query_one("#archives").display = message.listed
        self.query_one("#archive-filter").display = message.listed
        self._update_info()
        self.notify(message.error, title="Cannot open the dataset", severity="error", timeout=8)

    # ---- display --------------------------------------------------------------------------

    def _update_info(self) -> None:
        s = self.settings
        where = f"{s.repo} @ {s.revision}"
        if self.sha:
            where += f" ({self.sha[:8]})"
        parts = [where]
        if s.idx_repo:
            parts.append(f"indexes from {s.idx_repo}")
        if s.archive_templates:
            parts.append("archives " + " then ".join(t.replace("{residue:03d}", "XYZ") for t in s.archive_templates))
        elif s.can_queue:
            parts.append(f"level {format_base_level(s.base_level)}")
        else:
            parts.append("browse only")
        if self.error and not self.archives:
            parts.append("not opened")
        elif self.archives:
            total = sum(a.size or 0 for a in self.archives.values())
            loaded = [x for x in self.summaries.values() if x.has_index and not x.error]
            parts.append(f"{plural(len(self.archives), 'archive')} · {fmt_bytes(total)}")
            if len(self.summaries) < len(self.archives):
                more = "" if self.load_all else " (a: load all)"
                parts.append(f"indexes {len(self.summaries)}/{len(self.archives)}{more}")
            else:
                parts.append(f"{sum(x.n_ids for x in loaded):,} ids in "
                             f"{sum(x.n_files for x in loaded):,} files")
        else:
            parts.append("listing…")
        parts.append(s.hub_label)
        self.query_one("#dataset-info", Static).update(shown(" · ".join(parts), PANEL_LIMIT))

    def _update_status(self) -> None:
        table = self.query_one("#archives", VirtualTable)
        key = table.cursor_key
        status = self.query_one("#archive-status", Static)
        if key is None:
            status.update("")
            return
        info = self.archives[key]
        summary = self.summaries.get(key)
        line = f"{shown(key)} · {fmt_bytes(info.size)}"  # archive paths come from the tree listing
        lfs_listed = shown(info.lfs_sha256 or "–", 64)
        if summary is None:
            status.update(f"{line} · index loading… · LFS {lfs_listed[:8]}")
        elif summary.error:
            status.update(f"{line} · index broken: {shown(summary.error, PANEL_LIMIT)}")
        elif not summary.has_index:
            status.update(f"{line} · no index in the index repo: its files cannot be read")
        else:
            span = (f" ({summary.id_min:,}…{summary.id_max:,})" if summary.id_min is not None else "")
            line += (f" · {plural(summary.n_files, 'file')} · {plural(summary.n_ids, 'id')}{span}"
                     f" · {plural(summary.n_unrecognized, 'unrecognized file')}")
            digest, lfs = shown(summary.hash or "–", 64), shown(summary.hash_lfs or "–", 64)
            if self.show_details:
                status.update(f"{line}\nhash {digest}\nLFS  {lfs}")
            else:  # two lines, not three, out of 24: the full hashes on `i`
                status.update(f"{line}\nhash {digest[:8]} · LFS {lfs[:8]}  (i: full hashes)")

    @on(VirtualTable.Highlighted, "#archives")
    def _highlighted(self, event: VirtualTable.Highlighted) -> None:
        self._update_status()
        if self.archives and not self.load_all:
            self._want_visible()
        elif event.key is not None and event.key not in self.summaries:
            self._want([event.key], front=True)  # the archive the user looks at jumps the queue

    @on(VirtualTable.Scrolled, "#archives")
    def _scrolled(self) -> None:
        if self.archives and not self.load_all:
            self._want_visible()

    @on(VirtualTable.Selected, "#archives")
    def _selected(self, event: VirtualTable.Selected) -> None:
        self.open_archive(event.key)

    def open_archive(self, archive: str) -> None:

        summary = self.summaries.get(archive)
        if summary is not None and summary.error:
            self.notify(summary.error, title="Broken index", severity="error")
            return
        self.app.push_screen(ArchiveScreen(self.pool, self.settings, archive, self.archives[archive]))

    @on(Input.Changed, "#archive-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one("#archives", VirtualTable).set_filter(event.value)

    @on(Input.Submitted, "#archive-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#archives").focus()

    # ---- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.id == "archive-filter":
            focused.value = ""
            self.query_one("#archives").focus()
            return
        self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#archive-filter").focus()

    def action_sort(self) -> None:
        table = self.query_one("#archives", VirtualTable)
        table.sort_by(table.next_sort_column(first=0), reverse=False)

    def action_reverse(self) -> None:
        table = self.query_one("#archives", VirtualTable)
        table.sort_by(table.sort_column or 0, reverse=not table.sort_reverse)

    def action_queue(self) -> None:
        self.app.action_queue()

    def action_basket(self) -> None:
        self.app.action_basket()

    def on_screen_resume(self) -> None:
        self.sub_title = self.app.basket.label()

    @property
    def marked(self) -> set[int]:
        return self.app.basket.for_repo(self.settings.repo).ids

    def action_toggle_details(self) -> None:
        self.show_details = not self.show_details
        self._update_status()

    def action_query_metadata(self) -> None:
        self.app.push_screen(QueryScreen(self.pool, self.settings))

    def action_goto(self) -> None:
        if self.error is not None and not self.archives:  # nothing to go to: say so, do not retry for 25 s
            self.notify(f"{self.settings.repo} did not open: {self.error}. esc picks another dataset; "
                        "ctrl+r tries again.", title="No archives", severity="warning", timeout=6)
            return
        self.app.push_screen(GoToIdScreen(), self._goto_chosen)

    def _goto_chosen(self, result: int | str | None) -> None:

        if result == FIRST_ROW:
            self.query_one("#archives", VirtualTable).action_first()
        elif isinstance(result, int):
            self.go_to_id(result)

    def go_to_id(self, rid: int) -> None:
        """Open the archive the layout puts ``rid`` in (loading its index), its files highlighted."""

        try:
            candidates = self.pool.archives_for(rid)
        except Exception:
            self.notify("This layout has no id → archive rule: open an archive and filter.",
                        title="Go to id", severity="warning", timeout=4)
            return
        present = [a for a in candidates if not self.archives or a in self.archives]
        if not present:
            where = ", ".join(shown(a) for a in candidates[:3]) or "no archive"
            self.notify(f"Id {rid:,} maps to {where}, which this repo does not have: it would be "
                        "missing.", title="Go to id", severity="warning", timeout=5)
            return
        first, *rest = present
        self.app.push_screen(ArchiveScreen(self.pool, self.settings, first,
                                           self.app.archive_info(self.pool, first),
                                           goto=rid, goto_next=tuple(rest)))

    def action_load_all(self) -> None:
        self.load_all = True
        table = self.query_one("#archives", VirtualTable)
        self._want([row.key for row in table.rows])
        self._update_info()

    def action_reload(self) -> None:
        self._stop.set()
        self._stop = threading.Event()
        with self._lock:
            self._wanted.clear()
            self._busy.clear()
        self.error = None
        self.summaries.clear()
        self.query_one("#load-error").display = False
        self.query_one("#archives").display = True
        self.query_one("#archive-filter").display = True
        self.query_one("#archives", VirtualTable).clear()
        self._update_info()
        self._list_archives()
