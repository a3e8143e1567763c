"""The Downloads screen: a bar and a colour per worker state, waits that count down, per-job
elapsed and speed, missing runs grouped across jobs. Fed with engine events and a fixed clock."""

from __future__ import annotations

from app.tui.app import make_app
from app.core.downloads import DownloadsModel
from app.tui.screens.watch_rows import WORKER_LABEL, WORKER_STYLE, job_row, missing_rows, worker_row
from app.core.settings import AppSettings
from app.tui.widgets.progress import text_bar
from app.tui.widgets.virtual_table import BarCell, VirtualTable
from pools import events as ev

from tests.support.tui import ShownJob, ShownPool, show_every_worker_state, worker_state

SIZE = (100, 30)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_text_bar_fills_in_eighths():
    assert text_bar(0.0, 4) == "░░░░"
    assert text_bar(1.0, 4) == "████"
    assert text_bar(0.5, 4) == "██░░"
    assert text_bar(0.25, 2) == "▌░" and text_bar(1 / 16, 2) == "▏░"
    assert text_bar(None, 3) == "░░░"
    assert text_bar(2.0, 3) == "███"  # clamped


def test_each_worker_state_has_its_label_colour_and_bar():
    model = DownloadsModel(clock=lambda: 100.0)
    model.set_worker_count(6)
    rows = {}
    for event in (
        worker_state(0, "download", 1, "a.tar", "1.png", 25, 100),
        worker_state(1, "index", 1, "b.tar", "", 0, 0),
        worker_state(2, "verify", 1, "c.tar", "2.png", 100, 100),
        worker_state(3, "retrying", 1, "d.tar", "3.png", 4400, 4400, wait=3.0, reason="HTTP 503"),
        worker_state(4, "rate-limited", 1, "e.tar", "4.png", 0, 10, wait=151.0, reason="HTTP 429"),
        worker_state(5, "idle"),
    ):
        model.apply([event])
        rows[event.state] = worker_row(model.workers[event.worker], 100.0)
    for state, row in rows.items():
        assert row.cells[1] == WORKER_LABEL[state]
        if state != "idle":
            assert row.cell_styles[1] == WORKER_STYLE[state]
        assert isinstance(row.cells[4], BarCell) == (state != "idle")  # idle: no bar at all
    assert len({WORKER_STYLE[s] for s in rows}) == 6  # six states, six colours
    assert rows["download"].cells[4].fraction == 0.25
    assert rows["verify"].cells[4].fraction == 1.0
    assert rows["index"].cells[1] == "fetching index"
    # a retrying worker never looks finished: no "4.3 KiB / 4.3 KiB", the wait and the reason
    retrying = rows["retrying"]
    assert "/" not in retrying.cells[5] and retrying.cells[5] == "resumes in 0:03"
    assert retrying.cells[3].startswith("HTTP 503 · d.tar")
    assert rows["rate-limited"].cells[5] == "resumes in 2:31"
    assert rows["idle"].style == "dim"


def test_a_wait_counts_down_with_the_clock():
    clock = Clock(100.0)
    model = DownloadsModel(clock=clock)
    model.apply([worker_state(0, "rate-limited", 1, "a.tar", "1.png", wait=151.0, reason="429")])
    assert worker_row(model.workers[0], clock()).cells[5] == "resumes in 2:31"
    clock.now = 160.0
    row = worker_row(model.workers[0], clock())
    assert row.cells[5] == "resumes in 1:31"
    assert abs(row.cells[4].fraction - 60 / 151) < 1e-9
    clock.now = 400.0
    assert worker_row(model.workers[0], clock()).cells[5] == "resumes in 0:00"


def test_jobs_show_elapsed_and_average_speed():
    clock = Clock(10.0)
    model = DownloadsModel(clock=clock)
    view = model.add_job(ShownJob(1, "1-10"), ShownPool(), "1-10", 10, "downloads")
    model.apply([ev.JobState(1, "running")])
    clock.now = 70.0
    model.apply([ev.JobProgress(1, 10, 5, 5, 6 * 1024 * 1024, 0, 60.0, 0.0)])
    row = job_row(view, clock())
    assert row.cells[4] == "1:00" and row.cells[5] == "102 KiB/s"
    clock.now = 100.0
    model.apply([ev.JobState(1, "done")])
    clock.now = 1000.0  # a finished job's elapsed stops at its end
    assert job_row(view, clock()).cells[4] == "1:30"


