"""One archive as a user works it: marks by id, tabs, sort, filter, hashes, go to an id."""

from __future__ import annotations

import pytest

from app.tui.app import make_app
from app.tui.widgets.virtual_table import VirtualTable

from tests.support.helpers import settle
from tests.support.tui import demo_app_settings, open_archive, open_demo

SIZE = (100, 30)


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root)


async def test_space_marks_an_id_with_its_sidecars_and_moves_to_the_next_id(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        screen = await open_archive(pilot)
        files = screen.query_one("#files", VirtualTable)
        with_sidecar = sorted(rid for rid, entries in screen.index.by_id.items() if len(entries) > 1)
        assert with_sidecar, "the demo has ids with a JSON sidecar"
        rid = with_sidecar[0]
        names = {e.name for e in screen.index.by_id[rid]}
        files.set_filter("")
        files.sort_by("name")  # 200.json, 200.png side by side
        first = min(names)
        files.move_cursor_to_key(first)
        order = [screen.entries[r.key].resource_id for r in files.rows]
        start = order.index(rid)
        await pilot.press("space", "space", "space")
        # three presses, three ids: the sidecar never takes a press of its own
        distinct = []
        for x in order[start:]:
            if x not in distinct:
                distinct.append(x)
        assert sorted(screen.marked) == sorted(distinct[:3])
        for name in names:  # every file of the id carries the mark glyph
            row = files.get_row(name)
            assert row.marked and row.cells[0] == "●"
        assert files.columns[0].label == "●"
        assert screen.sub_title == "3 ids marked (b: basket)"
        # unmark: the same id again, both of its files lose the glyph
        files.move_cursor_to_key(first)
        await pilot.press("space")
        assert rid not in screen.marked
        assert all(files.get_row(n).cells[0] == "" for n in names)


async def test_u_opens_the_unrecognized_tab_and_escape_comes_back(demo):
    from textual.widgets import TabbedContent

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        screen = await open_archive(pilot)
        tabs = screen.query_one("#archive-tabs", TabbedContent)
        await pilot.press("u")
        assert tabs.active == "tab-unrecognized"
        assert app.focused is screen.query_one("#unrecognized")
        await pilot.press("escape")  # back to the files, still in the archive
        assert tabs.active == "tab-files" and app.screen is screen
        assert app.focused is screen.query_one("#files")
        await pilot.press("escape")
        assert type(app.screen).__name__ == "BrowseScreen"


async def test_s_and_r_sort_and_reverse_the_files(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        screen = await open_archive(pilot)
        files = screen.query_one("#files", VirtualTable)
        offsets = [r.values[3] for r in files.rows]
        assert offsets == sorted(offsets)  # opened by offset
        await pilot.press("r")
        assert [r.values[3] for r in files.rows] == sorted(offsets, reverse=True)
        await pilot.press("s")  # the next column: size
        assert files.columns[files.sort_column].key == "size" and not files.sort_reverse
        await pilot.press("r")
        sizes = [r.values[4] for r in files.rows]
        assert sizes == sorted(sizes, reverse=True)


async def test_filter_matches_hashes_and_an_empty_result_blames_the_filter(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        archives = browse.query_one("#archives", VirtualTable)
        assert "hash" in browse.query_one("#archive-filter").placeholder
        await pilot.press("slash", *"zzzz")
        assert archives.row_count == 0
        text = archives.shown_empty_text
        assert "zzzz" in text and "base dir" not in text
        assert "No row matches" in app.screen.query_one("#archives").render_line(1).text
        await pilot.press("escape")
        screen = await open_archive(pilot)
        files = screen.query_one("#files", VirtualTable)
        placeholder = screen.query_one("#file-filter").placeholder
        assert "name" in placeholder and "sha256" in placeholder
        entry = screen.index.entries[3]
        await pilot.press("slash", *entry.sha256[:12])
        assert [r.key for r in files.rows] == [entry.name]


async def test_hashes_fold_into_the_info_line_and_i_shows_them(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        screen = await open_archive(pilot)
        info = screen.query_one("#archive-info")
        folded = str(info.render())
        assert "\n" not in folded and screen.index.hash[:8] in folded
        assert screen.index.hash not in folded
        await pilot.press("i")
        full = str(info.render())
        assert screen.index.hash in full and screen.index.hash_lfs in full
        await pilot.press("i")
        assert str(info.render()) == folded


async def test_g_from_the_archives_opens_the_id_s_archive_and_highlights_its_files(demo):
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.dialogs.goto import GoToIdScreen

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("g")
        assert isinstance(app.screen, GoToIdScreen)
        await pilot.press(*"x1", "enter")  # refused in the dialog, one line
        assert isinstance(app.screen, GoToIdScreen)
        assert "not an id" in str(app.screen.query_one("#goto-error").render())
        app.screen.query_one("#goto-id").value = ""
        await pilot.press(*"510", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                     "the archive of id 510")
        screen = app.screen
        assert screen.archive == "images/010.tar" and screen.highlighted_id == 510
        files = screen.query_one("#files", VirtualTable)
        assert screen.entries[files.cursor_key].resource_id == 510
        of_510 = [r for r in files.rows if screen.entries[r.key].resource_id == 510]
        assert len(of_510) == 2 and all(r.style == "accent" for r in of_510)  # 510.jpg and .json
        # inside an archive, `g` to an id of another archive replaces this one
        await pilot.press("g", *"17", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index
                     and app.screen.archive == "images/017.tar", "the archive of id 17")
        assert app.screen.highlighted_id == 17
        await pilot.press("escape")  # back to the archives, not to 010
        assert type(app.screen).__name__ == "BrowseScreen"


async def test_g_g_goes_to_the_first_row_and_an_absent_id_says_missing(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        archives = browse.query_one("#archives", VirtualTable)
        await pilot.press("G")
        assert archives.cursor == archives.row_count - 1
        await pilot.press("g", "g")  # vim's gg
        assert app.screen is browse and archives.cursor == 0
        await pilot.press("k", "j", "j")
        assert archives.cursor == 2
        # 4,999 maps to images/999.tar at level 3, which the demo (48 archives) lacks
        app.clear_notifications()
        await pilot.press("g", *"4999", "enter")
        assert app.screen is browse
        assert any("would be missing" in n.message for n in app._notifications)


async def test_marks_stay_in_the_basket_across_archives_until_queued_or_cleared(demo):
    """space space in 000.tar, then g 113 (another archive): the two marks stay, the title counts
    three after one more, q offers all three, from the archives table too; b shows and clears them;
    another dataset asks before it drops them."""
    from app.tui.dialogs.basket import BasketScreen, DiscardBasketScreen
    from app.tui.dialogs.goto import GoToIdScreen
    from app.tui.dialogs.queue import QueueScreen
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.screens.browse import BrowseScreen
    from app.tui.widgets.range_input import RangeInput
    from pools import parse_ids

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        first = await open_archive(pilot)
        first.query_one("#files", VirtualTable).cursor = 0
        await pilot.press("space", "space")
        two = sorted(first.marked)
        assert len(two) == 2 and first.sub_title == "2 ids marked (b: basket)"
        await pilot.press("g")
        await settle(pilot, lambda: isinstance(app.screen, GoToIdScreen), "the go-to dialog")
        await pilot.press(*"113", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen is not first
                     and app.screen.index is not None and app.screen.highlighted_id == 113, "id 113's archive")
        second = app.screen
        assert second.sub_title == "2 ids marked (b: basket)"  # the marks came along
        await pilot.press("space")
        three = sorted(second.marked)
        assert len(three) == 3 and set(two) < set(three) and second.sub_title.startswith("3 ids marked")
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert parse_ids(app.screen.query_one(RangeInput).value) == parse_ids(", ".join(map(str, three)))
        await pilot.press("escape", "escape")
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives table")
        assert app.screen.sub_title.startswith("3 ids marked")
        await pilot.press("q")  # from the archives table too
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert parse_ids(app.screen.query_one(RangeInput).value) == parse_ids(", ".join(map(str, three)))
        await pilot.press("escape")
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, BasketScreen), "the basket")
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "back")
        assert not app.basket.ids and app.screen.sub_title == ""
        # a mark, then another dataset: asked first, kept on "no"
        app.basket.for_repo(app.current_settings.repo).toggle(three[0])
        other = app.current_settings.with_repo(repo="t/other", demo=False)
        app.open_dataset(other)
        await settle(pilot, lambda: isinstance(app.screen, DiscardBasketScreen), "the question")
        await pilot.press("n")
        await pilot.pause()
        assert app.basket.ids == {three[0]} and app.current_settings.repo != "t/other"


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_go_to_an_id_far_down_shows_its_row(demo, size):
    """At 120x36 the highlighted row stayed off-screen until the next key."""
    from app.tui.dialogs.goto import GoToIdScreen

    app = make_app(demo)
    async with app.run_test(size=size) as pilot:
        from app.tui.screens.archive import ArchiveScreen

        await open_demo(pilot)
        first = await open_archive(pilot, "images/000.tar")
        index = app.current_pool.get_index("images/010.tar")
        last = max(e.resource_id for e in index.entries if e.resource_id is not None)  # far down in 010.tar
        await pilot.press("g")
        await settle(pilot, lambda: isinstance(app.screen, GoToIdScreen), "the go-to dialog")
        await pilot.press(*str(last), "enter")  # another archive opens, its index loads, then the row
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen is not first
                     and app.screen.highlighted_id == last, "the highlight")
        screen = app.screen
        files = screen.query_one("#files", VirtualTable)
        await pilot.pause()
        top = round(files.scroll_y)
        assert top <= files.cursor < top + files.scrollable_content_region.height - 1, (top, files.cursor)
