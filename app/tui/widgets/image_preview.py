"""A picture drawn with half blocks: each cell is two pixels (``▀``, top colour over bottom colour).

Works in any terminal with true colour; the picture is scaled to the widget, keeping its aspect.
Decoding happens off the event loop (:func:`app.tui.widgets.preview_decode.decode_preview`), with a
pixel cap; drawing is cheap. Terminals with Kitty or Sixel graphics get real pixels instead (see
:mod:`app.tui.widgets.graphics`).
"""

from __future__ import annotations

from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from app.tui.widgets.preview_decode import (  # noqa: F401  (where the screens import them from)
    MAX_PREVIEW_BYTES,
    decode_preview,
    preview_kind,
)
from pools.text import shown


class ImagePreview(Widget):
    """Shows a half-block picture, some text, or a short message."""

    DEFAULT_CSS = """
    ImagePreview {
        width: 1fr;
        height: 1fr;
        color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._image: Image.Image | None = None
        self._text: str = ""
        self._strips: list[Strip] | None = None
        self._strips_size: tuple[int, int] | None = None

    def show_message(self, text: str) -> None:
        self._image, self._text = None, text
        self._strips = None
        self.refresh()

    def show_image(self, image: Image.Image) -> None:
        self._image, self._text = image, ""
        self._strips = None
        self.refresh()

    def show_text(self, text: str) -> None:
        self.show_message(text)

    @property
    def has_image(self) -> bool:
        return self._image is not None

    def _build(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        if self._image is None:
            lines = []
            for raw in self._text.splitlines()[:height] if self._text else []:
                # a text file's lines (and messages quoting remote names) are escaped first
                line = shown(raw, max(1, width))
                lines.append(Strip([Segment(line, base)]).crop_extend(0, width, base))
            while len(lines) < height:
                lines.append(Strip.blank(width, base))
            return lines
        img = self._image
        scale = min(width / img.width, (height * 2) / img.height)
        w = max(1, int(img.width * scale))
        h = max(2, int(img.height * scale))
        h += h % 2
        small = img.resize((w, h), Image.Resampling.BOX)
        pixels = small.load()
        left = (width - w) // 2
        top = (height - h // 2) // 2
        strips: list[Strip] = []
        cache: dict[tuple, Style] = {}
        for row in range(height):
            y = row - top
            if not 0 <= y < h // 2:
                strips.append(Strip.blank(width, base))
                continue
            segments = [Segment(" " * left, base)] if left else []
            for x in range(w):
                upper, lower = pixels[x, 2 * y], pixels[x, 2 * y + 1]
                key = (upper, lower)
                style = cache.get(key)
                if style is None:
                    style = cache[key] = Style.from_color(
                        _rich_color(upper), _rich_color(lower))
                segments.append(Segment("▀", style))
            strips.append(Strip(segments).extend_cell_length(width, base).simplify())
        return strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._strips is None or self._strips_size != (width, height):
            self._strips = self._build(width, height)
            self._strips_size = (width, height)
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)


def _rich_color(rgb: tuple[int, int, int]):
    from rich.color import Color

    return Color.from_rgb(*rgb[:3])