def test_missing_runs_are_grouped_across_jobs():
    model = DownloadsModel(clock=lambda: 0.0)
    for jid in (1, 2, 3):
        model.add_job(ShownJob(jid, "x"), ShownPool(), "x", 100, "downloads")
    model.apply([ev.ResourcesMissing(1, tuple(range(10, 20)) + (50,)),
                 ev.ResourcesMissing(2, tuple(range(15, 25))),
                 ev.ResourcesMissing(3, (70, 71))])
    rows, distinct, complete = missing_rows(model)
    assert [(r.cells[0], r.cells[1], r.cells[2]) for r in rows] == [
        ("10-24", "15", "#1, #2"), ("50", "1", "#1"), ("70-71", "2", "#3")]
    assert distinct == 18 and complete


async def test_the_downloads_screen_draws_every_state_and_counts_down():
    from app.tui.screens.watch import WatchScreen

    clock = Clock(100.0)
    app = make_app(AppSettings(clock=clock))
    async with app.run_test(size=SIZE) as pilot:
        show_every_worker_state(app)
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, WatchScreen)
        workers = app.screen.query_one("#workers", VirtualTable)
        assert [r.cells[1] for r in workers.rows] == [
            "downloading", "fetching index", "verifying", "retrying", "rate-limited", "idle"]
        assert workers.rows[4].cells[5] == "resumes in 2:31"
        missing = app.screen.query_one("#missing", VirtualTable)
        assert [r.cells[0] for r in missing.rows] == ["4000-4059"]
        assert str(app.screen.query_one("#panes").get_tab("pane-missing").label) == "Missing (60)"
        bar = app.screen.query_one("#overall-bar")
        assert bar.label.startswith("24% · ETA")  # job 2 settled 40 ids (in no archive) past its snapshot
        assert "ids 1,250/5,300" in str(app.screen.query_one("#overall").render())
        clock.now = 130.0
        app.screen._tick()  # the timer's work, without waiting for the timer
        assert workers.rows[4].cells[5] == "resumes in 2:01"


async def test_a_huge_range_lists_every_missing_id_once_across_jobs(demo_root, hf_cache, tmp_path, monkeypatch):
    """The issue's path: 1-4000000000000000000 on the demo, then a second job inside it. The tab
    total is the distinct ids, the same as the first job's row; the second job's ids are listed."""
    import asyncio

    from pools import parse_ids
    from tests.support.tui import demo_app_settings, open_demo

    monkeypatch.chdir(tmp_path)
    app = make_app(demo_app_settings(demo_root))
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        big = app.queue_job(app.current_pool, parse_ids("1-4000000000000000000"), "downloads", 4)
        await asyncio.to_thread(big.job.wait, 120)
        inner = app.queue_job(app.current_pool, parse_ids("3000000000000000000-3000000000000000099"), "downloads", 4)
        await asyncio.to_thread(inner.job.wait, 60)
        app.flush_engine_events()
        app.action_downloads()
        await pilot.pause()
        assert big.missing > 3_999_999_999_999_000_000 and inner.missing == 100
        rows = app.screen.query_one("#missing", VirtualTable).rows
        listed = sum(r.values[1] for r in rows)
        assert listed == big.missing  # the second job's ids lie inside the first's: counted once
        (holding,) = [r for r in rows if r.values[0] <= 3_000_000_000_000_000_000 < r.values[0] + r.values[1]]
        assert holding.cells[2] == f"#{big.number}, #{inner.number}"
        label = str(app.screen.query_one("#panes").get_tab("pane-missing").label)
        assert label == f"Missing ({big.missing:,})"


def test_a_rows_ids_never_say_fewer_settled_than_its_outcomes():
    """Failures arrive between the throttled progress snapshots: a retry read "Ids 7/9" beside
    "Miss/Fail 0/8"."""
    model = DownloadsModel(clock=lambda: 0.0)
    view = model.add_job(ShownJob(1, "x"), ShownPool(), "1-9", 9, "downloads")
    model.apply([ev.JobState(1, "running"), ev.JobProgress(1, 9, 0, 0, 0, 0, 0.0, 0.0)])
    model.apply([ev.ResourceFailed(1, rid, "HTTP 500") for rid in range(1, 9)])
    row = job_row(view, 0.0)
    assert row.cells[2] == "8/9" and row.cells[6] == "0/8"
    model.apply([ev.JobProgress(1, 9, 7, 0, 0, 0, 0.0, 0.0)])  # a snapshot taken before the last failures
    assert job_row(view, 0.0).cells[2] == "8/9"
