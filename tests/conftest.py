"""Shared fixtures: a loopback Hub on a temporary folder, and an isolated huggingface_hub cache.

huggingface_hub reads HF_HOME / HF_ENDPOINT into ``huggingface_hub.constants`` at import time, so
the session's cache is pointed at a temporary folder here, before anything imports it, and each
test that downloads gets its own cache by patching ``constants.HF_HUB_CACHE`` (read at call time).
Pools are given ``endpoint=hub.url`` explicitly.
"""

from __future__ import annotations

import os
import tempfile

_SESSION_HOME = tempfile.mkdtemp(prefix="cheesechaser-tests-hfhome-")
os.environ["HF_HOME"] = _SESSION_HOME
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_ENDPOINT", None)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def session_dirs(tmp_path, monkeypatch):
    """Every test gets its own session store and no user config (app.core.sessions, app.core.config)."""
    monkeypatch.setenv("CHEESECHASER_DATA_DIR", str(tmp_path / "cheesechaser-data"))
    monkeypatch.setenv("CHEESECHASER_CONFIG", str(tmp_path / "cheesechaser-config.toml"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A fresh huggingface_hub cache folder for this test."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return cache


@pytest.fixture
def hub_root(tmp_path):
    root = tmp_path / "hub"
    (root / "datasets").mkdir(parents=True)
    return root


@pytest.fixture
def hub(hub_root, hf_cache):
    """A running loopback Hub serving ``hub_root``; stopped after the test."""
    from app.hub.server import HubServer

    server = HubServer(hub_root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hf_env(hub, monkeypatch):
    """Point huggingface_hub's default endpoint at the loopback Hub (for code that takes no endpoint)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    return hub


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The demo dataset, written once per session, with fixed mtimes.

    The loopback Hub derives the commit sha from paths, sizes and mtimes: fixed mtimes give the
    same sha in every run, so the short sha on screen is stable in snapshots.
    """
    from app.hub.demo import write_demo

    root = tmp_path_factory.getbasetemp() / "tui-demo-hub"
    write_demo(root)
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    return root


@pytest.fixture
def snapshot(snapshot):
    """SVG snapshots live in ``tests/snapshots/<test module>/<test>.svg`` (not syrupy's
    ``__snapshots__`` beside each test file), whatever folder the test module is in."""
    from pathlib import Path

    from pytest_textual_snapshot import SVGImageExtension

    class InTestsFolder(SVGImageExtension):
        @classmethod
        def dirname(cls, *, test_location) -> str:
            return str(Path(__file__).resolve().parent / "snapshots" / test_location.basename)

    use_extension = snapshot.use_extension
    snapshot.use_extension = lambda extension_class=None: use_extension(InTestsFolder)
    return snapshot
