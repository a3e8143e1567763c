"""The TUI sends a job to a Dask cluster (issue 13): the queue dialog's cluster checkbox (the
config's ``defaults.cluster``), a real LocalCluster of two worker processes against the demo's
loopback Hub, the Downloads screen's row per Dask worker; and a snapshot with frozen values."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("distributed")

from textual.widgets import Checkbox  # noqa: E402

from app.tui.app import make_app  # noqa: E402
from app.core.config import ConfigError, parse_config  # noqa: E402
from app.core.settings import AppSettings  # noqa: E402
from app.tui.widgets.virtual_table import VirtualTable  # noqa: E402
from pools import events as ev  # noqa: E402

from tests.support.helpers import settle  # noqa: E402
from tests.support.tui import ShownJob, ShownPool, demo_app_settings, open_demo  # noqa: E402

SIZE = (100, 30)


def _wait_for(condition, timeout: float) -> None:
    """Off the UI thread: wait until ``condition()`` (set by the app's loop), failing after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition never came true"
        tick.wait(0.05)


def test_config_cluster_address():
    assert parse_config({"defaults": {"cluster": "local:2"}}).cluster == "local:2"
    assert parse_config({"defaults": {"cluster": "tcp://10.0.0.5:8786"}}).cluster == "tcp://10.0.0.5:8786"
    assert parse_config({}).cluster is None
    for bad in ("local:0", "local:x", "http://x:1", 3):
        with pytest.raises(ConfigError, match="defaults.cluster"):
            parse_config({"defaults": {"cluster": bad}})


async def test_queue_dialog_sends_a_job_to_the_cluster_and_shows_its_workers(demo_root, hf_cache, tmp_path,
                                                                            monkeypatch):
    from app.tui.dialogs.queue import QueueScreen
    from app.tui import cluster_side as cluster_jobs
    from app.tui.screens.watch import WatchScreen

    monkeypatch.chdir(tmp_path)
    opened = threading.Event()  # the cluster is held shut until the screen was seen without its job
    connect = cluster_jobs.ClusterConnection.client

    def held_client(self):
        assert opened.wait(120), "the test never let the cluster open"
        return connect(self)
    monkeypatch.setattr(cluster_jobs.ClusterConnection, "client", held_client)
    app = make_app(demo_app_settings(demo_root, cluster="local:2"))
    async with app.run_test(size=SIZE) as pilot:
        try:
            await open_demo(pilot)
            await pilot.press("q")
            await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
            app.screen.query_one("#queue-cluster", Checkbox).value = True
            app.screen.query_one("#range-text").value = "1-300"
            await pilot.press("enter")
            assert isinstance(app.screen, WatchScreen)
            assert not app.model.jobs  # the cluster opens in a thread: the screen is here before it
            opened.set()
            await asyncio.to_thread(_wait_for, lambda: app.model.jobs, 120)  # a real condition, polled
            (view,) = app.model.jobs.values()
            assert hasattr(view.job, "tasks") and len(view.job.tasks) > 2
            report = await asyncio.to_thread(view.job.wait, 120)
            await asyncio.to_thread(_wait_for, lambda: not view.active, 30)
            # a task's last batch can come after the job's end (the relay waits for them 5 s at most,
            # a loaded CI machine took longer): its worker turns idle when it comes
            await asyncio.to_thread(_wait_for, lambda: _all_idle(app.model.cluster_workers), 60)
            app.flush_engine_events()
            await pilot.pause()
            assert report.ok and view.state == "done" and view.ids_done == view.ids_total == 300
            assert view.downloaded == len(report.downloaded) > 0 and view.missing == len(report.missing) > 0
            dest = tmp_path / "downloads"
            for rid in report.downloaded[:20]:
                assert any(p.name.startswith(f"{rid}.") for p in dest.iterdir()), rid
            jobs = app.screen.query_one("#jobs", VirtualTable)
            assert jobs.rows[0].cells[1] == "done" and jobs.rows[0].cells[2] == "300/300"
            table = app.screen.query_one("#cluster-workers", VirtualTable)
            assert table.display and table.row_count == 2  # one row per Dask worker
            rows = [app.model.cluster_workers[key] for key in app.model.cluster_workers]
            assert sum(r.tasks_done for r in rows) == len(view.job.tasks)
            assert sum(r.files for r in rows) == report.files and all(r.state == "idle" for r in rows)
            assert all(w.state == "idle" for w in app.model.workers.values())  # no local engine thread worked
        finally:
            app.shutdown_engine()  # the LocalCluster goes with the app


def _all_idle(workers: dict) -> bool:
    """Every Dask worker's row says idle (read from a thread while the app's loop updates them)."""
    try:
        rows = list(workers.values())
    except RuntimeError:  # changed while read: ask again
        return False
    return bool(rows) and all(r.state == "idle" for r in rows)


def test_downloads_with_cluster_workers_snapshot(snap_compare, tmp_path, monkeypatch):
    """A cluster job half done: a busy, a rate-limited, an idle and a lost Dask worker."""
    from pools.cluster.relay import ClusterWorkerState

    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(clock=lambda: 100.0))

    async def run_before(pilot):
        model = pilot.app.model
        model.add_job(ShownJob(3, "1-20000 · cluster"), ShownPool(), "1-20000", 20000, "downloads",
                      name="1-20000 · cluster")
        model.apply([
            ev.JobState(3, "running"),
            ev.JobProgress(3, 20000, 9100, 9000, 4_400_000_000, 9_800_000_000, 75.0, 58_000_000.0),
            ClusterWorkerState(3, "tcp://10.0.0.11:40411", "busy", 2, 3, 4100, 2_000_000_000, 31_500_000.0),
            ClusterWorkerState(3, "tcp://10.0.0.12:40977", "rate-limited", 1, 2, 2900, 1_400_000_000, 0.0),
            ClusterWorkerState(3, "tcp://10.0.0.13:39125", "idle", 0, 4, 2000, 1_000_000_000, 0.0),
            ClusterWorkerState(3, "tcp://10.0.0.14:41001", "lost", 0, 0, 0, 0, 0.0),
        ])
        model.jobs[3].started = 25.0
        await pilot.press("ctrl+d")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
