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
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from app.hub.dataset import build_repo, rewrite_index
from app.hub.server import FaultConfig, HubServer
from pools import (
    DestinationError,
    Downloader,
    IncrementIDDataPool,
    events as ev,
)
from pools.engine import write as write_module  # the write stage opens the temporary files
from pools.engine.downloader import PARTIAL_DIR
from pools.transport import RetryPolicy

from tests.support.helpers import Recorder, assert_only_verified as _assert_only_verified, blob as _blob
from tests.support.helpers import closed_port as _closed_port, expected_files as _expected, sha256_file as _sha
from tests.support.helpers import tar_gets as _tar_gets

FAST = RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.004, jitter=0.0)
# enough attempts that a 30 % fault rate never exhausts them (0.3**12 per file)
PATIENT = RetryPolicy(attempts=12, backoff=0.001, max_backoff=0.004, jitter=0.5)
WAIT = 30  # seconds a test waits for a job before failing (never reached when things work)


# --- helpers -----------------------------------------------------------------------------------

def _resources(ids, size=3000):
    """One file per id; sizes vary a little so that offsets are not all aligned."""
    return {rid: {f"{rid}.bin": _blob(rid, size + rid % 257)} for rid in ids}


def _pool(hub, repo, **kw):
    kw.setdefault("retry", FAST)
    return IncrementIDDataPool(repo, endpoint=hub.url, **kw)


def _visible(dst) -> list[str]:
    """The files a user sees in ``dst`` (the hidden partial folder aside)."""
    return sorted(n for n in os.listdir(dst) if n != PARTIAL_DIR) if os.path.isdir(dst) else []


def _assert_all_there(dst, manifest, ids):
    for rid in ids:
        for name, sha in manifest.files[rid].items():
            path = os.path.join(dst, name)
            assert os.path.isfile(path), f"{name} not downloaded"
            assert _sha(path) == sha, f"{name} differs from the manifest"


