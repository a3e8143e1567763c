"""The config file: defaults and presets, one-line errors naming the file and key, used by the
TUI (settings, the picker) and the CLI (a real subprocess against the loopback Hub)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.config import ConfigError, config_path, load_config
from app.hub.dataset import build_repo
from app.cli import add_tui_arguments, settings_from_args

ROOT = Path(__file__).resolve().parents[3]

GOOD = """
[defaults]
destination = "~/pulled"
workers = 5
endpoint = "http://127.0.0.1:9/"

[[presets]]
name = "team-mirror"
repo = "team/mirror"
base_level = [3, 4]
notes = "our copy"

[[presets]]
name = "old-layout"
repo = "team/old"
layout = "data-XYZ"
templates = ["original/data-0{residue:03d}.tar"]
"""


def _write(tmp_path, text, name="config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_config(tmp_path, monkeypatch):
    path = _write(tmp_path, GOOD)
    monkeypatch.setenv("CHEESECHASER_CONFIG", str(path))
    assert config_path() == path
    config = load_config()
    assert config.destination == os.path.expanduser("~/pulled") and config.workers == 5
    assert config.endpoint == "http://127.0.0.1:9"
    mirror, old = config.presets
    assert (mirror.name, mirror.repo, mirror.base_level, mirror.layout) == ("team-mirror", "team/mirror", [3, 4],
                                                                             "increment-id")
    assert old.layout == "data-XYZ" and old.templates == ("original/data-0{residue:03d}.tar",)
    assert old.can_queue and config.preset_for("team/old") is old


def test_no_config_file_is_no_config(tmp_path):
    config = load_config(tmp_path / "absent.toml")
    assert config.path is None and config.presets == [] and config.workers is None


@pytest.mark.parametrize("text, key", [
    ("[defaults]\nworkers = 0\n", "defaults.workers must be a whole number from 1 to 64, got 0"),
    ("[defaults]\nworkers = 'many'\n", "defaults.workers must be a whole number"),
    ("[defaults]\nendpoint = 'ftp://x'\n", "defaults.endpoint must be an http:// or https:// URL"),
    ("[defaults]\ndest = 'x'\n", "defaults.dest is not a known key"),
    ("[default]\n", "default is not a known section"),
    ("[[presets]]\nname = 'x'\n", "presets[0].repo is required"),
    ("[[presets]]\nname = 'x'\nrepo = 'not a repo'\n", "presets[0].repo is wrong"),
    ("[[presets]]\nname = 'x'\nrepo = 'a/b'\nbase_level = 0\n", "presets[0].base_level is wrong"),
    ("[[presets]]\nname = 'x'\nrepo = 'a/b'\nlayout = 'data-XYZ'\n", "presets[0].templates is required"),
    ("[[presets]]\nname = 'x'\nrepo = 'a/b'\nlayout = 'data-XYZ'\ntemplates = ['../{residue}.tar']\n",
     "presets[0].templates '../{residue}.tar' must name a .tar inside the repo"),
    ("[[presets]]\nname = 'demo'\nrepo = 'a/b'\n", "presets[0].name 'demo' is already a preset"),
    ("[defaults\nworkers = 3\n", "not valid TOML"),
])
def test_bad_configs_are_one_line_naming_file_and_key(tmp_path, text, key):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"config {path}: ") and key in message and "\n" not in message


def test_the_tui_takes_its_defaults_from_the_config(tmp_path, monkeypatch, capsys):
    import argparse

    monkeypatch.setenv("CHEESECHASER_CONFIG", str(_write(tmp_path, GOOD)))
    parser = argparse.ArgumentParser()
    add_tui_arguments(parser)
    settings = settings_from_args(parser.parse_args([]))
    assert settings.dst_dir == os.path.expanduser("~/pulled") and settings.workers == 5
    assert settings.endpoint == "http://127.0.0.1:9" and [p.name for p in settings.presets] == [
        "team-mirror", "old-layout"]
    given = settings_from_args(parser.parse_args(["--workers", "2", "--dest", "here"]))
    assert given.workers == 2 and given.dst_dir == "here"  # the command line wins
    # a bad config: the app does not start; one line, exit 2
    bad = _write(tmp_path, "[defaults]\nworkers = -1\n", "bad.toml")
    monkeypatch.setenv("CHEESECHASER_CONFIG", str(bad))
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"config {bad}: defaults.workers must be a whole number from 1 to 64, got -1")
    assert len(err.splitlines()) == 1


def test_the_cli_takes_destination_workers_and_endpoint_from_the_config(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/conf", {rid: {f"{rid}.bin": random.Random(rid).randbytes(500)}
                                    for rid in (1000, 2000)})
    dest = tmp_path / "from-config"
    path = _write(tmp_path, f'[defaults]\ndestination = "{dest}"\nworkers = 2\nendpoint = "{hub.url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT), CHEESECHASER_CONFIG=str(path))
    run = lambda *args: subprocess.run([sys.executable, "-m", "app", "download", *args], cwd=ROOT,  # noqa: E731
                                       env=env, capture_output=True, text=True, timeout=120,
                                       stdin=subprocess.DEVNULL)
    out = run("t/conf", "1000, 2000")  # no -o, no --endpoint: the config's
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(dest)) == ["1000.bin", "2000.bin"]
    path.write_text("[defaults]\nworkers = 3.5\n")
    out = run("t/conf", "1000", "-o", str(tmp_path / "o"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"cheesechaser-tui download: error: config {path}: defaults.workers "
                                  "must be a whole number from 1 to 64, got 3.5")
    path.write_text("")
    out = run("t/conf", "1000")
    assert out.returncode == 2 and "give -o DIR" in out.stderr


async def test_config_presets_show_in_the_picker_and_the_last_one_is_remembered(tmp_path, monkeypatch):
    from app.tui.app import make_app
    from app.tui.screens.browse import BrowseScreen
    from app.tui.screens.picker import PickerScreen
    from app.tui.widgets.virtual_table import VirtualTable
    from tests.support.helpers import settle

    import argparse

    monkeypatch.setenv("CHEESECHASER_CONFIG", str(_write(tmp_path, GOOD)))
    parser = argparse.ArgumentParser()
    add_tui_arguments(parser)
    settings = settings_from_args(parser.parse_args([]))
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        table = app.screen.query_one("#presets", VirtualTable)
        keys = [r.key for r in table.rows]
        assert keys[:3] == ["demo", "team-mirror", "old-layout"]
        table.move_cursor_to_key("team-mirror")
        await pilot.pause()
        assert app.screen.query_one("#base-level").value == "3,4"
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
        assert app.screen.settings.base_level == [3, 4] and app.screen.settings.repo == "team/mirror"
    app = make_app(settings)  # the next session starts on the preset opened last
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        assert app.screen.query_one("#presets", VirtualTable).cursor_key == "team-mirror"


def test_a_config_that_is_a_fifo_a_device_link_or_deeply_nested_is_one_error(tmp_path):
    import os

    from app.core.config import ConfigError, load_config

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for path, words in ((fifo, "not a regular file"), (zero, "not a regular file"), (deep, "config")):
        with pytest.raises(ConfigError, match=words):
            load_config(path)
