"""A checkbox and a radio button whose state shows in their glyph, not only in its colour: in 256
colours (or to a colour-blind eye) Textual's ``▐X▌`` looks the same on and off."""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class _GlyphState:
    ON, OFF = "X", " "

    def watch_value(self) -> None:
        self.BUTTON_INNER = self.ON if self.value else self.OFF
        super().watch_value()  # type: ignore[misc]

    def on_mount(self) -> None:
        self.BUTTON_INNER = self.ON if self.value else self.OFF
        self.refresh()


class StateCheckbox(_GlyphState, Checkbox):
    """``▐X▌`` ticked, ``▐ ▌`` not."""


class StateRadioButton(_GlyphState, RadioButton):
    """``▐●▌`` chosen, ``▐ ▌`` not."""

    ON = "●"
