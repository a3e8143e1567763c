"""The fetch stage under a flaky Hub: every fault kind injected for real by the loopback Hub costs retries,
never a file; a 429 is waited out; a Hub gone for good ends the run with an error and a report."""


from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

import pytest

from app.hub.dataset import build_repo
from app.hub.server import FaultConfig
from pools import (
    Downloader,
)
from pools import (
    events as ev,
)
from pools.transport import RetryPolicy
from tests.support.helpers import Recorder
from tests.support.helpers import assert_only_verified as _assert_only_verified
from tests.support.helpers import tar_gets as _tar_gets
from tests.support.reliability import (
    PATIENT,
    WAIT,
    assert_all_there,
    pool_of,
    resources,
)

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
    manifest = build_repo(hub_root, "t/kind", resources(ids))
    hub.faults = FaultConfig(**{**config.__dict__, "seed": 11, "on_api": True, "on_head": True})
    with Downloader(max_workers=4, merge_gap=0, retry=PATIENT) as dl:
        report = dl.submit(pool_of(hub, "t/kind", retry=PATIENT), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert sorted(report.downloaded) == ids
    assert_all_there(tmp_path / "o", manifest, ids)
    _assert_only_verified(tmp_path / "o", manifest)
    if fault is not None:
        hit = [r for r in hub.request_log if r.fault == fault]
        assert hit, f"no request was hit by {fault}"


@pytest.mark.parametrize("fault", ["drop", "truncate", "corrupt"])
def test_a_damaged_index_body_is_retried_and_never_cached(hub, hub_root, tmp_path, fault):
    # every second index GET is damaged; a damaged index must neither fail its ids nor stay
    # in the huggingface_hub cache, where every later run (a new pool) would read it again
    ids = sorted(a + 1000 * k for a in range(8) for k in (1, 2))
    manifest = build_repo(hub_root, "t/idx", resources(ids))
    hub.faults = FaultConfig(**{f"{fault}_rate": 0.5}, paths="*.json", seed=2)
    with Downloader(max_workers=1, retry=PATIENT) as dl:  # one worker: a seeded sequence
        report = dl.submit(pool_of(hub, "t/idx", retry=PATIENT), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert any(r.fault == fault for r in hub.request_log if r.path.endswith(".json"))
    assert_all_there(tmp_path / "o", manifest, ids)
    hub.faults = None
    hub.clear_log()
    fresh = pool_of(hub, "t/idx")  # a new process: indexes come from the cache, by commit
    for archive in manifest.archives:
        index = fresh.get_index(archive)
        assert sorted(index.by_id) == sorted(r for r in ids if manifest.locations[r] == archive)
    assert not [r for r in hub.request_log if r.path.endswith(".json")]


@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_a_garbled_api_answer_is_retried_not_an_internal_error(hub, hub_root, tmp_path, rate):
    # the revision lookup and the tree listing are JSON from /api/: a byte altered in flight must
    # be retried like any transient fault (seed 1 garbles the first answer, not the second)
    ids = [1000, 2000, 1001]
    manifest = build_repo(hub_root, "t/api", resources(ids))
    hub.faults = FaultConfig(corrupt_rate=rate, paths="re:/api/", on_api=True, seed=1)
    policy = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002, jitter=0.0)
    pool = pool_of(hub, "t/api", retry=policy)
    with Downloader(max_workers=2, retry=policy) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
    assert [r.fault for r in hub.request_log][0] == "corrupt"
    if rate < 1:
        assert report.ok, (report.error, report.failed)
        assert_all_there(tmp_path / "o", manifest, ids)
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
    manifest = build_repo(hub_root, "t/mix", resources(ids, size=2000))
    hub.faults = FaultConfig(**{**MIXED.__dict__, "seed": 1234 + merge_gap})
    dst = tmp_path / "o"
    with Downloader(max_workers=6, merge_gap=merge_gap, retry=PATIENT) as dl:
        report = dl.submit(pool_of(hub, "t/mix", retry=PATIENT), ids, str(dst)).wait(WAIT)
    assert report.ok, (report.error, report.failed)
    assert sorted(report.downloaded) == ids and list(report.missing) == []
    assert_all_there(dst, manifest, ids)
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
        again = dl.submit(pool_of(hub, "t/mix"), ids, str(dst)).wait(WAIT)
    assert sorted(again.skipped) == ids and again.downloaded == [] and _tar_gets(hub) == []


@pytest.mark.parametrize("target", ["archive", "index", "revision"])
def test_a_429_is_waited_out_for_its_retry_after_not_hammered(hub, hub_root, tmp_path, target):
    # The Hub says "come back in an hour" to every request for one kind of resource. The engine
    # must wait that long (we see it ask for the wait), send nothing meanwhile, and a cancel must
    # still end the job at once.
    manifest = build_repo(hub_root, "t/429", resources([1000, 2000]))
    pool = pool_of(hub, "t/429")
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
    manifest = build_repo(hub_root, "t/gone", resources(ids))
    gate = threading.Event()
    callback, in_flight = _hold_after(gate, count=5)
    dst = tmp_path / "o"
    rec = Recorder()
    with Downloader(max_workers=3, merge_gap=0, on_event=callback) as dl:
        dl.add_listener(rec)
        job = dl.submit(pool_of(hub, "t/gone"), ids, str(dst))
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
    assert_all_there(dst, manifest, report.downloaded)
    _assert_only_verified(dst, manifest)
    json.dumps(report.to_dict())  # the report is complete and serialisable




def test_a_hub_gone_for_good_is_given_up_on_once_not_file_by_file(hub, hub_root, tmp_path):
    # With the real policy a give-up costs ~20 s of backoff; if every queued file went through
    # its own round, 100 000 files would keep a dead Hub "retried" for hours. After a few
    # requests in a row give up, with no success in between, the job must stop with the error.
    ids = sorted(a + 1000 * k for a in range(4) for k in range(1, 31))  # 120 ids, 4 archives
    manifest = build_repo(hub_root, "t/dead", resources(ids))
    gate = threading.Event()
    callback, frozen = _hold_after(gate, count=5)
    policy = WatchedPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
    with Downloader(max_workers=3, merge_gap=0, on_event=callback, retry=policy) as dl:
        pool = pool_of(hub, "t/dead", retry=policy)
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

