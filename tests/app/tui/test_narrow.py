"""At 80 columns the tables drop hashes and counters first, never names (each table, real screens)."""

from __future__ import annotations

import pytest

from app.tui.app import make_app
from app.tui.screens.archive_rows import FILE_COLUMNS
from app.tui.screens.browse_rows import COLUMNS as ARCHIVE_COLUMNS
from app.tui.widgets.virtual_table import VirtualTable

from tests.support.helpers import settle
from tests.support.tui import demo_app_settings, open_archive, open_demo


def widths(table: VirtualTable) -> dict[str, int]:
    return {c.key: w for c, w in zip(table.columns, table._widths)}


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_archive_names_stay_whole_and_hashes_go_first_when_narrow(demo, size):
    app = make_app(demo)
    async with app.run_test(size=size) as pilot:
        browse = await open_demo(pilot)
        table = browse.query_one("#archives", VirtualTable)
        shown = widths(table)
        assert shown["archive"] >= len("images/000.tar")
        assert table.virtual_size.width <= table.size.width  # no sideways scrolling
        if size[0] == 80:
            assert shown["lfs"] == 0 and shown["hash"] == 0
            assert "LFS hash" not in table._header_strip(table.rich_style).text
        else:
            assert all(shown.values()), shown
        assert [c.key for c in table.columns] == [c.key for c in ARCHIVE_COLUMNS]
        files_screen = await open_archive(pilot)
        files = files_screen.query_one("#files", VirtualTable)
        shown = widths(files)
        assert shown["name"] >= max(len(r.cells[2]) for r in files.rows)
        assert files.virtual_size.width <= files.size.width
        assert [c.key for c in files.columns] == [c.key for c in FILE_COLUMNS]


async def test_s_skips_a_hidden_column_and_a_click_maps_to_the_shown_one(demo):
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        browse = await open_demo(pilot)
        table = browse.query_one("#archives", VirtualTable)
        seen = []
        for _ in range(len(table.columns)):
            await pilot.press("s")
            seen.append(table.columns[table.sort_column].key)
        assert "hash" not in seen and "lfs" not in seen and seen[0] == "archive"


async def test_the_picker_shows_every_preset_name_whole_at_80_columns():
    from app.core.settings import AppSettings

    app = make_app(AppSettings(clock=lambda: 0.0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.screen.query("#presets"), "the picker")
        table = app.screen.query_one("#presets", VirtualTable)
        shown = widths(table)
        assert shown["name"] >= max(len(r.cells[0]) for r in table.rows)
        assert table.virtual_size.width <= table.size.width
