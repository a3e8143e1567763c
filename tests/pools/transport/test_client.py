"""The engine's talk with a Hub that behaves like the real one: signed CDN redirects, the resolver
rate limit, mirrors. Everything over real HTTP: the loopback Hub behind the hostile proxy
(``tests/support/hostile_hub.py``), the real huggingface_hub and urllib3 code, no mocks.
"""

from __future__ import annotations

import json
import threading

import pytest

from app.hub.dataset import build_repo
from pools import AccessDeniedError, Downloader, IncrementIDDataPool
from pools.transport import budget as budget_module
from pools.transport import client as transport
from pools.transport.budget import ResolverBudget, parse_rate_limit, set_budget_factory
from pools.archive.index import ArchiveIndex
from pools.transport.signed_urls import SignedUrl, SignedUrls, StaleIndexError, expiry_of
from pools.transport import Cancelled, HubClient, RetryPolicy

from tests.support.helpers import assert_only_verified, binary_resources
from tests.support.hostile_hub import HostileHub

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


@pytest.fixture
def hostile(hub):
    hub.direct = True  # the proxy plays the real Hub's redirects itself, on top of plain answers
    with HostileHub(hub.url) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_budgets():
    set_budget_factory(None)  # budgets are per process: each test starts with none spent
    yield
    set_budget_factory(None)


def _ids(archives: int, per_archive: int) -> list[int]:
    return sorted(a + 1000 * k for a in range(archives) for k in range(1, per_archive + 1))


def _pool(server, repo, **kw):
    kw.setdefault("retry", FAST)
    return IncrementIDDataPool(repo, endpoint=server.url, **kw)


def _tar_resolves(hostile) -> list[dict]:
    return [r for r in hostile.requests("hub") if "/resolve/" in r["path"] and ".tar" in r["path"]]


# --- signed CDN URLs ---------------------------------------------------------------------------