def _wait_until(condition, timeout: float = WAIT, step: float = 0.005) -> bool:
    """Poll ``condition`` until true (bounded); the wait is an Event, never ``time.sleep``."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(step)
    return True


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


@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_a_garbled_api_answer_is_retried_not_an_internal_error(hub, hub_root, tmp_path, rate):
    # the revision lookup and the tree listing are JSON from /api/: a byte altered in flight must
    # be retried like any transient fault (seed 1 garbles the first answer, not the second)
    ids = [1000, 2000, 1001]
    manifest = build_repo(hub_root, "t/api", _resources(ids))
    hub.faults = FaultConfig(corrupt_rate=rate, paths="re:/api/", on_api=True, seed=1)
    policy = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002, jitter=0.0)
    pool = _pool(hub, "t/api", retry=policy)
    with Downloader(max_workers=2, retry=policy) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
    assert [r.fault for r in hub.request_log][0] == "corrupt"
    if rate < 1:
        assert report.ok, (report.error, report.failed)
        _assert_all_there(tmp_path / "o", manifest, ids)
        assert sorted(a.path for a in pool.list_archives()) == sorted(manifest.archives)
    else:
        assert report.state == "failed" and "internal error" not in report.error
        assert report.error == "gave up after 6 attempts: the Hub's answer for t/api@main is not valid JSON"
    _assert_only_verified(tmp_path / "o", manifest)


# 15 % of requests fail at random, a mix of every kind (rates are exact per-request probabilities)
MIXED = FaultConfig(latency_ms=1, error_rate=0.05, error_codes=(500, 502, 503), rate_429=0.03, retry_after=0,
                    drop_rate=0.03, truncate_rate=0.02, corrupt_rate=0.02, on_api=True, on_head=True)


@pytest.mark.parametrize("merge_gap", [0, 512 * 1024], ids=["one GET per file", "merged GETs"])
def test_15_percent_of_requests_failing_loses_none_of_300_ids(hub, hub_root, tmp_path, merge_gap):
    ids = sorted(a + 1000 * k for a in range(12) for k in range(1, 26))  # 300 ids in 12 archives
    manifest = build_repo(hub_root, "t/mix", _resources(ids, size=2000))
    hub.faults = FaultConfig(**{**MIXED.__dict__, "seed": 1234 + merge_gap})
    dst = tmp_path / "o"
    with Downloader(max_workers=6, merge_gap=merge_gap, retry=PATIENT) as dl:
        report = dl.submit(_pool(hub, "t/mix", retry=PATIENT), ids, str(dst)).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert sorted(report.downloaded) == ids and list(report.missing) == []
    _assert_all_there(dst, manifest, ids)
    _assert_only_verified(dst, manifest)
    log = hub.request_log
    faulted = [r for r in log if r.fault]
    assert {r.fault for r in faulted} >= ({"error", "429", "drop", "truncate", "corrupt"} if merge_gap == 0
                                          else {"error"}), "not every kind of fault was tried"
    if len(log) >= 200:
        assert 0.07 < len(faulted) / len(log) < 0.25  # the rate asked for, roughly

    # the same job again, faults off: every file is verified in place, not one ranged GET
    hub.faults = None
    hub.clear_log()
    with Downloader(max_workers=6) as dl:
        again = dl.submit(_pool(hub, "t/mix"), ids, str(dst)).wait(WAIT)
    assert sorted(again.skipped) == ids and again.downloaded == [] and _tar_gets(hub) == []


@pytest.mark.parametrize("target", ["archive", "index", "revision"])
def test_a_429_is_waited_out_for_its_retry_after_not_hammered(hub, hub_root, tmp_path, target):
    # The Hub says "come back in an hour" to every request for one kind of resource. The engine
    # must wait that long (we see it ask for the wait), send nothing meanwhile, and a cancel must
    # still end the job at once.
    manifest = build_repo(hub_root, "t/429", _resources([1000, 2000]))
    pool = _pool(hub, "t/429")
    if target == "archive":
        pool.get_index("images/0000.tar")  # index and revision known: only the archive is asked
        paths, on_api = "*.tar", False
    elif target == "index":
        pool.resolve_revision()
        paths, on_api = "*.json", False
    else:
        paths, on_api = "*/revision/*", True
    hub.clear_log()
    hub.faults = FaultConfig(rate_429=1.0, retry_after=3600, paths=paths, on_api=on_api)
    policy = WatchedPolicy(attempts=5, backoff=0.001, max_backoff=0.002, max_retry_after=7200)
    pool.client.policy = policy
    with Downloader(max_workers=3, retry=policy) as dl:
        job = dl.submit(pool, [1000, 2000], str(tmp_path / "o"))
        assert policy.asked.wait(WAIT), "the engine never waited"
        asked = [r for r in hub.request_log if r.status == 429]
        job.cancel()
        report = job.wait(WAIT)  # the hour-long wait ends with the cancel
    assert policy.waits[0] == 3600, "the Retry-After was not honoured"
    assert len(asked) == 1
    assert len([r for r in hub.request_log if r.status == 429]) == 1, "the engine did not wait"
    assert report.state == "cancelled" and report.downloaded == [] and list(report.missing) == []
    _assert_only_verified(tmp_path / "o", manifest)


@dataclass(frozen=True)
class WatchedPolicy(RetryPolicy):
    """A RetryPolicy that records each ``Retry-After`` it is given and signals the first wait."""

    waits: list = field(default_factory=list, compare=False, hash=False)
    asked: threading.Event = field(default_factory=threading.Event, compare=False, hash=False)

    def delay(self, attempt, retry_after=None):
        self.waits.append(retry_after)
        self.asked.set()
        return super().delay(attempt, retry_after)


def _hold_after(gate: threading.Event, count: int):
    """A callback that, once ``count`` resources are done, blocks every worker (at its next
    event) until ``gate`` opens: the job is frozen mid-run while the test acts."""
    seen = {"n": 0}
    frozen = threading.Event()
    lock = threading.Lock()

    def callback(event):
        if isinstance(event, ev.ResourceDone):
            with lock:
                seen["n"] += 1
                if seen["n"] >= count:
                    frozen.set()
        if frozen.is_set() and threading.current_thread().name.startswith("cheesechaser-worker"):
            gate.wait(WAIT)
    return callback, frozen


def test_a_hub_gone_for_good_mid_run_ends_with_an_error_and_a_report(hub, hub_root, tmp_path):
    ids = sorted(a + 1000 * k for a in range(4) for k in range(1, 16))  # 60 ids, 4 archives
    manifest = build_repo(hub_root, "t/gone", _resources(ids))
    gate = threading.Event()
    callback, in_flight = _hold_after(gate, count=5)
    dst = tmp_path / "o"
    rec = Recorder()
    with Downloader(max_workers=3, merge_gap=0, on_event=callback) as dl:
        dl.add_listener(rec)
        job = dl.submit(_pool(hub, "t/gone"), ids, str(dst))
        assert in_flight.wait(WAIT)
        hub.stop()  # for good, while five files are done and the rest are queued or in flight
        gate.set()
        report = job.wait(WAIT)
    assert not report.ok and list(report.missing) == [] and not rec.of(ev.ResourcesMissing)
    assert len(report.downloaded) >= 5
    reasons = set(report.failed.values()) | {report.error}
    assert report.failed or report.error
    for reason in filter(None, reasons):
        assert re.search(r"network error|gave up", reason) and "after" in reason, reason
        assert "\n" not in reason
    accounted = set(report.downloaded) | set(report.failed)
    assert accounted == set(ids) or report.state == "failed"
    _assert_all_there(dst, manifest, report.downloaded)
    _assert_only_verified(dst, manifest)
    json.dumps(report.to_dict())  # the report is complete and serialisable


# --- bad input: broken and hostile indexes -------------------------------------------------------

def _set(name, key, value):
    def mutate(index):
        if value is _DELETE:
            del index["files"][name][key]
        else:
            index["files"][name][key] = value(index) if callable(value) else value
    return mutate


_DELETE = object()


def _no_filesize(key, value):
    def mutate(index):
        del index["filesize"]
        index["files"]["2001.bin"][key] = value
    return mutate

# (mutation of the index of images/0001.tar, how 2001 is reported, words of the reason)
BROKEN_INDEXES = {
    "not JSON": (b"{this is not json", "failed", "not valid JSON"),
    "not UTF-8": (b"\xff\xfe{}", "failed", "not valid JSON"),
    "a list, not an object": ("[1, 2, 3]", "failed", "no 'files' table"),
    "no files key": ('{"filesize": 10240}', "failed", "no 'files' table"),
    "files is a list": ('{"files": ["2001.bin"]}', "failed", "no 'files' table"),
    "entry lacks offset": (_set("2001.bin", "offset", _DELETE), "unrecognized", "lacks a valid offset or size"),
    "entry lacks size": (_set("2001.bin", "size", _DELETE), "unrecognized", "lacks a valid offset or size"),
    "size is a string": (_set("2001.bin", "size", "12"), "unrecognized", "lacks a valid offset or size"),
    "negative offset": (_set("2001.bin", "offset", -512), "unrecognized", "lacks a valid offset or size"),
    "offset past the end": (_set("2001.bin", "offset", lambda i: i["filesize"] + 512), "unrecognized",
                            "past the archive's end"),
    "size past the end": (_set("2001.bin", "size", lambda i: i["filesize"]), "unrecognized",
                          "past the archive's end"),
    "malformed sha256": (_set("2001.bin", "sha256", "xyz"), "unrecognized", "malformed sha256"),
    "entry not an object": (lambda i: i["files"].__setitem__("2001.bin", 7), "unrecognized",
                            "not an object"),
    "wrong sha256": (_set("2001.bin", "sha256", "0" * 64), "failed", "sha256 mismatch"),
    # no filesize to check against: the server's answer is what says the bytes are not there
    "offset past the end, no filesize": (_no_filesize("offset", 10 ** 9), "failed", "past the archive's end"),
    "size past the end, no filesize": (_no_filesize("size", 10 ** 9), "failed", "short body"),
}


@pytest.mark.parametrize("case", list(BROKEN_INDEXES))
def test_a_broken_index_fails_or_sets_aside_its_files_with_the_reason(hub, hub_root, tmp_path, case):
    mutate, how, words = BROKEN_INDEXES[case]
    ids = [1000, 2000, 1001, 2001, 3001]
    manifest = build_repo(hub_root, "t/broken", _resources(ids))
    rewrite_index(hub_root, "t/broken", "images/0001.tar", mutate)
    rec = Recorder()
    dst = tmp_path / "o"
    with Downloader(max_workers=3, on_event=rec) as dl:
        report = dl.submit(_pool(hub, "t/broken"), ids, str(dst)).wait(WAIT)
    assert report.state == "done" and report.error is None, "one broken index must not stop the job"
    assert {1000, 2000} <= set(report.downloaded)
    if how == "failed":
        assert 2001 in report.failed and words in report.failed[2001], report.failed
        assert "\n" not in report.failed[2001]
        assert [e.resource_id for e in rec.of(ev.ResourceFailed) if e.resource_id == 2001] == [2001]
    else:
        reasons = {name: reason for archive, name, reason in report.unrecognized if archive == "images/0001.tar"}
        assert "2001.bin" in reasons and words in reasons["2001.bin"], report.unrecognized
        assert 2001 in report.missing or 2001 in report.failed
        assert 1001 in report.downloaded and 3001 in report.downloaded  # the rest of that index
    assert not os.path.exists(dst / "2001.bin")
    _assert_only_verified(dst, manifest)


# ids 4001.. live in the same archive as 1001, so the engine does look them up there
UNSAFE_NAMES = ["../../x.png", "/etc/x.png", "a/../../b.png", "../../123.png", "../../4001.bin",
                "/etc/5001.bin", "a/../../6001.bin", "..\\..\\7001.bin", "./../8001.bin",
                "sub/../../9001.bin", "/10001.bin", "..", "11001.bin/..", "12\x00001.bin", "13001.bin\n"]
UNSAFE_IDS = [123] + list(range(4001, 14001, 1000))


def test_unsafe_names_in_an_index_write_nothing_outside_the_destination(hub, hub_root, tmp_path):
    ids = [1000, 1001]
    manifest = build_repo(hub_root, "t/evil", _resources(ids))
    had_etc = os.path.exists("/etc/x.png")

    def plant(index):  # each hostile name points at real bytes with the right sha256
        real = index["files"]["1001.bin"]
        for name in UNSAFE_NAMES:
            index["files"][name] = dict(real)
    rewrite_index(hub_root, "t/evil", "images/0001.tar", plant)
    sandbox = tmp_path / "sandbox"
    dst = sandbox / "a" / "b" / "dst"  # "../../x.png" from here would land in sandbox/a
    with Downloader(max_workers=2) as dl:
        report = dl.submit(_pool(hub, "t/evil"), ids + UNSAFE_IDS, str(dst)).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert sorted(report.missing) == UNSAFE_IDS, "an unsafe name stands for no id"
    reasons = {name: reason for archive, name, reason in report.unrecognized}
    for name in UNSAFE_NAMES:
        assert "unsafe name" in reasons.get(name, ""), (name, reasons.get(name))
    # nothing anywhere but the two verified files
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                     if p.is_file() and p.relative_to(tmp_path).parts[0] not in ("hub", "hf-cache"))
    assert written == ["sandbox/a/b/dst/1000.bin", "sandbox/a/b/dst/1001.bin"], written
    assert sorted(os.listdir(sandbox)) == ["a"] and sorted(os.listdir(sandbox / "a")) == ["b"]
    assert os.path.exists("/etc/x.png") == had_etc
    assert not os.path.exists("/10001.bin") and not os.path.exists("/etc/5001.bin")
    _assert_only_verified(dst, manifest)


def test_a_symlink_in_the_destination_is_replaced_not_written_through(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/link", _resources([1000]))
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"must survive")
    dst = tmp_path / "o"
    dst.mkdir()
    os.symlink(precious, dst / "1000.bin")
    with Downloader(max_workers=1) as dl:
        report = dl.submit(_pool(hub, "t/link"), [1000], str(dst)).wait(WAIT)
    assert report.downloaded == [1000]
    assert precious.read_bytes() == b"must survive"
    assert not os.path.islink(dst / "1000.bin")
    _assert_only_verified(dst, manifest)


# --- bad input: the destination ------------------------------------------------------------------

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _mount(*args) -> bool:
    """Run ``mount`` (root only); False when this machine does not allow it."""
    if not IS_ROOT:
        return False
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _umount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.mark.parametrize("how", ["under a regular file", "chmod 0o500", "read-only mount"])
def test_a_destination_that_cannot_be_written_is_refused_up_front(hub, hub_root, tmp_path, how):
    build_repo(hub_root, "t/ro", _resources([1000]))
    if how == "under a regular file":  # works as root too: nothing can be created under a file
        (tmp_path / "file").write_text("x")
        dst = tmp_path / "file" / "sub"
    elif how == "chmod 0o500":
        if IS_ROOT:
            pytest.skip("running as root: permission bits do not stop root (see the other two cases)")
        dst = tmp_path / "locked"
        dst.mkdir()
        dst.chmod(0o500)
    else:  # root ignores permission bits but not a read-only mount
        dst = tmp_path / "ro"
        dst.mkdir()
        if not _mount("--bind", str(dst), str(dst)):
            pytest.skip("needs root and permission to mount (bind mount made read-only)")
        if not _mount("-o", "remount,ro,bind", str(dst)):
            _umount(dst)
            pytest.skip("cannot remount read-only here")
    try:
        with Downloader(max_workers=1) as dl:
            with pytest.raises(DestinationError) as err:
                dl.submit(_pool(hub, "t/ro"), [1000], str(dst))
        assert "cannot write to" in str(err.value) and "\n" not in str(err.value)
        assert hub.request_log == [], "nothing is fetched for a destination that cannot take it"
    finally:
        if how == "chmod 0o500":
            dst.chmod(0o700)
        elif how == "read-only mount":
            _umount(dst)
    assert not dst.exists() or os.listdir(dst) == []


class _FullDisk:
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
            return _CappedFile(f, self)
        return f


class _CappedFile:
    def __init__(self, f, disk: _FullDisk):
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


def test_a_full_disk_stops_the_run_with_no_partial_file_and_a_rerun_completes(hub, hub_root, tmp_path, monkeypatch):
    ids = sorted(a + 1000 * k for a in range(3) for k in range(1, 11))  # 30 ids of ~3 KB
    manifest = build_repo(hub_root, "t/full", _resources(ids))
    dst = tmp_path / "o"
    disk = _FullDisk(dst, budget=25_000)  # room for about eight files
    monkeypatch.setattr(write_module, "open", disk, raising=False)
    rec = Recorder()
    with Downloader(max_workers=3, merge_gap=0, on_event=rec) as dl:
        report = dl.submit(_pool(hub, "t/full"), ids, str(dst)).wait(WAIT)
    assert disk.hits >= 1
    assert report.state == "failed" and report.error == f"disk full while writing to {dst}"
    assert rec.of(ev.JobState)[-1].error == report.error
    assert 0 < len(report.downloaded) < len(ids) and list(report.missing) == []
    assert sorted(n for n in _visible(dst)) == sorted(f"{i}.bin" for i in report.downloaded)
    _assert_only_verified(dst, manifest)

    monkeypatch.undo()  # space freed: the same job again fetches only what is not there
    hub.clear_log()
    with Downloader(max_workers=3, merge_gap=0) as dl:
        again = dl.submit(_pool(hub, "t/full"), ids, str(dst)).wait(WAIT)
    assert again.ok and sorted(again.skipped) == sorted(report.downloaded)
    assert len(_tar_gets(hub)) == len(ids) - len(report.downloaded)
    _assert_all_there(dst, manifest, ids)
    _assert_only_verified(dst, manifest)


def test_a_real_full_filesystem_via_the_cli(hub, hub_root, tmp_path):
    # a real ENOSPC from a 64 KiB tmpfs, through the command a script would run
    ids = list(range(1000, 1040))
    manifest = build_repo(hub_root, "t/tmpfs", _resources(ids, size=6000))
    dst = tmp_path / "small"
    dst.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(dst)):
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        out = _cli(hub, ["t/tmpfs", "1000-1039", "-o", str(dst), "--workers", "2",
                         "--report", str(tmp_path / "r.json")], tmp_path)
        assert out.returncode == 1, out.stderr
        assert f"error: disk full while writing to {dst}" in out.stderr
        assert "Traceback" not in out.stderr
        _assert_only_verified(dst, manifest)
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["state"] == "failed" and report["missing"] == []
        assert sorted(_visible(dst)) == sorted(f"{i}.bin" for i in report["downloaded"])
    finally:
        _umount(dst)


def _cli(hub, args, tmp_path, timeout=WAIT * 2, **kw):
    """``cheesechaser-tui download ARGS`` in a new process with its own huggingface_hub cache."""
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "cli-cache"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    cmd = [sys.executable, "-m", "app", "download", *args, "--endpoint", hub.url if hasattr(hub, "url") else hub]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, **kw)


# --- bad input at the command line -------------------------------------------------------------

def _main(hub, args, tmp_path, capsys):
    from app.cli import main

    code = main(["download", *args, "-o", str(tmp_path / "o"), "--endpoint", hub.url, "--retries", "2"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["t/cli", "1000", "--revision", "no-such-branch"], "revision not found in t/cli@no-such-branch"),
    (["t/cli", "1000", "--revision", "0" * 40], "revision not found in t/cli@" + "0" * 40),
    (["t/cli", "1000", "--idx-repo", "t/idx", "--idx-revision", "v9"], "revision not found in t/idx@v9"),
    (["t/nothere", "1000", "--token", "hf_reader_1"], "repository not found: t/nothere"),
])
def test_a_revision_or_repo_that_does_not_exist_is_a_one_line_usage_error(hub, hub_root, tmp_path, capsys,
                                                                        args, message):
    build_repo(hub_root, "t/cli", _resources([1000]))
    build_repo(hub_root, "t/idx", _resources([1000]))
    hub.access = {"t/other": {"private": True, "tokens": ["hf_reader_1"]}}  # a token the Hub knows
    code, err = _main(hub, args, tmp_path, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cheesechaser-tui download: error: {message}"), err
    assert "Traceback" not in err and "hf_reader_1" not in err
    assert not (tmp_path / "o").exists(), "nothing is created for a usage error"
    assert not [r for r in hub.request_log if "/resolve/" in r.path], "no file is fetched"


@pytest.mark.parametrize("how", ["private, no token", "private, wrong token", "gated, no token",
                                 "gated, wrong token"])
def test_access_denied_is_said_never_missing(hub, hub_root, tmp_path, capsys, how):
    build_repo(hub_root, "t/deny", _resources([1000, 1001]), private=how.startswith("private"),
               gated=how.startswith("gated"), tokens=["hf_owner_secret"])
    args = ["t/deny", "1000-1001", "--report", str(tmp_path / "r.json")]
    if "wrong" in how:
        args += ["--token", "hf_not_the_right_one"]
    code, err = _main(hub, args, tmp_path, capsys)
    assert code == 1 and "access denied" in err and "0 missing" in err, err
    assert "Traceback" not in err and "hf_not_the_right_one" not in err and "hf_owner_secret" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["state"] == "failed" and "access denied" in report["error"] and report["missing"] == []
    assert _visible(tmp_path / "o") == []


def test_a_closed_port_ends_at_once_with_an_error_and_a_report(tmp_path):
    out = _cli(f"http://127.0.0.1:{_closed_port()}", ["t/any", "0-999999", "-o", str(tmp_path / "o"),
                                                       "--retries", "3", "--report", str(tmp_path / "r.json")],
               tmp_path)
    assert out.returncode == 1, out.stderr
    assert "error: gave up after 3 attempts: network error" in out.stderr and "0 missing" in out.stderr
    assert "Traceback" not in out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["state"] == "failed" and report["missing"] == [] and "gave up" in report["error"]


# --- interruptions -------------------------------------------------------------------------------

INT_IDS = list(range(1000, 1120))  # 120 ids, 12 files in each of 10 level-1 archives


def _index_names(manifest) -> dict[tuple[str, int], str]:
    """(archive, offset) -> basename, from the indexes the Hub serves."""
    out = {}
    for archive, idx in manifest.indexes.items():
        data = json.loads((manifest.idx_repo_dir / idx).read_text())
        for name, info in data["files"].items():
            out[(archive, info["offset"])] = os.path.basename(name)
    return out


def _fetched(hub, manifest) -> list[str]:
    """The files the ranged GETs in the Hub's log asked for (one GET per file: --merge-gap 0)."""
    names = _index_names(manifest)
    out = []
    for r in _tar_gets(hub):
        archive = r.file  # the path in the repo, whether the GET was redirected or not
        start = int(r.range.split("=")[1].split("-")[0])
        out.append(names[(archive, start)])
    return out


