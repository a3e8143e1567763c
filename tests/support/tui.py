"""What the TUI tests share (not a test module): the demo app's settings and waits on it."""

from __future__ import annotations

import asyncio

from app.core.settings import AppSettings
from pools import RetryPolicy

from tests.support.helpers import settle

FAST = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, jitter=0.0, connect_timeout=2.0,
                   read_timeout=10.0)


def demo_app_settings(demo_root, **changes) -> AppSettings:
    """The demo on a loopback Hub, a fixed clock, a relative destination, a hidden port."""
    values = dict(demo=True, demo_root=demo_root, dst_dir="downloads", workers=4,
                  clock=lambda: 0.0, retry=FAST, endpoint_label="loopback hub")
    values.update(changes)
    return AppSettings(**values)


async def open_demo(pilot):
    """Wait for the demo's archives screen with every index summary in."""
    from app.tui.screens.browse import BrowseScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    return app.screen


async def open_archive(pilot, archive: str = "images/017.tar"):
    """From the archives screen, open ``archive`` and wait for its index."""
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.widgets.virtual_table import VirtualTable

    app = pilot.app
    app.screen.query_one("#archives", VirtualTable).move_cursor_to_key(archive)
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                 "the archive's index")
    return app.screen


async def wait_jobs(pilot) -> None:
    """Every queued job ended and its last events are folded into the model."""
    app = pilot.app
    for view in list(app.model.jobs.values()):
        await asyncio.to_thread(view.job.wait, 60)
    app.flush_engine_events()
    await pilot.pause()


# ---- a Downloads screen fed by hand ---------------------------------------------------------

class ShownJob:
    """What the downloads model reads of a job; the events below drive everything else."""

    def __init__(self, job_id: int, name: str) -> None:
        self.id = job_id
        self.name = name
        self.state = "queued"
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ShownPool:
    data_repo_id = "demo/booru-mini"


def worker_state(worker, state, job_id=-1, archive="", filename="", done=0, total=0, wait=None,
                 reason=""):
    """A WorkerState with transport's ``wait`` and ``reason`` (a subclass until they land)."""
    from dataclasses import dataclass

    from pools import events as ev

    if "wait" in ev.WorkerState.__dataclass_fields__:
        return ev.WorkerState(worker, state, job_id, archive, filename, done, total, wait=wait,
                              reason=reason)

    @dataclass(frozen=True)
    class WaitingWorkerState(ev.WorkerState):
        wait: float | None = None
        reason: str = ""

    return WaitingWorkerState(worker, state, job_id, archive, filename, done, total, wait, reason)


def every_worker_state_events(now: float) -> list:
    """Two jobs and six workers, one in each state the Downloads screen draws."""
    from pools import events as ev

    return [
        ev.JobState(1, "running"), ev.JobState(2, "running"),
        ev.JobProgress(1, 4800, 1210, 1180, 21_500_000, 90_000_000, 60.0, 350_000.0),
        ev.JobProgress(2, 500, 20, 18, 400_000, 9_000_000, 10.0, 40_000.0),
        ev.ResourcesMissing(1, tuple(range(4000, 4050))),
        ev.ResourcesMissing(2, tuple(range(4020, 4060))),
        worker_state(0, "download", 1, "images/017.tar", "1017.png", 180_000, 420_000),
        worker_state(1, "index", 1, "images/018.tar", "", 30_000, 120_000),
        worker_state(2, "verify", 1, "images/019.tar", "1019.webp", 96_000, 96_000),
        worker_state(3, "retrying", 2, "images/020.tar", "1020.jpg", 4_400, 4_400, wait=3.0,
                     reason="attempt 2 of 5: HTTP 503"),
        worker_state(4, "rate-limited", 2, "images/021.tar", "1021.png", 0, 26_600, wait=151.0,
                     reason="HTTP 429: 0 of 1000 resolves left in this window"),
        worker_state(5, "idle"),
    ]


def show_every_worker_state(app, now: float = 100.0) -> None:
    """Fill ``app``'s downloads model with :func:`every_worker_state_events` at a fixed time."""
    model = app.model
    model.set_worker_count(6)
    for job_id, name in ((1, "1-4800"), (2, "4000-4499")):
        model.add_job(ShownJob(job_id, name), ShownPool(), name, 0, "downloads", name=name)
    model.apply(every_worker_state_events(now))
    app._update_sub_title()
