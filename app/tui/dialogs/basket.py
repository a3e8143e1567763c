"""The basket: the ids marked with ``space``, kept across archives until queued or cleared.

:class:`Basket` belongs to the App (one per open dataset); the archive screen marks into it, every
screen's title says how many it holds, ``b`` shows it (queue, export or clear it), and opening
another dataset asks before it is emptied.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from app.core.format import plural
from app.tui.dialogs.ids import DIALOG_CSS
from pools import IdRanges
from pools.text import shown


class Basket:
    """Marked ids of one repo."""

    def __init__(self) -> None:
        self.repo: str | None = None
        self.ids: set[int] = set()

    def for_repo(self, repo: str | None) -> "Basket":
        """The basket of ``repo``: emptied when it held another repo's ids (asked before, see
        :class:`DiscardBasketScreen`)."""
        if repo != self.repo:
            self.repo, self.ids = repo, set()
        return self

    def toggle(self, rid: int) -> bool:
        """Mark or unmark ``rid``; whether it is marked now."""
        if rid in self.ids:
            self.ids.discard(rid)
            return False
        self.ids.add(rid)
        return True

    def label(self) -> str:
        return f"{plural(len(self.ids), 'id')} marked (b: basket)" if self.ids else ""

    def ranges(self) -> IdRanges:
        return IdRanges.of(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class BasketScreen(ModalScreen[str | None]):
    """What the basket holds; dismissed with ``"queue"``, ``"export"``, ``"clear"`` or None."""

    DEFAULT_CSS = DIALOG_CSS.format(name="BasketScreen") + "BasketScreen Horizontal { height: auto; margin-top: 1; }"
    BINDINGS = [
        Binding("q", "choose('queue')", "Queue them", id="basket-queue"),
        Binding("x", "choose('export')", "Export", id="basket-export"),
        Binding("delete,c", "choose('clear')", "Clear", id="basket-clear"),
        Binding("escape,b", "choose('')", "Close", id="basket-close"),
    ]

    def __init__(self, basket: Basket) -> None:
        super().__init__()
        self.basket = basket

    def compose(self) -> ComposeResult:
        ranges = str(self.basket.ranges()) if self.basket.ids else "nothing: mark ids with space in an archive"
        with Vertical():
            yield Static(f"Basket of {shown(self.basket.repo or '?')}: {plural(len(self.basket), 'id')}",
                         classes="dialog-title", markup=False)
            yield Static(shown(ranges, 600), classes="dialog-body", markup=False)
            with Horizontal():
                yield Button("Queue", id="queue", variant="primary", compact=True, disabled=not self.basket.ids)
                yield Button("Export", id="export", compact=True, disabled=not self.basket.ids)
                yield Button("Clear", id="clear", variant="error", compact=True, disabled=not self.basket.ids)
                yield Button("Close", id="close", compact=True)
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "close" else event.button.id)

    def action_choose(self, choice: str) -> None:
        if choice and not self.basket.ids:
            return
        self.dismiss(choice or None)


class DiscardBasketScreen(ModalScreen[bool]):
    """Before anything empties a basket that holds ids: discard them, or keep them."""

    DEFAULT_CSS = (DIALOG_CSS.format(name="DiscardBasketScreen")
                   + "DiscardBasketScreen Horizontal { height: auto; margin-top: 1; }")
    BINDINGS = [
        Binding("y", "answer(True)", "Discard", id="discard"),
        Binding("n,escape", "answer(False)", "Keep", id="keep"),
    ]

    def __init__(self, basket: Basket, why: str) -> None:
        super().__init__()
        self.basket, self.why = basket, why

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{plural(len(self.basket), 'id')} of {shown(self.basket.repo or '?')} are marked.",
                         classes="dialog-title", markup=False)
            yield Static(f"{self.why} empties the basket. Discard them? (b shows them; q queues them)",
                         classes="dialog-body", markup=False)
            with Horizontal():
                yield Button("Discard", id="discard", variant="error", compact=True)
                yield Button("Keep", id="keep", compact=True)
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "discard")

    def action_answer(self, discard: bool) -> None:
        self.dismiss(discard)
