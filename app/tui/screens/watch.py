"""Watch the downloads: overall progress, every job, every worker, and what went wrong."""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from app.core.downloads import DownloadsModel
from app.core.format import display_path, fmt_bytes, fmt_duration, fmt_rate, fmt_ratio, plural
from app.tui.messages import DownloadsChanged
from app.tui.screens.watch_rows import (
    CLUSTER_COLUMNS,
    JOB_COLUMNS,
    MISSING_COLUMNS,
    WAITING,
    WORKER_COLUMNS,
    cluster_rows,
    job_row,
    missing_rows,
    worker_row,
)
from app.tui.widgets.progress import BlockBar
from app.tui.widgets.virtual_table import Column, Row, VirtualTable
from pools.text import shown

UNRECOGNIZED_COLUMNS = [Column("job", "Job", 4, "right"), Column("archive", "Archive", 20),
                        Column("name", "Name", None), Column("reason", "Reason", None)]
FAILED_COLUMNS = [Column("job", "Job", 4, "right"), Column("id", "Id", 10, "right"),
                  Column("reason", "Reason", None)]

PANES_INTERVAL = 0.5  # seconds between two rebuilds of the error panes while jobs run
TICK = 1.0  # seconds between two redraws of the workers while one waits (its countdown moves)


class WatchScreen(Screen):
    """Everything the downloader is doing, refreshed at most ~10 times a second."""

    TITLE = "Downloads"

    HELP_PLACE = "downloads"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("c", "cancel_job", "Cancel job", id="cancel"),
        Binding("C", "cancel_all", "Cancel all", show=False),
        Binding("r", "retry", "Retry", id="retry"),
        Binding("q", "queue", "Queue more", id="queue"),
        Binding("h", "app.job_history", "History", id="history"),
        Binding("x", "app.export_ids", "Export ids", show=False, id="export"),
        Binding("i", "app.import_ids", "Import ids", show=False, id="import"),
        Binding("m", "pane('pane-missing')", "Missing", show=False),
        Binding("u", "pane('pane-unrecognized')", "Unrecognized", show=False),
        Binding("f", "pane('pane-failed')", "Failed", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._seen = -1
        self._jobs_shown: set[int] = set()
        self._missing_shown = "0"
        self._pane_counts: tuple = ()
        self._panes_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No download yet: open a dataset and press q to queue ids.", id="overall",
                     markup=False)
        yield BlockBar(id="overall-bar")
        yield VirtualTable(JOB_COLUMNS, id="jobs", empty_text="No job queued yet.")
        yield VirtualTable(WORKER_COLUMNS, id="workers", show_cursor=False)
        yield VirtualTable(CLUSTER_COLUMNS, id="cluster-workers", show_cursor=False)  # cluster jobs only
        with TabbedContent(id="panes"):
            with TabPane("Missing", id="pane-missing"):
                yield VirtualTable(MISSING_COLUMNS, id="missing", show_cursor=False,
                                   empty_text="No missing ids.")
            with TabPane("Unrecognized", id="pane-unrecognized"):
                yield VirtualTable(UNRECOGNIZED_COLUMNS, id="unrecognized-files",
                                   show_cursor=False, empty_text="No unrecognized names.")
            with TabPane("Failed", id="pane-failed"):
                yield VirtualTable(FAILED_COLUMNS, id="failed", empty_text="Nothing failed.")
        yield Footer()

    @property
    def model(self) -> DownloadsModel:
        return self.app.model

    def on_mount(self) -> None:
        self.query_one("#jobs").focus()
        self.refresh_view(force=True)
        self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        """A waiting worker's "resumes in 2:31" counts down even when no event comes."""
        if self.is_current and any(w.state in WAITING for w in self.model.workers.values()):
            self._refresh_workers()

    def _refresh_workers(self) -> None:
        model = self.model
        now = self.app.clock()
        self.query_one("#workers", VirtualTable).set_rows(
            worker_row(model.workers[w], now, model.number) for w in sorted(model.workers))
        cluster = self.query_one("#cluster-workers", VirtualTable)
        cluster.display = bool(model.cluster_workers)
        if model.cluster_workers:
            cluster.set_rows(cluster_rows(model))

    def on_screen_resume(self) -> None:
        self.refresh_view(force=True)

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        if self.is_current:
            self.refresh_view()

    def refresh_view(self, force: bool = False) -> None:
        model = self.model
        if not force and model.version == self._seen:
            return
        self._seen = model.version
        self._refresh_overall()
        now = self.app.clock()
        jobs = self.query_one("#jobs", VirtualTable)
        jobs.set_rows(job_row(j, now) for j in reversed(list(model.jobs.values())))
        new = set(model.jobs) - self._jobs_shown
        if new:
            # newest first: a new job takes the top row, and the cursor with it, so that `c`
            # never silently targets the finished job that used to be on top
            jobs.move_cursor_to_key(max(new))
            self._jobs_shown |= new
        self._refresh_workers()
        counts = (len(model.failed), len(model.unrecognized), model.missing_total)
        settled = not any(j.active for j in model.jobs.values())
        # the panes can hold 10^5 rows: while jobs run, rebuild them at most twice a second
        due = settled or time.monotonic() - self._panes_at >= PANES_INTERVAL
        if force or (counts != self._pane_counts and due):
            self._pane_counts = counts
            self._panes_at = time.monotonic()
            self._refresh_panes()
        self._refresh_pane_labels()  # the counts agree with the job rows on every refresh

    def _refresh_overall(self) -> None:
        model = self.model
        o = model.overall()
        bar = self.query_one("#overall-bar", BlockBar)
        bar.display = bool(model.jobs)
        if not model.jobs:
            return
        fraction = o.ids_done / o.ids_total if o.ids_total else 1.0
        eta = f" · ETA {fmt_duration(o.eta)}" if o.running or o.queued else ""
        bar.update(fraction, f"{100 * fraction:.0f}%{eta}")
        bar.set_class(not (o.running or o.queued), "-finished")
        state = (f"{plural(o.running, 'job')} running" if o.running else "idle")
        if o.queued:
            state += f", {o.queued:,} queued"
        self.query_one("#overall", Static).update(
            f"{state} · ids {fmt_ratio(o.ids_done, o.ids_total)} · {plural(o.files, 'file')} · "
            f"{fmt_bytes(o.nbytes)} · {fmt_rate(o.rate)}")

    def _refresh_panes(self) -> None:
        model = self.model
        missing, distinct, complete = missing_rows(model)
        # ids, each once even when jobs overlap; a floor when not all of them are listed
        self._missing_shown = f"{distinct:,}" if complete else f"{distinct:,}+"
        self.query_one("#missing", VirtualTable).set_rows(missing)
        self.query_one("#unrecognized-files", VirtualTable).set_rows(
            Row(i, (f"#{model.number(jid)}", shown(archive), shown(name), shown(reason)))
            for i, (jid, archive, name, reason) in enumerate(sorted(model.unrecognized)))
        self.query_one("#failed", VirtualTable).set_rows(
            Row((jid, rid), (f"#{model.number(jid)}", str(rid), shown(reason)), (jid, rid, reason), style="error")
            for (jid, rid), reason in sorted(model.failed.items()))

    def _refresh_pane_labels(self) -> None:
        model = self.model
        tabs = self.query_one("#panes", TabbedContent)
        # one job with missing ids (the usual case): its exact count, the same as its job row, on
        # every refresh; several overlapping jobs: the distinct ids of the last panes rebuild
        missing_jobs = [j for j in model.jobs.values() if j.missing]
        shown_count = f"{missing_jobs[0].missing:,}" if len(missing_jobs) == 1 else self._missing_shown
        tabs.get_tab("pane-missing").label = f"Missing ({shown_count})"
        tabs.get_tab("pane-unrecognized").label = f"Unrecognized ({len(model.unrecognized):,})"
        tabs.get_tab("pane-failed").label = f"Failed ({len(model.failed):,})"

    # ---- actions --------------------------------------------------------------------------

    def _selected_job(self) -> int | None:
        key = self.query_one("#jobs", VirtualTable).cursor_key
        return key if isinstance(key, int) else None

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_cancel_job(self) -> None:
        job_id = self._selected_job()
        if job_id is None:
            self.notify("No job selected.", timeout=2)
            return
        self.app.cancel_job(job_id)

    def action_cancel_all(self) -> None:
        self.app.cancel_all()

    def action_retry(self) -> None:
        failed_table = self.query_one("#failed", VirtualTable)
        job_id = None
        if self.focused is failed_table and failed_table.cursor_key is not None:
            job_id = failed_table.cursor_key[0]
        else:  # the job under the cursor: its failed and not reached ids
            job_id = self._selected_job()
        self.app.retry_failed(job_id)

    def action_queue(self) -> None:
        self.app.action_queue()

    def action_pane(self, pane: str) -> None:
        self.query_one("#panes", TabbedContent).active = pane

    @on(VirtualTable.Selected, "#jobs")
    def _job_selected(self, event: VirtualTable.Selected) -> None:
        view = self.model.jobs.get(event.key)
        if view is not None:
            self.notify(f"{view.repo} · {view.ids_text}\n→ {display_path(view.dst_dir)}\n{view.state}"
                        + (f": {view.error}" if view.error else ""),
                        title=f"Job #{view.number}", timeout=5)
