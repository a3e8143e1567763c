"""A big repo file (a metadata table) is resumed where a dropped attempt or an earlier run
stopped, against the loopback Hub's real redirects and faults; altered or oversized bytes are
never kept."""

from __future__ import annotations

import hashlib
import os

import pytest

from app.hub.dataset import build_repo
from app.hub.faults import FaultConfig
from pools.errors import HubUnreachableError, TooLargeError, TransferError
from pools.transport import HubClient, RetryPolicy

from tests.support.helpers import binary_resources

TABLE = hashlib.sha256(b"seed").digest() * 200_000  # 6.4 MB that do not compress


def policy(attempts: int) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, backoff=0.0, max_backoff=0.0, jitter=0.0)


@pytest.fixture
def table_repo(hub_root, hub):
    build_repo(hub_root, "t/meta", binary_resources([1000]), repo_files={"meta/table.parquet": TABLE})
    return hub


def test_dropped_attempts_go_on_from_the_bytes_they_had(table_repo):
    hub = table_repo
    client = HubClient(hub.url, policy=policy(12))
    sha = client.resolve("t/meta", "main")
    hub.faults = FaultConfig(drop_rate=0.7, paths="*.parquet", seed=4)  # four drops, then the rest
    path = client.download_file("t/meta", "meta/table.parquet", sha)
    with open(path, "rb") as f:
        assert f.read() == TABLE
    gets = hub.data_gets("table.parquet")
    assert [r.fault for r in gets] == ["drop"] * 4 + [None]
    assert gets[0].range is None and all(r.range and r.range.startswith("bytes=") for r in gets[1:])
    starts = [int(r.range[6:].rstrip("-")) for r in gets[1:]]
    assert starts == sorted(starts) and starts[-1] > 0  # each attempt asks for the rest, never again from 0
    assert not os.path.exists(path + ".part")


def test_a_run_that_failed_is_resumed_by_the_next(table_repo):
    hub = table_repo
    first = HubClient(hub.url, policy=policy(1))
    sha = first.resolve("t/meta", "main")
    hub.faults = FaultConfig(drop_rate=1.0, paths="*.parquet")
    with pytest.raises(HubUnreachableError):
        first.download_file("t/meta", "meta/table.parquet", sha)
    hub.faults = FaultConfig()
    hub.clear_log()
    again = HubClient(hub.url, policy=policy(3))  # another run
    path = again.download_file("t/meta", "meta/table.parquet", sha)
    with open(path, "rb") as f:
        assert f.read() == TABLE
    (get,) = hub.data_gets("table.parquet")
    kept = int(get.range[6:].rstrip("-"))
    assert 0 < kept < len(TABLE) and get.bytes_sent == len(TABLE) - kept


def test_altered_bytes_are_not_kept_and_the_file_is_fetched_whole_again(table_repo):
    hub = table_repo
    client = HubClient(hub.url, policy=policy(6))
    sha = client.resolve("t/meta", "main")
    hub.faults = FaultConfig(corrupt_rate=0.5, paths="*.parquet", seed=1)
    path = client.download_file("t/meta", "meta/table.parquet", sha)
    with open(path, "rb") as f:
        assert f.read() == TABLE
    gets = hub.data_gets("table.parquet")
    assert any(r.fault == "corrupt" for r in gets)
    assert all(r.range is None for r in gets)  # after an altered body, from the start


def test_a_file_past_the_cap_leaves_nothing(table_repo):
    hub = table_repo
    client = HubClient(hub.url, policy=policy(3))
    sha = client.resolve("t/meta", "main")
    with pytest.raises(TooLargeError):
        client.download_file("t/meta", "meta/table.parquet", sha, max_bytes=len(TABLE) // 2)
    from huggingface_hub import constants

    leftovers = [n for _, _, names in os.walk(constants.HF_HUB_CACHE) for n in names if n.endswith(".part")]
    assert leftovers == []


def test_a_link_planted_at_the_part_name_is_never_written_through(table_repo, tmp_path):
    from pools.transport import cache

    hub = table_repo
    client = HubClient(hub.url, policy=policy(2))
    sha = client.resolve("t/meta", "main")
    target = cache._target(client.endpoint, "t/meta", "meta/table.parquet", sha, absent=False)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    os.symlink(outside, target + ".part")
    with pytest.raises(TransferError, match="cannot write the cache file"):
        client.download_file("t/meta", "meta/table.parquet", sha)
    assert outside.read_text() == "keep me" and not os.path.exists(target)


@pytest.mark.parametrize("value,expected", [("6400000", 6_400_000), (" 12 ", 12), ("²", None), ("1" * 5000, None),
                                            ("-5", None), ("12abc", None), ("", None), ("9" * 19, 10**19 - 1)])
def test_a_servers_content_length_is_read_only_when_it_is_a_plain_number(value, expected):
    from pools.transport.answers import content_length

    assert content_length({"Content-Length": value}) == expected


def test_parts_nobody_resumed_for_a_week_are_swept_and_a_held_one_is_kept(table_repo, tmp_path):
    import fcntl
    import time

    from pools.transport import cache
    from pools.transport.whole_file import PART_DAYS

    hub = table_repo
    client = HubClient(hub.url, policy=policy(2))
    sha = client.resolve("t/meta", "main")
    root = cache.repo_root(client.endpoint, "t/meta")
    other = os.path.join(root, "snapshots", "0" * 40, "meta")  # another commit's folder
    os.makedirs(other, exist_ok=True)
    old, fresh, held = (os.path.join(other, n) for n in ("a.parquet.part", "b.parquet.part", "c.parquet.part"))
    stale = time.time() - (PART_DAYS + 1) * 86400
    for path in (old, fresh, held):
        with open(path, "wb") as f:
            f.write(b"partial")
    for path in (old, held):
        os.utime(path, (stale, stale))
    not_a_part = os.path.join(other, "table.parquet")
    with open(not_a_part, "wb") as f:
        f.write(b"kept")
    os.utime(not_a_part, (stale, stale))
    with open(held, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # a fetch under way in another process
        client.download_file("t/meta", "meta/table.parquet", sha)
    assert not os.path.exists(old)
    assert os.path.exists(fresh) and os.path.exists(held) and os.path.exists(not_a_part)
