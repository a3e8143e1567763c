"""Progress drawn with blocks: a text bar for table cells, and the fat overall bar.

Eighth blocks give a bar eight steps per cell, so a worker's bar moves visibly even in 12 cells.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"
EMPTY = "░"


def text_bar(fraction: float | None, width: int) -> str:
    """``width`` cells of bar for ``fraction`` (0..1); all empty when the fraction is unknown."""
    if width <= 0:
        return ""
    if fraction is None or fraction != fraction:
        return EMPTY * width
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = FULL * full
    if part and full < width:
        bar += EIGHTHS[part]
    return bar + EMPTY * (width - len(bar))


class BlockBar(Widget):
    """The overall progress: a full-height block bar with its label written across it."""

    COMPONENT_CLASSES = {"block-bar--done", "block-bar--todo"}

    DEFAULT_CSS = """
    BlockBar {
        height: 1;
        width: 1fr;
        margin: 0 1;
        & > .block-bar--done { background: $primary; color: $text; text-style: bold; }
        & > .block-bar--todo { background: $panel; color: $text-muted; }
        &.-finished > .block-bar--done { background: $success 70%; }
    }
    """

    fraction: reactive[float] = reactive(0.0)
    label: reactive[str] = reactive("")

    def update(self, fraction: float, label: str) -> None:
        self.fraction = min(1.0, max(0.0, fraction))
        self.label = label

    def render(self) -> Text:
        width = self.size.width
        done_style = self.get_component_rich_style("block-bar--done")
        todo_style = self.get_component_rich_style("block-bar--todo")
        label = f" {self.label} "[:width]
        left = max(0, (width - len(label)) // 2)
        line = (" " * left + label).ljust(width)
        filled = round(self.fraction * width)
        text = Text(line, no_wrap=True, overflow="crop")
        text.stylize(done_style if filled else Style(), 0, filled)
        text.stylize(todo_style, filled, width)
        return text
