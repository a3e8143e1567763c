"""Pick a dataset: the public presets, or any repo typed in by hand."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from app.core.catalogue import DEMO, LISTED, PRESETS, Preset, find_preset
from app.core.settings import AppSettings, check_repo_id, default_token, format_base_level, parse_base_level
from app.tui.widgets.virtual_table import Column, Row, VirtualTable


def repo_problem(text: str, what: str = "repo id") -> str | None:
    """What is wrong with a repo id typed in the form, in one line; None when it is fine."""
    if not text:
        return f"{what} is empty"
    try:
        check_repo_id(text, what)
    except ValueError as exc:
        return str(exc)
    return None


class PickerScreen(Screen):
    """Presets on top, the repo form under them; Enter on a preset opens it."""

    TITLE = "Pick a dataset"

    HELP_PLACE = "datasets"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("ctrl+o", "open_form", "Open", id="open"),
        Binding("ctrl+e", "demo", "Demo", id="demo"),
        Binding("slash", "focus_presets", "Presets", show=False),
    ]

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        self.settings = settings
        # the config file's presets (app.core.config) first after the demo: they are the user's own
        self._presets = {p.name: p for p in (DEMO, *settings.presets, *PRESETS)}

    def compose(self) -> ComposeResult:
        yield Header()
        yield VirtualTable(
            # names whole (the repo says the same at more length); too narrow: the layout goes
            [Column("name", "Dataset", min(32, max(len(n) for n in self._presets))),
             Column("repo", "Repo", None, min_width=20),
             Column("layout", "Layout", 16, drop=1), Column("access", "Access", 8)],
            id="presets",
        )
        s = self.settings
        token = s.token if s.token is not None else (None if s.demo else default_token())
        with Vertical(id="repo-form"):
            with Grid(id="form-grid"):
                yield Label("Repo", classes="form-label")
                yield Input(s.repo or "", placeholder="owner/name", id="repo", compact=True)
                yield Label("Index repo", classes="form-label")
                yield Input(s.idx_repo or "", placeholder="same as repo", id="idx-repo", compact=True)
                yield Label("Revision", classes="form-label")
                yield Input(s.revision or "main", id="revision", compact=True)
                yield Label("Base dir", classes="form-label")
                yield Input(s.base_dir, id="base-dir", compact=True)
                yield Label("Base level", classes="form-label")
                yield Input(format_base_level(s.base_level), placeholder="3 or 3,4",
                            id="base-level", compact=True)
                yield Label("Token", classes="form-label")
                yield Input(token or "", password=True, placeholder="none (public repos only)",
                            id="token", compact=True)
            with Horizontal(id="form-actions"):
                yield Static("", id="form-error", markup=False)
                yield Button("Open", id="open", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#presets", VirtualTable)
        rows = []
        for p in self._presets.values():
            access_style = {"public": "ok", "gated": "warn", "private": "error"}[p.access]
            rows.append(Row(p.name, (p.name, p.repo, p.layout_label, p.access),
                            cell_styles={3: access_style},
                            style=None if p.can_queue else "dim"))
        table.set_rows(rows)
        if self.settings.repo:
            table.move_cursor_to_key(getattr(self._preset_for(self.settings.repo), "name", None))
        else:  # sessions: the preset opened last time
            table.move_cursor_to_key(self.app.remembered("last_preset"))
        table.focus()

    def _preset_for(self, repo: str) -> Preset | None:
        chosen = getattr(self, "_chosen", None)  # two presets may read one repo (a class and its Stable view)
        if chosen is not None and chosen.repo == repo:
            return chosen
        return next((p for p in self._presets.values() if p.repo == repo), None) or find_preset(repo)

    # ---- presets --------------------------------------------------------------------------

    @on(VirtualTable.Highlighted, "#presets")
    def _preset_highlighted(self, event: VirtualTable.Highlighted) -> None:
        preset = self._presets.get(event.key)
        if preset is not None:
            self._fill_form(preset)

    @on(VirtualTable.Selected, "#presets")
    def _preset_selected(self, event: VirtualTable.Selected) -> None:
        preset = self._presets.get(event.key)
        if preset is DEMO:
            self.app.open_demo()
        elif preset is not None:
            self._fill_form(preset)
            self.action_open_form()

    def _fill_form(self, preset: Preset) -> None:
        self._chosen = preset
        self.query_one("#repo", Input).value = preset.repo
        self.query_one("#idx-repo", Input).value = preset.idx_repo or ""
        self.query_one("#revision", Input).value = "main"
        self.query_one("#base-dir", Input).value = preset.base_dir if preset.can_queue else ""
        self.query_one("#base-level", Input).value = (
            format_base_level(preset.base_level) if preset.base_level is not None else "")
        self._show_error("")
        note = preset.notes
        if preset.access == "gated":
            note = "gated: needs a token from an account that accepted its terms" + (
                f"; {note}" if note else "")
        elif preset.access == "private":
            note = "private: needs a token with access" + (f"; {note}" if note else "")
        if not preset.can_queue:
            note = "browse only (no id → archive rule)" + (f"; {note}" if note else "")
        self.query_one("#form-error", Static).update(note)
        self.query_one("#form-error", Static).set_class(False, "-error")

    # ---- the form -------------------------------------------------------------------------

    def _show_error(self, text: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(text)
        error.set_class(bool(text), "-error")

    def form_settings(self) -> AppSettings | None:
        """The settings the form describes, or None with the problem shown under the form."""
        value = lambda wid: self.query_one(f"#{wid}", Input).value.strip()  # noqa: E731
        repo, idx_repo = value("repo"), value("idx-repo")
        problem = repo_problem(repo) or (repo_problem(idx_repo, "index repo id") if idx_repo else None)
        if problem:
            self._show_error(problem)
            return None
        preset = self._preset_for(repo)
        layout = preset.layout if preset is not None else "increment-id"
        level_text = value("base-level")
        try:
            level = parse_base_level(level_text) if level_text else 3
        except ValueError as exc:
            if layout == "increment-id":
                self._show_error(str(exc))
                return None
            level = 3
        if not level_text and layout == "increment-id":
            self._show_error("base level is empty: give 3, or 3,4 to try level 3 then 4")
            return None
        if self.query_one("#form-error", Static).has_class("-error"):
            self._show_error("")  # the problem is fixed; a preset's note stays
        dataset_class = None
        if (preset is not None and preset.dataset_class and idx_repo == (preset.idx_repo or "")
                and value("base-dir") == preset.base_dir and level_text == format_base_level(preset.base_level)):
            dataset_class = preset.dataset_class  # the form is the preset's: open its class
        return self.settings.with_repo(dataset_class=dataset_class,
            repo=repo, idx_repo=idx_repo or None, revision=value("revision") or "main",
            idx_revision=None, base_dir=value("base-dir"), base_level=level,
            token=self.query_one("#token", Input).value.strip() or None,
            layout=layout, archive_templates=preset.templates if preset is not None else (), demo=False,
            extra_layers=preset.extra_layers if preset is not None and preset.extra_layers != LISTED else (),
        )

    def action_open_form(self) -> None:
        settings = self.form_settings()
        if settings is None:
            return
        if settings.repo == DEMO.repo and not settings.endpoint:
            self.app.open_demo()  # the demo lives on the loopback Hub, not on huggingface.co
            return
        if self.app.open_dataset(settings):
            preset = self._preset_for(settings.repo)
            if preset is not None:
                self.app.remember("last_preset", preset.name)

    def action_demo(self) -> None:
        self.app.open_demo()

    def action_focus_presets(self) -> None:
        self.query_one("#presets").focus()

    @on(Button.Pressed, "#open")
    def _open_pressed(self) -> None:
        self.action_open_form()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_open_form()
