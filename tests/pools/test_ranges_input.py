"""Range expressions typed by a user, in the CLI and in the TUI's queue dialog.

A 5,000-digit id used to crash the TUI (``int()`` refuses more than 4,300 digits with a
ValueError the dialog did not expect) and print a traceback in the CLI; ``7,000,000`` silently
meant ids 7, 0 and 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.helpers import settle
from textual.widgets import Input

from app.tui.app import make_app
from app.cli import main
from app.core.settings import AppSettings
from app.tui.widgets.range_input import RangeInput

ROOT = Path(__file__).resolve().parents[2]
HUGE = "1" * 5000


@pytest.mark.parametrize("ids, needle", [
    (HUGE, "too large"),
    (f"0-{HUGE}", "too large"),
    ("7,000,000", "write 7000000 or 7_000_000"),
    ("1, 05", "leading zero"),
    ("7__0", "'_' goes between two digits"),
])
def test_cli_refuses_with_one_line_and_exit_2(tmp_path, capsys, ids, needle):
    code = main(["download", "t/x", ids, "-o", str(tmp_path / "o"), "--endpoint", "http://127.0.0.1:9"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and needle in captured.err and len(captured.err) < 300
    assert not (tmp_path / "o").exists()


def test_cli_huge_id_in_a_real_process_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "app", "download", "t/x", HUGE, "-o", str(tmp_path / "o"),
                          "--endpoint", "http://127.0.0.1:9"], cwd=ROOT, env=env, text=True,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("cheesechaser-tui download: error: bad range:")


def test_cli_underscores_are_digit_separators(hub, hub_root, tmp_path, capsys):
    from app.hub.dataset import build_repo

    build_repo(hub_root, "t/under", {1000: {"1000.bin": b"x" * 100}, 2000: {"2000.bin": b"y" * 100}})
    code = main(["download", "t/under", "1_000, 2_000", "-o", str(tmp_path / "o"),
                 "--endpoint", hub.url, "--workers", "2"])
    assert code == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "o")) == ["1000.bin", "2000.bin"]


@pytest.fixture
def demo_app(demo_root, hf_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_app(AppSettings(demo=True, demo_root=demo_root, dst_dir="downloads", workers=2,
                                clock=lambda: 0.0, endpoint_label="loopback hub"))


async def test_tui_range_input_shows_the_error_and_queues_nothing(demo_app):
    from app.tui.screens.browse import BrowseScreen
    from app.tui.dialogs.queue import QueueScreen

    app = demo_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen)
                     and app.screen.query("#range-text"), "the queue dialog's form")
        dialog = app.screen
        field = dialog.query_one("#range-text", Input)
        message = dialog.query_one("#range-message")

        field.value = HUGE  # as pasted: one change
        await pilot.pause()
        await pilot.press("enter")  # submitting it neither crashes nor queues
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen) and not app.model.jobs
        shown_text = str(message.render())
        assert "too large" in shown_text and len(shown_text) < 300
        assert dialog.query_one(RangeInput).ids is None

        field.value = ""
        await pilot.press(*"7,000,000")
        await pilot.pause()
        assert "write 7000000 or 7_000_000" in str(message.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not app.model.jobs and isinstance(app.screen, QueueScreen)

        field.value = "7_000_000"
        await pilot.pause()
        assert list(dialog.query_one(RangeInput).ids) == [7_000_000]


@pytest.mark.parametrize("text", [HUGE, "²", "٣", "1\x1b[2J", str(2**63)])
def test_go_to_id_refuses_what_int_would_choke_on(text):
    from app.tui.dialogs.goto import parse_goto

    problem = parse_goto(text)
    assert isinstance(problem, str) and "\x1b" not in problem and len(problem) < 100
    assert parse_goto("7,017") == 7017 and parse_goto("7_017") == 7017
