"""The TUI's Query screen with Pilot against the demo dataset on the real loopback Hub: the live
count, the rows, a bad query, the preview through the archive's index, queueing the matches with
captions; and a snapshot at 100x30."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Checkbox, Input, Static

from app.tui.app import make_app
from app.hub.dataset import repo_dir
from app.hub.demo import DEMO_REPO, demo_ids
from app.core.settings import AppSettings
from app.tui.widgets.image_preview import ImagePreview
from app.tui.widgets.virtual_table import VirtualTable
from pools import RetryPolicy
from pools.metadata import open_table

from tests.support.helpers import settle

SIZE = (100, 30)
FAST = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, jitter=0.0, connect_timeout=2.0, read_timeout=10.0)
QUERY = "cat -sky rating:g score:>=50"


@pytest.fixture
def demo_settings(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return AppSettings(demo=True, demo_root=demo_root, dst_dir="downloads", workers=4,
                       clock=lambda: 0.0, retry=FAST, endpoint_label="loopback hub")


@pytest.fixture
def expected(demo_root):
    with open_table(str(repo_dir(demo_root, DEMO_REPO) / "metadata.parquet")) as table:
        yield {"all": table.count(""), "ids": list(table.ids(QUERY)),
               "tags": {r.id: r.tags for r in table.iter_rows(QUERY)}}


async def open_query(pilot):
    from app.tui.screens.browse import BrowseScreen
    from app.tui.screens.query import QueryScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    await pilot.press("m")
    await settle(pilot, lambda: isinstance(app.screen, QueryScreen) and app.screen.count is not None,
                 "the table and the first count")
    return app.screen


async def type_query(pilot, screen, text: str, done):
    screen.query_one("#query-input", Input).value = text
    await settle(pilot, lambda: screen.query_text == text and done(), f"the count of {text!r}")


async def test_live_count_rows_and_preview(demo_settings, expected):
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_query(pilot)
        assert screen.count == expected["all"]
        assert "demo/booru-mini/metadata.parquet" in str(screen.query_one("#query-source", Static).render())
        await type_query(pilot, screen, QUERY, lambda: screen.count == len(expected["ids"]))
        table = screen.query_one("#query-rows", VirtualTable)
        assert [row.key for row in table.rows] == expected["ids"]
        first = table.rows[0]
        assert first.cells[4] == expected["tags"][first.key]
        assert "match" in str(screen.query_one("#query-count", Static).render())
        # the preview of a post the archives hold, found through its archive's index
        held = set(demo_ids())
        assert first.key in held
        preview = screen.query_one("#query-preview", ImagePreview)
        await settle(pilot, lambda: preview.has_image, "the preview")
        # a post the mirror does not hold says so
        absent = next(i for i, row in enumerate(table.rows) if row.key not in held)
        table.cursor = absent
        await settle(pilot, lambda: screen._preview_rid == table.rows[absent].key and not preview.has_image
                     and "in no archive" in preview._text, "the missing notice")


async def test_a_bad_query_points_at_its_term(demo_settings):
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_query(pilot)
        label = screen.query_one("#query-count", Static)
        await type_query(pilot, screen, "cat score:>=abc", lambda: label.has_class("-error"))
        text = str(label.render())
        assert "score:>=abc" in text and "column 5" in text and "\n" not in text.strip()
        assert screen.count is None
        await pilot.press("ctrl+s")  # nothing to queue
        assert not app.model.jobs


async def test_typing_fast_counts_only_the_last_query(demo_settings, expected):
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_query(pilot)
        box = screen.query_one("#query-input", Input)
        box.focus()
        await pilot.press(*"cat")  # three keystrokes, three debounced workers; two get cancelled
        await settle(pilot, lambda: screen.query_text == "cat" and screen.count is not None
                     and "counting" not in str(screen.query_one("#query-count", Static).render()), "the count")
        with open_table(str(repo_dir(demo_settings.demo_root, DEMO_REPO) / "metadata.parquet")) as t:
            assert screen.count == t.count("cat")


async def test_queue_the_matches_with_captions(demo_settings, expected, tmp_path):
    from app.tui.dialogs.queue import QueueScreen

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_query(pilot)
        await type_query(pilot, screen, QUERY, lambda: screen.count == len(expected["ids"]))
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen) and "archive" in app.screen.preview_text,
                     "the queue dialog's preview")
        dialog = app.screen
        assert f"{len(expected['ids'])} posts matching" in str(dialog.query_one("#queue-matches", Static).render())
        assert dialog.preview_text.startswith(f"{len(expected['ids'])} ids")
        dialog.query_one("#queue-captions", Checkbox).value = True
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.model.jobs, "the job")
        for view in list(app.model.jobs.values()):
            await asyncio.to_thread(view.job.wait, 60)
            report = view.job.report
        app.flush_engine_events()
        await pilot.pause()
        held = [rid for rid in expected["ids"] if rid in set(demo_ids())]
        assert sorted(report.downloaded) == held
        assert sorted(report.missing) == sorted(set(expected["ids"]) - set(held))
        dst = tmp_path / "downloads"
        await settle(pilot, lambda: all((dst / f"{rid}.txt").exists() for rid in held), "every caption")
        for rid in held:
            tags = (dst / f"{rid}.txt").read_text().strip().split(", ")
            assert set(tags) == set(expected["tags"][rid].split())
        await settle(pilot, lambda: app.downloader._listeners == [app.pump], "the caption writer to detach")


# ---- snapshot -----------------------------------------------------------------------------

def test_query_screen_snapshot(snap_compare, demo_settings, expected):
    app = make_app(demo_settings)

    async def run_before(pilot):
        screen = await open_query(pilot)
        await type_query(pilot, screen, QUERY, lambda: screen.count == len(expected["ids"]))
        await settle(pilot, lambda: screen.query_one("#query-preview", ImagePreview).has_image, "the preview")
        await pilot.app.workers.wait_for_complete()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_the_screen_queries_a_big_tables_copy(demo_settings, expected, tmp_path, monkeypatch):
    from pools.metadata import table as table_module
    monkeypatch.setattr(table_module, "MIN_INDEX_BYTES", 1)  # the demo table counts as big
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_query(pilot)
        assert screen.table.index_path is not None and screen.table.index_built
        assert screen.count == expected["all"]
        await type_query(pilot, screen, QUERY, lambda: screen.count == len(expected["ids"]))
        assert [row.key for row in screen.query_one("#query-rows", VirtualTable).rows] == expected["ids"]
