"""Pilot tests for the defects issue 11 reproduced, each failing before its fix (no sleeps)."""

from __future__ import annotations

import pytest
from textual.command import CommandList

from app.app import make_app
from app.settings import AppSettings

from helpers import settle

SIZE = (100, 30)


async def test_page_down_in_a_palette_not_laid_out_yet_does_not_crash():
    """ctrl+p then PageDown at once: Textual 8.2.8 raised KeyError and the app died."""
    from app.screens.palette import SafeCommandPalette

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
