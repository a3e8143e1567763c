"""Keys and the few ideas behind the app, one screen.

The key table is data (:data:`KEYS`): the help renders it, and a test checks that every key it
lists is bound where it says, so the help cannot promise a key that does nothing. Opened over a
screen (its ``HELP_PLACE``), the help lists that screen's keys first, then the others'.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

from app.tui.dialogs.keys import QUIT

INTRO = """\
# cheesechaser

Pull exactly the images you want out of indexed-tar datasets on the Hugging Face Hub.

* An **archive** is a `.tar` in the dataset repo; its **index** (`.json`) says where every file
  starts, its size and sha256. Files are fetched one ranged request at a time: never the whole tar.
* A **resource id** is the number in a file's name (`114514.png` → 114514). With base level
  *L*, id `N` lives in the archive picked by `N % 10^L`.
* **Unrecognized** names map to no id (or are unsafe) and are never downloaded.
  **Missing** ids are in no archive. **Failed** ids could not be fetched or verified.
"""

OUTRO = """
Downloads resume: a file already in the destination whose sha256 matches the index is not fetched
again, and files appear only once verified.
"""

# (keys as typed, where, what it does); "where" names the screens checked by the tests
KEYS: list[tuple[tuple[str, ...], str, str]] = [
    (("f1", "question_mark"), "anywhere", "this help"),
    (("ctrl+p",), "anywhere", "command palette: every main action"),
    (("ctrl+d",), "anywhere", "downloads: workers, jobs, errors"),
    (("ctrl+q",), "anywhere", "quit (asks first while jobs run; they are offered for resuming at the next start)"),
    (("escape",), "anywhere", "back: clears a filter, closes a dialog, leaves a screen"),
    (("up", "down", "j", "k"), "tables", "move the cursor"),
    (("home", "end", "G"), "tables", "first / last row (`g` too where it is not go to id)"),
    (("enter",), "tables", "open the dataset / archive"),
    (("ctrl+o", "ctrl+e"), "datasets", "open the form's repo / the offline demo"),
    (("slash",), "datasets", "to the list of presets"),
    (("ctrl+r",), "archives", "list the repo again (after an error, or to see new archives)"),
    (("a",), "archives", "load every index now (otherwise those on screen load as you scroll)"),
    (("slash",), "archives, files", "filter on names, ids and hashes"),
    (("s", "r"), "archives, files", "sort by the next column / reverse; or click a header"),
    (("g",), "archives, files", "go to an id: its archive opens, its files highlighted; `g g`: first row"),
    (("space",), "files", "mark an id (with its sidecars) and go to the next id; marks stay across archives"),
    (("b",), "archives, files", "the basket of marked ids: queue, export or clear them"),
    (("u",), "files", "the Unrecognized tab (esc: back to the files)"),
    (("i",), "archives, files", "full hashes of the archive (folded into one line otherwise)"),
    (("p",), "files", "show or hide the preview"),
    (("q",), "archives, files, downloads", "queue an id range: `0-5, 1000-1003, 7000` (the basket's ids when it holds some)"),
    (("m",), "archives", "query the metadata table: `cat_ears -comic rating:g,s score:>=10`, then queue the matches"),
    (("ctrl+s",), "query, queue dialog", "queue the matches / the ids the dialog holds"),
    (("ctrl+l",), "query", "back to the query line from the matches"),
    (("c", "C"), "downloads", "cancel the selected job / every job"),
    (("r",), "downloads", "retry what the selected job did not finish: failed and not reached ids"),
    (("h",), "downloads", "job history of every session: re-run, resume, report"),
    (("x", "i"), "downloads", "export ids (marked, missing, failed, not reached) / import ids from a file"),
    (("enter", "r", "s", "t", "e"), "history", "report / re-run / resume / retry unfinished / export ids"),
    (("m", "u", "f"), "downloads", "Missing / Unrecognized / Failed pane"),
]

KEY_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "up": "↑", "down": "↓"}


def key_label(key: str) -> str:
    if key[:1] == "f" and key[1:].isdigit():
        return key.upper()
    return KEY_NAMES.get(key, key)


TABLE_PLACES = {"datasets", "archives", "files", "downloads", "history", "query"}
"""Screens whose main widget is a table: the "tables" keys work there."""


def places(where: str) -> set[str]:
    return {p.strip() for p in where.split(",")}


def applies(where: str, place: str) -> bool:
    found = places(where)
    return place in found or "anywhere" in found or ("tables" in found and place in TABLE_PLACES)


def _table(rows) -> list[str]:
    lines = ["| Key | Where | Does |", "|---|---|---|"]
    for keys, where, does in rows:
        shown = ", ".join(f"`{key_label(k)}`" for k in keys)
        lines.append(f"| {shown} | {where} | {does} |")
    return lines


def help_markdown(place: str | None = None) -> str:
    """The intro and the keys; with ``place`` (a screen's ``HELP_PLACE``), its keys come first,
    above the intro, so the first page of a small terminal shows them."""
    if place is None:
        return INTRO + "\n" + "\n".join(_table(KEYS)) + "\n" + OUTRO
    # the screen's own keys, then the tables', then those that work anywhere
    rank = lambda where: 0 if place in places(where) else (2 if "anywhere" in places(where) else 1)  # noqa: E731
    here = sorted((k for k in KEYS if applies(k[1], place)), key=lambda k: rank(k[1]))
    elsewhere = [k for k in KEYS if not applies(k[1], place)]
    first = [f"# Keys here ({place})", *_table(here), ""]
    rest = ["## Keys on other screens", *_table(elsewhere)]
    return "\n".join(first) + "\n" + INTRO + "\n" + "\n".join(rest) + "\n" + OUTRO


class HelpScreen(ModalScreen):
    BINDINGS = [
        QUIT,
        Binding("escape", "close", "Close", id="close"),
        Binding("f1", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, place: str | None = None) -> None:
        super().__init__()
        self.place = place

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Markdown(help_markdown(self.place), id="help-text")
        yield Footer()

    def action_close(self) -> None:
        self.app.pop_screen()
