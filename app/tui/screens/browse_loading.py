"""The archives screen's background loaders of index summaries: what is on screen first, a few at a time."""

from __future__ import annotations

from textual import work
from textual.worker import get_current_worker

from app.core.format import error_text
from app.tui.messages import ArchiveSummary, IndexLoaded
from app.tui.screens.browse_rows import FATAL, hint_for, summarize, summary_row
from app.tui.widgets.virtual_table import VirtualTable
from pools import IndexFormatError

INDEX_WORKERS = 4


class SummaryLoading:
    """A mixin of :class:`~app.tui.screens.browse.BrowseScreen`: queues archives, runs up to
    :data:`INDEX_WORKERS` loaders, folds each summary into the table as it arrives."""

    def _want(self, archives: list[str], front: bool = False) -> None:
        """Queue index summaries to load (``front``: before the others) and start loaders."""
        with self._lock:
            fresh = [a for a in archives if a not in self.summaries and a not in self._busy]
            if front:
                for archive in fresh:
                    try:
                        self._wanted.remove(archive)
                    except ValueError:
                        pass
                self._wanted.extendleft(reversed(fresh))
            else:
                queued = set(self._wanted)
                self._wanted.extend(a for a in fresh if a not in queued)
            start = min(INDEX_WORKERS - self._loaders, len(self._wanted))
            self._loaders += max(0, start)
        for _ in range(max(0, start)):
            self._load_indexes()

    def _want_visible(self) -> None:
        table = self.query_one("#archives", VirtualTable)
        keys = table.visible_keys()
        if table.cursor_key is not None:
            keys.insert(0, table.cursor_key)
        self._want(keys, front=True)

    def _next_wanted(self) -> str | None:
        with self._lock:
            while self._wanted:
                archive = self._wanted.popleft()
                if archive not in self._busy and archive not in self.summaries:
                    self._busy.add(archive)
                    return archive
            self._loaders -= 1  # this loader stops: nothing left to do
        return None

    @work(thread=True, group="indexes", exit_on_error=False)
    def _load_indexes(self) -> None:
        worker = get_current_worker()
        stop = self._stop
        while True:
            if worker.is_cancelled or stop.is_set():
                with self._lock:
                    self._loaders -= 1
                return
            archive = self._next_wanted()
            if archive is None:
                return
            try:
                summary = summarize(archive, self.pool.get_index(archive, cancel=stop))
            except IndexFormatError as exc:
                summary = ArchiveSummary(archive, None, 0, 0, None, None, None, None, 0,
                                         error=error_text(exc, self.settings.token))
            except FATAL as exc:
                # the same answer would come for every other archive: stop asking
                stop.set()
                summary = ArchiveSummary(archive, None, 0, 0, None, None, None, None, 0,
                                         error=error_text(exc, self.settings.token))
                self.post_message(self.Failed(summary.error, hint_for(exc, self.settings.hub_label),
                                              listed=True))
            except Exception as exc:
                if stop.is_set():
                    with self._lock:
                        self._busy.discard(archive)
                    continue
                summary = ArchiveSummary(archive, None, 0, 0, None, None, None, None, 0,
                                         error=error_text(exc, self.settings.token))
            self.post_message(IndexLoaded(summary))

    def on_index_loaded(self, message: IndexLoaded) -> None:
        summary = message.summary
        with self._lock:  # loaders read summaries under the lock
            self._busy.discard(summary.archive)
            self.summaries[summary.archive] = summary
        info = self.archives.get(summary.archive)
        if info is not None:
            self.query_one("#archives", VirtualTable).update_rows([summary_row(info, summary)])
        self._update_info()
        table = self.query_one("#archives", VirtualTable)
        if table.cursor_key == summary.archive:
            self._update_status()

    @property
    def loading_done(self) -> bool:
        return bool(self.archives) and len(self.summaries) >= len(self.archives)
