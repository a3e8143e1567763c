"""Queue a download: the id range (checked as you type), what it touches, where it goes."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static
from textual.worker import get_current_worker

from app.core.destination import destination_problem
from app.core.diagnose import diagnose_layout
from app.core.format import error_text, plural
from app.core.settings import AppSettings
from app.core.tables import caption_writer_for
from app.tui.cluster_side import queue_on_cluster
from app.tui.dialogs.keys import QUIT
from app.tui.widgets.range_input import RangeInput
from app.tui.widgets.toggles import StateCheckbox
from pools import IdRanges
from pools.text import shown, shown_lines

MAX_WORKERS = 64
OUTPUTS = [("files", "files"), ("webdataset shards", "webdataset"), ("parquet shards", "parquet")]
ARCHIVES_SHOWN = 4


def describe_preview(preview, known: set[str] | None = None) -> str:
    """Two lines: ids and archives touched, then indexes cached or still to fetch.

    ``known`` (the archives the tree listing showed) tells apart archives the layout would use
    but the repo does not have: their ids can only end up missing.
    """
    archives = list(preview.archives)
    absent: list[str] = []
    if known:
        absent = [a for a in archives if a not in known]
        archives = [a for a in archives if a in known]
    listed = ", ".join(shown(a, 120) for a in archives[:ARCHIVES_SHOWN])
    if len(archives) > ARCHIVES_SHOWN:
        listed += f", … (+{len(archives) - ARCHIVES_SHOWN:,})"
    first = f"{plural(preview.n_ids, 'id')} · {plural(len(archives), 'archive')}: {listed or '–'}"
    to_fetch = max(0, preview.indexes_to_fetch - len(absent))
    cached = max(0, len(archives) - to_fetch)
    second = f"indexes: {cached:,} cached, {to_fetch:,} to fetch"
    if absent:
        second += f" · {len(absent):,} more not in the repo (their ids will be missing)"
    return f"{first}\n{second}"


class QueueScreen(ModalScreen):
    """A dialog over the current screen; Queue submits a job and shows the downloads."""

    HELP_PLACE = "queue dialog"  # the help (f1) lists its keys first
    BINDINGS = [
        QUIT,
        Binding("escape", "dismiss_dialog", "Cancel", id="cancel"),
        Binding("ctrl+s", "queue", "Queue", id="queue"),
    ]

    class PreviewDone(Message):
        def __init__(self, ids: IdRanges, text: str, error: bool = False) -> None:
            super().__init__()
            self.ids = ids
            self.text = text
            self.error = error

    def __init__(self, pool, settings: AppSettings, ids_text: str = "", matches=None) -> None:
        super().__init__()
        self.pool = pool
        self.settings = settings
        self.ids_text = ids_text
        self.matches = matches  # a query's matches (app.tui.screens.query.Matches) instead of a range
        self.ids: IdRanges | None = None
        self.preview_text = ""

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(id="queue-dialog"):
            yield Static(f"Queue a download from {shown(s.repo)}", id="queue-title", markup=False)
            if self.matches is None:
                yield Label("Resource ids")
                yield RangeInput(self.ids_text, id="queue-range")
            else:
                yield Static(self.matches.label, id="queue-matches", markup=False)
                yield StateCheckbox("Captions: <id>.txt beside the images, or in each shard's samples",
                               id="queue-captions", compact=True)
            yield Static("", id="queue-preview", markup=False)
            with Horizontal(id="queue-options"):
                yield Label("Destination", classes="form-label")
                yield Input(self.app.last_destination, id="queue-dest", compact=True)
                yield Label("Workers", classes="form-label")
                yield Input(str(self.app.downloader_workers), id="queue-workers", type="integer",
                            compact=True)
            with Horizontal(id="queue-output"):
                yield Label("Output", classes="form-label")
                yield Select(OUTPUTS, value="files", allow_blank=False, id="queue-format", compact=True)
                yield Label("Shard size", classes="form-label")
                yield Input("10000", id="queue-shard-size", type="integer", compact=True)
                yield Label("Resize", classes="form-label")
                yield Input("", placeholder="none", id="queue-resize", type="integer", compact=True)
            if s.cluster:  # the config names a Dask cluster
                yield StateCheckbox(f"Run on the cluster {shown(s.cluster, 60)} (Workers: threads per Dask worker)",
                               id="queue-cluster", compact=True)
            yield Static("", id="queue-error", markup=False)
            with Horizontal(id="queue-buttons"):
                yield Button("Queue", id="queue-go", variant="primary", compact=True)
                yield Button("Cancel", id="queue-cancel", compact=True)
        yield Footer()  # the dialog's own keys, not those of the screen behind it

    def on_mount(self) -> None:
        if self.matches is not None:  # the Queue button, not the destination: a stray space must not wipe it
            self.query_one("#queue-go", Button).focus()
            self.query_one("#queue-preview", Static).update("working out the archives…")
            self._preview_matches()
        else:
            self.query_one(RangeInput).focus()
        if not self.settings.can_queue:
            self._error("This dataset's layout has no id → archive rule: it can be browsed only.")
            self.query_one("#queue-go", Button).disabled = True

    def _error(self, text: str) -> None:
        self.query_one("#queue-error", Static).update(shown_lines(text))

    # ---- live validation and preview ------------------------------------------------------

    @on(RangeInput.Changed)
    def _range_changed(self, event: RangeInput.Changed) -> None:
        self.ids = event.ids
        self.preview_failed = False
        preview = self.query_one("#queue-preview", Static)
        if event.ids is None:
            preview.update("")
            self.preview_text = ""
            return
        preview.update(f"{plural(len(event.ids), 'id')} · working out the archives…")
        self._preview(event.ids)

    @work(thread=True, exclusive=True, group="queue-preview", exit_on_error=False)
    def _preview(self, ids: IdRanges) -> None:
        worker = get_current_worker()
        try:
            preview = self.pool.preview(ids)
            known = self.app.known_archives(self.pool)
            text, failed = describe_preview(preview, known), False
            if known is None or not any(a in known for a in preview.archives):
                # sessions: a wrong layout is not silent (none of the archives exists)

                problem = diagnose_layout(self.pool, ids)
                if problem:
                    text, failed = f"✗ {problem}", True
        except Exception as exc:
            text, failed = f"✗ {error_text(exc, self.settings.token)}", True
        if not worker.is_cancelled:
            self.post_message(self.PreviewDone(ids, text, failed))

    @work(thread=True, exclusive=True, group="queue-preview", exit_on_error=False)
    def _preview_matches(self) -> None:
        worker = get_current_worker()
        try:
            ids = IdRanges.of(self.matches.ids())
            text = describe_preview(self.pool.preview(ids), self.app.known_archives(self.pool))
            failed = False
        except Exception as exc:
            ids, text, failed = None, f"✗ {error_text(exc, self.settings.token)}", True
        if not worker.is_cancelled:
            self.post_message(self.PreviewDone(ids, text, failed))

    @on(PreviewDone)
    def _preview_done(self, message: PreviewDone) -> None:
        if self.matches is not None:
            self.ids = message.ids
        if message.ids != self.ids:
            return  # the range changed since
        self.preview_text = message.text
        self.preview_failed = message.error
        preview = self.query_one("#queue-preview", Static)
        preview.update(message.text)
        preview.set_class(message.error, "-error")

    @on(RangeInput.Submitted)
    def _range_submitted(self) -> None:
        self.action_queue()

    @on(Input.Submitted, "#queue-dest, #queue-workers, #queue-shard-size, #queue-resize")
    def _option_submitted(self) -> None:
        self.action_queue()

    # ---- queue ----------------------------------------------------------------------------

    def action_queue(self) -> None:
        if not self.settings.can_queue:
            return
        if self.ids is None and self.matches is not None:
            self._error("Still working out which archives the matches are in…")
            return
        if self.ids is None:
            range_input = self.query_one(RangeInput)
            self._error(range_input.error or "Enter the ids to download, e.g. 1-500, 1000.")
            range_input.focus()
            return
        if getattr(self, "preview_failed", False):  # sessions: never queue what the preview gave up on
            self._error("The preview above gave up: fix the range or the dataset before queueing.")
            return
        dest = self.query_one("#queue-dest", Input).value.strip()
        workers_text = self.query_one("#queue-workers", Input).value.strip()
        try:
            workers = int(workers_text)
            if not 1 <= workers <= MAX_WORKERS:
                raise ValueError
        except ValueError:
            self._error(f"Workers must be a number from 1 to {MAX_WORKERS}.")
            return

        problem = destination_problem(dest)
        if problem:
            self._error(problem[0].upper() + problem[1:] + ".")
            return
        self._error("")
        name = f"query: {self.matches.query}"[:80] if self.matches is not None else None
        output = self._output()
        if output is False:
            return
        if self.settings.cluster and self.query_one("#queue-cluster", Checkbox).value:
            if output:
                self._error("Shards are written here, not on a cluster: untick the cluster or choose files.")
                return
            self._queue_on_cluster(dest, workers, name)
            return
        want_captions = self.matches is not None and self.query_one("#queue-captions", Checkbox).value
        if output:  # captions go into the samples
            view = self.app.queue_job(self.pool, self.ids, dest, workers, name=name, output=output,
                                      captions=self.matches.table if want_captions else None)
            if view is not None:
                self.app.pop_screen()
                self.app.action_downloads()
            return
        captions = None
        if want_captions:
            captions = caption_writer_for(self.app.downloader, self.matches.table, dest)
        view = self.app.queue_job(self.pool, self.ids, dest, workers, name=name)
        if captions is not None:
            captions.bind(view.job.id if view is not None else None)
        if view is None:
            return
        self.app.pop_screen()
        self.app.action_downloads()

    def _output(self) -> dict | None | bool:
        """The shards to write (None: files), or False with the problem shown."""
        fmt = self.query_one("#queue-format", Select).value
        resize_text = self.query_one("#queue-resize", Input).value.strip()
        size_text = self.query_one("#queue-shard-size", Input).value.strip()
        if fmt == "files":
            if resize_text:
                self._error("Resizing writes shards here: choose webdataset or parquet (or `download --resize`).")
                return False
            return None
        try:
            shard_size = int(size_text)
            resize = int(resize_text) if resize_text else None
            if shard_size < 1 or (resize is not None and not 1 <= resize <= 65535):
                raise ValueError
        except ValueError:
            self._error("Shard size must be a number of samples, resize a size in pixels (or empty).")
            return False
        return {"format": fmt, "shard_size": shard_size, "shard_bytes": None,
                "resize": [resize, "keep_ratio", False, None, 95] if resize else None}

    def _queue_on_cluster(self, dest: str, workers: int, name: str | None) -> None:
        if self.matches is not None and self.query_one("#queue-captions", Checkbox).value:
            self._error("Captions of a cluster job: use `cheesechaser-tui download --cluster … --captions`.")
            return

        queue_on_cluster(self.app, self.settings, self.pool, self.ids, dest, workers, name=name)
        self.app.notify(f"Sending {plural(len(self.ids), 'id')} to {self.settings.cluster}…", title="Cluster",
                        timeout=3)
        self.app.pop_screen()
        self.app.action_downloads()

    def action_dismiss_dialog(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#queue-go")
    def _go(self) -> None:
        self.action_queue()

    @on(Button.Pressed, "#queue-cancel")
    def _cancel(self) -> None:
        self.action_dismiss_dialog()
