"""Issue 10, files: nothing is written outside the destination, whatever was planted in it.

Temporary files are created ``O_CREAT|O_EXCL|O_NOFOLLOW`` under unpredictable names; the partial
folder must be a real folder inside the destination; every path written is checked with
``realpath``; a bad ``metainfo_fmt`` is refused when the job is submitted, and a folder swapped for
a link during the job fails that file's metainfo, nothing written outside.
"""

from __future__ import annotations

import os
import re

import pytest

from app.hub.dataset import build_repo
from pools import DestinationError, Downloader, IncrementIDDataPool, events as ev
from pools.engine.downloader import PARTIAL_DIR
from pools.files import open_exclusive
from pools.transport import RetryPolicy
from pools.engine.write import place, tmp_dir, tmp_path as temporary_path

from tests.support.helpers import assert_only_verified, binary_resources

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


def _pool(hub, repo):
    return IncrementIDDataPool(repo, endpoint=hub.url, retry=FAST)


def _outside(tmp_path):
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "precious.txt").write_bytes(b"must survive")
    return victim


def _untouched(victim):
    assert sorted(os.listdir(victim)) == ["precious.txt"]
    assert (victim / "precious.txt").read_bytes() == b"must survive"


def test_a_partial_folder_that_is_a_link_is_refused_and_never_followed(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/plink", binary_resources([1000]))
    victim = _outside(tmp_path)
    dst = tmp_path / "o"
    dst.mkdir()
    os.symlink(victim, dst / PARTIAL_DIR)
    with Downloader(max_workers=1) as dl:
        with pytest.raises(DestinationError, match="link"):
            dl.submit(_pool(hub, "t/plink"), [1000], str(dst))
    _untouched(victim)


def test_a_partial_folder_swapped_for_a_link_during_a_job_stops_it_before_writing(tmp_path):
    victim = _outside(tmp_path)
    dst = tmp_path / "o"
    dst.mkdir()
    assert tmp_dir(str(dst)) == str(dst / PARTIAL_DIR)  # made, a real folder
    os.rmdir(dst / PARTIAL_DIR)
    os.symlink(victim, dst / PARTIAL_DIR)
    with pytest.raises(DestinationError, match="not a real folder"):
        temporary_path(str(dst), "1000.bin")
    _untouched(victim)


def test_temporary_names_are_unpredictable_and_never_open_an_existing_file_or_link(tmp_path):
    dst = tmp_path / "o"
    dst.mkdir()
    names = {os.path.basename(temporary_path(str(dst), "1000.bin")) for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(rf"1000\.bin\.{os.getpid()}@[0-9a-f]{{8}}\.[0-9a-f]{{16}}\.part", n) for n in names)
    victim = _outside(tmp_path)
    planted = dst / "planted.part"
    os.symlink(victim / "precious.txt", planted)
    with pytest.raises(OSError):
        open_exclusive(str(planted)).write(b"overwritten")
    (dst / "plain.part").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        open_exclusive(str(dst / "plain.part"))
    _untouched(victim)


def test_a_file_whose_folder_now_leads_outside_is_not_placed(tmp_path):
    victim = _outside(tmp_path)
    dst = tmp_path / "o"
    dst.mkdir()
    tmp = dst / "x.part"
    tmp.write_bytes(b"data")
    why = place(str(tmp), str(victim / "1000.bin"), os.path.realpath(dst))
    assert why is not None and "outside the destination" in why and not tmp.exists()
    _untouched(victim)


@pytest.mark.parametrize("fmt, words", [
    ("../{resource_id}.json", "leaves the destination"),
    ("/tmp/{resource_id}.json", "not a relative file name"),
    ("meta//{resource_id}.json", "empty part"),
    ("{resource_id.__class__}.json", "only {resource_id}"),
    ("{resource_id:>100000000}.json", "only {resource_id}"),
    ("{0}.json", "only {resource_id}"),
    ("{id}.json", "only {resource_id}"),
    (PARTIAL_DIR + "/{resource_id}.json", "not a usable file name"),
    ("x\x1b[2J{resource_id}.json", "not a relative file name"),
])
def test_a_bad_metainfo_fmt_is_refused_when_the_job_is_submitted(hub, hub_root, tmp_path, fmt, words):
    build_repo(hub_root, "t/fmt", binary_resources([1000]))
    with Downloader(max_workers=1) as dl:
        with pytest.raises(ValueError, match=re.escape(words)) as err:
            dl.submit(_pool(hub, "t/fmt"), [(1000, {"a": 1})], str(tmp_path / "o"), metainfo_fmt=fmt)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert not (tmp_path / "o" / "1000.bin").exists(), "refused before any file is fetched"


def test_a_metainfo_folder_that_links_out_is_refused_at_submit(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/mlink", binary_resources([1000]))
    victim = _outside(tmp_path)
    dst = tmp_path / "o"
    dst.mkdir()
    os.symlink(victim, dst / "meta")
    with Downloader(max_workers=1) as dl:
        with pytest.raises(ValueError, match="link"):
            dl.submit(_pool(hub, "t/mlink"), [(1000, {"a": 1})], str(dst), metainfo_fmt="meta/{resource_id}.json")
    _untouched(victim)


def test_a_metainfo_folder_swapped_for_a_link_during_the_job_fails_that_id_only(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/mswap", binary_resources([1000, 2000]))
    victim = _outside(tmp_path)
    dst = tmp_path / "o"
    dst.mkdir()

    def swap(event):  # runs in the worker, before any file is planned
        if isinstance(event, ev.JobState) and event.state == "running" and not os.path.lexists(dst / "meta"):
            os.symlink(victim, dst / "meta")
    with Downloader(max_workers=2, on_event=swap) as dl:
        report = dl.submit(_pool(hub, "t/mswap"), [(1000, {"a": 1}), (2000, {"b": 2})], str(dst),
                           metainfo_fmt="meta/{resource_id}.json").wait(WAIT)
    assert report.state == "done" and sorted(report.failed) == [1000, 2000]
    assert all("metainfo not written" in r for r in report.failed.values()), report.failed
    _untouched(victim)
    assert_only_verified(dst, manifest)


def test_metainfo_in_a_real_subfolder_is_written_there(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/msub", binary_resources([1000]))
    dst = tmp_path / "o"
    with Downloader(max_workers=1) as dl:
        report = dl.submit(_pool(hub, "t/msub"), [(1000, {"a": 1})], str(dst),
                           metainfo_fmt="meta/{resource_id:08d}.json").wait(WAIT)
    assert report.ok and report.downloaded == [1000]
    assert (dst / "meta" / "00001000.json").read_text().replace(" ", "").replace("\n", "") == '{"a":1}'
