"""Sessions in the TUI (Pilot, real loopback Hub): ctrl+q asks, quit and resume, the history
screen, retry of what a job did not finish, export/import ids, the queue dialog's checks."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.tui.app import make_app
from app.hub.dataset import build_repo
from app.hub.faults import FaultConfig
from app.tui.dialogs.ids import ExportIdsScreen, ImportIdsScreen
from app.tui.screens.history import JobsScreen, ReportScreen
from app.tui.dialogs.queue import QueueScreen
from app.tui.dialogs.sessions import ConfirmQuitScreen, ResumeScreen
from app.tui.screens.watch import WatchScreen
from app.core.sessions import SessionStore
from app.core.settings import AppSettings
from app.tui.widgets.virtual_table import VirtualTable
from app.core.idlists import read_ids
from pools import parse_ids

from tests.support.helpers import settle
from tests.support.tui import FAST, demo_app_settings, open_demo

SIZE = (100, 30)


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root, data_dir=tmp_path / "data")


async def wait_jobs(pilot) -> None:
    app = pilot.app
    for view in list(app.model.jobs.values()):
        await asyncio.to_thread(view.job.wait, 60)
    app.flush_engine_events()
    await pilot.pause()


async def test_ctrl_q_asks_while_jobs_run_and_the_next_start_offers_them(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app._demo_server.faults = FaultConfig(latency_ms=300, paths="*.tar")
        view = app.queue_job(app.current_pool, parse_ids("1-4800"), "downloads", 2)
        await pilot.press("ctrl+q")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the quit question")
        assert "1 job still running or queued" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("escape")  # stay: the job goes on
        assert not isinstance(app.screen, ConfirmQuitScreen) and view.active and app.is_running
        await pilot.press("ctrl+q")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the quit question")
        await pilot.press("ctrl+q")  # twice: yes
        await settle(pilot, lambda: not app.is_running, "the app to quit")
    store = SessionStore(tmp_path / "data")
    (record,) = store.jobs()
    assert record.state == "interrupted" and record.ids == "1-4800"
    store.close()

    # the next start: offered; "forget" leaves it cancelled in the history
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ResumeScreen), "the resume offer")
        body = str(app.screen.query_one(".dialog-body").render())
        assert "demo/booru-mini · 1-4800 → downloads (interrupted" in body
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(app.screen, ResumeScreen) and not app.model.jobs
    assert SessionStore(tmp_path / "data").job(record.id).state == "cancelled"


async def test_no_question_without_running_jobs(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot, lambda: not app.is_running, "the app to quit")


async def test_resume_of_a_demo_job_after_a_quit(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app._demo_server.faults = FaultConfig(latency_ms=200, paths="*.tar")
        app.queue_job(app.current_pool, parse_ids("1-300"), "downloads", 1)
        app.quit_keeping_jobs()
    app = make_app(demo_app_settings(demo.demo_root, data_dir=tmp_path / "data", demo=False))
    async with app.run_test(size=SIZE) as pilot:  # not opened on the demo: resuming starts it
        await settle(pilot, lambda: isinstance(app.screen, ResumeScreen), "the resume offer")
        await pilot.press("enter")
        await settle(pilot, lambda: app.model.jobs, "the resumed job")
        await wait_jobs(pilot)
        (view,) = app.model.jobs.values()
        assert view.state == "done" and view.ids_done == 300 and view.session_id == 1


async def test_a_resumed_job_has_the_same_number_in_downloads_and_history(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app.queue_job(app.current_pool, parse_ids("1-10"), "downloads", 1)
        await wait_jobs(pilot)
        app._demo_server.faults = FaultConfig(latency_ms=200, paths="*.tar")
        app.queue_job(app.current_pool, parse_ids("11-300"), "downloads", 1)  # job 2 of the history
        app.quit_keeping_jobs()
    app = make_app(demo_app_settings(demo.demo_root, data_dir=tmp_path / "data", demo=False))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ResumeScreen), "the resume offer")
        await pilot.press("enter")
        await settle(pilot, lambda: app.model.jobs, "the resumed job")
        await wait_jobs(pilot)
        (view,) = app.model.jobs.values()
        assert view.job_id == 1 and view.session_id == 2  # the engine's first job, the history's second
        app.action_downloads()
        await settle(pilot, lambda: isinstance(app.screen, WatchScreen), "the downloads")
        assert app.screen.query_one("#jobs", VirtualTable).rows[0].cells[0] == "#2"
        await pilot.press("h")
        await settle(pilot, lambda: isinstance(app.screen, JobsScreen), "the history")
        history = app.screen.query_one("#history", VirtualTable)
        assert [r.cells[0] for r in history.rows] == ["2", "1"]


async def test_history_shows_finished_jobs_reports_and_reruns(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app.queue_job(app.current_pool, parse_ids("1-300"), "downloads", 2)
        await wait_jobs(pilot)
        app.action_downloads()
        await pilot.press("h")
        await settle(pilot, lambda: isinstance(app.screen, JobsScreen), "the history")
        table = app.screen.query_one("#history", VirtualTable)
        (row,) = table.rows
        record = SessionStore(tmp_path / "data").job(row.key)
        assert record.state == "done" and record.started and record.finished >= record.started
        cells = row.cells
        assert cells[1] == "done" and cells[2] == "300/300" and cells[3] == f"{record.files:,}"
        assert cells[5] != "–" and cells[6].endswith("/s")  # elapsed and average speed
        assert "demo/booru-mini · 1-300 → downloads" in cells[8]
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ReportScreen), "the report")
        text = str(app.screen.query_one("#report-text").render())
        assert f"{record.downloaded:,} downloaded" in text and "missing (in no archive):" in text
        await pilot.press("escape")
        await pilot.press("r")  # re-run: a new job, everything already present
        await wait_jobs(pilot)
        rerun = app.model.jobs[max(app.model.jobs)]
        assert rerun.skipped == record.downloaded and rerun.downloaded == 0
        await settle(pilot, lambda: table.row_count == 2, "the re-run in the history")


async def test_retry_a_job_that_failed_before_reaching_its_ids(level2_repo, tmp_path):
    level2_repo.faults = FaultConfig(error_rate=1.0, paths="*.json")  # every index fetch fails
    settings = AppSettings(repo="t/level2", endpoint=level2_repo.url, base_level=2, retry=FAST,
                           clock=lambda: 0.0, data_dir=tmp_path / "data", workers=2)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.current_pool is not None, "the dataset")
        view = app.queue_job(app.current_pool, parse_ids("100-109"), "downloads", 2)
        await wait_jobs(pilot)
        report = view.job.report
        assert view.state == "failed" and not report.downloaded and not report.skipped
        assert len(report.failed) + report.not_reached == 10
        level2_repo.faults = None
        app.action_downloads()
        await pilot.press("r")
        await wait_jobs(pilot)
        retry = app.model.jobs[max(app.model.jobs)]
        assert retry.job_id != view.job_id and retry.state == "done"
        assert retry.ids_total == 10 and retry.downloaded == 10
        store = SessionStore(tmp_path / "data")
        assert store.job(retry.session_id).retry_of == view.session_id
        # once everything is done, there is nothing left to retry
        await pilot.press("r")
        assert len(app.model.jobs) == 2


async def test_export_and_import_ids(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        view = app.queue_job(app.current_pool, parse_ids("1-300"), "downloads", 2)
        await wait_jobs(pilot)
        app.action_downloads()
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ExportIdsScreen), "the export dialog")
        dialog = app.screen
        dialog.query_one("#set-missing").value = True
        await pilot.pause()
        assert dialog.choice == "missing"
        path = tmp_path / "missing.txt"
        dialog.query_one("#export-path").value = str(path)
        await pilot.press("enter")
        await settle(pilot, lambda: not isinstance(app.screen, ExportIdsScreen), "the export")
        assert view.job.report.missing and read_ids(str(path)) == _ranges(view.job.report.missing)
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, ImportIdsScreen), "the import dialog")
        app.screen.query_one("#import-path").value = str(tmp_path / "nope.txt")
        await pilot.press("enter")
        assert "cannot read ids from" in str(app.screen.query_one("#import-error").render())
        app.screen.query_one("#import-path").value = str(path)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert parse_ids(app.screen.query_one("#range-text").value) == _ranges(view.job.report.missing)


def _ranges(ids):
    from pools import IdRanges

    return IdRanges.of(ids)


@pytest.fixture
def level2_repo(hub, hub_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resources = {rid: {f"{rid}.bin": random.Random(rid).randbytes(1000)} for rid in range(100, 110)}
    build_repo(hub_root, "t/level2", resources, base_level=2)
    return hub


async def test_queue_dialog_diagnoses_a_wrong_layout_and_refuses(level2_repo, tmp_path):
    settings = AppSettings(repo="t/level2", endpoint=level2_repo.url, base_level=3, retry=FAST,
                           clock=lambda: 0.0, data_dir=tmp_path / "data")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.current_pool is not None and app.known_archives(app.current_pool),
                     "the archive listing")
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        dialog = app.screen
        dialog.query_one("#range-text").value = "100-109"
        await settle(pilot, lambda: dialog.preview_text.startswith("✗"), "the preview")
        assert ("none of the 10 archives these ids map to exists under images/ at level 3; the repo "
                "has images/000.tar … images/009.tar under images/ at level 2?") in dialog.preview_text
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, QueueScreen) and not app.model.jobs
        assert "preview above gave up" in str(dialog.query_one("#queue-error").render())


async def test_destination_is_checked_and_remembered(demo, tmp_path):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        dialog = app.screen
        assert dialog.query_one("#queue-dest").value == "downloads"
        dialog.query_one("#range-text").value = "1-5"
        dialog.query_one("#queue-dest").value = "/etc/passwd"
        await pilot.press("ctrl+s")
        error = str(dialog.query_one("#queue-error").render())
        assert "/etc/passwd: it is not a folder" in error and "File exists" not in error
        assert not app.model.jobs
        dialog.query_one("#queue-dest").value = str(tmp_path / "elsewhere")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, WatchScreen), "the downloads")
        await wait_jobs(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog again")
        assert app.screen.query_one("#queue-dest").value == str(tmp_path / "elsewhere")
    app = make_app(demo)  # and in the next session
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert app.screen.query_one("#queue-dest").value == str(tmp_path / "elsewhere")


async def test_a_broken_data_dir_warns_and_downloads_go_on(demo, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    app = make_app(demo_app_settings(demo.demo_root, data_dir=blocker / "data"))
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        assert app.sessions is None
        assert app.sessions_error and "not-a-dir" in app.sessions_error
        view = app.queue_job(app.current_pool, parse_ids("1-20"), "downloads", 2)
        await wait_jobs(pilot)
        assert view.state == "done" and view.session_id is None
        app.action_downloads()
        await pilot.press("h")
        await settle(pilot, lambda: isinstance(app.screen, JobsScreen), "the history")
        assert "not available" in str(app.screen.query_one("#history-info").render())
