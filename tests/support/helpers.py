"""Helpers shared by the engine, downloader, CLI and reliability tests (not a test module)."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading

from pools.engine.downloader import PARTIAL_DIR


def blob(rid: int, size: int) -> bytes:
    """Bytes that differ from id to id and are the same in every run."""
    return random.Random(rid).randbytes(size)


def binary_resources(ids, size: int = 3000, sidecar=()) -> dict[int, dict[str, bytes]]:
    """One ``<id>.bin`` per id, plus ``<id>.json`` for the ids in ``sidecar``."""
    res = {}
    for rid in ids:
        files = {f"{rid}.bin": blob(rid, size)}
        if rid in sidecar:
            files[f"{rid}.json"] = b'{"id": %d}' % rid
        res[rid] = files
    return res


def sha256_file(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def expected_files(manifest) -> dict[str, str]:
    """basename -> sha256 of every file a built repo holds."""
    return {name: sha for files in manifest.files.values() for name, sha in files.items()}


def assert_only_verified(dst, manifest, partial_ok: bool = False) -> None:
    """Every visible file in ``dst`` is complete and verified; no temporary file anywhere
    (``partial_ok``: the hidden partial folder may hold a dead process's ``*.part`` files)."""
    expected = expected_files(manifest)
    for dirpath, dirnames, filenames in os.walk(dst):
        if PARTIAL_DIR in dirnames:
            assert partial_ok, f"{PARTIAL_DIR} left in {dirpath}"
            dirnames.remove(PARTIAL_DIR)
        for name in filenames:
            assert not name.endswith(".part"), f"partial file {name} left in {dirpath}"
            assert name in expected, f"unexpected file {name}"
            assert sha256_file(os.path.join(dirpath, name)) == expected[name], f"{name} is not complete"


def tar_gets(hub) -> list:
    """The archive GETs the loopback Hub served: one per GET the client made (on the CDN port
    when redirected; the 302s that sent it there left out)."""
    return [r for r in hub.request_log if r.method == "GET" and r.path.endswith(".tar") and r.status != 302]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An ``on_event`` callback that keeps every event (called from worker threads)."""

    def __init__(self):
        self.events: list = []
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind, job_id=None) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind) and (job_id is None or e.job_id == job_id)]


async def settle(pilot, condition, what: str, rounds: int = 300) -> None:
    """Let workers finish and messages be handled until ``condition()`` holds (never a sleep).

    A screen just pushed is on the stack before its widgets are composed: the condition counts
    only once the top screen is mounted, so a test can query the screen it waited for."""
    for _ in range(rounds):
        if condition() and _screen_ready(pilot.app):
            return
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    raise AssertionError(f"gave up waiting for {what}")


def _screen_ready(app) -> bool:
    try:
        return app.screen.is_mounted
    except Exception:  # noqa: BLE001 - no screen stack (the app has quit): nothing to wait for
        return True
