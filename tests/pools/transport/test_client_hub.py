"""The engine against the loopback Hub in its real-Hub ways (``app/hub``): 302 to a CDN port with
signed expiring URLs that refuse ``Authorization``, 307 to ``/api/resolve-cache/...``, gzip,
a resolver quota, a mirror's opaque ETags and plain 404s. Real HTTP, real clients, no mocks.
"""

from __future__ import annotations

import os

import pytest

from app.hub.dataset import build_repo, repo_dir
from app.hub.ratelimit import ResolverQuota
from pools import Downloader, IncrementIDDataPool
from pools import events as ev
from pools.transport.budget import set_budget_factory
from pools.transport import RetryPolicy

from tests.support.helpers import Recorder, assert_only_verified, binary_resources

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


@pytest.fixture(autouse=True)
def _fresh_budgets():
    set_budget_factory(None)
    yield


def _ids(archives: int, per_archive: int) -> list[int]:
    return sorted(a + 1000 * k for a in range(archives) for k in range(1, per_archive + 1))


def _run(hub, repo, ids, dst, workers=4, merge_gap=0, **kw):
    kw.setdefault("retry", FAST)
    pool = IncrementIDDataPool(repo, endpoint=hub.url, **kw)
    rec = Recorder()
    with Downloader(max_workers=workers, merge_gap=merge_gap, on_event=rec, retry=kw["retry"]) as dl:
        return pool, rec, dl.submit(pool, ids, str(dst)).wait(WAIT)


def test_through_the_cdn_a_job_spends_an_index_and_an_archive_resolve_per_archive(hub, hub_root, tmp_path):
    ids = _ids(archives=4, per_archive=6)
    manifest = build_repo(hub_root, "t/real", binary_resources(ids))
    _, _, report = _run(hub, "t/real", ids, tmp_path / "o")  # merge_gap=0: a ranged GET per file
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert hub.cdn_gets == len(ids), "every file came from the CDN"
    assert report.resolves == hub.resolves <= 2 * 4
    # again, indexes cached and nothing to fetch: no resolve at all
    hub.clear_log()
    _, _, again = _run(hub, "t/real", ids, tmp_path / "o")
    assert sorted(again.skipped) == ids and again.resolves == 0 == hub.resolves
    # a new destination (a second query over the same repo): indexes cached, one resolve per archive
    hub.clear_log()
    _, _, second = _run(hub, "t/real", ids, tmp_path / "o2")
    assert sorted(second.downloaded) == ids and second.resolves == 4 == hub.resolves
    assert_only_verified(tmp_path / "o2", manifest)


def test_a_private_repo_through_the_cdn_that_refuses_a_token(hub, hub_root, tmp_path):
    ids = _ids(archives=2, per_archive=3)
    manifest = build_repo(hub_root, "t/privcdn", binary_resources(ids), private=True, tokens=["hf_cdn123"])
    _, _, report = _run(hub, "t/privcdn", ids, tmp_path / "o", hf_token="hf_cdn123")
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert hub.cdn_gets == len(ids) and hub.count(kind="cdn", status=403) == 0


def test_a_signed_url_past_its_expiry_is_refused_and_the_archive_resolved_again(hub, hub_root, tmp_path):
    ids = _ids(archives=1, per_archive=4)
    manifest = build_repo(hub_root, "t/ttl", binary_resources(ids))
    pool, _, first = _run(hub, "t/ttl", ids[:2], tmp_path / "o")
    assert first.ok and first.resolves == 2  # the index, the archive
    real_clock = hub.signer.clock
    hub.clear_log()

    # the CDN's clock jumps two hours ahead: the URL the pool holds has expired there
    hub.signer.clock = lambda: real_clock() + 7200
    try:
        with Downloader(max_workers=2, merge_gap=0, retry=FAST) as dl:
            report = dl.submit(pool, ids[2:], str(tmp_path / "o")).wait(WAIT)
    finally:
        hub.signer.clock = real_clock
    assert report.ok and sorted(report.downloaded) == ids[2:]
    assert hub.count(kind="cdn", status=403) >= 1, "the old URL was tried and refused"
    assert report.resolves == hub.resolves == 1, "resolved again, once"
    assert_only_verified(tmp_path / "o", manifest)


def test_the_resolver_quota_is_waited_out_and_every_file_arrives(hub, hub_root, tmp_path):
    ids = _ids(archives=6, per_archive=2)
    manifest = build_repo(hub_root, "t/quota", binary_resources(ids))
    hub.quota = ResolverQuota(4, window=1.0)
    once = RetryPolicy(attempts=1, backoff=0.001, max_backoff=0.002, jitter=0.0)  # an error is final
    _, rec, report = _run(hub, "t/quota", ids, tmp_path / "o", workers=3, retry=once)
    assert report.ok and sorted(report.downloaded) == ids, report.failed
    assert_only_verified(tmp_path / "o", manifest)
    assert report.resolves >= 12  # 6 indexes and 6 archives, 4 a second
    limited = [s for s in rec.of(ev.WorkerState) if s.state == "rate-limited"]
    assert limited and all(s.wait is not None and 0 < s.wait <= 1.0 for s in limited)


def test_a_quota_reset_opens_a_fresh_window():
    now = [100.0]
    quota = ResolverQuota(2, window=300.0, clock=lambda: now[0])
    assert [quota.take("k")[0] for _ in range(3)] == [True, True, False]
    quota.reset()
    allowed, headers = quota.take("k")
    assert allowed and dict(headers)["RateLimit"] == '"resolvers";r=1;t=300'


def test_a_mirror_with_opaque_etags_completes_and_says_so_once(hub, hub_root, tmp_path):
    ids = _ids(archives=3, per_archive=2)
    manifest = build_repo(hub_root, "t/opaque", binary_resources(ids))
    hub.opaque_etags = True
    pool, _, report = _run(hub, "t/opaque", ids, tmp_path / "o")
    assert report.ok and sorted(report.downloaded) == ids
    assert_only_verified(tmp_path / "o", manifest)
    assert len(pool.client.notes) == 1


def test_plain_404s_mean_missing_for_an_index_and_failed_for_an_archive(hub, hub_root, tmp_path):
    ids = _ids(archives=3, per_archive=2)
    build_repo(hub_root, "t/p404", binary_resources(ids), skip_index=["images/0001.tar"])
    os.unlink(repo_dir(hub_root, "t/p404") / "images" / "0002.tar")  # the index says it is there
    hub.plain_404 = True
    _, _, report = _run(hub, "t/p404", ids, tmp_path / "o")
    assert report.state == "done" and report.error is None
    assert sorted(report.missing) == [i for i in ids if i % 1000 == 1]
    assert sorted(report.failed) == [i for i in ids if i % 1000 == 2]
    assert all("HTTP 404" in why and "I/O error" not in why for why in report.failed.values())
    assert sorted(report.downloaded) == [i for i in ids if i % 1000 == 0]
