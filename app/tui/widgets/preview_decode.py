"""Turn a file's bytes into something to preview, at bounded cost: a small picture, or text.

The bytes come from a dataset, so they are untrusted: a 13000x13000 px PNG can weigh 0.5 MB and
cost 676 MB to decode. The header is read first (``Image.open`` decodes no pixel) and the size
checked before any ``load()``; JPEGs are decoded at a reduced scale (``draft``, 1/2 to 1/8), so a
huge photo previews at the cost of a small one; anything still above :data:`MAX_PREVIEW_PIXELS`
is refused with a one-line reason.
"""

from __future__ import annotations

import io
import json
import warnings

from PIL import Image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
TEXT_EXTENSIONS = {".json", ".txt", ".csv", ".md", ".xml", ".yaml", ".yml", ".toml"}
MAX_PREVIEW_BYTES = 32 * 1024 * 1024
MAX_PREVIEW_PIXELS = 16_000_000
"""Pixels decoded at most for one preview (4000x4000): ~64 MiB as RGBA, the decode's peak."""
HALFBLOCK_SIDE = 256  # half blocks draw ~100x60 dots: more pixels are never seen
GRAPHICS_SIDE = 768  # Sixel / Kitty draw real pixels: a pane is ~400-600 px a side


def preview_kind(name: str) -> str | None:
    lower = name.lower()
    dot = lower.rfind(".")
    ext = lower[dot:] if dot >= 0 else ""
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in TEXT_EXTENSIONS:
        return "text"
    return None


def decode_image(data: bytes, max_side: int = HALFBLOCK_SIDE,
                 max_pixels: int = MAX_PREVIEW_PIXELS) -> Image.Image:
    """An RGB picture at most ``max_side`` px a side; ValueError (one line) when it cannot be."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our cap comes first
            img = Image.open(io.BytesIO(data))  # the header only: no pixel decoded yet
    except Exception as exc:  # Pillow raises many types for broken files
        raise ValueError(f"not a readable image: {exc}") from None
    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ValueError("not a readable image: it has no pixels")
        if img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
        if img.size[0] * img.size[1] > max_pixels:
            raise ValueError(f"too large to preview: {width:,}×{height:,} px")
        try:
            img.load()
            if img.mode not in ("RGB", "RGBA", "L"):
                img = img.convert("RGBA")
            img.thumbnail((max_side, max_side))  # reduce() first, then a resample
            if img.mode == "RGBA":
                background = Image.new("RGBA", img.size, (0, 0, 0, 255))
                img = Image.alpha_composite(background, img)
            return img.convert("RGB")
        except Exception as exc:
            raise ValueError(f"not a readable image: {exc}") from None


def decode_preview(name: str, data: bytes, max_side: int = HALFBLOCK_SIDE,
                   max_pixels: int = MAX_PREVIEW_PIXELS) -> Image.Image | str:
    """An RGB image or text to show; raises ValueError when neither."""
    kind = preview_kind(name)
    if kind == "image":
        return decode_image(data, max_side, max_pixels)
    if kind == "text":
        text = data[:64 * 1024].decode("utf-8", errors="replace")
        if name.lower().endswith(".json"):
            try:
                text = json.dumps(json.loads(text), indent=1, ensure_ascii=False)
            except ValueError:
                pass
        return text
    raise ValueError("no preview for this kind of file")
