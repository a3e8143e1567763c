"""What the TUI tests share: the demo's settings (a fixture), opening it, waiting for jobs."""

from __future__ import annotations

import asyncio

import pytest

from app.core.settings import AppSettings
from app.tui.app import CheesechaserApp
from pools import RetryPolicy
from tests.support.helpers import settle

FAST = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, jitter=0.0, connect_timeout=2.0,
                   read_timeout=10.0)


@pytest.fixture
def demo_settings(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return AppSettings(demo=True, demo_root=demo_root, dst_dir="downloads", workers=4,
                       clock=lambda: 0.0, retry=FAST, endpoint_label="loopback hub")


async def open_demo(pilot):
    from app.tui.screens.browse import BrowseScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    return app.screen


async def wait_jobs(pilot) -> None:
    app: CheesechaserApp = pilot.app
    for view in list(app.model.jobs.values()):
        await asyncio.to_thread(view.job.wait, 60)
    app.flush_engine_events()
    await pilot.pause()
