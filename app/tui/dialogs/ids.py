"""Export ids (marked, missing, failed, not reached) to a file; import ids from a file to queue.

Files hold one range expression per line (``1-500``), which ``--ids-from`` and the import read
back, with single ids one per line; see :mod:`app.core.idlists`.
"""

from __future__ import annotations

import os

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, RadioSet, Static

from app.core.format import display_path, plural
from app.core.idlists import IdFileError, read_ids, write_ids
from app.tui.dialogs.keys import QUIT
from app.tui.widgets.toggles import StateRadioButton
from pools import IdRanges
from pools.text import shown

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 76; max-width: 95%; height: auto; padding: 1 2;
                     border: thick $primary; background: $surface; }}
{name} Label {{ color: $text-muted; }}
{name} .ids-error {{ height: auto; color: $error; }}
{name} .ids-choices {{ height: auto; margin: 1 0; }}
"""
SET_ORDER = ("marked", "missing", "failed", "unfinished", "all")
SET_LABELS = {"marked": "marked", "missing": "missing", "failed": "failed",
              "unfinished": "failed and not reached", "all": "every id of the job"}


class ExportIdsScreen(ModalScreen[str | None]):
    """Pick a set of ids and a file; enter writes it. Dismisses with the path written."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ExportIdsScreen")
    BINDINGS = [QUIT, Binding("escape", "close", "Cancel", id="cancel")]

    def __init__(self, sets: dict[str, IdRanges], default_name: str = "ids.txt",
                 folder: str | None = None, notes: dict[str, str] | None = None) -> None:
        super().__init__()
        self.sets = {k: sets[k] for k in SET_ORDER if k in sets}
        self.notes = notes or {}  # a set that is not whole says so (the Missing pane keeps a bounded part)
        self.choice = next((k for k in ("marked", "unfinished", "failed", "missing", "all")
                            if self.sets.get(k)), next(iter(self.sets), "all"))
        self.default_path = os.path.join(folder or ".", default_name)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Export ids to a file (one range per line; --ids-from reads it back)")
            with RadioSet(id="export-choices", classes="ids-choices"):
                for name, ids in self.sets.items():
                    note = f" ({self.notes[name]})" if name in self.notes else ""
                    yield StateRadioButton(f"{SET_LABELS[name]}: {plural(len(ids), 'id')}{note}",
                                           value=name == self.choice, id=f"set-{name}")
            yield Input(display_path(os.path.abspath(self.default_path)), id="export-path", compact=True)
            yield Static("", id="export-error", classes="ids-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#export-path").focus()

    @on(RadioSet.Changed, "#export-choices")
    def _picked(self, event: RadioSet.Changed) -> None:
        self.choice = (event.pressed.id or "set-all").removeprefix("set-")

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        ids = self.sets.get(self.choice) or IdRanges()
        error = self.query_one("#export-error", Static)
        if not ids:
            error.update(f"✗ No {SET_LABELS.get(self.choice, self.choice)} ids to export.")
            return
        path = os.path.expanduser(event.value.strip())
        if not path:
            error.update("✗ Give a file name.")
            return
        if os.path.isdir(path):
            error.update(f"✗ {shown(display_path(path))} is a folder: give a file name.")
            return
        try:
            n = write_ids(path, ids)
        except OSError as exc:
            error.update(f"✗ Cannot write {shown(display_path(path))}: {exc.strerror or exc}")
            return
        self.app.notify(f"{plural(n, 'id')} ({SET_LABELS[self.choice]}) written to {os.path.abspath(path)}",
                        title="Exported", timeout=6)
        self.dismiss(os.path.abspath(path))

    def action_close(self) -> None:
        self.dismiss(None)


class ImportIdsScreen(ModalScreen[IdRanges | None]):
    """A file name; enter reads its ids (range expressions or one id per line) and dismisses."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ImportIdsScreen")
    BINDINGS = [QUIT, Binding("escape", "close", "Cancel", id="cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Import ids from a file: range expressions or one id per line, # comments")
            yield Input(placeholder="path, e.g. wanted.txt", id="import-path", compact=True)
            yield Static("", id="import-error", classes="ids-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#import-path").focus()

    @on(Input.Submitted, "#import-path")
    def _submitted(self, event: Input.Submitted) -> None:
        error = self.query_one("#import-error", Static)
        path = os.path.expanduser(event.value.strip())
        if not path:
            error.update("✗ Give a file name.")
            return
        try:
            ids = read_ids(path)
        except IdFileError as exc:
            error.update(f"✗ {exc}")
            return
        if not ids:
            error.update(f"✗ {shown(display_path(path))} holds no ids.")
            return
        self.dismiss(ids)

    def action_close(self) -> None:
        self.dismiss(None)
