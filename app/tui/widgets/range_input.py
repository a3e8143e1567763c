"""An id range input that validates as you type and says what is wrong right under it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from pools.errors import RangeError
from pools.ranges import IdRanges, parse_ids
from app.core.format import plural
from pools.text import shown


class RangeInput(Vertical):
    """``0-5, 1000-1003, 7000``: posts :class:`RangeInput.Changed` with the parsed ids or the error."""

    DEFAULT_CSS = """
    RangeInput {
        height: auto;
        & > Input { width: 1fr; }
        & > .range-error { color: $error; height: auto; padding: 0 1; }
        & > .range-ok { color: $text-muted; height: auto; padding: 0 1; }
    }
    """

    class Changed(Message):
        def __init__(self, range_input: RangeInput, ids: IdRanges | None, error: str | None) -> None:
            super().__init__()
            self.range_input = range_input
            self.ids = ids
            self.error = error

        @property
        def control(self) -> RangeInput:
            return self.range_input

    class Submitted(Message):
        def __init__(self, range_input: RangeInput, ids: IdRanges) -> None:
            super().__init__()
            self.range_input = range_input
            self.ids = ids

        @property
        def control(self) -> RangeInput:
            return self.range_input

    def __init__(self, value: str = "", *, placeholder: str = "ids, e.g. 0-5, 1000-1003, 7000",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._initial = value
        self._placeholder = placeholder
        self.ids: IdRanges | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(self._initial, placeholder=self._placeholder, id="range-text", compact=True)
        yield Static("", id="range-message", classes="range-ok", markup=False)

    def on_mount(self) -> None:
        self._check(self.query_one(Input).value, quiet_when_empty=True)

    @property
    def value(self) -> str:
        return self.query_one(Input).value

    @value.setter
    def value(self, text: str) -> None:
        self.query_one(Input).value = text

    def focus(self, scroll_visible: bool = True) -> RangeInput:
        self.query_one(Input).focus(scroll_visible)
        return self

    def _check(self, text: str, quiet_when_empty: bool = False) -> None:
        message = self.query_one("#range-message", Static)
        if quiet_when_empty and not text.strip():
            self.ids, self.error = None, None
            message.update("")
            message.set_classes("range-ok")
            self.query_one(Input).set_class(False, "-invalid")
            self.post_message(self.Changed(self, None, None))
            return
        try:
            ids = parse_ids(text)
        except RangeError as exc:
            self.ids, self.error = None, str(exc)
            message.update(f"✗ {shown(exc)}")
            message.set_classes("range-error")
            self.query_one(Input).set_class(True, "-invalid")
        else:
            self.ids, self.error = ids, None
            message.update(f"✓ {plural(len(ids), 'id')} in {plural(len(ids.ranges), 'range')}: {_short(str(ids))}")
            message.set_classes("range-ok")
            self.query_one(Input).set_class(False, "-invalid")
        self.post_message(self.Changed(self, self.ids, self.error))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._check(event.value, quiet_when_empty=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._check(event.value)
        if self.ids is not None:
            self.post_message(self.Submitted(self, self.ids))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
