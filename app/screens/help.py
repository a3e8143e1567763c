"""Keys and the few ideas behind the app, one screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# cheesechaser

Pull exactly the images you want out of indexed-tar datasets on the Hugging Face Hub.

* An **archive** is a `.tar` in the dataset repo; its **index** (`.json`) says where every file
  starts, its size and sha256. Files are fetched one ranged request at a time: never the whole tar.
* A **resource id** is the number in a file's name (`114514.png` → 114514). With base level
  *L*, id `N` lives in the archive picked by `N % 10^L`.
* **Unrecognized** names map to no id (or are unsafe) and are never downloaded.
  **Missing** ids are in no archive. **Failed** ids could not be fetched or verified.

| Key | Where | Does |
|---|---|---|
| `F1`, `?` | anywhere | this help |
| `ctrl+p` | anywhere | command palette: every main action |
| `ctrl+d` | anywhere | downloads: workers, jobs, errors |
| `ctrl+q` | anywhere | quit (running jobs are cancelled; rerun resumes) |
| `enter` | tables | open the dataset / archive |
| `ctrl+o`, `ctrl+e` | datasets | open the form's repo / the offline demo |
| `/` | archives, files | filter |
| `s`, `r` | archives, files | sort by the next column / reverse; or click a header |
| `space` | files | mark an id; `q` queues the marked ids |
| `p` | files | show or hide the preview |
| `q` | archives, files, downloads | queue an id range: `0-5, 1000-1003, 7000` |
| `c`, `C` | downloads | cancel the selected job / every job |
| `r` | downloads | retry the failed ids (of the selected row in Failed, else all) |
| `m`, `u`, `f` | downloads | Missing / Unrecognized / Failed pane |
| `esc` | anywhere | back |

Downloads resume: a file already in the destination whose sha256 matches the index is not fetched
again, and files appear only once verified.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape", "close", "Close", id="close"),
        Binding("f1", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Markdown(HELP, id="help-text")

    def action_close(self) -> None:
        self.app.pop_screen()
