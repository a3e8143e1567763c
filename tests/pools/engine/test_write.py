"""The write stage and its destination: refused up front when it cannot be written, a full disk stops
the run with no partial file, and a rerun completes."""


from __future__ import annotations

import json
import os
import subprocess

import pytest

from app.hub.dataset import build_repo
from pools import (
    DestinationError,
    Downloader,
)
from pools import (
    events as ev,
)
from pools.engine import write as write_module  # the write stage opens the temporary files
from tests.support.helpers import Recorder
from tests.support.helpers import assert_only_verified as _assert_only_verified
from tests.support.helpers import tar_gets as _tar_gets
from tests.support.reliability import (
    WAIT,
    FullDisk,
    assert_all_there,
    pool_of,
    resources,
    run_cli,
    visible,
)

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
    build_repo(hub_root, "t/ro", resources([1000]))
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
                dl.submit(pool_of(hub, "t/ro"), [1000], str(dst))
        assert "cannot write to" in str(err.value) and "\n" not in str(err.value)
        assert hub.request_log == [], "nothing is fetched for a destination that cannot take it"
    finally:
        if how == "chmod 0o500":
            dst.chmod(0o700)
        elif how == "read-only mount":
            _umount(dst)
    assert not dst.exists() or os.listdir(dst) == []


def test_a_full_disk_stops_the_run_with_no_partial_file_and_a_rerun_completes(hub, hub_root, tmp_path, monkeypatch):
    ids = sorted(a + 1000 * k for a in range(3) for k in range(1, 11))  # 30 ids of ~3 KB
    manifest = build_repo(hub_root, "t/full", resources(ids))
    dst = tmp_path / "o"
    disk = FullDisk(dst, budget=25_000)  # room for about eight files
    monkeypatch.setattr(write_module, "open", disk, raising=False)
    rec = Recorder()
    with Downloader(max_workers=3, merge_gap=0, on_event=rec) as dl:
        report = dl.submit(pool_of(hub, "t/full"), ids, str(dst)).wait(WAIT)
    assert disk.hits >= 1
    assert report.state == "failed" and report.error == f"disk full while writing to {dst}"
    assert rec.of(ev.JobState)[-1].error == report.error
    assert 0 < len(report.downloaded) < len(ids) and list(report.missing) == []
    assert sorted(n for n in visible(dst)) == sorted(f"{i}.bin" for i in report.downloaded)
    _assert_only_verified(dst, manifest)

    monkeypatch.undo()  # space freed: the same job again fetches only what is not there
    hub.clear_log()
    with Downloader(max_workers=3, merge_gap=0) as dl:
        again = dl.submit(pool_of(hub, "t/full"), ids, str(dst)).wait(WAIT)
    assert again.ok and sorted(again.skipped) == sorted(report.downloaded)
    assert len(_tar_gets(hub)) == len(ids) - len(report.downloaded)
    assert_all_there(dst, manifest, ids)
    _assert_only_verified(dst, manifest)


def test_a_real_full_filesystem_via_the_cli(hub, hub_root, tmp_path):
    # a real ENOSPC from a 64 KiB tmpfs, through the command a script would run
    ids = list(range(1000, 1040))
    manifest = build_repo(hub_root, "t/tmpfs", resources(ids, size=6000))
    dst = tmp_path / "small"
    dst.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(dst)):
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        out = run_cli(hub, ["t/tmpfs", "1000-1039", "-o", str(dst), "--workers", "2",
                         "--report", str(tmp_path / "r.json")], tmp_path)
        assert out.returncode == 1, out.stderr
        assert f"error: disk full while writing to {dst}" in out.stderr
        assert "Traceback" not in out.stderr
        _assert_only_verified(dst, manifest)
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["state"] == "failed" and report["missing"] == []
        assert sorted(visible(dst)) == sorted(f"{i}.bin" for i in report["downloaded"])
    finally:
        _umount(dst)


