"""The Textual app: owns the engine objects (downloader, demo Hub) and the screens' navigation.

Screens stack as the user goes deeper: dataset picker -> archives -> one archive; the downloads
screen and the dialogs are pushed on top from anywhere. Engine events reach the UI through
:class:`app.tui.messages.EventPump` and are folded into :class:`app.core.downloads.DownloadsModel`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from app.core.downloads import DownloadsModel, JobView
from app.core.format import display_path, fmt_counts, plural
from app.core.settings import AppSettings
from app.hub.demo_posts import DEMO_BASE_DIR, DEMO_BASE_LEVEL, DEMO_REPO
from app.tui.basket_side import BasketMixin
from app.tui.cluster_side import shutdown_clusters
from app.tui.dialogs.basket import Basket
from app.tui.dialogs.help import HelpScreen
from app.tui.dialogs.palette import SafeCommandPalette
from app.tui.dialogs.queue import QueueScreen
from app.tui.messages import DemoFailed, DemoReady, DownloadsChanged, EngineEventsReady, EventPump
from app.tui.screens.browse import BrowseScreen
from app.tui.screens.picker import PickerScreen
from app.tui.screens.query import QueryScreen
from app.tui.screens.watch import WatchScreen
from app.tui.session_side import SessionsMixin
from pools import ArchiveInfo, Downloader, IdRanges, PoolError
from pools.engine.job import JobLike
from pools.shards.tracked import ShardJob
from pools.text import shown, shown_lines

FLUSH_INTERVAL = 0.1  # seconds between two folds of engine events into the model (~10 Hz)


class CheesechaserApp(BasketMixin, SessionsMixin, App[int]):
    """Browse indexed-tar datasets on a Hub, queue id ranges, watch the workers."""

    TITLE = "cheesechaser"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("f1", "help", "Help", id="help"),
        Binding("question_mark", "help", "Help", show=False, id="help-alt"),
        Binding("ctrl+d", "downloads", "Downloads", id="downloads"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        _quiet_hub_client()
        self.settings = settings
        self.clock = settings.clock
        self.model = DownloadsModel(clock=settings.clock)
        self.model.set_worker_count(settings.workers)
        self.pump = EventPump(lambda: self.post_message(EngineEventsReady()))
        self._downloader: Downloader | None = None
        self._downloader_lock = threading.Lock()
        self._demo_server = None
        self._demo_endpoint: str | None = None
        self._demo_starting = False
        self._last_flush = 0.0
        self._flush_timer = None
        self.current_pool = None
        self.basket = Basket()  # ids marked with space, across archives
        self.current_settings: AppSettings | None = None
        self.listing: dict[str, ArchiveInfo] = {}  # the current pool's archives, once listed

    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast of the app lands here (a screen's ``notify`` calls the app's).

        Messages quote remote names and errors: they are escaped (``pools.text``) and never
        read as markup, whatever ``markup`` says (Textual passes ``markup=True`` by default).
        """
        super().notify(shown_lines(message, limit=300, max_lines=12), title=shown(title, 120),
                       severity=severity, timeout=timeout, markup=False)

    def action_help_quit(self) -> None:
        """Textual's ctrl+c hint, without the markup toasts no longer read."""
        for key, active in self.active_bindings.items():
            if active.binding.action in ("quit", "app.quit"):
                self.notify(f"Press {key} to quit the app", title="Do you want to quit?")
                return

    # ---- start ----------------------------------------------------------------------------

    def on_mount(self) -> None:

        self.install_screen(WatchScreen(), "downloads")
        self.push_screen(PickerScreen(self.settings))
        if self.settings.demo:
            self.open_demo()
        elif self.settings.repo:
            self.open_dataset(self.settings)
        self.offer_resume()  # sessions: what the last session left unfinished

    def open_dataset(self, settings: AppSettings) -> bool:
        """Open ``settings.repo`` in the archives screen; False (and a notice) when it cannot be.
        Ids marked in another dataset are not dropped without a question."""

        try:
            pool = settings.make_pool()
        except (ValueError, PoolError) as exc:
            self.notify(str(exc), title="Cannot open the dataset", severity="error")
            return False
        self.confirm_basket_change(settings.repo, f"Opening {settings.repo}",
                                   lambda: self._open_pool(pool, settings))
        return True

    def _open_pool(self, pool, settings: AppSettings) -> None:
        self.basket.for_repo(settings.repo)
        self.current_pool = pool
        self.current_settings = settings
        self.listing = {}  # the archives screen fills it with the repo's tree listing
        self.action_pick_dataset()
        self.push_screen(BrowseScreen(pool, settings, self.listing))

    # ---- the demo -------------------------------------------------------------------------

    def open_demo(self) -> None:
        """Write the demo dataset (once), serve it on a loopback Hub in this process, open it."""
        if self._demo_endpoint is not None:
            self._open_demo_repo(self._demo_endpoint)
            return
        if self._demo_starting:
            return
        self._demo_starting = True
        self.notify("Preparing the demo dataset and its loopback Hub…", title="Demo", timeout=3)
        self._start_demo()

    @work(thread=True, exclusive=True, group="demo", exit_on_error=False)
    def _start_demo(self) -> None:
        from app.hub.demo import (  # lazy: start-up time (DuckDB, Pillow: --demo only)
            demo_cache_dir,
            write_demo,
        )
        from app.hub.server import HubServer  # lazy: start-up time, as above

        try:
            root = Path(self.settings.demo_root or demo_cache_dir())
            write_demo(root)
            server = HubServer(root, host="127.0.0.1", port=0)
            server.start()
        except Exception as exc:  # a full disk or a busy port must end in a message, not a crash
            self.post_message(DemoFailed(f"{type(exc).__name__}: {exc}"))
            return
        self._demo_server = server
        self.post_message(DemoReady(server.url))

    def on_demo_ready(self, message: DemoReady) -> None:
        self._demo_starting = False
        self._demo_endpoint = message.endpoint
        self._open_demo_repo(message.endpoint)
        self._resume_pending()  # jobs of the demo waiting for its Hub (sessions)

    def on_demo_failed(self, message: DemoFailed) -> None:
        self._demo_starting = False
        self.notify(message.error, title="The demo could not start", severity="error", timeout=10)

    def _open_demo_repo(self, endpoint: str) -> None:

        settings = self.settings.with_repo(
            repo=DEMO_REPO, idx_repo=None, revision="main", idx_revision=None,
            base_dir=DEMO_BASE_DIR, base_level=DEMO_BASE_LEVEL, token=None, endpoint=endpoint,
            demo=True, layout="increment-id", dataset_class=None,
            endpoint_label=self.settings.endpoint_label or "demo hub (loopback)",
        )
        self.open_dataset(settings)

    @property
    def demo_endpoint(self) -> str | None:
        return self._demo_endpoint

    # ---- downloads ------------------------------------------------------------------------

    @property
    def downloader(self) -> Downloader:
        with self._downloader_lock:
            if self._downloader is None:
                self._downloader = Downloader(max_workers=self.settings.workers, on_event=self.pump,
                                              retry=self.settings.retry)
            return self._downloader

    def known_archives(self, pool) -> set[str] | None:
        """The archives the tree listing showed for ``pool`` (None before it was listed)."""
        if pool is not self.current_pool or not self.listing:
            return None
        return set(self.listing)

    def archive_info(self, pool, archive: str):
        """What the tree listing said about ``archive`` (a bare record before the listing)."""
        found = self.listing.get(archive) if pool is self.current_pool else None
        return found or ArchiveInfo(archive, None)

    @property
    def downloader_workers(self) -> int:
        return self._downloader.workers if self._downloader is not None else self.settings.workers

    def queue_job(self, pool, ids: IdRanges, dst_dir: str, workers: int | None = None,
                  name: str | None = None, *, retry_of: int | None = None,
                  session_id: int | None = None, output: dict | None = None,
                  captions=None) -> JobView | None:
        """Submit a job; returns its view, or None (with a notice) when the engine refused.
        ``output``: write shards (``pools.shards.tracked.output_options``) instead of files."""
        try:
            downloader = self.downloader
            if workers and workers != downloader.workers:
                downloader.set_workers(workers)
                self.model.set_worker_count(workers)
            if output:
                job = ShardJob(downloader, pool, ids, dst_dir, emit=self.pump, output=output, name=name or "",
                               captions=captions)
            else:
                job = downloader.submit(pool, ids, dst_dir, save_metainfo=True, name=name)
        except (PoolError, ValueError, OSError, RuntimeError) as exc:
            self.notify(str(exc), title="Job not queued", severity="error")
            return None
        view = self.track_job(job, pool, ids, downloader.workers, retry_of=retry_of, session_id=session_id)
        if output:
            job.start()  # its events reach a model that knows it
        self.notify(f"Job #{view.number}: {plural(len(ids), 'id')} into {display_path(job.dst_dir)}",
                    title="Queued", timeout=3)
        return view

    def track_job(self, job: JobLike, pool, ids: IdRanges, workers: int, *, retry_of: int | None = None,
                  session_id: int | None = None, before_flush=None) -> JobView:
        """A job just submitted, local or on a cluster: in the Downloads model and the session
        store, its events folded in. ``before_flush`` runs once it is in the model (a cluster
        job's events held until then are let through)."""
        view = self.model.add_job(job, pool, str(ids), len(ids), job.dst_dir, name=job.name)
        view.output = getattr(job, "output", None)
        self._session_job_added(view, pool, ids, workers, retry_of, session_id)
        if before_flush is not None:
            before_flush()
        self.flush_engine_events()
        return view

    def cancel_job(self, job_id: int) -> None:
        view = self.model.jobs.get(job_id)
        if view is None:
            return
        if view.active:
            view.job.cancel()
            self.notify(f"Cancelling job #{view.number}…", timeout=2)
        else:
            self.notify(f"Job #{view.number} is {view.state}: nothing to cancel.", timeout=3)

    def cancel_all(self) -> None:
        active = [j for j in self.model.jobs.values() if j.active]
        for view in active:
            view.job.cancel()
        if active:
            self.notify(f"Cancelling {plural(len(active), 'job')}…", timeout=2)
        else:
            self.notify("No job is running.", timeout=2)

    def retry_failed(self, job_id: int | None = None) -> list[JobView]:
        """Queue again whatever a job did not finish: its failed ids and those it never reached
        (see ``SessionsMixin.retry_unfinished``), of one job or of every finished job."""
        return self.retry_unfinished(job_id)

    def on_engine_events_ready(self, message: EngineEventsReady) -> None:
        # one flush per ~100 ms whatever the event rate: later events wait for the timer
        now = time.monotonic()
        wait = FLUSH_INTERVAL - (now - self._last_flush)
        if wait <= 0:
            self.flush_engine_events()
        elif self._flush_timer is None:
            self._flush_timer = self.set_timer(wait, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_timer = None
        self.flush_engine_events()

    def flush_engine_events(self) -> None:
        """Fold every buffered engine event into the model now and tell the screens."""
        self._last_flush = time.monotonic()
        events = self.pump.drain()
        finished = self.model.apply(events) if events else []
        if events:
            self._session_sync()  # every state change is written at once (app.core.sessions)
        for view in finished:
            self._notify_finished(view)
        self._update_sub_title()
        for screen in self.screen_stack:
            screen.post_message(DownloadsChanged())

    def _notify_finished(self, view: JobView) -> None:
        severity = "information"
        if view.state == "failed" or view.failed:
            severity = "error"
        elif view.missing or view.state == "cancelled":
            severity = "warning"
        what = view.outcome  # "failed" when every id it reached failed, "partial" when some did
        message = fmt_counts(view.downloaded, view.skipped, view.missing, view.failed)
        if view.error:
            message += f"\n{view.error}"
        self.notify(message, title=f"Job #{view.number} {what}", severity=severity, timeout=6)

    def _update_sub_title(self) -> None:
        overall = self.model.overall()
        if overall.running or overall.queued:
            pct = 100 * overall.ids_done / overall.ids_total if overall.ids_total else 0
            self.sub_title = f"downloading {pct:.0f}% · {plural(overall.running + overall.queued, 'job')}"
        elif self.model.jobs:
            outcomes: dict[str, int] = {}
            for job in self.model.jobs.values():
                outcomes[job.outcome] = outcomes.get(job.outcome, 0) + 1
            order = ("done", "partial", "failed", "cancelled")
            self.sub_title = ", ".join(f"{plural(outcomes[o], 'job')} {o}" for o in order if o in outcomes)
        else:
            self.sub_title = ""

    # ---- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "downloads":

            return not isinstance(self.screen, WatchScreen)  # hidden where it would do nothing
        return True

    def action_command_palette(self) -> None:

        if self.use_command_palette and not SafeCommandPalette.is_open(self):
            self.push_screen(SafeCommandPalette(id="--command-palette"))

    def action_help(self) -> None:

        if not isinstance(self.screen, HelpScreen):  # the keys of the screen it opens over first
            self.push_screen(HelpScreen(getattr(self.screen, "HELP_PLACE", None)))

    def action_downloads(self) -> None:

        if isinstance(self.screen, WatchScreen):
            return
        watch = self.get_screen("downloads")
        if watch in self.screen_stack:
            while self.screen is not watch:
                self.pop_screen()
            return
        self.push_screen("downloads")

    def action_pick_dataset(self) -> None:

        while len(self.screen_stack) > 2 and not isinstance(self.screen, PickerScreen):
            self.pop_screen()

    def action_queue(self) -> None:

        if self.current_pool is None:
            self.notify("Open a dataset first.", severity="warning", timeout=3)
            return
        if not isinstance(self.screen, QueueScreen):
            settings = self.current_settings or self.settings
            basket = self.basket.for_repo(settings.repo)  # the marked ids, from whatever archive
            self.push_screen(QueueScreen(self.current_pool, settings, str(basket.ranges()) if basket.ids else ""))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Open a dataset", "Back to the dataset picker", self.action_pick_dataset)
        yield SystemCommand("Open the demo dataset", "Serve demo/booru-mini on a loopback Hub",
                            self.open_demo)
        yield SystemCommand("Queue ids for download", "Enter an id range and queue a job",
                            self.action_queue)
        yield SystemCommand("Show downloads", "Workers, jobs, missing, unrecognized and failed ids",
                            self.action_downloads)
        yield SystemCommand("Cancel all jobs", "Stop every queued or running job", self.cancel_all)
        yield SystemCommand("Retry failed ids", "Queue again the failed and not reached ids of every job",
                            self.retry_failed)
        yield SystemCommand("Job history", "Every job of every session: re-run, resume, report",
                            self.action_job_history)
        yield SystemCommand("Resume unfinished jobs", "Jobs the last session left unfinished",
                            self.offer_resume)
        yield SystemCommand("Export ids", "Marked, missing, failed or not reached ids to a file",
                            self.action_export_ids)
        yield SystemCommand("Import ids", "Queue the ids of a file (ranges or one id per line)",
                            self.action_import_ids)
        yield SystemCommand("Query the metadata", "Choose ids by tags, rating, score… (m on the archives table)",
                            self.action_query_metadata)
        yield SystemCommand("Basket of marked ids", "Queue, export or clear the ids marked with space (b)",
                            self.action_basket)
        yield SystemCommand("Help", "Keys and how things work", self.action_help)
        yield SystemCommand("Quit", "Leave the app (asks first while jobs run)", self.action_quit)
        for command in super().get_system_commands(screen):  # Textual's own: theme, screenshot, quit
            if command.title not in ("Keys", "Maximize", "Minimize", "Quit"):
                yield command

    def action_query_metadata(self) -> None:
        if self.current_pool is None:
            self.notify("Open a dataset first.", severity="warning", timeout=3)
            return
        self.push_screen(QueryScreen(self.current_pool, self.current_settings or self.settings))

    # ---- stop -----------------------------------------------------------------------------

    def shutdown_engine(self) -> None:
        """Cancel jobs, stop the workers and the demo Hub (idempotent)."""
        downloader, self._downloader = self._downloader, None
        if downloader is not None:
            downloader.cancel_all()
            # a cancel closes the responses being read, so workers drop their temporary files
            # at once; a request still waiting for its first byte gets a bounded wait, no more
            for job in downloader.jobs:
                try:
                    job.wait(2.0)
                except TimeoutError:
                    pass  # a daemon worker; its temporary file goes with the next run's sweep
            downloader.close(wait=False)
        server, self._demo_server = self._demo_server, None
        if server is not None:
            server.stop()
        shutdown_clusters(self)

    def on_unmount(self) -> None:
        self.shutdown_engine()


def _quiet_hub_client() -> None:
    """huggingface_hub draws tqdm bars on stderr, which would scribble over the screen."""
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except Exception:  # an older or newer client without the switch: nothing to silence
        pass


def make_app(settings: AppSettings | None = None) -> CheesechaserApp:
    """The one way to build the app, for the CLI, the tests and the screenshot script."""
    return CheesechaserApp(settings or AppSettings())
