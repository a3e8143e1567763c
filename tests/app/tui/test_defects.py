"""Pilot tests for the defects issue 11 reproduced, each failing before its fix (no sleeps)."""

from __future__ import annotations

import pytest
from textual.command import CommandList

from app.tui.app import make_app
from app.core.settings import AppSettings
from app.tui.widgets.virtual_table import VirtualTable
from pools import parse_ids

from tests.support.helpers import settle
from tests.support.tui import demo_app_settings, open_demo, wait_jobs

SIZE = (100, 30)


async def test_page_down_in_a_palette_not_laid_out_yet_does_not_crash():
    """ctrl+p then PageDown at once: Textual 8.2.8 raised KeyError and the app died."""
    from app.tui.dialogs.palette import SafeCommandPalette

    app = make_app(AppSettings(clock=lambda: 0.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        palette = app.screen
        assert isinstance(palette, SafeCommandPalette)
        commands = palette.query_one(CommandList)
        await settle(pilot, lambda: commands.option_count > 1, "the palette's commands")
        # the state a fast PageDown meets in a real terminal: the list just shown, its first
        # command highlighted, no layout yet (hidden lists have no size, so no lines)
        palette._list_visible = False
        await pilot.pause()
        commands._clear_caches()
        palette._list_visible = True
        commands.highlighted = 0
        palette._action_command_list("page_down")
        assert commands.highlighted == 1
        await pilot.pause()
        await pilot.press("pagedown")  # laid out now: a real page move
        assert commands.highlighted > 1
        await pilot.press("escape")
        assert not isinstance(app.screen, SafeCommandPalette)
    assert app._exception is None


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root)


async def test_c_cancels_the_new_running_job_not_the_finished_one(demo):
    from app.hub.faults import FaultConfig

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        first = app.queue_job(app.current_pool, parse_ids("1-5"), "downloads", 2)
        app.action_downloads()
        await wait_jobs(pilot)
        assert first.state == "done"
        jobs = app.screen.query_one("#jobs", VirtualTable)
        assert jobs.cursor_key == first.job_id
        app._demo_server.faults = FaultConfig(latency_ms=150, paths="*.tar")
        second = app.queue_job(app.current_pool, parse_ids("1-4800"), "downloads", 2)
        await pilot.pause()
        assert [r.key for r in jobs.rows] == [second.job_id, first.job_id]  # newest first
        assert jobs.cursor_key == second.job_id
        await pilot.press("c")
        await wait_jobs(pilot)
        assert second.state == "cancelled" and first.state == "done"
        # `c` on a finished job says so instead of doing nothing in silence
        jobs.move_cursor_to_key(first.job_id)
        app.clear_notifications()
        await pilot.press("c")
        assert any(f"Job #{first.job_id} is done" in n.message for n in app._notifications)


async def test_an_unreachable_endpoint_shows_the_attempt_the_reason_and_the_wait(tmp_path, monkeypatch):
    from app.tui.screens.browse import BrowseScreen
    from pools import RetryPolicy

    from tests.support.helpers import closed_port

    monkeypatch.chdir(tmp_path)
    slow = RetryPolicy(attempts=3, backoff=30.0, max_backoff=30.0, jitter=0.0, connect_timeout=2.0,
                       read_timeout=5.0)
    app = make_app(AppSettings(repo="someone/anything", endpoint=f"http://127.0.0.1:{closed_port()}",
                               retry=slow, clock=lambda: 0.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
        table = app.screen.query_one("#archives", VirtualTable)
        await settle(pilot, lambda: "attempt" in table.empty_text, "the first retry's wait")
        text = table.empty_text
        assert "retrying (attempt 2 of 3)" in text and "next try in 0:" in text, text
        rendered = table.render_line(1).text
        assert "attempt 2 of 3" in rendered
        await pilot.press("escape")  # leaving stops the wait at once: no 30 s hang
        assert type(app.screen).__name__ == "PickerScreen"
        await app.workers.wait_for_complete()
