"""Checkboxes and radio buttons show their state in the glyph: in 256 colours Textual's ``▐X▌``
looked the same ticked and not (a user queued "with captions" and got none)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import RadioSet

from app.tui.widgets.toggles import StateCheckbox, StateRadioButton


class _Toggles(App):
    def compose(self) -> ComposeResult:
        yield StateCheckbox("captions", id="cb")
        with RadioSet(id="rs"):
            yield StateRadioButton("marked", value=True, id="a")
            yield StateRadioButton("missing", id="b")


async def test_the_glyph_says_on_or_off_in_any_colours():
    app = _Toggles()
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        cb = app.query_one("#cb", StateCheckbox)
        assert cb.BUTTON_INNER == " "
        cb.value = True
        await pilot.pause()
        assert cb.BUTTON_INNER == "X"
        a, b = app.query_one("#a", StateRadioButton), app.query_one("#b", StateRadioButton)
        assert (a.BUTTON_INNER, b.BUTTON_INNER) == ("●", " ")
        b.value = True
        await pilot.pause()
        assert (a.BUTTON_INNER, b.BUTTON_INNER) == (" ", "●")
        screen = app.export_screenshot()
        assert screen.count("●") == 1  # exactly one radio shows as chosen
