"""What the TUI tests share (not a test module): the demo app's settings and waits on it."""

from __future__ import annotations

import asyncio

from app.settings import AppSettings
from pools import RetryPolicy

from helpers import settle

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
    from app.screens.browse import BrowseScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    return app.screen


async def open_archive(pilot, archive: str = "images/017.tar"):
    """From the archives screen, open ``archive`` and wait for its index."""
    from app.screens.archive import ArchiveScreen
    from app.widgets.virtual_table import VirtualTable

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
