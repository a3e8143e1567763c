"""Nothing remote reaches the terminal raw: a hostile dataset on the loopback Hub, seen by a user.

The repo (``tests/support/hostile_dataset.py``) has archive paths and member names holding ``ESC[2J``,
``ESC]0;title BEL``, ``\\x9b``, DEL, a bidi override and Rich markup. What is checked is what
a terminal would receive: every line Textual's compositor renders for the screen (toasts included),
and every byte the CLI writes. Snapshots (tests/snapshots/test_hostile_display/) show the escapes
as a user sees them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.helpers import settle
from tests.support.hostile_dataset import (
    ARCHIVE,
    BROKEN_ARCHIVE,
    BROKEN_TEMPLATE,
    ESCAPED,
    EVIL,
    EVIL_ARCHIVE,
    LINK,
    REPO,
    build_hostile_repo,
    raw_troubles,
)
from textual.widgets import Input

from app.tui.app import make_app
from app.core.settings import AppSettings
from app.tui.widgets.virtual_table import VirtualTable
from pools import RetryPolicy, parse_ids
from pools.text import shown

ROOT = Path(__file__).resolve().parents[3]
SIZE = (100, 30)
FAST = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, jitter=0.0, connect_timeout=2.0,
                   read_timeout=10.0)


@pytest.fixture
def hostile_hub(hub, hub_root):
    build_hostile_repo(hub_root)
    return hub


@pytest.fixture
def hostile_app(hostile_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_app(AppSettings(repo=REPO, endpoint=hostile_hub.url, base_level=3, base_dir="images",
                                dst_dir="downloads", workers=2, clock=lambda: 0.0, retry=FAST,
                                endpoint_label="hostile hub"))


def screen_text(app) -> str:
    """The characters a terminal would get for the whole screen, toasts included, line by line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def assert_escaped(text: str, *wanted: str) -> None:
    assert raw_troubles(text) == [], f"raw {raw_troubles(text)!r} on screen:\n{text}"
    for piece in wanted:
        assert piece in text, f"{piece!r} not on screen:\n{text}"


async def open_browse(pilot):
    from app.tui.screens.browse import BrowseScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
    await settle(pilot, lambda: app.screen.loading_done, "every index summary")
    return app.screen


async def open_archive(pilot, browse, archive: str):
    from app.tui.screens.archive import ArchiveScreen

    app = pilot.app
    browse.query_one("#archives", VirtualTable).move_cursor_to_key(archive)
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                 f"the index of {archive!r}")
    await pilot.pause()
    return app.screen


async def test_archives_files_unrecognized_toasts_and_downloads_show_escapes(hostile_app, tmp_path):
    app = hostile_app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        browse = await open_browse(pilot)
        table = browse.query_one("#archives", VirtualTable)
        assert {EVIL_ARCHIVE, BROKEN_ARCHIVE, ARCHIVE} <= {r.key for r in table.rows}

        # the archives table and the status line of the hostile archive
        table.move_cursor_to_key(EVIL_ARCHIVE)
        await pilot.pause()
        assert_escaped(screen_text(app), *ESCAPED, "[red]x[/]")

        # a broken index: its status line, then the toast when it is opened, quote the path
        table.move_cursor_to_key(BROKEN_ARCHIVE)
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot, lambda: "Broken index" in screen_text(app), "the broken-index toast")
        assert_escaped(screen_text(app), "not valid JSON", "[link=mailto:")
        app.clear_notifications()

        # the hostile archive itself: header title, info line, its files
        screen = await open_archive(pilot, browse, EVIL_ARCHIVE)
        assert [r.key for r in screen.query_one("#files", VirtualTable).rows] == ["5.bin"]
        assert_escaped(screen_text(app), "\\x1b[2J", "5.bin")
        await pilot.press("escape")

        # member names: whatever pane they land in, they are escaped, markup stays text
        screen = await open_archive(pilot, browse, ARCHIVE)
        await pilot.press("u")
        await pilot.pause()
        unrecognized = screen.query_one("#unrecognized", VirtualTable)
        names = {r.key for r in unrecognized.rows}
        assert f"{EVIL}.png" in names and f"{LINK}.bin" in names
        assert_escaped(screen_text(app), "\\x1b[2J", "\\u202egnp.exe", LINK[:20])
        await pilot.press("escape")

        # a job over those names: the Downloads screen's Unrecognized pane
        view = app.queue_job(app.current_pool, parse_ids("1000, 2000, 3000"), "downloads", 2)
        await asyncio.to_thread(view.job.wait, 60)
        app.flush_engine_events()
        app.action_downloads()
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()
        assert view.downloaded == 2
        assert_escaped(screen_text(app), "\\x1b[2J", LINK[:12])
    assert sorted(os.listdir(tmp_path / "downloads")) == ["1000.bin", "2000.bin"]