def test_each_archive_is_resolved_once_and_its_signed_url_serves_every_range(hub_root, hostile, tmp_path):
    ids = _ids(archives=3, per_archive=6)
    manifest = build_repo(hub_root, "t/cdn", binary_resources(ids))
    hostile.modes = {"cdn": {}}
    with Downloader(max_workers=4, merge_gap=0) as dl:  # merge_gap=0: one ranged GET per file
        report = dl.submit(_pool(hostile, "t/cdn"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    cdn_gets = hostile.requests("cdn")
    assert len(cdn_gets) == len(ids), "every file is one ranged GET at the CDN"
    # a worker or two may resolve the same archive at the same moment, never once per range
    assert len(_tar_resolves(hostile)) <= 3 * 2 < len(ids)
    assert all(r["auth"] is None for r in cdn_gets)


def test_a_private_repo_keeps_its_token_off_the_cdn(hub_root, hostile, tmp_path):
    ids = _ids(archives=2, per_archive=3)
    manifest = build_repo(hub_root, "t/priv", binary_resources(ids), private=True, tokens=["hf_secret42"])
    hostile.modes = {"cdn": {}}
    with Downloader(max_workers=3, merge_gap=0) as dl:
        report = dl.submit(_pool(hostile, "t/priv", hf_token="hf_secret42"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert hostile.requests("cdn") and all(r["auth"] is None for r in hostile.requests("cdn"))
    assert all("hf_secret42" not in r["path"] for r in hostile.log)
    assert any(r["auth"] == "Bearer hf_secret42" for r in _tar_resolves(hostile))


def test_a_refused_signed_url_is_resolved_again(hub_root, hostile, tmp_path):
    build_repo(hub_root, "t/exp", binary_resources([1000, 2000]))
    client = HubClient(hostile.url, policy=FAST)
    sha = client.resolve("t/exp", "main")
    hostile.modes = {"cdn": {}}
    got: list[bytes] = []
    client.stream_range("t/exp", "images/0000.tar", sha, 512, 1023, got.append)
    assert len(client.urls) == 1 and len(_tar_resolves(hostile)) == 1
    # the CDN now refuses that URL (what a 403 from S3 means past expiry): resolve once more, go on
    hostile.revoke_all()
    client.stream_range("t/exp", "images/0000.tar", sha, 512, 1023, got.append)
    assert len(_tar_resolves(hostile)) == 2 and got[0] == got[-1] and len(got[0]) == 512
    statuses = [r["status"] for r in hostile.requests("cdn")]
    assert statuses == [206, 403, 206]
    # a fresh URL that is refused as well is an error, not a loop
    hostile.revoke_all()
    hostile.modes = {"cdn": {"expires": -10}}
    with pytest.raises(AccessDeniedError):
        client.stream_range("t/exp", "images/0000.tar", sha, 512, 1023, got.append)
    assert len(_tar_resolves(hostile)) == 3


def test_signed_urls_are_used_until_near_their_expiry():
    # X-Amz-Date + X-Amz-Expires: a tenth of the lifetime (at most 60 s) is kept as a margin
    url = "https://cdn.example/x?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&Signature=s"
    wall = 1767225600.0  # 2026-01-01T00:00:00Z
    assert expiry_of(url, now_wall=wall, now=100.0) == pytest.approx(100.0 + 3600 - 60)
    assert expiry_of(url, now_wall=wall + 3000, now=100.0) == pytest.approx(100.0 + 600 - 60)
    assert expiry_of("https://cdn.example/x?Expires=%d" % (wall + 50), now_wall=wall, now=0.0) == pytest.approx(45.0)
    urls = SignedUrls()
    urls.put(("r", "a.tar", "s"), SignedUrl("https://cdn/a", expires_at=0.0, linked_size=None, linked_etag=None))
    assert urls.get(("r", "a.tar", "s")) is None, "an expired URL is never handed out"


def test_a_stale_index_is_one_clear_error_for_its_archive(hub_root, hostile):
    build_repo(hub_root, "t/stale", binary_resources([1000, 2000]))
    client = HubClient(hostile.url, policy=FAST)
    sha = client.resolve("t/stale", "main")
    index = client.fetch_index("t/stale", "images/0000.json", sha, json.loads)
    hostile.modes = {"cdn": {"stale": True}}  # the Hub's X-Linked-Size is not the index's filesize
    with pytest.raises(StaleIndexError, match="stale index for t/stale/images/0000.tar"):
        client.stream_range("t/stale", "images/0000.tar", sha, 512, 1023, lambda b: None,
                            expect_size=index["filesize"])
    # the size the index gives is what the Hub says: no complaint, the bytes arrive
    hostile.modes = {"cdn": {}}
    client.urls = SignedUrls()
    got: list[bytes] = []
    client.stream_range("t/stale", "images/0000.tar", sha, 512, 1023, got.append, expect_size=index["filesize"])
    assert sum(map(len, got)) == 512


# --- the resolver rate limit -------------------------------------------------------------------

def test_rate_limit_headers_parse():
    assert parse_rate_limit('"resolvers";r=0;t=120') == ("resolvers", {"r": 0.0, "t": 120.0})
    assert parse_rate_limit('"fixed window";"resolvers";q=3000;w=300') == ("resolvers", {"q": 3000.0, "w": 300.0})
    assert parse_rate_limit("garbage;;=") == ("garbage", {})
    assert parse_rate_limit(None) == (None, {})
    assert parse_rate_limit("x" * 1000) == (None, {})


def test_a_spent_window_is_waited_out_visibly_and_a_cancel_ends_the_wait_at_once():
    budget = ResolverBudget()
    assert budget.after_response(200, {"RateLimit": '"resolvers";r=3;t=100'}) is None
    for _ in range(3):
        budget.before_resolve()
    assert budget.spent() == 3
    waits: list[tuple[float, str]] = []
    cancel = threading.Event()

    def on_wait(seconds, reason):
        waits.append((seconds, reason))
        cancel.set()

    with pytest.raises(Cancelled):
        budget.before_resolve(cancel, on_wait)  # r reached 0: pace, do not send and meet a 429
    assert waits and 98 < waits[0][0] <= 100 and waits[0][1].startswith("rate-limited")
    assert "resumes in 1:40" in waits[0][1] or "resumes in 1:39" in waits[0][1]
    assert budget.spent() == 3
    # a 429 says how long: every worker holds until then
    assert budget.after_response(429, {"RateLimit": '"resolvers";r=0;t=7'}) == 7


def test_the_budget_resumes_at_the_tightest_reset_its_answers_bound():
    # t is whole seconds rounded up: an answer at 0.1 s into a 10 s window says t=10 (reset <= 10.1),
    # a later one at 0.9 s says t=10 too (reset <= 10.9); resume at 10.1, not at 10.9
    now = [0.1]
    budget = ResolverBudget(clock=lambda: now[0])
    budget.after_response(200, {"RateLimit": '"resolvers";r=1;t=10'})
    budget.before_resolve()
    now[0] = 0.9
    budget.after_response(200, {"RateLimit": '"resolvers";r=0;t=10'})
    waits: list[float] = []
    cancel = threading.Event()

    def on_wait(seconds, reason):
        waits.append(seconds)
        cancel.set()

    with pytest.raises(Cancelled):
        budget.before_resolve(cancel, on_wait)
    assert waits and abs(waits[0] - 9.2) < 1e-6  # until 10.1
    now[0] = 10.2  # past it: a new window, the resolve goes
    budget.before_resolve()
    assert budget.spent() == 2
    # the new window's first answer (reset 20.2, beyond the old bound by more than a second) is a
    # new window: its count stands
    budget.after_response(200, {"RateLimit": '"resolvers";r=5;t=10'})
    for _ in range(5):
        budget.before_resolve()
    assert budget.spent() == 7


def test_a_429_quota_is_waited_out_not_counted_as_a_failed_attempt(hub_root, hostile, tmp_path):
    ids = _ids(archives=6, per_archive=2)
    manifest = build_repo(hub_root, "t/rl", binary_resources(ids))
    hostile.modes = {"cdn": {}, "rate-limit": {"quota": 4, "window": 1}}
    once = RetryPolicy(attempts=1, backoff=0.001, max_backoff=0.002, jitter=0.0)  # no retry for errors
    pool = _pool(hostile, "t/rl", retry=once)
    with Downloader(max_workers=3, merge_gap=0, retry=once) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids, report.failed
    assert_only_verified(tmp_path / "o", manifest)
    # 6 indexes + 6 archives = 12 resolves at 4 a window: the budget paced them
    assert hostile.resolves() - len(hostile.requests("hub", status=429)) >= 12


def test_a_custom_budget_is_what_every_client_of_the_process_uses(hub_root, hostile):
    build_repo(hub_root, "t/fac", binary_resources([1000]))
    calls: list[tuple[str, str | None]] = []

    class Counting(ResolverBudget):
        pass

    def factory(endpoint, token):
        calls.append((endpoint, token))
        return Counting()

    set_budget_factory(factory)
    a, b = HubClient(hostile.url, policy=FAST), HubClient(hostile.url, policy=FAST)
    sha = a.resolve("t/fac", "main")
    a.fetch_index("t/fac", "images/0000.json", sha, json.loads)
    b.fetch_index("t/fac", "images/0000.json", "main", json.loads)
    assert a.budget is b.budget and isinstance(a.budget, Counting)
    assert a.budget.spent() == 2 and calls == [(hostile.url, None)]
    assert budget_module.budget_for(hostile.url, None) is a.budget


# --- mirrors -----------------------------------------------------------------------------------

def test_opaque_etags_never_fail_a_job(hub_root, hostile, tmp_path):
    ids = _ids(archives=3, per_archive=2)
    manifest = build_repo(hub_root, "t/mirror", binary_resources(ids))
    hostile.modes = {"opaque-etag": {}}
    pool = _pool(hostile, "t/mirror")
    with Downloader(max_workers=3) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert len(pool.client.notes) == 1 and "not content hashes" in pool.client.notes[0]


def test_plain_404s_are_missing_for_an_index_and_failed_for_an_archive(hub_root, hostile, tmp_path):
    ids = _ids(archives=3, per_archive=2)  # archives 0000, 0001, 0002
    build_repo(hub_root, "t/plain", binary_resources(ids))
    hostile.modes = {"plain-404": {"paths": "images/000[12].*"}}
    hostile.modes["plain-404"]["paths"] = "images/0001.json"
    with Downloader(max_workers=3) as dl:
        report = dl.submit(_pool(hostile, "t/plain"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.state == "done" and report.error is None
    assert sorted(report.missing) == [i for i in ids if i % 1000 == 1]
    assert sorted(report.downloaded) == [i for i in ids if i % 1000 != 1]

    hostile.modes = {"plain-404": {"paths": "images/0002.tar"}}
    with Downloader(max_workers=3) as dl:
        report = dl.submit(_pool(hostile, "t/plain"), ids, str(tmp_path / "p")).wait(WAIT)
    assert report.state == "done" and report.error is None
    assert sorted(report.failed) == [i for i in ids if i % 1000 == 2]
    assert all("HTTP 404" in why and "I/O error" not in why for why in report.failed.values())
    assert sorted(report.downloaded) == [i for i in ids if i % 1000 != 2]


def test_a_server_that_ignores_range_is_not_read_through(hub_root, hostile, monkeypatch):
    build_repo(hub_root, "t/norange", binary_resources([1000, 2000, 3000]))
    client = HubClient(hostile.url, policy=FAST)
    sha = client.resolve("t/norange", "main")
    index = ArchiveIndex.from_bytes("images/0000.tar", client.fetch_index(
        "t/norange", "images/0000.json", sha, lambda raw: raw))
    last = max(index.entries, key=lambda e: e.offset)
    hostile.modes = {"ignore-range": {}}
    got: list[bytes] = []
    # a small offset: the few bytes before ours are skipped
    client.stream_range("t/norange", "images/0000.tar", sha, last.offset, last.offset + last.size - 1, got.append)
    assert sum(map(len, got)) == last.size
    monkeypatch.setattr(transport, "RANGE_SKIP_LIMIT", 1024)  # stands for "gigabytes in"
    with pytest.raises(transport.RangeIgnoredError, match="ignores Range"):
        client.stream_range("t/norange", "images/0000.tar", sha, last.offset, last.offset + 9, got.append)


def test_a_307_to_the_resolve_cache_is_followed_with_the_token_on_the_same_origin(hub_root, hostile):
    build_repo(hub_root, "t/rc", binary_resources([1000]), private=True, tokens=["hf_rc"])
    hostile.modes = {"resolve-cache": {}}
    client = HubClient(hostile.url, token="hf_rc", policy=FAST)
    sha = client.resolve("t/rc", "main")
    index = client.fetch_index("t/rc", "images/0000.json", sha, json.loads)
    assert "1000.bin" in index["files"]
    cached = [r for r in hostile.requests("hub") if r["path"].startswith("/api/resolve-cache/")]
    assert len(cached) == 1 and cached[0]["auth"] == "Bearer hf_rc"


# --- through the downloader: what a job spends and shows ---------------------------------------

def test_a_job_spends_at_most_two_resolves_per_archive_and_says_so(hub_root, hostile, tmp_path):
    ids = _ids(archives=4, per_archive=8)
    manifest = build_repo(hub_root, "t/spend", binary_resources(ids))
    hostile.modes = {"cdn": {}, "resolve-cache": {}}
    with Downloader(max_workers=4, merge_gap=0) as dl:  # 32 ranged GETs
        report = dl.submit(_pool(hostile, "t/spend"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert report.resolves == hostile.resolves() <= 2 * 4  # an index and the archive, each once
    assert report.to_dict()["resolves"] == report.resolves


def test_a_rate_limited_worker_says_so_and_when_it_resumes(hub_root, hostile, tmp_path):
    from tests.support.helpers import Recorder
    from pools import events as ev

    ids = _ids(archives=4, per_archive=1)
    manifest = build_repo(hub_root, "t/seen", binary_resources(ids))
    hostile.modes = {"cdn": {}, "rate-limit": {"quota": 3, "window": 3}}  # however slow the machine
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        report = dl.submit(_pool(hostile, "t/seen"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    waits = [s for s in rec.of(ev.WorkerState) if s.state == "rate-limited"]
    assert waits, "8 resolves at 3 per 3 s: some worker waited"
    assert all(0 < s.wait <= 3.0 and "resumes in 0:0" in s.reason and s.job_id == 1 for s in waits), waits


def test_a_stale_index_fails_its_archive_with_the_reason_and_the_rest_goes_on(hub_root, hostile, tmp_path):
    ids = _ids(archives=2, per_archive=3)
    manifest = build_repo(hub_root, "t/stale2", binary_resources(ids))
    hostile.modes = {"cdn": {"stale": True, "paths": "images/0001.tar"}}
    with Downloader(max_workers=2, merge_gap=0) as dl:
        report = dl.submit(_pool(hostile, "t/stale2"), ids, str(tmp_path / "o")).wait(WAIT)
    assert report.state == "done" and report.error is None
    assert sorted(report.downloaded) == [i for i in ids if i % 1000 == 0]
    assert sorted(report.failed) == [i for i in ids if i % 1000 == 1]
    assert all(why.startswith("stale index for t/stale2/images/0001.tar") for why in report.failed.values())
    assert_only_verified(tmp_path / "o", manifest)


# --- indexes and big files -----------------------------------------------------------------------

def test_a_gzipped_index_behind_a_307_is_decoded_checked_and_cached(hub_root, hostile, hf_cache):
    build_repo(hub_root, "t/gz", binary_resources([1000, 2000]))
    hostile.modes = {"gzip": {"paths": "*.json"}, "resolve-cache": {}}
    client = HubClient(hostile.url, policy=FAST)
    sha = client.resolve("t/gz", "main")
    raw = client.fetch_index("t/gz", "images/0000.json", sha, lambda b: b)
    assert json.loads(raw)["files"]["1000.bin"]["size"] == 3000
    assert client.notes == [], "the ETag matched the decoded bytes"
    from pools.transport import cache
    cache.flush()
    assert client.cached_path("t/gz", "images/0000.json", sha).startswith(str(hf_cache))
    before = len(hostile.log)
    assert client.fetch_index("t/gz", "images/0000.json", sha, lambda b: b) == raw
    assert len(hostile.log) == before, "read back from the cache, no request"


def test_a_big_file_streams_into_the_cache_through_the_cdn(hub_root, hostile):
    table = bytes(range(256)) * 40_000  # a 10 MB "parquet"
    build_repo(hub_root, "t/meta", binary_resources([1000]), repo_files={"meta/table.parquet": table})
    hostile.modes = {"cdn": {"paths": "*.parquet"}}
    client = HubClient(hostile.url, policy=FAST)
    sha = client.resolve("t/meta", "main")
    seen: list[tuple[int, int | None]] = []
    path = client.download_file("t/meta", "meta/table.parquet", sha, on_progress=lambda d, t: seen.append((d, t)))
    with open(path, "rb") as f:
        assert f.read() == table
    assert seen[-1] == (len(table), len(table))
    assert [r["auth"] for r in hostile.requests("cdn")] == [None]
    assert client.download_file("t/meta", "meta/table.parquet", sha) == path
    assert len(hostile.requests("cdn")) == 1, "the second call is the cache's"
    with pytest.raises(transport.FileMissing):
        client.download_file("t/meta", "meta/nope.parquet", sha)
