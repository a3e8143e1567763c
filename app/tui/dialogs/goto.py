"""`g`: go to a resource id (its archive opens, its files are highlighted); `g g`: the first row."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from app.tui.dialogs.keys import QUIT
from pools.ranges import MAX_DIGITS, MAX_ID
from pools.text import shown

FIRST_ROW = "first-row"
"""What the dialog returns for a second `g` in an empty box: vim's `gg`, the table's first row."""


def parse_goto(text: str) -> int | str:
    """The id typed (a non-negative integer, commas and spaces allowed) or a one-line problem."""
    cleaned = text.replace(",", "").replace("_", "").strip()
    if not cleaned:
        return "type an id, e.g. 7017"
    if not (cleaned.isascii() and cleaned.isdigit()):  # "²" is a digit to isdigit(), not to int()
        return f"'{shown(cleaned, 20)}' is not an id: ids are whole numbers"
    if len(cleaned) > MAX_DIGITS or int(cleaned) > MAX_ID:  # int() of 5,000 digits raises
        return "that id is too large"
    return int(cleaned)


class GoToIdScreen(ModalScreen[int | str | None]):
    """A one-line dialog: an id and enter; dismisses with the id, FIRST_ROW, or None."""

    BINDINGS = [
        QUIT,
        Binding("escape", "close", "Cancel", id="cancel"),
        Binding("enter", "go", "Go", id="go", show=True),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="goto-dialog"):
            yield Label("Go to id: its archive opens, its files highlighted.")
            yield Input(placeholder="resource id, e.g. 7017", id="goto-id", compact=True)
            yield Static("", id="goto-error", markup=False)
            yield Static("enter: go · g in the empty box: the first row · esc: cancel",
                         id="goto-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#goto-id").focus()

    @on(Input.Changed, "#goto-id")
    def _changed(self, event: Input.Changed) -> None:
        if event.value == "g":
            self.dismiss(FIRST_ROW)
            return
        self.query_one("#goto-error", Static).update("")

    @on(Input.Submitted, "#goto-id")
    def _submitted(self) -> None:
        self.action_go()

    def action_go(self) -> None:
        result = parse_goto(self.query_one("#goto-id", Input).value)
        if isinstance(result, str):
            self.query_one("#goto-error", Static).update(f"✗ {result}")
            return
        self.dismiss(result)

    def action_close(self) -> None:
        self.dismiss(None)
