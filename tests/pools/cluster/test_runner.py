"""The Dask cluster runner (issue 13) on a real LocalCluster of worker processes against the
loopback Hub over HTTP: the same files as a local run, the merged report, the shared resolver
budget, a cancel, a worker killed mid-task."""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("distributed")


from app.hub.dataset import build_repo  # noqa: E402
from pools import Downloader, IncrementIDDataPool  # noqa: E402
from pools.cluster import ClusterRunner, merge_reports, plan_tasks  # noqa: E402
from pools.cluster.runner import PoolSpec  # noqa: E402
from pools.ranges import IdRanges  # noqa: E402
from pools.engine.report import DownloadReport  # noqa: E402

from tests.support.cluster import local_cluster_client  # noqa: E402
from tests.support.helpers import assert_only_verified, binary_resources  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with local_cluster_client() as client:
        yield client


def _spec(hub, repo):
    return PoolSpec(IncrementIDDataPool, repo, base_level=1, endpoint=hub.url)


def test_plan_whole_archives_contiguous_and_lazy():
    pool = IncrementIDDataPool("t/x", base_level=3, endpoint="http://127.0.0.1:1")
    ids = IdRanges([(0, 10**12)])  # a trillion ids: planned by residue, never walked
    tasks = plan_tasks(pool, ids, files_per_task=10**10)
    assert sum(len(t) for t in tasks) == len(ids)
    archives = [a for t in tasks for a in t.archives]
    assert len(archives) == len(set(archives)) == 1000  # every archive in exactly one task
    small = plan_tasks(pool, IdRanges([(1000, 1009), (2000, 2004)]), files_per_task=4)
    assert [list(t.ids) for t in small] == [[1000, 1001, 2000, 2001], [1002, 1003, 2002, 2003],
                                            [1004, 1005, 1006, 2004], [1007, 1008, 1009]]
    assert [len(t) for t in small] == [4, 4, 4, 3]
    huge = plan_tasks(pool, ids)  # about 10**9 ids per archive: one archive a task, each as small as the range
    assert len(huge) == 1000 and huge[7].ids.residues(1000) == [7] and huge[7].ids.ranges == ids.ranges


def test_merge_reports_missing_as_ranges_and_counts():
    a = DownloadReport(downloaded=[5, 1], files=2, nbytes=20, resolves=3)
    a.missing.append_run(10, 2, 3)  # 10, 12, 14
    b = DownloadReport(downloaded=[3], failed={4: "bad hash"}, files=1, nbytes=7, resolves=1, not_reached=2)
    b.missing.append_run(11, 2, 3)  # 11, 13, 15
    merged = merge_reports([a, b], IdRanges([(1, 17)]))
    assert merged.downloaded == [1, 3, 5]
    assert merged.missing_ranges() == ["10-15"]
    assert (merged.files, merged.nbytes, merged.resolves, merged.not_reached) == (3, 27, 4, 2)
    assert merged.failed == {4: "bad hash"} and not merged.ok


def test_cluster_run_same_files_as_local(client, hub, hub_root, tmp_path):
    ids = [rid for rid in range(100, 160) if rid % 7]  # some missing
    manifest = build_repo(hub_root, "t/cl", binary_resources(ids), base_level=1)
    runner = ClusterRunner(client, threads=3, files_per_task=12)
    job = runner.submit(_spec(hub, "t/cl"), "100-169", str(tmp_path / "c"))
    assert len(job.tasks) >= 3
    report = job.wait()
    assert report.ok, report.error
    assert report.downloaded == ids
    assert report.missing_ranges() == report.to_dict()["missing"]
    assert set(report.missing) == set(range(100, 170)) - set(ids)
    assert report.resolves >= 1
    assert_only_verified(tmp_path / "c", manifest)
    with Downloader(max_workers=4) as dl:
        local = dl.submit(IncrementIDDataPool("t/cl", base_level=1, endpoint=hub.url), "100-169",
                          str(tmp_path / "l")).wait()
    assert sorted(os.listdir(tmp_path / "c")) == sorted(os.listdir(tmp_path / "l"))
    assert local.missing_ranges() == report.missing_ranges()
    again = runner.submit(_spec(hub, "t/cl"), "100-169", str(tmp_path / "c")).wait()  # resume
    assert again.downloaded == [] and again.skipped == ids


