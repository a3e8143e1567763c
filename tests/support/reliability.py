"""What the engine's fault, bad-input and interruption tests share: retry policies, repos of
one file per id, waits, the download command in a process, a disk that fills up, unsafe names."""


from __future__ import annotations

import builtins
import errno
import os
import subprocess
import sys
import threading
import time

from pools import (
    IncrementIDDataPool,
)
from pools.engine.downloader import PARTIAL_DIR
from pools.transport import RetryPolicy
from tests.support.helpers import blob as _blob
from tests.support.helpers import sha256_file as _sha

FAST = RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.004, jitter=0.0)
# enough attempts that a 30 % fault rate never exhausts them (0.3**12 per file)
PATIENT = RetryPolicy(attempts=12, backoff=0.001, max_backoff=0.004, jitter=0.5)
WAIT = 30  # seconds a test waits for a job before failing (never reached when things work)


# --- helpers -----------------------------------------------------------------------------------

def resources(ids, size=3000):
    """One file per id; sizes vary a little so that offsets are not all aligned."""
    return {rid: {f"{rid}.bin": _blob(rid, size + rid % 257)} for rid in ids}


def pool_of(hub, repo, **kw):
    kw.setdefault("retry", FAST)
    return IncrementIDDataPool(repo, endpoint=hub.url, **kw)


def visible(dst) -> list[str]:
    """The files a user sees in ``dst`` (the hidden partial folder aside)."""
    return sorted(n for n in os.listdir(dst) if n != PARTIAL_DIR) if os.path.isdir(dst) else []


def assert_all_there(dst, manifest, ids):
    for rid in ids:
        for name, sha in manifest.files[rid].items():
            path = os.path.join(dst, name)
            assert os.path.isfile(path), f"{name} not downloaded"
            assert _sha(path) == sha, f"{name} differs from the manifest"


def wait_until(condition, timeout: float = WAIT, step: float = 0.005) -> bool:
    """Poll ``condition`` until true (bounded); the wait is an Event, never ``time.sleep``."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(step)
    return True


def run_cli(hub, args, tmp_path, timeout=WAIT * 2, **kw):
    """``cheesechaser-tui download ARGS`` in a new process with its own huggingface_hub cache."""
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "cli-cache"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    cmd = [sys.executable, "-m", "app", "download", *args, "--endpoint", hub.url if hasattr(hub, "url") else hub]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, **kw)



UNSAFE_NAMES = ["../../x.png", "/etc/x.png", "a/../../b.png", "../../123.png", "../../4001.bin",
                "/etc/5001.bin", "a/../../6001.bin", "..\\..\\7001.bin", "./../8001.bin",
                "sub/../../9001.bin", "/10001.bin", "..", "11001.bin/..", "12\x00001.bin", "13001.bin\n"]
UNSAFE_IDS = [123] + list(range(4001, 14001, 1000))


class FullDisk:
    """``open`` for the downloader module: files opened for writing under ``root`` get ``budget``
    bytes in all, then ``ENOSPC``, like a disk that fills up mid-run (deterministic, and only
    for the destination: the huggingface_hub cache and everything else write normally)."""

    def __init__(self, root, budget: int):
        self.root = os.path.abspath(root)
        self.left = budget
        self.hits = 0
        self.lock = threading.Lock()

    def __call__(self, file, mode="r", *args, **kwargs):
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.path.abspath(file)
        f = builtins.open(file, mode, *args, **kwargs)
        if any(c in mode for c in "wax+") and path.startswith(self.root + os.sep):
            return CappedFile(f, self)
        return f


class CappedFile:
    def __init__(self, f, disk: FullDisk):
        self._f, self._disk = f, disk

    def write(self, data) -> int:
        with self._disk.lock:
            n = min(len(data), self._disk.left)
            self._disk.left -= n
        if n:
            self._f.write(data[:n])
        if n < len(data):
            self._disk.hits += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


