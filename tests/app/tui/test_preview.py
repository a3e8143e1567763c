"""Previews: a pixel cap that holds against a decompression bomb (memory measured in a child
process), JPEGs decoded at reduced scale, Kitty/Sixel through textual-image, half blocks otherwise."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app.tui.app import make_app
from app.tui.widgets import graphics
from app.tui.widgets.preview_decode import MAX_PREVIEW_PIXELS, decode_image, decode_preview

from tests.support.helpers import settle
from tests.support.tui import demo_app_settings, open_archive, open_demo

ROOT = Path(__file__).resolve().parents[3]
SIZE = (100, 30)


def bomb_png(side: int) -> bytes:
    """A ``side`` x ``side`` black RGB PNG, written row by row (never held as pixels here)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (3 * side)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_13000_px_png_bomb_is_refused_without_decoding_it(tmp_path):
    data = bomb_png(13_000)
    assert len(data) < 1024 * 1024  # small on the wire ...
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    # ... and 676 MB as pixels: the decode runs in a child, whose peak RSS is the measure
    code = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from app.tui.widgets.preview_decode import decode_preview
data = open({str(path)!r}, 'rb').read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode_preview('bomb.png', data)
    print('decoded')
except ValueError as exc:
    print('refused', exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    verdict, grown = out.stdout.strip().splitlines()
    assert verdict == "refused too large to preview: 13,000×13,000 px"
    assert int(grown) < 64, f"decoding grew the process by {grown} MiB"


def test_a_picture_within_the_cap_decodes_at_preview_size():
    buffer = io.BytesIO()
    Image.new("RGBA", (1200, 600), (200, 30, 30, 128)).save(buffer, "PNG")
    img = decode_preview("x.png", buffer.getvalue())
    assert img.mode == "RGB" and max(img.size) == 256 and img.size == (256, 128)
    big = decode_preview("x.png", buffer.getvalue(), max_side=768)
    assert big.size == (768, 384)


def test_a_huge_jpeg_decodes_at_reduced_scale_under_the_cap():
    buffer = io.BytesIO()
    Image.new("L", (4000, 4000), 128).save(buffer, "JPEG", quality=50)
    # with a cap below 4000x4000, only draft()'s 1/8-scale decode lets it through
    img = decode_image(buffer.getvalue(), max_side=256, max_pixels=1_000_000)
    assert img.size == (256, 256)
    with pytest.raises(ValueError, match="too large to preview"):
        buffer2 = io.BytesIO()
        Image.new("L", (4000, 4000), 128).save(buffer2, "PNG")
        decode_image(buffer2.getvalue(), max_pixels=1_000_000)
    assert MAX_PREVIEW_PIXELS >= 4000 * 4000


def test_broken_bytes_are_one_line_not_a_traceback():
    with pytest.raises(ValueError, match="not a readable image"):
        decode_preview("x.png", b"\x89PNG\r\n\x1a\nnot really")


def test_graphics_are_detected_only_when_asked_and_can_be_forced(monkeypatch):
    assert graphics.graphics_kind() == graphics.HALFBLOCK  # tests never ask the terminal
    monkeypatch.setenv("CHEESECHASER_GRAPHICS", "sixel")
    try:
        assert graphics.detect_graphics() == graphics.SIXEL
    finally:
        graphics.set_graphics_kind(graphics.HALFBLOCK)
    monkeypatch.delenv("CHEESECHASER_GRAPHICS")
    # not a terminal (pytest captures stdout): half blocks, nothing asked
    assert graphics.detect_graphics() == graphics.HALFBLOCK
    with pytest.raises(ValueError):
        graphics.set_graphics_kind("ascii-art")


@pytest.fixture
def demo(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return demo_app_settings(demo_root)


@pytest.mark.parametrize("kind, widget", [("sixel", "SixelImage"), ("kitty", "TGPImage")])
async def test_a_graphics_terminal_gets_real_pixels_sized_to_the_pane(demo, kind, widget):
    from app.tui.widgets.preview_pane import PreviewPane

    graphics.set_graphics_kind(kind)
    try:
        app = make_app(demo)
        async with app.run_test(size=(120, 36)) as pilot:
            await open_demo(pilot)
            screen = await open_archive(pilot)
            pane = screen.query_one(PreviewPane)
            import textual_image.widget as tiw

            assert isinstance(pane.graphics, getattr(tiw, widget)) and pane.max_side == 768
            await settle(pilot, lambda: pane.has_image, "the picture")
            await pilot.pause()  # the layout after the widget showed
            assert pane.graphics.display and not pane.half_block.display
            image = pane.graphics.image
            assert max(image.size) <= 768
            region, box = pane.graphics.region, pane.region
            assert region.width <= box.width and region.height <= box.height
            assert region.width > 5 and region.height > 5
            # a JSON sidecar goes back to text, in the half-block widget
            files = screen.query_one("#files")
            json_rows = [r.key for r in files.rows if r.key.endswith(".json")]
            files.move_cursor_to_key(json_rows[0])
            await settle(pilot, lambda: '"id"' in pane.half_block._text, "the JSON preview")
            assert not pane.graphics.display and pane.half_block.display
    finally:
        graphics.set_graphics_kind(graphics.HALFBLOCK)