def test_shared_budget_holds_the_quota_across_workers(client, hub_root, hf_cache, tmp_path):
    from app.hub.server import HubServer
    from pools.cluster.shared_budget import SharedBudget, budget_name

    ids = list(range(100, 130))  # ten archives: an index and a tar resolve each
    manifest = build_repo(hub_root, "t/q", binary_resources(ids), base_level=1)
    quota = 8
    hub = HubServer(hub_root, resolver_quota=quota, window=2.0).start()
    try:
        runner = ClusterRunner(client, threads=3, files_per_task=3)  # ten tasks on two workers
        report = runner.submit(_spec(hub, "t/q"), "100-129", str(tmp_path / "q")).wait()
        refused = [r for r in hub.request_log if r.status == 429]
        resolves = hub.resolves
        shared = SharedBudget(budget_name(hub.url, None)).spent()
    finally:
        hub.stop()
    assert report.ok, report.error
    assert report.downloaded == ids
    assert_only_verified(tmp_path / "q", manifest)
    assert resolves > quota  # the job needed more than one window...
    # ...and the workers paced themselves as one client: at most a window edge's in-flight requests
    # (2 workers x 3 threads) met a 429, never a stream of them
    assert len(refused) <= 6, len(refused)
    assert report.resolves == shared  # every resolve the tasks made went through the one shared budget
    # every /resolve/ the Hub saw, the refused ones and their retries too, went through that budget
    assert resolves == shared


def _wait_for(condition, timeout=60.0):
    """Wait for ``condition()`` (a real condition, polled), failing the test after ``timeout``."""
    done = threading.Event()
    deadline = timeout
    while not condition():
        assert deadline > 0, "condition never came true"
        done.wait(0.02)
        deadline -= 0.02


def _count_files(path):
    return sum(1 for name in os.listdir(path) if name.endswith(".bin")) if os.path.isdir(path) else 0


def test_cancel_stops_every_task_and_leaves_no_partial_file(client, hub, hub_root, tmp_path):
    import time

    from app.hub.server import FaultConfig

    ids = list(range(100, 400))
    manifest = build_repo(hub_root, "t/cx", binary_resources(ids, size=20_000), base_level=1)
    hub.faults = FaultConfig(latency_ms=150, paths="*.tar")
    dst = tmp_path / "x"
    job = ClusterRunner(client, threads=2, files_per_task=60, merge_gap=0).submit(_spec(hub, "t/cx"), "100-399", str(dst))
    _wait_for(lambda: _count_files(dst) >= 4)
    asked = time.monotonic()
    job.cancel()
    report = job.wait()
    stopped = time.monotonic() - asked
    hub.faults = None
    assert report.state == "cancelled" and not report.ok
    assert stopped < 15, f"the tasks took {stopped:.1f}s to stop"
    assert 0 < len(report.downloaded) < len(ids) and report.not_reached > 0
    assert len(report.downloaded) == _count_files(dst)
    assert_only_verified(dst, manifest)  # no partial file, nothing unverified
    assert report.not_reached_ranges()  # what to rerun, as ranges


def test_worker_killed_mid_task_rerun_elsewhere_nothing_lost_none_twice(client, hub, hub_root, tmp_path):
    from app.hub.server import FaultConfig

    ids = list(range(100, 220))
    manifest = build_repo(hub_root, "t/kill", binary_resources(ids, size=20_000), base_level=1)
    hub.faults = FaultConfig(latency_ms=100, paths="*.tar")
    dst = tmp_path / "k"
    job = ClusterRunner(client, threads=2, files_per_task=60, merge_gap=0).submit(_spec(hub, "t/kill"), "100-219", str(dst))
    _wait_for(lambda: _count_files(dst) >= 6 and any(client.processing().values()))
    victim = next(w for w, keys in client.processing().items() if keys)

    def kill():  # client.run never hears back from a process that exits: run it aside
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:  # noqa: BLE001 - the lost connection is the point
            pass
    threading.Thread(target=kill, daemon=True).start()  # the worker process dies mid-task
    report = job.wait()
    hub.faults = None
    assert report.ok, report.error
    assert sorted(report.downloaded + report.skipped) == ids  # nothing lost: the rerun skipped what was verified
    assert report.skipped  # the rerun kept the dead worker's files
    assert_only_verified(dst, manifest, partial_ok=True)  # a dead process may leave its hidden *.part
    gets = [(r.file, r.range) for r in hub.data_gets(".tar")]
    twice = len(gets) - len(set(gets))
    assert len(set(gets)) == len(ids)  # one ranged GET per file (merge_gap=0)
    assert twice <= 2, f"{twice} files fetched twice"  # at most the killed task's two in-flight requests
