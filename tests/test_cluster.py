"""The Dask cluster runner (issue 13) on a real LocalCluster of worker processes against the
loopback Hub over HTTP: the same files as a local run, the merged report, the shared resolver
budget, a cancel, a worker killed mid-task."""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from app.hub.dataset import build_repo  # noqa: E402
from pools import Downloader, IncrementIDDataPool  # noqa: E402
from pools.cluster import ClusterRunner, merge_reports, plan_tasks  # noqa: E402
from pools.cluster.runner import PoolSpec  # noqa: E402
from pools.ranges import IdRanges  # noqa: E402
from pools.report import DownloadReport  # noqa: E402

from helpers import assert_only_verified, binary_resources, tar_gets  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=0, dashboard_address=None)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


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
    from pools.cluster.budget import SharedBudget, budget_name

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
    assert refused == []  # ...and the workers paced themselves as one client: never over the quota
    assert report.resolves == resolves == shared  # every resolve counted once, cluster-wide
