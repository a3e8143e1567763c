"""The plan stage on broken and hostile indexes: a clear reason per file, nothing written outside the
destination."""


from __future__ import annotations

import os

import pytest

from app.hub.dataset import build_repo, rewrite_index
from pools import (
    Downloader,
)
from pools import (
    events as ev,
)
from tests.support.helpers import Recorder
from tests.support.helpers import assert_only_verified as _assert_only_verified
from tests.support.reliability import (
    UNSAFE_IDS,
    UNSAFE_NAMES,
    WAIT,
    pool_of,
    resources,
)

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
    manifest = build_repo(hub_root, "t/broken", resources(ids))
    rewrite_index(hub_root, "t/broken", "images/0001.tar", mutate)
    rec = Recorder()
    dst = tmp_path / "o"
    with Downloader(max_workers=3, on_event=rec) as dl:
        report = dl.submit(pool_of(hub, "t/broken"), ids, str(dst)).wait(WAIT)
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


def test_unsafe_names_in_an_index_write_nothing_outside_the_destination(hub, hub_root, tmp_path):
    ids = [1000, 1001]
    manifest = build_repo(hub_root, "t/evil", resources(ids))
    had_etc = os.path.exists("/etc/x.png")

    def plant(index):  # each hostile name points at real bytes with the right sha256
        real = index["files"]["1001.bin"]
        for name in UNSAFE_NAMES:
            index["files"][name] = dict(real)
    rewrite_index(hub_root, "t/evil", "images/0001.tar", plant)
    sandbox = tmp_path / "sandbox"
    dst = sandbox / "a" / "b" / "dst"  # "../../x.png" from here would land in sandbox/a
    with Downloader(max_workers=2) as dl:
        report = dl.submit(pool_of(hub, "t/evil"), ids + UNSAFE_IDS, str(dst)).wait(WAIT)
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
    manifest = build_repo(hub_root, "t/link", resources([1000]))
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"must survive")
    dst = tmp_path / "o"
    dst.mkdir()
    os.symlink(precious, dst / "1000.bin")
    with Downloader(max_workers=1) as dl:
        report = dl.submit(pool_of(hub, "t/link"), [1000], str(dst)).wait(WAIT)
    assert report.downloaded == [1000]
    assert precious.read_bytes() == b"must survive"
    assert not os.path.islink(dst / "1000.bin")
    _assert_only_verified(dst, manifest)


