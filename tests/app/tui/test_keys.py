"""Keys: every key the help lists is bound where it says; escape, ctrl+q and the footers."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import Footer

from app.tui.app import CheesechaserApp, make_app
from app.tui.screens.archive import ArchiveScreen
from app.tui.screens.browse import BrowseScreen
from app.tui.dialogs.goto import GoToIdScreen
from app.tui.dialogs.help import KEYS, HelpScreen, help_markdown
from app.tui.screens.history import JobsScreen
from app.tui.screens.picker import PickerScreen
from app.tui.dialogs.queue import QueueScreen
from app.tui.screens.watch import WatchScreen
from app.core.settings import AppSettings
from app.tui.widgets.virtual_table import VirtualTable

from tests.support.helpers import settle
from tests.support.tui import demo_app_settings, open_archive, open_demo

SIZE = (100, 30)
from app.tui.screens.query import QueryScreen

PLACES = {"datasets": [PickerScreen], "archives": [BrowseScreen], "files": [ArchiveScreen],
          "downloads": [WatchScreen], "tables": [VirtualTable], "history": [JobsScreen],
          "query": [QueryScreen], "queue dialog": [QueueScreen]}
SCREENS = [PickerScreen, BrowseScreen, ArchiveScreen, WatchScreen, QueueScreen, HelpScreen,
           GoToIdScreen]


def bound_keys(cls) -> set[str]:
    keys = set()
    for binding in cls.BINDINGS:
        keys.update(k.strip() for k in binding.key.split(","))
    return keys


def test_every_key_the_help_lists_is_bound_where_it_says():
    app_keys = bound_keys(CheesechaserApp) | {App.COMMAND_PALETTE_BINDING}
    for keys, where, _ in KEYS:
        for key in keys:
            if where == "anywhere":
                if key == "escape":  # backs out: each screen binds it itself
                    missing = [s.__name__ for s in SCREENS if key not in bound_keys(s)
                               and s is not PickerScreen]
                    assert not missing, f"escape not bound on {missing}"
                else:
                    assert key in app_keys, key
                continue
            for place in (p.strip() for p in where.split(",")):
                for cls in PLACES[place]:
                    assert key in bound_keys(cls), f"{key!r} listed for {place} but not bound"
    text = help_markdown()
    assert "`g`" in text and "`F1`, `?`" in text and "`/`" in text


def test_every_screen_has_a_help_place_and_every_bound_key_of_it_is_in_the_help():
    from app.tui.dialogs.help import applies

    for place, classes in PLACES.items():
        if place == "tables":
            continue
        (cls,) = classes
        assert cls.HELP_PLACE == place
        listed = {k for keys, where, _ in KEYS if applies(where, place) for k in keys}
        unlisted = {k for k in bound_keys(cls) if k not in listed and k not in ("f1", "ctrl+q")}
        hidden = {"tab", "shift+tab", "pageup", "pagedown"}  # movement every table and form has
        assert not unlisted - hidden, f"{place}: bound but not in the help: {unlisted - hidden}"


async def test_help_lists_the_keys_of_the_screen_it_opens_over_first(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        text = help_markdown(app.screen.place)
        here, elsewhere = text.split("## Keys on other screens")
        assert here.startswith("# Keys here (archives)") and "# cheesechaser" in here
        for key in ("`ctrl+r`", "`a`", "`m`", "`g`", "`/`", "`b`"):
            assert key in here, key
        assert "`c`, `C`" in elsewhere and "`c`, `C`" not in here  # cancel is the downloads'
        assert "`ctrl+l`" in elsewhere


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root)


def footer_keys(screen) -> set[str]:
    """The keys the footer of ``screen`` shows (its own and the app's)."""
    return {key for key, active in screen.active_bindings.items() if active.binding.show}


async def test_escape_backs_out_of_every_screen_and_footers_show_the_main_keys(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        assert {"ctrl+q", "slash", "g", "q", "escape"} <= footer_keys(browse)
        screen = await open_archive(pilot)
        assert {"ctrl+q", "space", "g", "u", "q", "escape"} <= footer_keys(screen)
        for key, cls in (("q", QueueScreen), ("g", GoToIdScreen), ("f1", HelpScreen),
                         ("ctrl+d", WatchScreen)):
            await pilot.press(key)
            await settle(pilot, lambda: isinstance(app.screen, cls), cls.__name__)
            # a dialog has a footer of its own keys, not the screen's behind it
            assert app.screen.query(Footer), cls.__name__
            shown = footer_keys(app.screen)
            assert "ctrl+q" in shown and "escape" in shown, (cls.__name__, shown)
            if cls is QueueScreen:
                assert "ctrl+s" in shown and "space" not in shown
            await pilot.press("escape")
            await settle(pilot, lambda: app.screen is screen, f"back from {cls.__name__}")
        await pilot.press("escape")
        assert app.screen is browse
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)


async def test_ctrl_q_quits_from_a_dialog_too():
    app = make_app(AppSettings(clock=lambda: 0.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_the_palette_holds_the_query_screen_and_none_of_textuals_own_screen_keys(demo_settings):
    from tests.app.tui.conftest import open_demo

    app = make_app(demo_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        browse = await open_demo(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Query the metadata" in titles and "Basket of marked ids" in titles
        assert not {"Keys", "Maximize", "Minimize"} & set(titles) and titles.count("Quit") == 1
        assert "m" in footer_keys(browse)  # the Query screen is in the footer
        app.action_query_metadata()
        await pilot.pause()
        assert type(app.screen).__name__ == "QueryScreen"


async def test_g_on_a_dataset_that_did_not_open_says_so_at_once(hub, tmp_path, monkeypatch):
    """A dataset that failed to open still took `g` and retried for 25 s."""
    from app.core.settings import AppSettings
    from tests.support.helpers import settle

    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(repo="someone/no-such-dataset", endpoint=hub.url, clock=lambda: 0.0))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen) and app.screen.error, "the error panel")
        browse = app.screen
        await pilot.press("g")
        await pilot.pause()
        assert app.screen is browse  # no go-to dialog, no lookups to retry
        assert any("did not open" in str(n.message) for n in app._notifications)
