"""Which picture protocol the terminal speaks: Kitty's graphics protocol, Sixel, or half blocks.

textual-image finds out by asking the terminal, which only works before Textual owns stdin: so
:func:`detect_graphics` runs once in ``run_tui``, before the app starts. Nothing else asks; the
tests, snapshots and screenshots never call it, so they always get the half-block preview (the
same picture on every machine). ``CHEESECHASER_GRAPHICS=halfblock|sixel|kitty`` forces a choice.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

HALFBLOCK = "halfblock"
SIXEL = "sixel"
KITTY = "kitty"
KINDS = (HALFBLOCK, SIXEL, KITTY)

_kind = HALFBLOCK


def graphics_kind() -> str:
    """What the preview draws with in this process (half blocks unless detected otherwise)."""
    return _kind


def set_graphics_kind(kind: str) -> None:
    global _kind
    if kind not in KINDS:
        raise ValueError(f"graphics must be one of {', '.join(KINDS)}, got {kind!r}")
    _kind = kind


def detect_graphics() -> str:
    """Ask the terminal (once, before the app starts) and remember the answer."""
    forced = os.environ.get("CHEESECHASER_GRAPHICS", "").strip().lower()
    if forced in KINDS:
        set_graphics_kind(forced)
        return forced
    if not (sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty()):
        return graphics_kind()
    try:
        import textual_image.widget  # noqa: F401  (caches the cell size while it can be asked)
        from textual_image import renderable
        from textual_image.renderable import sixel, tgp
    except Exception as exc:  # an odd terminal must never stop the app: half blocks work anywhere
        log.debug("graphics detection failed: %s", exc)
        return graphics_kind()
    if renderable.Image is tgp.Image:
        set_graphics_kind(KITTY)
    elif renderable.Image is sixel.Image:
        set_graphics_kind(SIXEL)
    return graphics_kind()


def graphics_widget(kind: str, widget_id: str):
    """A textual-image widget drawing with ``kind`` (None for half blocks: ours does that)."""
    if kind == KITTY:
        from textual_image.widget import TGPImage

        return TGPImage(id=widget_id)
    if kind == SIXEL:
        from textual_image.widget import SixelImage

        return SixelImage(id=widget_id)
    return None
