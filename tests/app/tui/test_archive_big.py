"""A 50,000-file archive: its first page of rows shows before the rest are built, then all of it."""

from __future__ import annotations

import pytest

from app.tui.app import make_app
from app.core.settings import AppSettings
from app.tui.widgets.virtual_table import VirtualTable

from tests.bench.bench_data import build_padded
from tests.support.helpers import settle

REPO = "test/big"
ENTRIES = 50_000
SIZE = (100, 30)


@pytest.fixture
def big(hub_root):
    ds = build_padded(hub_root, REPO, archives=1, entries=ENTRIES)
    return ds.tasks(ds.ids["sparse"])[0][0]


async def test_a_50000_file_archive_shows_its_first_page_then_every_row(big, hub, tmp_path, monkeypatch):
    from app.tui.screens import archive as archive_module
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.screens.browse import BrowseScreen

    monkeypatch.setattr(archive_module, "FIRST_PAGE_WAIT_S", 120.0)  # a loaded machine paints late
    painted: list[tuple[int, list]] = []  # the files table's rows when it first drew some
    render_line = VirtualTable.render_line

    def spy(table, y):
        if not painted and table.id == "files" and table.row_count:
            painted.append((table.total_count, [r.key for r in table.rows]))
        return render_line(table, y)

    monkeypatch.setattr(VirtualTable, "render_line", spy)
    settings = AppSettings(repo=REPO, base_level=3, endpoint=hub.url, dst_dir=str(tmp_path / "dst"), workers=2)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen) and app.screen.loading_done,
                     "the archives screen")
        app.screen.query_one("#archives", VirtualTable).move_cursor_to_key(big)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index, "the index")
        screen = app.screen
        files = screen.query_one("#files", VirtualTable)
        index = screen.index
        assert files.total_count == len(index.entries) == ENTRIES

        # the first paint held the first page only, and it is where the sorted list starts
        first_total, first_keys = painted[0]
        assert first_total == archive_module.FIRST_PAGE
        by_offset = sorted(index.entries, key=lambda e: e.offset)
        assert first_keys == [e.name for e in by_offset[:first_total]]
        assert [r.key for r in files.rows[:first_total]] == first_keys
        assert [r.values[3] for r in files.rows] == sorted(e.offset for e in index.entries)

        # sort and filter on the whole list
        files.sort_by("id", reverse=True)
        ids = [r.values[1] for r in files.rows]
        assert ids == sorted((e.resource_id for e in index.entries), reverse=True)
        needle = str(index.entries[12_345].resource_id)
        files.set_filter(needle)
        assert files.rows and all(needle in r.key for r in files.rows)
        assert index.entries[12_345].name in {r.key for r in files.rows}
        assert "Files (50,000)" in str(screen.query_one("#archive-tabs").get_tab("tab-files").label)
