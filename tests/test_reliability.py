"""Issue 5: faults over the wire, bad input and interruptions lose nothing.

Every fault is injected for real by the loopback Hub (seeded ``FaultConfig``), every download goes
over HTTP, interruptions are real signals sent to a real ``cheesechaser-tui download`` process.
What each test proves, in the user's words:

* a flaky, slow or rate-limiting Hub costs retries, never a file: every file ends up complete and
  its sha256 matches the manifest the dataset was built from;
* a Hub that is gone for good ends the run with a clear error and a report, never a hang and never
  "missing";
* bad input (ranges, repo ids, revisions, base levels, broken or hostile indexes, an unwritable or
  full destination, a wrong token) gives a one-line reason and writes nothing outside the
  destination, nothing partial inside it;
* Ctrl-C and ``kill -9`` leave only complete, verified files in sight; the next run fetches only
  what is still missing.

No sleeps: waits are on events or on bounded polls of the file system; no timing asserts.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.hub.dataset import build_repo, rewrite_index
from app.hub.server import FaultConfig
from pools import (
    DestinationError,
    Downloader,
    IncrementIDDataPool,
    archive_path,
    events as ev,
)
from pools import downloader as downloader_module
from pools.downloader import PARTIAL_DIR
from pools.transport import RetryPolicy

FAST = RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.004, jitter=0.0)
# enough attempts that a 30 % fault rate never exhausts them (0.3**12 per file)
PATIENT = RetryPolicy(attempts=12, backoff=0.001, max_backoff=0.004, jitter=0.5)
WAIT = 30  # seconds a test waits for a job before failing (never reached when things work)


# --- helpers -----------------------------------------------------------------------------------

def _blob(rid: int, size: int) -> bytes:
    return random.Random(rid).randbytes(size)


def _resources(ids, size=3000):
    """One file per id; sizes vary a little so that offsets are not all aligned."""
    return {rid: {f"{rid}.bin": _blob(rid, size + rid % 257)} for rid in ids}


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _pool(hub, repo, **kw):
    kw.setdefault("retry", FAST)
    return IncrementIDDataPool(repo, endpoint=hub.url, **kw)


class Recorder:
    """An ``on_event`` callback that keeps every event (called from worker threads)."""

    def __init__(self):
        self.events: list = []
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


def _expected(manifest) -> dict[str, str]:
    return {name: sha for files in manifest.files.values() for name, sha in files.items()}


def _visible(dst) -> list[str]:
    """The files a user sees in ``dst`` (the hidden partial folder aside)."""
    return sorted(n for n in os.listdir(dst) if n != PARTIAL_DIR) if os.path.isdir(dst) else []


def _assert_only_verified(dst, manifest, partial_ok: bool = False):
    """Every visible file in ``dst`` is complete and verified; no temporary file anywhere
    (``partial_ok``: the hidden partial folder may hold a dead process's ``*.part`` files)."""
    expected = _expected(manifest)
    for dirpath, dirnames, filenames in os.walk(dst):
        if PARTIAL_DIR in dirnames:
            assert partial_ok, f"{PARTIAL_DIR} left in {dirpath}"
            dirnames.remove(PARTIAL_DIR)
        for name in filenames:
            assert not name.endswith(".part"), f"partial file {name} left in {dirpath}"
            assert name in expected, f"unexpected file {name}"
            assert _sha(os.path.join(dirpath, name)) == expected[name], f"{name} is not complete"


def _assert_all_there(dst, manifest, ids):
    for rid in ids:
        for name, sha in manifest.files[rid].items():
            path = os.path.join(dst, name)
            assert os.path.isfile(path), f"{name} not downloaded"
            assert _sha(path) == sha, f"{name} differs from the manifest"


def _tar_gets(hub):
    return [r for r in hub.request_log if r.method == "GET" and r.path.endswith(".tar")]


def _wait_until(condition, timeout: float = WAIT, step: float = 0.005) -> bool:
    """Poll ``condition`` until true (bounded); the wait is an Event, never ``time.sleep``."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(step)
    return True


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- faults over the wire ----------------------------------------------------------------------

# Each kind alone at a rate high enough to hit many requests. Faults apply to every file GET
# (archives *and* indexes), to HEADs and to the API (revision lookups) alike.
KINDS = {
    "latency 25 ms": (FaultConfig(latency_ms=25), None),
    "500/502/503 at 30%": (FaultConfig(error_rate=0.3, error_codes=(500, 502, 503), retry_after=0), "error"),
    "429 Retry-After at 30%": (FaultConfig(rate_429=0.3, retry_after=0), "429"),
    "dropped mid-body at 30%": (FaultConfig(drop_rate=0.3), "drop"),
    "cut short at 30%": (FaultConfig(truncate_rate=0.3), "truncate"),
    "bytes altered at 30%": (FaultConfig(corrupt_rate=0.3), "corrupt"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_fault_kind_alone_loses_no_file(hub, hub_root, tmp_path, kind):
    config, fault = KINDS[kind]
    ids = sorted(a + 1000 * k for a in range(6) for k in range(1, 9))  # 48 ids in 6 archives
    manifest = build_repo(hub_root, "t/kind", _resources(ids))
    hub.faults = FaultConfig(**{**config.__dict__, "seed": 11, "on_api": True, "on_head": True})
    with Downloader(max_workers=4, merge_gap=0, retry=PATIENT) as dl:
        report = dl.submit(_pool(hub, "t/kind", retry=PATIENT), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert sorted(report.downloaded) == ids
    _assert_all_there(tmp_path / "o", manifest, ids)
    _assert_only_verified(tmp_path / "o", manifest)
    if fault is not None:
        hit = [r for r in hub.request_log if r.fault == fault]
        assert hit, f"no request was hit by {fault}"


@pytest.mark.parametrize("fault", ["drop", "truncate", "corrupt"])
def test_a_damaged_index_body_is_retried_and_never_cached(hub, hub_root, tmp_path, fault):
    # every second index GET is damaged; a damaged index must neither fail its ids nor stay
    # in the huggingface_hub cache, where every later run (a new pool) would read it again
    ids = sorted(a + 1000 * k for a in range(8) for k in (1, 2))
    manifest = build_repo(hub_root, "t/idx", _resources(ids))
    hub.faults = FaultConfig(**{f"{fault}_rate": 0.5}, paths="*.json", seed=2)
    with Downloader(max_workers=1, retry=PATIENT) as dl:  # one worker: a seeded sequence
        report = dl.submit(_pool(hub, "t/idx", retry=PATIENT), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert any(r.fault == fault for r in hub.request_log if r.path.endswith(".json"))
    _assert_all_there(tmp_path / "o", manifest, ids)
    hub.faults = None
    hub.clear_log()
    fresh = _pool(hub, "t/idx")  # a new process: indexes come from the cache, by commit
    for archive in manifest.archives:
        index = fresh.get_index(archive)
        assert sorted(index.by_id) == sorted(r for r in ids if manifest.locations[r] == archive)
    assert not [r for r in hub.request_log if r.path.endswith(".json")]
