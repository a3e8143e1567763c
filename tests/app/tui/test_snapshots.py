"""Snapshots of every screen at 80x24 and 100x30 (pytest-textual-snapshot), in tests/snapshots/.

Deterministic by construction: a fixed clock (no speed, throughput or ETA moves), the loopback
Hub's port hidden behind an endpoint label, a relative destination, notifications cleared, input
cursors not blinking, and every background worker and job finished before the picture.
Update with ``pytest tests/app/tui/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input

from app.tui.app import make_app
from app.core.settings import AppSettings
from pools import RetryPolicy

from tests.support.helpers import settle
from tests.support.tui import show_every_worker_state

SIZES = pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
FAST = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, jitter=0.0, connect_timeout=2.0,
                   read_timeout=10.0)


@pytest.fixture
def demo_app(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_app(AppSettings(demo=True, demo_root=demo_root, dst_dir="downloads", workers=4,
                                clock=lambda: 0.0, retry=FAST, endpoint_label="loopback hub"))


async def still(pilot) -> None:
    """Finish background work and freeze what moves on its own."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    for field in app.screen.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


async def open_demo(pilot) -> None:
    from app.tui.screens.browse import BrowseScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    app.clear_notifications()  # before any dialog covers the screen that shows them
    await pilot.pause()


@SIZES
def test_picker(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(token="hf_snapshotsecret", clock=lambda: 0.0))

    async def run_before(pilot):
        await pilot.press("down", "down", "down", "down")
        await still(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_archives(snap_compare, size, demo_app):
    async def run_before(pilot):
        await open_demo(pilot)
        await pilot.press("down")
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_archive_detail_with_preview(snap_compare, size, demo_app):
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.widgets.image_preview import ImagePreview

    async def run_before(pilot):
        app = pilot.app
        await open_demo(pilot)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                     "the archive's index")
        if not app.screen.query_one("#preview-pane").display:
            await pilot.press("p")  # under 100 columns the preview waits for `p`
        await settle(pilot, lambda: app.screen.query_one("#preview", ImagePreview).has_image,
                     "the preview")
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_queue_dialog_bad_range(snap_compare, size, demo_app):
    async def run_before(pilot):
        await open_demo(pilot)
        await pilot.press("q")
        pilot.app.screen.query_one("#range-text", Input).value = "1-9, 20-10"
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_queue_dialog_preview(snap_compare, size, demo_app):
    async def run_before(pilot):
        await open_demo(pilot)
        await pilot.press("q")
        pilot.app.screen.query_one("#range-text", Input).value = "1-300"
        await settle(pilot, lambda: "archives" in pilot.app.screen.preview_text, "the preview")
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_downloads_after_a_job(snap_compare, size, demo_app):
    async def run_before(pilot):
        app = pilot.app
        await open_demo(pilot)
        await pilot.press("q")
        app.screen.query_one("#range-text", Input).value = "1-300"
        await pilot.press("enter")
        for view in list(app.model.jobs.values()):
            await asyncio.to_thread(view.job.wait, 60)
        app.flush_engine_events()
        await pilot.press("u")  # the Unrecognized pane
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_downloads_empty(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(clock=lambda: 0.0))
    assert snap_compare(app, terminal_size=size, press=["ctrl+d"])


@SIZES
def test_help(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(clock=lambda: 0.0))
    assert snap_compare(app, terminal_size=size, press=["f1"])


@SIZES
def test_error_panel_unknown_repo(snap_compare, size, hub, tmp_path, monkeypatch):
    from app.tui.screens.browse import BrowseScreen

    monkeypatch.chdir(tmp_path)
    # a token the hub knows (for another repo): a junk one is refused as invalid before any lookup
    hub.access = {"someone/other": {"private": True, "tokens": ["hf_snapshotsecret"]}}
    app = make_app(AppSettings(repo="someone/no-such-dataset", token="hf_snapshotsecret",
                               endpoint=hub.url, endpoint_label="loopback hub", retry=FAST,
                               clock=lambda: 0.0))

    async def run_before(pilot):
        await settle(pilot, lambda: isinstance(pilot.app.screen, BrowseScreen)
                     and pilot.app.screen.error, "the error panel")
        await still(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_downloads_every_worker_state(snap_compare, size, tmp_path, monkeypatch):
    """A worker in each state, jobs with elapsed and speed, missing runs shared by two jobs."""
    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(clock=lambda: 100.0))

    async def run_before(pilot):
        show_every_worker_state(pilot.app)
        for view in pilot.app.model.jobs.values():
            view.started = 25.0  # 1:15 before the fixed clock
        await pilot.press("ctrl+d")
        await still(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_go_to_id_dialog(snap_compare, size, demo_app):
    async def run_before(pilot):
        await open_demo(pilot)
        await pilot.press("g", *"510")
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@SIZES
def test_archive_marked_and_go_to_id(snap_compare, size, demo_app):
    """Marks with their glyph on an id and its sidecar; `g 510` highlighting 510's two files."""
    from app.tui.screens.archive import ArchiveScreen

    async def run_before(pilot):
        app = pilot.app
        await open_demo(pilot)
        await pilot.press("g", *"510", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                     "the archive of 510")
        await pilot.press("up", "up", "space", "space")
        await still(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)
