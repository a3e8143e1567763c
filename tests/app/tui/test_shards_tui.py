"""The queue dialog writes webdataset / Parquet shards as a job the Downloads screen tracks."""

from __future__ import annotations

import glob

from textual.widgets import Input, Select

from app.tui.app import make_app
from tests.app.tui.conftest import open_demo, wait_jobs
from tests.app.tui.test_flows import SIZE
from tests.support.helpers import settle


async def test_the_queue_dialog_writes_shards_and_the_downloads_screen_says_so(demo_settings, tmp_path):
    import webdataset as wds

    from app.tui.dialogs.queue import QueueScreen
    from app.tui.screens.watch import WatchScreen
    from tests.app.tui.test_flows import VirtualTable

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        dialog = app.screen
        dialog.query_one("#range-text").value = "1-400"
        dialog.query_one("#queue-format", Select).value = "webdataset"
        dialog.query_one("#queue-shard-size", Input).value = "60"
        dialog.query_one("#queue-resize", Input).value = "32"
        await pilot.pause()
        dialog.action_queue()
        await settle(pilot, lambda: isinstance(app.screen, WatchScreen), "the downloads screen")
        await wait_jobs(pilot)
        (view,) = app.model.jobs.values()
        job = view.job
        assert view.state == "done" and view.ids_done == 400 and job.report.state == "done"
        assert view.downloaded == len(job.report.downloaded) > 0 and view.missing == len(job.report.missing) > 0
        assert view.shards == len(job.shards) == -(-len(job.report.downloaded) // 60)
        row = app.screen.query_one("#jobs", VirtualTable).rows[0]
        assert f"{view.shards} shards" in row.cells[-1] and row.cells[1] == "done"
        dest = tmp_path / "downloads"
        samples = list(wds.WebDataset(sorted(glob.glob(str(dest / "*.tar"))), shardshuffle=False).decode("pil"))
        assert sorted(int(s["__key__"]) for s in samples) == sorted(job.report.downloaded)
        assert all(min(s[k].size) == 32 for s in samples for k in s if k in ("jpg", "png", "webp"))


async def test_resize_without_shards_is_refused_in_the_dialog(demo_settings):
    from app.tui.dialogs.queue import QueueScreen

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        app.screen.query_one("#range-text").value = "1-10"
        app.screen.query_one("#queue-resize", Input).value = "32"
        await pilot.pause()
        app.screen.action_queue()
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen) and not app.model.jobs
        assert "webdataset or parquet" in str(app.screen.query_one("#queue-error").render())
