"""The archive screen's preview pane: a title, then a picture, some text or a short message.

Pictures go to a textual-image widget when the terminal speaks Kitty graphics or Sixel (real
pixels, sized to the pane), else to the half-block :class:`ImagePreview`, which also shows text.
"""

from __future__ import annotations

from PIL import Image
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from app.tui.widgets.graphics import HALFBLOCK, graphics_kind, graphics_widget
from app.tui.widgets.image_preview import ImagePreview
from app.tui.widgets.preview_decode import GRAPHICS_SIDE, HALFBLOCK_SIDE


class PreviewPane(Vertical):
    DEFAULT_CSS = """
    PreviewPane {
        & > #preview-graphics { width: auto; height: auto; max-width: 100%; max-height: 100%; }
    }
    """

    def __init__(self, *, id: str | None = None, kind: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind or graphics_kind()

    @property
    def max_side(self) -> int:
        """How many pixels a side a decoded picture needs for this pane's renderer."""
        return HALFBLOCK_SIDE if self.kind == HALFBLOCK else GRAPHICS_SIDE

    def compose(self) -> ComposeResult:
        yield Static("Preview", id="preview-title", markup=False)
        yield ImagePreview(id="preview")
        graphics = graphics_widget(self.kind, "preview-graphics")
        if graphics is not None:
            graphics.display = False
            yield graphics

    @property
    def half_block(self) -> ImagePreview:
        return self.query_one("#preview", ImagePreview)

    @property
    def graphics(self):
        found = self.query("#preview-graphics")
        return found.first() if found else None

    @property
    def has_image(self) -> bool:
        graphics = self.graphics
        if graphics is not None and graphics.display:
            return graphics.image is not None
        return self.half_block.has_image

    def set_title(self, text: str) -> None:
        self.query_one("#preview-title", Static).update(text)

    def _text_mode(self) -> ImagePreview:
        graphics = self.graphics
        if graphics is not None:
            graphics.display = False
            graphics.image = None
        self.half_block.display = True
        return self.half_block

    def show_message(self, text: str) -> None:
        self._text_mode().show_message(text)

    def show_text(self, text: str) -> None:
        self._text_mode().show_text(text)

    def show_image(self, image: Image.Image) -> None:
        graphics = self.graphics
        if graphics is None:
            self.half_block.show_image(image)
            return
        self.half_block.display = False
        graphics.image = image
        graphics.display = True