def _start_download(hub, dst, tmp_path, report):
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "cli-cache"))
    env.pop("HF_TOKEN", None)
    cmd = [sys.executable, "-m", "app", "download", "t/int", f"{INT_IDS[0]}-{INT_IDS[-1]}", "-o", str(dst),
           "--base-level", "1", "--workers", "2", "--merge-gap", "0", "--endpoint", hub.url,
           "--report", str(report)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _half_written(dst) -> bool:
    try:
        return any(n.endswith(".part") for n in os.listdir(dst / PARTIAL_DIR))
    except OSError:
        return False


def _interrupt_mid_download(hub, hub_root, tmp_path, sig):
    """Start the command with a slow Hub; once some files are in place, send ``sig``, aiming at a
    moment when a file is half written (busy poll; after half the files, send it regardless)."""
    manifest = build_repo(hub_root, "t/int", _resources(INT_IDS, size=300_000), base_level=1)
    hub.faults = FaultConfig(latency_ms=30, paths="*.tar")  # in flight for seconds, not milliseconds
    dst = tmp_path / "o"
    proc = _start_download(hub, dst, tmp_path, tmp_path / "r1.json")
    try:
        assert _wait_until(lambda: len(_visible(dst)) >= 6 or proc.poll() is not None)
        _wait_until(lambda: _half_written(dst) or len(_visible(dst)) >= len(INT_IDS) // 2, step=0)
        caught = _half_written(dst)
        assert proc.poll() is None, "the job ended before the interrupt: " + proc.stderr.read()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = _visible(dst)
    assert 6 <= len(kept) < len(INT_IDS), "the interrupt did not land mid-download"
    return manifest, dst, proc, err, kept, caught


def _rerun_fetches_only_the_rest(hub_root, manifest, dst, tmp_path, kept):
    """Run the same command again, against a fresh Hub on the same repos (the first Hub may still
    be answering the requests of the interrupted process, which would muddle its log)."""
    stamps = {n: (os.stat(dst / n).st_ino, os.stat(dst / n).st_mtime_ns) for n in kept}
    with HubServer(hub_root) as hub:
        proc = _start_download(hub, dst, tmp_path, tmp_path / "r2.json")
        _, err = proc.communicate(timeout=WAIT * 2)
        assert proc.returncode == 0, err
        fetched = _fetched(hub, manifest)
    assert not set(fetched) & set(kept), "a verified file was fetched again"
    assert sorted(fetched) == sorted(set(_expected(manifest)) - set(kept)), "each missing file once"
    assert {n: (os.stat(dst / n).st_ino, os.stat(dst / n).st_mtime_ns) for n in kept} == stamps
    report = json.loads((tmp_path / "r2.json").read_text())
    assert len(report["skipped"]) == len(kept) and report["state"] == "done"
    _assert_all_there(dst, manifest, INT_IDS)
    _assert_only_verified(dst, manifest)


def test_ctrl_c_keeps_only_verified_files_and_the_rerun_fetches_only_the_rest(hub, hub_root, tmp_path):
    manifest, dst, proc, err, kept, caught = _interrupt_mid_download(hub, hub_root, tmp_path, signal.SIGINT)
    assert proc.returncode == 130, err
    assert "interrupted: verified files are kept" in err and "Traceback" not in err
    _assert_only_verified(dst, manifest)  # and no partial folder: a cancel cleans up after itself
    report = json.loads((tmp_path / "r1.json").read_text())
    assert report["state"] == "cancelled" and report["missing"] == []
    assert sorted(f"{i}.bin" for i in report["downloaded"]) == kept
    _rerun_fetches_only_the_rest(hub_root, manifest, dst, tmp_path, kept)


def test_kill_9_keeps_only_verified_files_in_sight_and_the_rerun_cleans_and_completes(hub, hub_root, tmp_path):
    manifest, dst, proc, err, kept, caught = _interrupt_mid_download(hub, hub_root, tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    # what a user sees is complete and verified; a dead process may leave its temporary files in
    # the hidden partial folder, named after its pid, which the next run removes
    _assert_only_verified(dst, manifest, partial_ok=True)
    partial = dst / PARTIAL_DIR
    if partial.exists():
        for name in os.listdir(partial):
            assert re.fullmatch(rf"\d+\.bin\.{proc.pid}@[0-9a-f]{{8}}\.[0-9a-f]{{16}}\.part", name), name  # unpredictable
    _rerun_fetches_only_the_rest(hub_root, manifest, dst, tmp_path, kept)
    assert not partial.exists()


def test_a_second_job_into_the_same_folder_does_not_break_the_first(hub, hub_root, tmp_path):
    # the TUI queues jobs into one download folder: starting one must not remove the temporary
    # files of another that is writing there in this same process
    ids = list(range(1000, 1012))
    manifest = build_repo(hub_root, "t/two", _resources(ids, size=200_000))
    gate = threading.Event()
    holding = threading.Event()

    def hold(event):  # the first job's first file stays half written until the gate opens
        if (isinstance(event, ev.WorkerState) and event.state == "download" and event.job_id == 1
                and event.done > 0 and not holding.is_set()):
            holding.set()
            gate.wait(WAIT)
    dst = tmp_path / "o"
    with Downloader(max_workers=2, merge_gap=0, on_event=hold) as dl:
        pool = _pool(hub, "t/two")
        first = dl.submit(pool, ids[:6], str(dst))
        assert holding.wait(WAIT)
        assert os.listdir(dst / PARTIAL_DIR), "a file should be half written now"
        second = dl.submit(pool, ids[6:], str(dst))
        gate.set()
        reports = first.wait(WAIT), second.wait(WAIT)
    assert [r.ok for r in reports] == [True, True], [(r.error, r.failed) for r in reports]
    _assert_all_there(dst, manifest, ids)
    _assert_only_verified(dst, manifest)


def test_a_hub_gone_for_good_is_given_up_on_once_not_file_by_file(hub, hub_root, tmp_path):
    # With the real policy a give-up costs ~20 s of backoff; if every queued file went through
    # its own round, 100 000 files would keep a dead Hub "retried" for hours. After a few
    # requests in a row give up, with no success in between, the job must stop with the error.
    ids = sorted(a + 1000 * k for a in range(4) for k in range(1, 31))  # 120 ids, 4 archives
    manifest = build_repo(hub_root, "t/dead", _resources(ids))
    gate = threading.Event()
    callback, frozen = _hold_after(gate, count=5)
    policy = WatchedPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
    with Downloader(max_workers=3, merge_gap=0, on_event=callback, retry=policy) as dl:
        pool = _pool(hub, "t/dead", retry=policy)
        for archive in manifest.archives:  # indexes known: only archive GETs meet the dead Hub
            pool.get_index(archive)
        job = dl.submit(pool, ids, str(tmp_path / "o"))
        assert frozen.wait(WAIT)
        hub.stop()
        gate.set()
        report = job.wait(WAIT)
    assert report.state == "failed" and "could not be reached" in report.error, report.error
    assert "\n" not in report.error and list(report.missing) == []
    gave_up = len(report.failed)
    assert 0 < gave_up <= 2 * 3, f"{gave_up} files went through a full round of retries"
    assert len(policy.waits) <= (2 * 3 + 3) * (policy.attempts - 1)
    assert len(report.downloaded) + gave_up < len(ids), "the rest is not tried against a dead Hub"
    _assert_only_verified(tmp_path / "o", manifest)
