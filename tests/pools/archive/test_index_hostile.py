"""Hostile or unusual indexes over real HTTP against the loopback Hub (issues 8, 9, 10).

* an index nested 200,000 deep is a broken index for that archive: the job goes on, and the
  broken index is never cached, so a rerun asks the Hub again;
* names with control, C1, DEL or bidi characters are unrecognized "unsafe name", never written;
* an index without sha256 (hfutils can make them): a present file of the right size is kept on a
  rerun and reported "unverified", not fetched again;
* the pool's index cache is bounded by bytes, not by a count.
"""

from __future__ import annotations

import os

from app.hub.dataset import build_repo, rewrite_index
from pools import Downloader, IncrementIDDataPool, events as ev
from pools.transport import cache
from pools.transport import RetryPolicy

from tests.support.helpers import Recorder, assert_only_verified, binary_resources, tar_gets

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


def _pool(hub, repo):
    return IncrementIDDataPool(repo, endpoint=hub.url, retry=FAST)


def test_a_deeply_nested_index_fails_its_archive_only_and_is_never_cached(hub, hub_root, tmp_path):
    ids = [1000, 2000, 1001, 2001]
    manifest = build_repo(hub_root, "t/deep", binary_resources(ids))
    rewrite_index(hub_root, "t/deep", "images/0001.tar",
                  b'{"files": {"1001.bin": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}")
    pool = _pool(hub, "t/deep")
    with Downloader(max_workers=2) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(WAIT)
    assert report.state == "done" and report.error is None, report.error
    assert sorted(report.downloaded) == [1000, 2000]
    assert sorted(report.failed) == [1001, 2001]
    assert all("broken index" in r and "nested too deeply" in r for r in report.failed.values())
    sha = pool.resolve_index_revision()
    cache.flush()
    assert isinstance(pool.client.cached_path("t/deep", "images/0000.json", sha), str), "a good index is cached"
    assert not isinstance(pool.client.cached_path("t/deep", "images/0001.json", sha), str), \
        "a broken index must not stay in the cache"
    # and the rerun asks the Hub again instead of trusting a cached copy
    before = sum(1 for r in hub.request_log if r.path.endswith("images/0001.json"))
    with Downloader(max_workers=2) as dl:
        dl.submit(_pool(hub, "t/deep"), [1001], str(tmp_path / "o")).wait(WAIT)
    assert sum(1 for r in hub.request_log if r.path.endswith("images/0001.json")) > before
    assert_only_verified(tmp_path / "o", manifest)


def test_names_with_c1_del_or_bidi_characters_are_unsafe_and_never_written(hub, hub_root, tmp_path):
    ids = [1000, 1001]
    manifest = build_repo(hub_root, "t/c1", binary_resources(ids))
    hostile = ["2001\x9b.bin", "3001\x7f.bin", "4001\u202e.bin", "5001.bin\x1b[2J", "6001\u2066.bin"]

    def plant(index):
        real = index["files"]["1001.bin"]
        for name in hostile:
            index["files"][name] = dict(real)
    rewrite_index(hub_root, "t/c1", "images/0001.tar", plant)
    rec = Recorder()
    dst = tmp_path / "o"
    with Downloader(max_workers=2, on_event=rec) as dl:
        report = dl.submit(_pool(hub, "t/c1"), ids + [2001, 3001, 4001, 5001, 6001], str(dst)).wait(WAIT)
    assert sorted(report.downloaded) == ids and sorted(report.missing) == [2001, 3001, 4001, 5001, 6001]
    reasons = {name: reason for _, name, reason in report.unrecognized}
    assert all("unsafe name" in reasons[name] for name in hostile), reasons
    assert sorted(e.name for e in rec.of(ev.FileUnrecognized)) == sorted(hostile)
    assert sorted(os.listdir(dst)) == ["1000.bin", "1001.bin"]
    assert_only_verified(dst, manifest)


def test_without_sha256_a_present_file_of_the_right_size_is_kept_and_reported_unverified(hub, hub_root, tmp_path):
    ids = [1000, 1001, 2001]
    manifest = build_repo(hub_root, "t/nosha", binary_resources(ids))
    for archive in ("images/0000.tar", "images/0001.tar"):
        rewrite_index(hub_root, "t/nosha", archive,
                      lambda i: [info.pop("sha256", None) for info in i["files"].values()] and None)
    dst = tmp_path / "o"
    with Downloader(max_workers=2) as dl:
        first = dl.submit(_pool(hub, "t/nosha"), ids, str(dst)).wait(WAIT)
    # fetched, but with nothing to check them against: reported unverified (a file of "Z"s passed before)
    assert sorted(first.downloaded) == ids and sorted(first.unverified) == ids
    # a file of the wrong size is fetched again; the others are kept as they are
    with open(dst / "2001.bin", "ab") as f:
        f.write(b"x")
    gets = len(tar_gets(hub))
    rec = Recorder()
    with Downloader(max_workers=2, on_event=rec) as dl:
        again = dl.submit(_pool(hub, "t/nosha"), ids, str(dst)).wait(WAIT)
    assert again.ok and again.downloaded == [2001]
    assert sorted(again.unverified) == ids and sorted(again.skipped) == [1000, 1001]
    assert sorted(e.resource_id for e in rec.of(ev.ResourceDone) if e.status == "unverified") == [1000, 1001]
    assert len(tar_gets(hub)) == gets + 1, "only the file of the wrong size is fetched again"
    assert again.to_dict()["unverified"] == ids
    assert_only_verified(dst, manifest)  # 2001.bin is whole again


def test_the_pool_keeps_parsed_indexes_up_to_a_byte_budget(hub, hub_root):
    ids = [a + 1000 * k for a in range(6) for k in range(1, 40)]
    build_repo(hub_root, "t/many", binary_resources(ids, size=100))
    pool = _pool(hub, "t/many")
    archives = [f"images/{a:04d}.tar" for a in range(6)]
    one = pool.get_index(archives[0]).approx_bytes
    pool.index_cache_bytes = 3 * one
    for archive in archives:
        pool.get_index(archive)
    assert pool._index_bytes <= pool.index_cache_bytes
    assert list(pool._indexes) == archives[3:], "least recently used out first"
    assert pool.get_index(archives[0]).has(1000), "an evicted index comes back (from the disk cache)"
