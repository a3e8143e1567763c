"""The command palette, with a guard for a crash in Textual 8.2.8 (the last 8.x on PyPI).

``ctrl+p`` then ``PageDown`` at once: the palette shows its list and highlights the first
command before the list has been laid out, and ``OptionList._move_page`` looks the highlight up
in a line map that is still empty (``KeyError: 0``), which ends the app. Until a Textual release
with the fix can be pinned, a page move on a list that is not laid out yet moves one row instead.
"""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

PAGE_MOVES = {"page_down": "cursor_down", "page_up": "cursor_up"}


def list_laid_out(commands: CommandList) -> bool:
    """True when a page move on ``commands`` can find the highlighted option's line."""
    highlighted = commands.highlighted
    if highlighted is None:
        return True  # Textual moves to the first / last option: no line lookup
    return highlighted in commands._index_to_line  # builds the lines when the list has a size


class SafeCommandPalette(CommandPalette):
    """Textual's palette; page moves before the first layout degrade to a one-row move."""

    def _action_command_list(self, action: str) -> None:
        fallback = PAGE_MOVES.get(action)
        if fallback is not None and not list_laid_out(self.query_one(CommandList)):
            action = fallback
        super()._action_command_list(action)
