"""The Downloader (issue 3) over real HTTP against the loopback Hub: events, job queue, cancel,
planning (one index and one revision lookup), merged ranged GETs, retries, errors, resume, lazy ranges.

No mocks and no sleeps: transfers are held in flight by blocking inside an event callback (which
runs on the worker thread, with the temporary file open) until the test has acted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import pytest

from app.hub.dataset import build_repo, corrupt_member
from app.hub.server import FaultConfig
from pools import (
    AccessDeniedError,
    Downloader,
    HubUnreachableError,
    IncrementIDDataPool,
    events as ev,
)
from pools.engine.downloader import PARTIAL_DIR
from pools.ranges import IdList
from pools.transport import RetryPolicy

from tests.support.helpers import Recorder, assert_only_verified as _assert_clean, binary_resources, blob as _blob
from tests.support.helpers import closed_port as _closed_port, sha256_file as _sha, tar_gets as _tar_gets


def _resources(ids, size=2000, sidecar=()):
    return binary_resources(ids, size, sidecar)


FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 30  # seconds a test waits for a job before failing (never reached when things work)


def _pool(hub, repo, **kw):
    kw.setdefault("retry", FAST)
    return IncrementIDDataPool(repo, endpoint=hub.url, **kw)


# --- events ----------------------------------------------------------------------------------

def test_events_tell_the_whole_story(hub, hub_root, tmp_path):
    ids = [1000, 2000, 3000, 1001, 2001]
    manifest = build_repo(hub_root, "t/ev", _resources(ids, sidecar={2000}),
                          extra_members={"images/0000.tar": {"README.txt": b"hi"}})
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "3000.bin").write_bytes(_blob(3000, 2000))  # already there and right: skipped
    rec = Recorder()
    with Downloader(max_workers=3, on_event=rec) as dl:
        job = dl.submit(_pool(hub, "t/ev"), "1000-1001, 2000-2001, 3000, 4000", str(dst))
        report = job.wait(WAIT)

    assert report.ok and job.state == "done"
    assert sorted(report.downloaded) == [1000, 1001, 2000, 2001]
    assert report.skipped == [3000] and list(report.missing) == [4000]
    assert [(s.state, s.error) for s in rec.of(ev.JobState, job.id)] == [
        ("queued", None), ("running", None), ("done", None)]

    done = {e.resource_id: e for e in rec.of(ev.ResourceDone, job.id)}
    assert done[2000].status == "downloaded"
    assert sorted(done[2000].files) == ["2000.bin", "2000.json"]
    assert done[2000].nbytes == sum(manifest.sizes[2000].values())
    assert done[3000].status == "skipped" and done[3000].files == ("3000.bin",)
    missing = [i for e in rec.of(ev.ResourcesMissing, job.id) for i in e.ids]
    assert missing == [4000]
    assert [(e.archive, e.name) for e in rec.of(ev.FileUnrecognized, job.id)] == [
        ("images/0000.tar", "README.txt")]
    assert report.unrecognized == [("images/0000.tar", "README.txt", report.unrecognized[0][2])]

    states = rec.of(ev.WorkerState)
    assert {s.state for s in states} == {"idle", "index", "download", "verify"}
    assert all(s.job_id == -1 for s in states if s.state == "idle")
    assert all(s.job_id == job.id and 0 <= s.worker < 3 for s in states if s.state != "idle")
    assert {s.filename for s in states if s.state == "index"} <= {"images/0000.json", "images/0001.json"}
    assert any(s.filename == "3000.bin" for s in states if s.state == "verify")
    downloads = [s for s in states if s.state == "download"]
    assert all(0 <= s.done <= s.total and s.archive.endswith(".tar") for s in downloads)
    assert any(s.done > 0 for s in downloads)
    assert states[-1].state == "idle"

    last = rec.of(ev.JobProgress, job.id)[-1]
    downloaded_bytes = sum(sum(manifest.sizes[i].values()) for i in report.downloaded)
    assert (last.ids_total, last.ids_done, last.files_done) == (6, 6, 5)
    assert last.bytes_done == last.bytes_planned == downloaded_bytes == report.nbytes
    assert last.fraction == 1.0 and last.eta == 0
    assert job.snapshot().bytes_done == last.bytes_done and job.snapshot().elapsed == report.elapsed
    _assert_clean(dst, manifest)


def test_a_corrupt_member_is_a_failed_resource_not_a_failed_job(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/bad", _resources([1000, 2000]))
    corrupt_member(hub_root, "t/bad", "images/0000.tar", "2000.bin")
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        job = dl.submit(_pool(hub, "t/bad"), [1000, 2000], str(tmp_path / "o"))
        report = job.wait(WAIT)
    assert report.downloaded == [1000] and not report.ok
    assert report.state == "done" and report.error is None
    assert report.nbytes == 2000, "the bytes of the failed attempts were counted"
    assert all(p.bytes_done <= p.bytes_planned for p in rec.of(ev.JobProgress))
    failed = rec.of(ev.ResourceFailed, job.id)
    assert [f.resource_id for f in failed] == [2000]
    assert "sha256 mismatch" in failed[0].reason and "after 3 attempts" in failed[0].reason
    assert report.failed == {2000: failed[0].reason}
    assert rec.of(ev.JobState, job.id)[-1].state == "done"
    _assert_clean(tmp_path / "o", manifest)


# --- the queue -------------------------------------------------------------------------------

def test_more_jobs_are_accepted_while_one_runs(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/q", _resources(range(1000, 1040)))
    pool = _pool(hub, "t/q")
    running = threading.Event()
    release = threading.Event()
    held = []

    def hold_first_download(event):
        # keep job 1 busy inside a transfer until job 2 has been queued behind it
        if isinstance(event, ev.WorkerState) and event.state == "download" and not held:
            held.append(event)
            running.set()
            release.wait(WAIT)

    with Downloader(max_workers=2, on_event=hold_first_download) as dl:
        first = dl.submit(pool, "1000-1019", str(tmp_path / "a"))
        assert running.wait(WAIT)
        assert first.state == "running"
        second = dl.submit(pool, "1020-1039", str(tmp_path / "b"), name="second batch")
        third = dl.submit(pool, [1000, 1039, 5], str(tmp_path / "c"))
        assert second.name == "second batch" and len({first.id, second.id, third.id}) == 3
        release.set()
        reports = [j.wait(WAIT) for j in (first, second, third)]
    assert [len(r.downloaded) for r in reports] == [20, 20, 2]
    assert list(reports[2].missing) == [5]
    assert dl.jobs == [first, second, third]
    for sub in "abc":
        _assert_clean(tmp_path / sub, manifest)


def _hold_in_flight():
    """A callback that stops every worker at its first chunk of file data until released.

    Each worker's first progress event passes the per-worker throttle and comes after the chunk
    was written to the temporary file, so once ``in_flight`` is set a file is half written, and
    no worker can complete a file before ``release``.
    """
    state = {"in_flight": threading.Event(), "release": threading.Event()}

    def callback(event):
        if isinstance(event, ev.WorkerState) and event.state == "download" and event.done > 0:
            state["in_flight"].set()
            state["release"].wait(WAIT)
    return callback, state


def _partials(dst):
    folder = os.path.join(dst, PARTIAL_DIR)
    return os.listdir(folder) if os.path.isdir(folder) else []


def test_cancel_a_job_mid_transfer_leaves_no_partial_file(hub, hub_root, tmp_path):
    ids = list(range(1000, 1030))
    manifest = build_repo(hub_root, "t/cancel", _resources(ids, size=300_000))
    callback, hold = _hold_in_flight()
    dst = tmp_path / "o"
    rec = Recorder()
    with Downloader(max_workers=2, on_event=callback, merge_gap=0) as dl:
        dl.add_listener(rec)
        job = dl.submit(_pool(hub, "t/cancel"), ids, str(dst))
        assert hold["in_flight"].wait(WAIT)
        assert _partials(dst), "a file should be half written when we cancel"
        job.cancel()
        hold["release"].set()
        report = job.wait(WAIT)
    assert job.state == "cancelled" and report.state == "cancelled" and not report.ok
    assert report.downloaded == [], "cancel must stop the job, not let it finish"
    settled = len(report.downloaded) + len(report.skipped) + len(report.missing) + len(report.failed)
    assert report.not_reached == len(ids) - settled > 0, "the report says how many ids were not reached"
    assert rec.of(ev.JobState, job.id)[-1].state == "cancelled"
    _assert_clean(dst, manifest)


def test_cancel_all_stops_every_job_and_the_downloader_stays_usable(hub, hub_root, tmp_path):
    ids = list(range(1000, 1020))
    manifest = build_repo(hub_root, "t/all", _resources(ids, size=200_000))
    pool = _pool(hub, "t/all")
    callback, hold = _hold_in_flight()
    with Downloader(max_workers=4, on_event=callback, merge_gap=0) as dl:
        jobs = [dl.submit(pool, ids[:10], str(tmp_path / "a")), dl.submit(pool, ids[10:], str(tmp_path / "b")),
                dl.submit(pool, ids, str(tmp_path / "c"))]
        assert hold["in_flight"].wait(WAIT)
        dl.cancel_all()
        hold["release"].set()
        states = [job.wait(WAIT).state for job in jobs]
        after = dl.submit(pool, ids[:3], str(tmp_path / "d")).wait(WAIT)
    assert states == ["cancelled"] * 3
    assert sorted(after.downloaded) == ids[:3]
    for sub in "abcd":
        if (tmp_path / sub).exists():
            _assert_clean(tmp_path / sub, manifest)


# --- planning --------------------------------------------------------------------------------

def test_each_index_and_the_revision_are_fetched_once_with_12_workers(hub, hub_root, tmp_path):
    # ids in 10 residues of 10**4 that share each level-3 archive: with levels [4, 3], the ten
    # groups of one level-3 archive all ask for its index at the same time
    ids = [r + k * 10_000 for r in range(1000, 1100, 10) for k in range(3)]
    manifest = build_repo(hub_root, "t/once", _resources(ids), base_level=3)
    pool = _pool(hub, "t/once", base_level=[4, 3])
    with Downloader(max_workers=12) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
        assert sorted(report.downloaded) == sorted(ids)
        index_gets = [r for r in hub.request_log if r.path.endswith(".json") and r.kind == "resolve"]
        paths = [r.path for r in index_gets]
        assert len(paths) == len(set(paths)), "an index was asked for twice"
        found = {r.path.rsplit("/images/", 1)[1] for r in index_gets if r.status in (200, 307)}
        assert found == {p.split("/", 1)[1] for p in manifest.indexes.values()}
        assert len(paths) == len(found) + 10  # and each absent level-4 index once
        revision = [r for r in hub.request_log if "/revision/" in r.path]
        assert len(revision) == 1, f"revision resolved {len(revision)} times"

        # the same pool again: no index, no revision request
        hub.clear_log()
        again = dl.submit(pool, ids, str(tmp_path / "o2")).wait(WAIT)
        assert len(again.downloaded) == len(ids)
        assert not [r for r in hub.request_log if not r.path.endswith(".tar")]

    # a new pool (a new process) reads the indexes from the huggingface_hub cache by commit
    hub.clear_log()
    report = _pool(hub, "t/once", base_level=[4, 3]).batch_download_to_directory(ids, str(tmp_path / "o3"))
    assert len(report.downloaded) == len(ids)
    assert not [r for r in hub.request_log if r.path.endswith(".json")]
    assert len([r for r in hub.request_log if "/revision/" in r.path]) == 1
    _assert_clean(tmp_path / "o3", manifest)


def _ranges(hub):
    return sorted(r.range for r in _tar_gets(hub))


def test_neighbours_share_one_ranged_get_under_merge_gap(hub, hub_root, tmp_path):
    ids = [1000, 2000, 3000, 4000, 5000]  # one archive, in this order
    manifest = build_repo(hub_root, "t/merge", _resources(ids, size=3000))
    pool = _pool(hub, "t/merge")
    index = pool.get_index("images/0000.tar")
    at = {rid: index.by_id[rid][0] for rid in ids}

    with Downloader(max_workers=4) as dl:  # default gap: 1000..5000 minus 4000 is one GET
        hub.clear_log()
        report = dl.submit(pool, [1000, 2000, 3000, 5000], str(tmp_path / "merged")).wait(WAIT)
        assert len(report.downloaded) == 4
        assert _ranges(hub) == [f"bytes={at[1000].offset}-{at[5000].offset + at[5000].size - 1}"]

    with Downloader(max_workers=4, merge_gap=0) as dl:
        hub.clear_log()
        report = dl.submit(pool, [1000, 2000, 3000, 5000], str(tmp_path / "apart")).wait(WAIT)
        assert len(report.downloaded) == 4
        assert _ranges(hub) == sorted(f"bytes={at[i].offset}-{at[i].offset + at[i].size - 1}"
                                      for i in (1000, 2000, 3000, 5000))

    gap = at[3000].offset - (at[1000].offset + at[1000].size)  # 2000's bytes and headers
    with Downloader(max_workers=4, merge_gap=gap - 1) as dl:  # 1000 and 3000 just too far apart
        hub.clear_log()
        dl.submit(pool, [1000, 3000], str(tmp_path / "near")).wait(WAIT)
        assert len(_tar_gets(hub)) == 2
    with Downloader(max_workers=4, merge_gap=gap) as dl:
        hub.clear_log()
        dl.submit(pool, [1000, 3000], str(tmp_path / "near2")).wait(WAIT)
        assert len(_tar_gets(hub)) == 1
    for sub in ("merged", "apart", "near", "near2"):
        _assert_clean(tmp_path / sub, manifest)
    assert sorted(os.listdir(tmp_path / "near2")) == ["1000.bin", "3000.bin"]


# --- retries ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordingPolicy(RetryPolicy):
    """A RetryPolicy that remembers the ``Retry-After`` it was given for each wait."""

    waits: list = field(default_factory=list, compare=False, hash=False)

    def delay(self, attempt, retry_after=None):
        self.waits.append(retry_after)
        return super().delay(attempt, retry_after)


def test_5xx_and_429_are_retried_honouring_retry_after(hub, hub_root, tmp_path):
    ids = list(range(1000, 1012))
    manifest = build_repo(hub_root, "t/retry", _resources(ids))
    hub.faults = FaultConfig(error_rate=0.3, rate_429=0.3, error_codes=(500, 503), retry_after=0,
                             paths="*.tar", seed=7)
    policy = RecordingPolicy(attempts=12, backoff=0.001, max_backoff=0.002, jitter=0.0)
    with Downloader(max_workers=1, merge_gap=0, retry=policy) as dl:  # one worker: a seeded sequence
        report = dl.submit(_pool(hub, "t/retry"), ids, str(tmp_path / "o")).wait(WAIT)
    assert sorted(report.downloaded) == ids and report.ok
    statuses = {r.status for r in _tar_gets(hub)}
    assert {206, 429, 500, 503} <= statuses
    assert 0.0 in policy.waits, "the 429's Retry-After: 0 was not honoured"
    _assert_clean(tmp_path / "o", manifest)


def test_dropped_truncated_and_altered_bodies_are_recovered(hub, hub_root, tmp_path):
    ids = list(range(1000, 1016))
    manifest = build_repo(hub_root, "t/drop", _resources(ids, size=150_000))
    hub.faults = FaultConfig(drop_rate=0.25, truncate_rate=0.25, corrupt_rate=0.15, paths="*.tar", seed=3)
    retry = RetryPolicy(attempts=15, backoff=0.001, max_backoff=0.002, jitter=0.0)
    with Downloader(max_workers=1, retry=retry, merge_gap=200_000) as dl:
        report = dl.submit(_pool(hub, "t/drop"), ids, str(tmp_path / "o")).wait(WAIT)
    assert sorted(report.downloaded) == ids and report.ok
    assert {"drop", "truncate", "corrupt"} <= {r.fault for r in _tar_gets(hub)}
    assert report.nbytes == 150_000 * len(ids), "bytes of failed attempts were counted"
    _assert_clean(tmp_path / "o", manifest)


def test_what_still_fails_after_retries_is_reported_with_why(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/down", _resources([1000, 1001, 2000]))
    hub.faults = FaultConfig(error_rate=1.0, error_codes=(502,), paths="images/0000.tar")
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        report = dl.submit(_pool(hub, "t/down"), [1000, 1001, 2000, 7], str(tmp_path / "o")).wait(WAIT)
    assert report.downloaded == [1001] and list(report.missing) == [7]
    assert sorted(report.failed) == [1000, 2000]
    for reason in report.failed.values():
        assert "HTTP 502" in reason and "after 3 attempts" in reason
    assert report.state == "done" and not report.ok
    assert len(rec.of(ev.ResourceFailed)) == 2
    _assert_clean(tmp_path / "o", manifest)


# --- errors are errors, never "missing" --------------------------------------------------------

def test_an_unreachable_hub_fails_the_job(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/gone", _resources([1000, 2000, 1001]))
    pool = IncrementIDDataPool("t/gone", endpoint=f"http://127.0.0.1:{_closed_port()}", retry=FAST)
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        report = dl.submit(pool, "1000-1001, 2000", str(tmp_path / "o")).wait(WAIT)
    assert report.state == "failed" and not report.ok
    assert "gave up after 3 attempts" in report.error
    assert list(report.missing) == [] and report.downloaded == []
    assert rec.of(ev.JobState)[-1] == ev.JobState(1, "failed", report.error)
    with pytest.raises(HubUnreachableError):
        pool.resolve_revision()


def test_a_hub_that_goes_away_mid_job_fails_ids_never_missing(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/away", _resources([1000, 2000, 3000, 1001]))
    pool = _pool(hub, "t/away")
    with Downloader(max_workers=2) as dl:
        first = dl.submit(pool, [1000], str(tmp_path / "o")).wait(WAIT)  # index and revision known now
        assert first.downloaded == [1000]
        hub.stop()
        known = dl.submit(pool, [1000, 2000, 3000, 4000], str(tmp_path / "o")).wait(WAIT)
        unknown = dl.submit(pool, [1001, 1002], str(tmp_path / "o")).wait(WAIT)
    # index known (4000 is truly not in it): the files fail after retries, each with its reason
    assert known.skipped == [1000] and list(known.missing) == [4000]
    assert sorted(known.failed) == [2000, 3000] and known.state == "done" and not known.ok
    assert all("network error" in r and "after 3 attempts" in r for r in known.failed.values())
    # index of archive 0001 never fetched: the job fails, nothing reads as missing
    assert unknown.state == "failed" and "gave up after 3 attempts" in unknown.error
    assert list(unknown.missing) == [] and unknown.failed == {}
    _assert_clean(tmp_path / "o", manifest)


@pytest.mark.parametrize("how", ["private", "gated", "wrong token"])
def test_access_denied_is_an_error_never_missing(hub, hub_root, tmp_path, how):
    secret = "hf_sekrit_token_123"
    build_repo(hub_root, "t/deny", _resources([1000]), private=how != "gated", gated=how == "gated",
               tokens=[secret])
    token = "hf_wrong_token_456" if how == "wrong token" else None
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        report = dl.submit(_pool(hub, "t/deny", hf_token=token), [1000, 1001], str(tmp_path / "o")).wait(WAIT)
    assert report.state == "failed" and "access denied" in report.error
    assert list(report.missing) == [] and report.downloaded == []
    assert not rec.of(ev.ResourcesMissing)
    for text in (report.error, repr(rec.events)):
        assert secret not in text and "hf_wrong_token_456" not in text
    with pytest.raises(AccessDeniedError):
        _pool(hub, "t/deny", hf_token=token).get_index("images/0000.tar")
    good = _pool(hub, "t/deny", hf_token=secret).batch_download_to_directory([1000], str(tmp_path / "ok"))
    assert good.downloaded == [1000]


# --- resume ----------------------------------------------------------------------------------

def test_resume_skips_verified_files_without_a_ranged_request(hub, hub_root, tmp_path):
    ids = list(range(1000, 1010)) + list(range(2000, 2010))
    manifest = build_repo(hub_root, "t/resume", _resources(ids, sidecar={1004}))
    pool = _pool(hub, "t/resume")
    dst = tmp_path / "o"
    with Downloader(max_workers=4) as dl:
        assert len(dl.submit(pool, ids, str(dst)).wait(WAIT).downloaded) == len(ids)
        stamps = {n: os.stat(dst / n) for n in os.listdir(dst)}

        hub.clear_log()
        rec = Recorder()
        dl.add_listener(rec)
        again = dl.submit(pool, ids, str(dst)).wait(WAIT)
        assert sorted(again.skipped) == ids and again.downloaded == [] and again.files == 0
        assert _tar_gets(hub) == [] and [r for r in hub.request_log if r.method == "GET"] == []
        assert {e.status for e in rec.of(ev.ResourceDone)} == {"skipped"}
        assert {n: (s.st_ino, s.st_mtime_ns) for n, s in stamps.items()} == {
            n: (os.stat(dst / n).st_ino, os.stat(dst / n).st_mtime_ns) for n in stamps}

        # damaged (same size), truncated, deleted, and a stale partial from a dead process
        (dst / "1001.bin").write_bytes(b"x" * 2000)
        (dst / "1002.bin").write_bytes(_blob(1002, 2000)[:500])
        os.remove(dst / "1004.json")
        (dst / PARTIAL_DIR).mkdir()
        (dst / PARTIAL_DIR / "2000.bin.999999999.0.part").write_bytes(b"half")
        hub.clear_log()
        third = dl.submit(pool, ids, str(dst)).wait(WAIT)
    assert sorted(third.downloaded) == [1001, 1002, 1004]
    assert len(third.skipped) == len(ids) - 3
    assert third.files == 3
    _assert_clean(dst, manifest)


# --- lazy planning of huge ranges --------------------------------------------------------------

_LAZY = r"""
import resource, sys
from app.hub.server import HubServer
from pools import Downloader, IncrementIDDataPool
with HubServer(sys.argv[1]) as hub:
    pool = IncrementIDDataPool("t/lazy", base_level=1, endpoint=hub.url)
    pool.get_index("images/01.tar")  # everything imported and warm before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Downloader(max_workers=4) as dl:
        job = dl.submit(pool, sys.argv[3], sys.argv[2])
        report = job.wait(120)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(report.state, len(report.downloaded), len(report.missing), job.snapshot().ids_done, grew * 1024)
