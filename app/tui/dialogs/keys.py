"""Bindings every dialog shares.

A modal screen's footer shows only the modal's own bindings, not the app's: ``ctrl+q`` (an app
binding with priority, so it works everywhere anyway) is repeated here so that dialogs show it.
"""

from __future__ import annotations

from textual.binding import Binding

QUIT = Binding("ctrl+q", "app.quit", "Quit", id="quit")
