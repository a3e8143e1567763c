"""Resizing and re-encoding images on the way, with img2dataset's meanings.

``keep_ratio``: the smallest side becomes SIZE; ``keep_ratio_largest``: the largest side does;
``center_crop``: the smallest side becomes SIZE, then the middle SIZE x SIZE is kept; ``border``:
the largest side becomes SIZE, then the image is padded to SIZE x SIZE (black); ``no``: untouched.
``only_if_bigger``: images already smaller are not enlarged.

Decoding is bounded (Pillow's decompression-bomb limit, made an error); a JPEG is decoded with
``draft()`` at the smallest scale (1/2, 1/4, 1/8) that still leaves the target size, which is where
most of the time of a big JPEG goes.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

MODES = ("keep_ratio", "keep_ratio_largest", "center_crop", "border", "no")
FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
MAX_PIXELS = 16384 * 16384  # an image past this is refused, never decoded


@dataclass(frozen=True)
class Resize:
    """What to do to each image: ``size`` (None: keep), ``mode``, ``only_if_bigger``, ``format``
    (None: keep the bytes' own, unless resized: then the original's format), ``quality``."""

    size: int | None = None
    mode: str = "keep_ratio"
    only_if_bigger: bool = False
    format: str | None = None
    quality: int = 95

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"resize mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"image format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.size is not None and not 1 <= self.size <= 65535:
            raise ValueError("resize size must be between 1 and 65535")
        if not 1 <= self.quality <= 100:
            raise ValueError("quality must be between 1 and 100")

    @property
    def active(self) -> bool:
        return (self.size is not None and self.mode != "no") or self.format is not None


class ImageError(ValueError):
    """An image that cannot be decoded (or is too large to): that id fails, with this reason."""


def _target(w: int, h: int, size: int, mode: str) -> tuple[int, int]:
    if mode in ("keep_ratio", "center_crop"):
        scale = size / min(w, h)
    else:  # keep_ratio_largest, border
        scale = size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def apply(data: bytes, how: Resize, ext: str) -> tuple[bytes, str, int, int]:
    """``data`` resized and/or re-encoded: ``(bytes, extension, width, height)``. The bytes are
    returned as they are when nothing is to be done. ImageError for an image that cannot be read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            w, h = image.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"image of {w}x{h} pixels is past the limit")
            want = None
            if how.size is not None and how.mode != "no":
                want = _target(w, h, how.size, how.mode)
                if how.only_if_bigger and want[0] >= w and want[1] >= h:
                    want = None
            if want is None and how.format is None:
                return data, ext, w, h
            if want is not None and image.format == "JPEG":
                image.draft("RGB", want)  # decode at 1/2, 1/4 or 1/8 scale when that is still enough
            image.load()
        except ImageError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            raise ImageError(f"cannot decode the image: {err}") from None
    if want is not None:
        image = image.resize(want, Image.Resampling.LANCZOS if want[0] > image.size[0] else Image.Resampling.BOX,
                             reducing_gap=None)
        if how.mode == "center_crop":
            left, top = (image.size[0] - how.size) // 2, (image.size[1] - how.size) // 2
            image = image.crop((left, top, left + how.size, top + how.size))
        elif how.mode == "border":
            canvas = Image.new(image.mode if image.mode in ("RGB", "RGBA", "L") else "RGB", (how.size, how.size))
            canvas.paste(image, ((how.size - image.size[0]) // 2, (how.size - image.size[1]) // 2))
            image = canvas
    fmt = how.format or {"jpeg": "jpg"}.get(ext.lower(), ext.lower())
    if fmt not in FORMATS:
        fmt = "png"
    if FORMATS[fmt] == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    options = {"quality": how.quality} if FORMATS[fmt] in ("JPEG", "WEBP") else {}
    image.save(out, FORMATS[fmt], **options)
    return out.getvalue(), fmt, image.size[0], image.size[1]


def size_of(data: bytes) -> tuple[int | None, int | None]:
    """An image's width and height from its header (None, None when it is not one)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - not an image, or one Pillow cannot read: no size
        return None, None
