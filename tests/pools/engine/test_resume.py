"""Interruptions lose nothing: Ctrl-C and kill -9 of a real download process leave only verified files
in sight, and the rerun fetches only the rest."""


from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

from app.hub.dataset import build_repo
from app.hub.server import FaultConfig, HubServer
from pools import (
    Downloader,
)
from pools import (
    events as ev,
)
from pools.engine.downloader import PARTIAL_DIR
from tests.support.helpers import assert_only_verified as _assert_only_verified
from tests.support.helpers import expected_files as _expected
from tests.support.helpers import tar_gets as _tar_gets
from tests.support.reliability import (
    WAIT,
    assert_all_there,
    pool_of,
    resources,
    visible,
    wait_until,
)

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
    manifest = build_repo(hub_root, "t/int", resources(INT_IDS, size=300_000), base_level=1)
    hub.faults = FaultConfig(latency_ms=30, paths="*.tar")  # in flight for seconds, not milliseconds
    dst = tmp_path / "o"
    proc = _start_download(hub, dst, tmp_path, tmp_path / "r1.json")
    try:
        assert wait_until(lambda: len(visible(dst)) >= 6 or proc.poll() is not None)
        wait_until(lambda: _half_written(dst) or len(visible(dst)) >= len(INT_IDS) // 2, step=0)
        caught = _half_written(dst)
        assert proc.poll() is None, "the job ended before the interrupt: " + proc.stderr.read()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = visible(dst)
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
    assert_all_there(dst, manifest, INT_IDS)
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
    manifest = build_repo(hub_root, "t/two", resources(ids, size=200_000))
    gate = threading.Event()
    holding = threading.Event()

    def hold(event):  # the first job's first file stays half written until the gate opens
        if (isinstance(event, ev.WorkerState) and event.state == "download" and event.job_id == 1
                and event.done > 0 and not holding.is_set()):
            holding.set()
            gate.wait(WAIT)
    dst = tmp_path / "o"
    with Downloader(max_workers=2, merge_gap=0, on_event=hold) as dl:
        pool = pool_of(hub, "t/two")
        first = dl.submit(pool, ids[:6], str(dst))
        assert holding.wait(WAIT)
        assert os.listdir(dst / PARTIAL_DIR), "a file should be half written now"
        second = dl.submit(pool, ids[6:], str(dst))
        gate.set()
        reports = first.wait(WAIT), second.wait(WAIT)
    assert [r.ok for r in reports] == [True, True], [(r.error, r.failed) for r in reports]
    assert_all_there(dst, manifest, ids)
    _assert_only_verified(dst, manifest)