# ---- snapshots ------------------------------------------------------------------------------

async def still(pilot) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    for field in app.screen.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def test_snapshot_hostile_archives(snap_compare, hostile_app):
    async def run_before(pilot):
        browse = await open_browse(pilot)
        browse.query_one("#archives", VirtualTable).move_cursor_to_key(EVIL_ARCHIVE)
        await still(pilot)
        assert raw_troubles(screen_text(pilot.app)) == []

    assert snap_compare(hostile_app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_hostile_archive_files(snap_compare, hostile_app):
    async def run_before(pilot):
        await open_archive(pilot, await open_browse(pilot), EVIL_ARCHIVE)
        await still(pilot)
        assert raw_troubles(screen_text(pilot.app)) == []

    assert snap_compare(hostile_app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_hostile_unrecognized_pane(snap_compare, hostile_app):
    async def run_before(pilot):
        await open_archive(pilot, await open_browse(pilot), ARCHIVE)
        await pilot.press("u")
        await still(pilot)
        assert raw_troubles(screen_text(pilot.app)) == []

    assert snap_compare(hostile_app, terminal_size=SIZE, run_before=run_before)


# ---- the CLI ------------------------------------------------------------------------------

def _cli(args, tmp_path, hub):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app", "download", *args], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=120, check=False)


def _text(out) -> str:
    both = out.stdout + out.stderr
    assert raw_troubles(both.decode("utf-8", "replace").replace("\n", "")) == [], both
    return both.decode()


def test_cli_failure_reasons_quote_remote_paths_escaped(hostile_hub, tmp_path):
    """The archive of id 6 (from a template as a dataset card gives it) has a broken index: the
    reason quotes its path. The engine may also refuse such a path up front (exit 2); either
    way what is printed is escaped, one line per reason, no traceback."""
    report = tmp_path / "report.json"
    out = _cli([REPO, "5, 6, 7", "-o", str(tmp_path / "out"), "--archive-template", BROKEN_TEMPLATE,
                "--report", str(report)], tmp_path, hostile_hub)
    text = _text(out)
    assert "Traceback" not in text and "\\u202e\\x9b\\x7f" in text
    if out.returncode == 2:
        assert "archive template" in text and len(out.stderr.splitlines()) == 1
        return
    assert out.returncode == 1
    assert "failed 6: broken index" in text and shown(BROKEN_ARCHIVE, None)[:60] in text
    assert LINK in text  # markup printed as it is: a terminal does not read it
    assert "6" in json.loads(report.read_text())["failed"]


@pytest.mark.parametrize("args, needle", [
    (["--revision", EVIL], "revision"),
    (["--base-level", EVIL], "base level"),
    (["--endpoint", EVIL], "--endpoint"),
    (["--archive-template", f"images/{EVIL}-{{residue:03d}}.tar"], "archive template"),
])
def test_cli_usage_errors_echo_input_escaped(hostile_hub, tmp_path, args, needle):
    out = _cli([REPO, "1000", "-o", str(tmp_path / "out"), *args], tmp_path, hostile_hub)
    text = _text(out)
    assert out.returncode == 2 and "Traceback" not in text and needle in text
    assert len(out.stderr.strip().splitlines()) == 1


# ---- serve: request lines are remote too ----------------------------------------------------

def test_serve_verbose_log_escapes_request_lines(hub_root, tmp_path):
    import socket

    build_hostile_repo(hub_root)
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root), "--port", "0", "-v"],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = proc.stdout.readline().decode().strip()
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(f"GET /{EVIL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1", "replace"))
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 4")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    text = err.decode("utf-8", "replace")
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in text, text
    assert raw_troubles(text.replace("\n", "")) == [], text
