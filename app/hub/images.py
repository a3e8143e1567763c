"""Small real images for the demo dataset and the tests, drawn with Pillow.

Every picture is a pure function of ``(resource_id, seed)``: a two-colour gradient at a random
angle, a few translucent shapes and the id in big outlined digits, so a preview in the TUI shows
which resource it is looking at.  ``tiny_image`` makes a few-pixel image for tests that only need
bytes an image decoder accepts.
"""

from __future__ import annotations

import colorsys
import io
import random
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["IMAGE_FORMATS", "EXTENSIONS", "draw_image", "encode_image", "make_image", "tiny_image",
           "image_extension"]

#: Formats the builder knows, mapped to the file extension a dataset uses for them.
EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
IMAGE_FORMATS = tuple(EXTENSIONS)

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def image_extension(fmt: str) -> str:
    """``"jpeg"`` -> ``".jpg"``; raises ``ValueError`` for a format the builder cannot write."""
    try:
        return EXTENSIONS[_normalize(fmt)]
    except KeyError:
        raise ValueError(f"unsupported image format {fmt!r}; use one of {', '.join(IMAGE_FORMATS)}") from None


def _normalize(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    return "jpeg" if fmt == "jpg" else fmt


@lru_cache(maxsize=1)
def _gradient() -> Image.Image:
    # 256x256 vertical ramp; rotating and cropping it gives a gradient at any angle.
    return Image.linear_gradient("L")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _colour(rng: random.Random, lightness: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(rng.random(), lightness, 0.55 + 0.4 * rng.random())
    return int(r * 255), int(g * 255), int(b * 255)


def encode_image(img: Image.Image, fmt: str) -> bytes:
    """``img`` as png / jpeg (jpg) / webp bytes, with fast encoder settings."""
    buf = io.BytesIO()
    fmt = _normalize(fmt)
    if fmt == "png":
        img.save(buf, "PNG", compress_level=1)
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=85)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=80, method=0)
    else:
        image_extension(fmt)  # raises the ValueError
    return buf.getvalue()


def draw_image(resource_id: int, *, seed: int = 0, size: tuple[int, int] | None = None,
               label: str | None = None) -> Image.Image:
    """An RGB picture for ``resource_id``; the same arguments always give the same pixels."""
    rng = random.Random(f"{seed}:{resource_id}")
    if size is None:
        w, h = rng.randrange(96, 257, 8), rng.randrange(96, 257, 8)
    else:
        w, h = size
    dark, light = _colour(rng, 0.25), _colour(rng, 0.72)
    ramp = _gradient().rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR, expand=False)
    # The rotated square has empty corners; its inner 180 px square is always covered.
    ramp = ramp.crop((38, 38, 218, 218)).resize((w, h), Image.Resampling.BILINEAR)
    img = ImageOps.colorize(ramp, dark, light)

    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    pen = ImageDraw.Draw(overlay)
    for _ in range(rng.randrange(3, 7)):
        fill = _colour(rng, 0.3 + 0.5 * rng.random()) + (rng.randrange(70, 170),)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.08, 0.35) * min(w, h)
        kind = rng.randrange(3)
        if kind == 0:
            pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif kind == 1:
            pen.rectangle((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), fill=fill)
        else:
            pen.regular_polygon((cx, cy, r), rng.randrange(3, 7), rotation=rng.uniform(0, 120), fill=fill)
    img.paste(overlay, (0, 0), overlay)

    text = label if label is not None else str(resource_id)
    font_size = max(12, min(int(h * 0.4), int(w * 1.6 / max(len(text), 1))))
    pen = ImageDraw.Draw(img)
    pen.text((w / 2, h / 2), text, font=_font(font_size), anchor="mm", fill=(255, 255, 255),
             stroke_width=max(1, font_size // 14), stroke_fill=(20, 20, 28))
    return img


def make_image(resource_id: int, fmt: str = "png", *, seed: int = 0,
               size: tuple[int, int] | None = None, label: str | None = None) -> bytes:
    """Encoded bytes (``fmt`` in png / jpeg / jpg / webp) of :func:`draw_image`."""
    image_extension(fmt)
    return encode_image(draw_image(resource_id, seed=seed, size=size, label=label), fmt)


@lru_cache(maxsize=256)
def _tiny(colour: tuple[int, int, int], fmt: str) -> bytes:
    return encode_image(Image.new("RGB", (4, 4), colour), fmt)


def tiny_image(resource_id: int = 0, fmt: str = "png") -> bytes:
    """A 4x4 image whose colour comes from ``resource_id``: valid and decodable, made in microseconds.

    Different ids mostly give different bytes (the colour has 4096 values), so a test that needs
    every file to hash differently should add a sidecar or use :func:`make_image`.
    """
    image_extension(fmt)
    n = resource_id * 2654435761 & 0xFFF
    colour = ((n >> 8) * 17, ((n >> 4) & 0xF) * 17, (n & 0xF) * 17)
    return _tiny(colour, _normalize(fmt))