"""


def test_a_range_of_millions_plans_lazily_in_bounded_memory(hub_root, tmp_path):
    ids = [11, 12, 1_000_003, 4_999_999]
    build_repo(hub_root, "t/lazy", _resources(ids), base_level=1)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", _LAZY, str(hub_root), str(tmp_path / "o"), "1-5000000"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    state, downloaded, missing, done, grew = out.stdout.split()
    assert (state, int(downloaded), int(missing), int(done)) == ("done", 4, 5_000_000 - 4, 5_000_000)
    # peak RSS growth: the missing ids are kept as arithmetic runs; a list of the range alone
    # would take ~180 MB, and a task per id far more
    assert int(grew) < 90_000_000, f"grew {int(grew) / 1e6:.0f} MB"
    assert sorted(os.listdir(tmp_path / "o")) == ["1000003.bin", "11.bin", "12.bin", "4999999.bin"]


def test_a_name_taken_by_a_folder_fails_that_file_only_and_leaves_no_temporary(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/taken", _resources([1000, 2000]))
    dst = tmp_path / "o"
    (dst / "1000.bin").mkdir(parents=True)
    (dst / "1000.bin" / "keep.txt").write_text("mine")
    report = _pool(hub, "t/taken").batch_download_to_directory([1000, 2000], str(dst))
    assert report.downloaded == [2000] and report.state == "done"
    assert "cannot save 1000.bin" in report.failed[1000]
    assert (dst / "1000.bin" / "keep.txt").read_text() == "mine"
    assert not (dst / PARTIAL_DIR).exists()
    assert _sha(dst / "2000.bin") == manifest.files[2000]["2000.bin"]


def test_cancel_does_not_wait_for_a_server_that_has_not_answered(hub, hub_root, tmp_path):
    """Requests still waiting for their first byte hold no file: the job ends at once."""
    manifest = build_repo(hub_root, "t/stall", _resources(range(1000, 1006)))
    hub.faults = FaultConfig(latency_ms=60_000, paths="*.tar")  # the archive never answers in time
    asked = threading.Event()

    def on_event(event):
        if isinstance(event, ev.WorkerState) and event.state == "download":
            asked.set()

    dst = tmp_path / "o"
    dl = Downloader(max_workers=2, on_event=on_event, merge_gap=0)
    job = dl.submit(_pool(hub, "t/stall"), list(range(1000, 1006)), str(dst))
    assert asked.wait(WAIT)
    job.cancel()
    report = job.wait(10)  # well under the server's 60 s: the cancel did not wait for it
    assert report.state == "cancelled" and report.downloaded == []
    assert report.not_reached == 6
    _assert_clean(dst, manifest)
    dl.close(wait=False)
    hub.faults = None



def test_what_a_request_brings_after_the_job_ended_leaves_its_report_as_handed_out(hub, hub_root, tmp_path):
    """A job that fails as a whole (or is cancelled) ends while requests are still out; one that
    then comes back (a 500 on its last attempt: seen in the TUI's retry test) must not add to the
    report already handed out, or an id is both failed and not reached."""
    manifest = build_repo(hub_root, "t/late", _resources(range(1000, 1006)))
    hub.faults = FaultConfig(latency_ms=60_000, paths="*.tar")
    asked = threading.Event()

    def on_event(event):
        if isinstance(event, ev.WorkerState) and event.state == "download":
            asked.set()

    dl = Downloader(max_workers=2, on_event=on_event, merge_gap=0)
    job = dl.submit(_pool(hub, "t/late"), list(range(1000, 1006)), str(tmp_path / "o"))
    assert asked.wait(WAIT)
    job.cancel()
    report = job.wait(10)
    before = report.to_dict()
    # what the stages record when such a request comes back: a failure, a file, ids missing
    job.resource_failed(1000, "HTTP 500 (after 6 attempts)")
    job.missing(IdList([1001]))
    dl.close(wait=True)
    hub.faults = None
    assert report.state == "cancelled" and report.failed == {} and report.not_reached == 6
    assert report.to_dict() == before
    _assert_clean(tmp_path / "o", manifest)
