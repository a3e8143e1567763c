"""Pilot tests of the TUI's flows against the real loopback Hub (no HTTP mocking, no sleeps).

The demo dataset is written once per session; every test gets a fresh huggingface_hub cache
(``hf_cache`` from conftest) so "indexes cached / to fetch" never depends on test order.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import pytest

from app.tui.app import make_app
from app.hub.demo import DEMO_REPO, write_demo
from app.tui.messages import EventPump
from app.core.settings import AppSettings
from app.tui.widgets.range_input import RangeInput
from app.tui.widgets.virtual_table import Column, Row, VirtualTable
from pools import parse_ids
from pools import events as ev

from tests.app.tui.conftest import FAST, open_demo, wait_jobs  # noqa: F401 - shared with other TUI tests
from tests.support.helpers import settle

SIZE = (100, 30)
# ---- open the demo ------------------------------------------------------------------------

async def test_demo_opens_and_fills_index_metadata(demo_settings):
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        table = browse.query_one("#archives", VirtualTable)
        assert table.total_count == 48
        assert browse.settings.repo == DEMO_REPO and app.demo_endpoint
        first = browse.summaries["images/000.tar"]
        assert first.n_ids > 0 and first.n_unrecognized == 1 and first.hash and first.hash_lfs
        assert table.get_row("images/000.tar").cells[3] == f"{first.n_ids:,}"
        info = str(browse.query_one("#dataset-info").render())
        assert "48 archives" in info and "loopback hub" in info
        # sort by ids, then filter
        table.sort_by("ids", reverse=True)
        values = [r.values[3] for r in table.rows]
        assert values == sorted(values, reverse=True)
        await pilot.press("slash", *"017")
        assert [r.key for r in table.rows] == ["images/017.tar"]
        await pilot.press("escape")
        assert table.row_count == 48 and app.focused is table
    assert app._demo_server is None  # the in-process Hub stops with the app


async def test_inspect_archive_files_unrecognized_and_preview(demo_settings):
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.widgets.image_preview import ImagePreview

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        browse.query_one("#archives", VirtualTable).move_cursor_to_key("images/017.tar")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                     "the archive's index")
        screen = app.screen
        files = screen.query_one("#files", VirtualTable)
        assert files.total_count == len(screen.index.entries) > 0
        assert [r.cells[0] for r in screen.query_one("#unrecognized", VirtualTable).rows] == [
            "README.txt"]
        # the first file (sorted by offset) is a picture: the preview draws it
        preview = screen.query_one("#preview", ImagePreview)
        await settle(pilot, lambda: preview.has_image or "✗" in preview._text, "the preview")
        first = files.rows[0].key
        if first.endswith((".png", ".jpg", ".webp")):
            assert preview.has_image
        # a JSON sidecar previews as text
        json_rows = [r.key for r in files.rows if r.key.endswith(".json")]
        if json_rows:
            files.move_cursor_to_key(json_rows[0])
            await settle(pilot, lambda: '"id"' in preview._text, "the JSON preview")
        # mark two ids and queue them: the dialog is prefilled with exactly those ids
        files.cursor = 0
        await pilot.press("space", "space")
        marked = sorted(screen.marked)
        assert len(marked) >= 1
        await pilot.press("q")
        await settle(pilot, lambda: app.screen.query(RangeInput), "the queue dialog")
        assert parse_ids(app.screen.query_one(RangeInput).value) == parse_ids(
            ", ".join(map(str, marked)))


# ---- mark and queue -----------------------------------------------------------------------

async def test_bad_range_shows_the_error_under_the_input(demo_settings):
    from app.tui.dialogs.queue import QueueScreen

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        dialog = app.screen
        await pilot.press(*"5-1")
        message = str(dialog.query_one("#range-message").render())
        assert "reversed" in message and "1-5" in message
        assert dialog.query_one("#range-text").has_class("-invalid")
        await pilot.press("enter")  # refused: nothing queued
        assert not app.model.jobs and isinstance(app.screen, QueueScreen)
        dialog.query_one("#range-text").value = "1-9,abc"
        await pilot.pause()
        assert "'abc' is not a number" in str(dialog.query_one("#range-message").render())
        dialog.query_one("#range-text").value = "1-300"
        await pilot.pause()
        assert "300 ids" in str(dialog.query_one("#range-message").render())
        await settle(pilot, lambda: "archives" in dialog.preview_text, "the preview")
        assert "300 ids · 48 archives: images/000.tar" in dialog.preview_text
        assert "48 cached, 0 to fetch" in dialog.preview_text  # the archives screen loaded them
        assert "52 more not in the repo" in dialog.preview_text
        await pilot.press("escape")
        assert not isinstance(app.screen, QueueScreen) and not app.model.jobs


async def test_queue_a_range_files_arrive_and_panes_fill(demo_settings, tmp_path):
    from app.tui.dialogs.queue import QueueScreen
    from app.tui.screens.watch import WatchScreen

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        app.screen.query_one("#range-text").value = "1-300"
        await pilot.press("enter")
        assert isinstance(app.screen, WatchScreen)
        await wait_jobs(pilot)
        (view,) = app.model.jobs.values()
        report = view.job.report
        assert view.state == "done" and view.ids_done == 300
        assert view.downloaded == len(report.downloaded) > 0
        assert view.missing == len(report.missing) > 0 and view.failed == 0
        dest = tmp_path / "downloads"
        for rid in report.downloaded[:20]:
            assert any(p.name.startswith(f"{rid}.") for p in dest.iterdir()), rid
        watch = app.screen
        missing = watch.query_one("#missing", VirtualTable)
        assert sum(r.values[1] for r in missing.rows) == len(report.missing)
        unrec = watch.query_one("#unrecognized-files", VirtualTable)
        assert sorted(r.cells[2] for r in unrec.rows) == sorted(n for _, n, _ in report.unrecognized)
        assert watch.query_one("#failed", VirtualTable).row_count == 0
        jobs = watch.query_one("#jobs", VirtualTable)
        assert jobs.rows[0].cells[1] == "done" and jobs.rows[0].cells[2] == "300/300"
        assert all(w.state == "idle" for w in app.model.workers.values())
        # a second job while the first is finished: queued from the downloads screen
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        app.screen.query_one("#range-text").value = "1-300"
        await pilot.press("enter")
        await wait_jobs(pilot)
        second = app.model.jobs[max(app.model.jobs)]
        assert second.skipped == view.downloaded and second.downloaded == 0  # resumed, not refetched


async def test_failed_ids_fill_the_pane_and_retry_fetches_them(demo_settings, tmp_path):
    from app.hub.faults import FaultConfig

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app._demo_server.faults = FaultConfig(error_rate=1.0, paths="*.tar")
        view = app.queue_job(app.current_pool, parse_ids("100-105"), "downloads", 2)
        app.action_downloads()
        await wait_jobs(pilot)
        assert view.failed > 0
        failed = app.screen.query_one("#failed", VirtualTable)
        assert failed.row_count == view.failed
        assert "Failed (" in str(app.screen.query_one("#panes").get_tab("pane-failed").label)
        app._demo_server.faults = None
        await pilot.press("r")
        await wait_jobs(pilot)
        retry = app.model.jobs[max(app.model.jobs)]
        assert retry.job_id != view.job_id and retry.failed == 0
        # what the job did not finish: its failed ids and those it never reached (sessions)
        assert retry.downloaded + retry.missing == view.failed + view.job.report.not_reached == 6
        # the first job's failures stay listed while its row counts them: the pane and the rows agree
        assert app.screen.query_one("#failed", VirtualTable).row_count == view.failed + retry.failed == 3


async def test_cancel_a_running_job(demo_settings):
    from app.hub.faults import FaultConfig

    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        app._demo_server.faults = FaultConfig(latency_ms=150, paths="*.tar")
        view = app.queue_job(app.current_pool, parse_ids("1-4800"), "downloads", 2)
        app.action_downloads()
        await pilot.pause()
        await pilot.press("c")
        await wait_jobs(pilot)
        assert view.state == "cancelled"
        assert app.screen.query_one("#jobs", VirtualTable).rows[0].cells[1] == "cancelled"
    # what a cancel leaves behind: only complete files that match the index, no partial folder
    dst = Path("downloads")
    assert not (dst / ".cheesechaser-partial").exists()
    kept = sorted(p.name for p in dst.iterdir()) if dst.exists() else []
    assert len(kept) < 2000, "the cancel must stop the job"
    demo = write_demo(demo_settings.demo_root)
    expected = {name: sha for files in demo.files.values() for name, sha in files.items()}
    for name in kept:
        assert hashlib.sha256((dst / name).read_bytes()).hexdigest() == expected[name], name


# ---- errors a user can cause --------------------------------------------------------------

@pytest.fixture
def error_hub(hub_root, hub):
    from app.hub.dataset import build_repo
    from app.hub.images import tiny_image

    resources = {i: {f"{i}.png": tiny_image(i)} for i in range(1, 21)}
    build_repo(hub_root, "test/private", resources, base_level=2, private=True, tokens=["hf_goodtoken"])
    build_repo(hub_root, "test/gated", resources, base_level=2, gated=True, tokens=["hf_goodtoken"])
    return hub


@pytest.mark.parametrize("repo, token, endpoint, expect", [
    ("test/nothere", None, None, "does not exist"),
    ("test/nothere", "hf_goodtoken", None, "repository not found"),
    ("test/private", None, None, "access denied"),
    ("test/gated", "hf_badtoken_secret", None, "access denied"),
    ("test/private", None, "http://127.0.0.1:9", "network error"),
])
async def test_open_errors_show_a_panel_not_a_crash(error_hub, tmp_path, monkeypatch,
                                                     repo, token, endpoint, expect):
    from app.tui.screens.browse import BrowseScreen

    monkeypatch.chdir(tmp_path)
    settings = AppSettings(repo=repo, token=token, base_level=2, endpoint=endpoint or error_hub.url,
                           retry=FAST, clock=lambda: 0.0)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen) and app.screen.error,
                     "the error panel")
        panel = app.screen.query_one("#load-error")
        text = str(panel.render())
        assert panel.display and expect in text.lower(), text
        assert "Esc" in text and f"{repo}" in text and "Could not" in text
        assert token is None or token not in text
        assert token is None or token not in app.export_screenshot()
        await pilot.press("escape")  # back to the picker, still running
        assert type(app.screen).__name__ == "PickerScreen"


async def test_private_repo_opens_with_the_right_token(error_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(repo="test/private", token="hf_goodtoken", base_level=2,
                               endpoint=error_hub.url, retry=FAST))
    async with app.run_test(size=SIZE) as pilot:
        browse = await open_demo(pilot)
        assert browse.error is None and len(browse.archives) == 20
        assert "hf_goodtoken" not in app.export_screenshot()


async def test_picker_validates_the_form_and_hides_the_token(tmp_path, monkeypatch):
    from app.tui.screens.picker import PickerScreen

    monkeypatch.chdir(tmp_path)
    app = make_app(AppSettings(token="hf_verysecrettoken"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        assert "hf_verysecrettoken" not in app.export_screenshot()
        assert "hf_verysecrettoken" not in repr(app.settings)
        picker.query_one("#repo").value = "not a repo"
        await pilot.press("ctrl+o")
        assert "owner/name" in str(picker.query_one("#form-error").render())
        picker.query_one("#repo").value = "deepghs/danbooru2024"
        picker.query_one("#base-level").value = "x"
        await pilot.press("ctrl+o")
        assert "base level" in str(picker.query_one("#form-error").render())
        picker.query_one("#base-level").value = "3,4"
        settings = picker.form_settings()
        assert settings.base_level == [3, 4] and settings.token == "hf_verysecrettoken"
        # a preset fills the form
        presets = picker.query_one("#presets", VirtualTable)
        presets.move_cursor_to_key("gelbooru")
        await pilot.pause()
        assert picker.query_one("#repo").value == "deepghs/gelbooru_full"
        assert picker.query_one("#base-level").value == "3,4"
        # danbooru2023's data-XYZ layout, indexes from their own repo
        presets.move_cursor_to_key("danbooru2023")
        await pilot.pause()
        settings = picker.form_settings()
        assert settings.idx_repo == "deepghs/danbooru2023_index" and settings.can_queue
        assert settings.archive_templates == ("original/data-0{residue:03d}.tar", "recent/data-1{residue:03d}.tar")
        assert "recent/data-1XYZ.tar" in str(picker.query_one("#form-error").render())
        # the preset is cheesechaser's class: it lists the updates/ folders itself
        assert settings.dataset_class == "DanbooruDataPool"
        assert type(settings.make_pool()).__name__ == "DanbooruDataPool"
        picker.query_one("#base-dir").value = "elsewhere"  # a form changed by hand is a layout of its own
        assert picker.form_settings().dataset_class is None


# ---- feel ---------------------------------------------------------------------------------

async def test_help_and_command_palette():
    from app.tui.dialogs.help import HelpScreen
    from app.tui.screens.watch import WatchScreen

    app = make_app(AppSettings(clock=lambda: 0.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        from textual.command import CommandInput, CommandList

        app.screen.query_one(CommandInput).value = "show downloads"

        await settle(pilot, lambda: app.screen.query_one(CommandList).option_count > 0,
                     "the palette's matches")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, WatchScreen), "the downloads screen")
        await pilot.press("escape")
        assert type(app.screen).__name__ == "PickerScreen"


def test_event_pump_coalesces_a_flood_into_few_signals():
    signals = []
    pump = EventPump(lambda: signals.append(1))
    event = ev.WorkerState(0, "download", 1, "a.tar", "1.png", 10, 100)

    def flood():
        for _ in range(5000):
            pump(event)

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(signals) == 1  # one message until the UI drains
    assert len(pump.drain()) == 20_000 and pump.pending == 0
    pump(event)
    assert len(signals) == 2


async def test_engine_flood_keeps_the_ui_responsive():
    """20 000 events from threads reach the model in a handful of flushes."""
    app = make_app(AppSettings(clock=lambda: 0.0))
    flushes = []
    original = app.model.apply
    app.model.apply = lambda events: flushes.append(len(events)) or original(events)
    async with app.run_test(size=SIZE) as pilot:
        def flood(worker: int):
            for i in range(5000):
                app.pump(ev.WorkerState(worker, "download", 1, "a.tar", f"{i}.png", i, 5000))

        await asyncio.gather(*(asyncio.to_thread(flood, w) for w in range(4)))
        await pilot.pause()
        app.flush_engine_events()
        assert sum(flushes) == 20_000 and len(flushes) < 50
        assert app.model.workers[3].filename == "4999.png"


async def test_virtual_table_stays_fast_with_many_rows():
    from textual.app import App

    class TableApp(App):
        def compose(self):
            yield VirtualTable([Column("id", "Id", 8, "right"), Column("name", "Name", None)])

    app = TableApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(VirtualTable)
        table.set_rows(Row(i, (str(i), f"{i}.png"), (i, f"{i}.png")) for i in range(50_000))
        await pilot.press("end")
        assert table.cursor == 49_999 and table.scroll_y > 49_000
        await pilot.click(VirtualTable, offset=(3, 0))  # header click sorts by id
        assert table.sort_column == 0 and table.rows[0].key == 0
        await pilot.click(VirtualTable, offset=(3, 0))
        assert table.sort_reverse and table.rows[0].key == 49_999
        table.set_filter("4999")
        assert {r.key for r in table.rows} >= {4999, 14999, 49990}


async def test_big_repos_load_only_the_indexes_on_screen(demo_settings, monkeypatch):
    from app.tui.screens import browse as browse_module
    from app.tui.screens.browse import BrowseScreen

    monkeypatch.setattr(browse_module, "AUTO_LOAD_ALL", 10)  # the demo's 48 archives count as big
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen) and app.screen.archives,
                     "the listing")
        browse = app.screen
        table = browse.query_one("#archives", VirtualTable)
        visible = set(table.visible_keys())
        await settle(pilot, lambda: visible <= set(browse.summaries), "the visible summaries")
        assert len(browse.summaries) < 48 and not browse.loading_done
        assert "(a: load all)" in str(browse.query_one("#dataset-info").render())
        await pilot.press("end")  # scrolling to the bottom loads what comes into view
        await settle(pilot, lambda: "images/047.tar" in browse.summaries, "the last rows")
        await pilot.press("a")
        await settle(pilot, lambda: browse.loading_done, "every summary")
        assert "1,959 ids" in str(browse.query_one("#dataset-info").render())


async def test_unwritable_destination_is_refused_in_the_dialog(demo_settings, tmp_path):
    from app.tui.dialogs.queue import QueueScreen

    (tmp_path / "a-file").write_text("not a folder")
    app = make_app(demo_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_demo(pilot)
        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        app.screen.query_one("#range-text").value = "1-10"
        app.screen.query_one("#queue-dest").value = "a-file/below"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, QueueScreen) and not app.model.jobs
        # the dialog says why, under the form (sessions' destination check), before any job
        error = str(app.screen.query_one("#queue-error").render())
        assert "Cannot write to a-file/below: a-file is not a folder" in error, error
        app.screen.query_one("#queue-dest").value = "downloads"
        app.screen.query_one("#queue-workers").value = "0"
        await pilot.press("ctrl+s")
        assert "Workers must be" in str(app.screen.query_one("#queue-error").render())


def test_settings_and_cli_options_do_not_import_textual():
    """The lead's CLI builds settings before deciding to start the TUI: that stays cheap."""
    import subprocess
    import sys

    code = ("import argparse, sys; from app.cli import add_tui_arguments, settings_from_args; "
            "p = argparse.ArgumentParser(); add_tui_arguments(p); "
            "s = settings_from_args(p.parse_args(['--repo', 'a/b', '--base-level', '3,4', "
            "'--token', 'hf_x'])); assert s.base_level == [3, 4] and 'hf_x' not in repr(s); "
            "assert 'textual' not in sys.modules, 'textual imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_bad_options_exit_2_with_one_line_before_any_screen():
    import subprocess
    import sys

    for args, needle in ((["--repo", "nouser"], "repo id 'nouser' is not valid"),
                         (["--repo", "a/b", "--idx-repo", "x y"], "index repo id 'x y' is not valid"),
                         (["--base-level", "0"], "base level must be a number from 1 to 9")):
        out = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60)
        assert out.returncode == 2, out
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith("cheesechaser-tui: error: ")
        assert needle in out.stderr and "Traceback" not in out.stderr
