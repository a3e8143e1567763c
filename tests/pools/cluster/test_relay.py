"""A cluster job's events (issue 13): what the tasks publish on their workers reaches the
client's listeners as a local job's events, plus one row per Dask worker; a real LocalCluster
of two processes against the loopback Hub."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("distributed")


from app.hub.dataset import build_repo  # noqa: E402
from pools import IncrementIDDataPool  # noqa: E402
from pools import events as ev  # noqa: E402
from pools.cluster import ClusterRunner  # noqa: E402
from pools.cluster.relay import ClusterWorkerState, JobEvents, decode, encode  # noqa: E402
from pools.cluster.runner import PoolSpec  # noqa: E402

from tests.support.cluster import local_cluster_client  # noqa: E402
from tests.support.helpers import binary_resources  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with local_cluster_client() as client:
        yield client


def test_events_round_trip_and_bad_batches_are_dropped():
    done = ev.ResourceDone(3, 17, "downloaded", ("17.bin",), 9)
    assert decode(encode(done), 8) == ev.ResourceDone(8, 17, "downloaded", ("17.bin",), 9)
    assert decode({"kind": "os.system", "x": 1}, 1) is None
    assert decode({"kind": "ResourceDone", "nope": 1}, 1) is None
    heard = []
    events = JobEvents(5, 10, [heard.append])
    events.handler((0.0, {"task": "t"}))  # no worker: dropped, the pump lives on
    events.handler((0.0, {"task": "t", "worker": "w", "events": [encode(done)],
                          "progress": [4, 1, 1, 9, 9], "end": True}))
    assert events.wait_ended({"t"}, timeout=10)
    events.close()
    assert ev.ResourceDone(5, 17, "downloaded", ("17.bin",), 9) in heard
    progress = [e for e in heard if isinstance(e, ev.JobProgress)]
    assert progress[-1].ids_total == 10 and progress[-1].ids_done == 1 and progress[-1].bytes_done == 9
    rows = [e for e in heard if isinstance(e, ClusterWorkerState)]
    assert rows[-1] == ClusterWorkerState(5, "w", "idle", 0, 1, 1, 9, 0.0)


def test_listeners_hear_every_resource_progress_and_one_row_per_worker(client, hub, hub_root, tmp_path):
    ids = [rid for rid in range(100, 180) if rid % 9]
    build_repo(hub_root, "t/ev", binary_resources(ids), base_level=1)
    heard: list = []
    lock = threading.Lock()

    def listen(event):
        with lock:
            heard.append(event)
    job = ClusterRunner(client, threads=2, files_per_task=10).submit(
        PoolSpec(IncrementIDDataPool, "t/ev", base_level=1, endpoint=hub.url), "100-179", str(tmp_path / "d"),
        on_event=listen, job_id=42)
    report = job.wait()
    assert report.ok and report.downloaded == ids and job.done and job.state == "done"
    with lock:
        events = list(heard)
    assert all(getattr(e, "job_id", 42) == 42 for e in events)
    done = sorted(e.resource_id for e in events if isinstance(e, ev.ResourceDone))
    assert done == ids, sorted({type(e).__name__ for e in events})  # every file, once
    missing = sorted(i for e in events if isinstance(e, ev.ResourcesMissing) for i in e.ids)
    assert missing == sorted(report.missing)
    progress = [e for e in events if isinstance(e, ev.JobProgress)]
    assert progress[-1].ids_total == 80 and progress[-1].ids_done == 80
    assert progress[-1].files_done == len(ids) and progress[-1].bytes_done == report.nbytes
    rows = {}
    for e in events:
        if isinstance(e, ClusterWorkerState):
            rows[e.worker] = e
    assert set(rows) == set(client.scheduler_info()["workers"])  # both workers had tasks
    assert sum(r.tasks_done for r in rows.values()) == len(job.tasks)
    assert sum(r.files for r in rows.values()) == len(ids)
    assert all(r.state == "idle" and r.tasks_running == 0 for r in rows.values())
    assert isinstance(events[-1], ev.JobState) and events[-1].state == "done"
    assert [e.state for e in events[:2]] == ["queued", "running"]


def test_cancel_with_listeners_ends_promptly_and_says_cancelled(client, hub, hub_root, tmp_path):
    import time

    from app.hub.server import FaultConfig

    ids = list(range(100, 400))
    build_repo(hub_root, "t/evx", binary_resources(ids, size=20_000), base_level=1)
    hub.faults = FaultConfig(latency_ms=150, paths="*.tar")
    heard: list = []
    got_file = threading.Event()

    def listen(event):
        heard.append(event)
        if isinstance(event, ev.ResourceDone):
            got_file.set()
    try:
        job = ClusterRunner(client, threads=2, files_per_task=30, merge_gap=0).submit(
            PoolSpec(IncrementIDDataPool, "t/evx", base_level=1, endpoint=hub.url), "100-399",
            str(tmp_path / "x"), on_event=listen)
        assert got_file.wait(60)
        asked = time.monotonic()
        job.cancel()
        report = job.wait()
        stopped = time.monotonic() - asked
    finally:
        hub.faults = None
    assert report.state == "cancelled" and stopped < 15, stopped
    assert isinstance(heard[-1], ev.JobState) and heard[-1].state == "cancelled"
    done = {e.resource_id for e in heard if isinstance(e, ev.ResourceDone)}
    assert done == set(report.downloaded)  # every file the report counts was told, none more
