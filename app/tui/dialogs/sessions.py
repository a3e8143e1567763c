"""Dialogs of sessions: resume what the last session left unfinished; confirm a quit with jobs running."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from app.core.format import display_path, plural
from app.core.sessions import JobRecord
from pools.text import shown

SHOWN_JOBS = 6

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 95%; height: auto; padding: 1 2;
    border: thick $primary; background: $surface;
}}
{name} .dialog-title {{ text-style: bold; margin-bottom: 1; }}
{name} .dialog-body {{ height: auto; color: $text-muted; }}
{name} Horizontal {{ height: auto; margin-top: 1; }}
{name} Button {{ margin-right: 2; }}
"""


def describe_unfinished(records: list[JobRecord]) -> str:
    lines = []
    for r in records[:SHOWN_JOBS]:
        done = f"{r.ids_done:,}/{plural(r.n_ids, 'id')}" if r.ids_done else plural(r.n_ids, "id")
        lines.append(f"• {shown(r.repo, 60)} · {shown(r.ids, 40)} → {shown(display_path(r.dst_dir), 40)}"
                     f" ({r.state}, {done})")
    if len(records) > SHOWN_JOBS:
        lines.append(f"… and {plural(len(records) - SHOWN_JOBS, 'more job')}")
    return "\n".join(lines)


class ResumeScreen(ModalScreen[str | None]):
    """Offered at start when the last session left jobs unfinished: resume, later, or forget."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ResumeScreen")
    BINDINGS = [
        Binding("enter,r", "choose('resume')", "Resume", id="resume"),
        Binding("l,escape", "choose('later')", "Later", id="later"),
        Binding("f", "choose('forget')", "Forget", id="forget"),
    ]

    def __init__(self, records: list[JobRecord]) -> None:
        super().__init__()
        self.records = records

    def compose(self) -> ComposeResult:
        n = len(self.records)
        with Vertical():
            yield Static(f"{plural(n, 'job')} from the last session did not finish",
                         classes="dialog-title", markup=False)
            yield Static(describe_unfinished(self.records), classes="dialog-body", markup=False)
            yield Static("Resuming fetches only what is not on disk yet: every verified file is kept.",
                         classes="dialog-body", markup=False)
            with Horizontal():
                yield Button("Resume", id="resume", variant="primary", compact=True)
                yield Button("Later", id="later", compact=True)
                yield Button("Forget", id="forget", compact=True)
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class ConfirmQuitScreen(ModalScreen[bool]):
    """`ctrl+q` while jobs run: quit (they resume next time) or stay."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmQuitScreen")
    BINDINGS = [
        Binding("ctrl+q,y,enter", "answer(True)", "Quit", id="quit-now", priority=True),
        Binding("n,escape", "answer(False)", "Stay", id="stay"),
    ]

    def __init__(self, n_active: int) -> None:
        super().__init__()
        self.n_active = n_active

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{plural(self.n_active, 'job')} still running or queued. Quit?",
                         classes="dialog-title", markup=False)
            yield Static("They stop now and are offered for resuming at the next start; "
                         "files already verified are kept.", classes="dialog-body", markup=False)
            with Horizontal():
                yield Button("Quit", id="quit", variant="error", compact=True)
                yield Button("Stay", id="stay", compact=True)
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")

    def action_answer(self, quit_now: bool) -> None:
        self.dismiss(quit_now)
