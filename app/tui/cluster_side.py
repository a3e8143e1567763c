"""The TUI's side of a Dask cluster: jobs the queue dialog sends to ``defaults.cluster``.

The cluster (``local:N`` starts a LocalCluster, ``tcp://...`` joins a scheduler) is opened on
the first job, in a thread, and kept until the app exits. A cluster job is an
:class:`pools.cluster.ClusterJob` in the Downloads model like a local job (same id counter,
same events through the app's pump), plus the rows of its Dask workers
(:class:`pools.cluster.relay.ClusterWorkerState`). Nothing here runs on the UI thread but the
bookkeeping: the UI stays responsive while a cluster starts.
"""

from __future__ import annotations

import os
import threading

from app.commands.cluster import spec_for
from app.core.format import error_text, plural
from pools import IdRanges


class ClusterConnection:
    """The app's cluster at ``address``, opened on first use and kept; thread-safe."""

    def __init__(self, address: str):
        self.address = address
        self._lock = threading.Lock()
        self._client = None
        self._close = None

    def client(self):
        with self._lock:
            if self._client is None:
                from pools.cluster import open_client  # lazy: optional dependency (dask)

                if self.address.startswith("local:"):
                    _tracker_with_real_stderr()
                self._client, self._close = open_client(self.address)
            return self._client

    def close(self) -> None:
        with self._lock:
            close, self._client, self._close = self._close, None, None
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - the app is exiting: a cluster already gone is fine
                pass


def _tracker_with_real_stderr() -> None:
    """Start multiprocessing's resource tracker on the real stderr before a LocalCluster spawns.

    Under Textual ``sys.stderr`` is a capture whose ``fileno()`` is -1: the tracker, started on
    the first spawn, would be handed that and every worker process would fail to start.
    """
    import sys
    from multiprocessing import resource_tracker

    captured = sys.stderr
    try:
        sys.stderr = sys.__stderr__
        resource_tracker.ensure_running()
    finally:
        sys.stderr = captured


def connection(app, settings) -> ClusterConnection | None:
    address = getattr(settings, "cluster", None)
    if not address:
        return None
    conn = getattr(app, "_cluster_connection", None)
    if conn is None or conn.address != address:
        conn = ClusterConnection(address)
        app._cluster_connection = conn
    return conn


class _Held:
    """A job's events, held until its view is in the model, then passed to the app's pump."""

    def __init__(self, pump):
        self.pump = pump
        self._lock = threading.Lock()
        self._held: list | None = []

    def __call__(self, event) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(event)
                return
        self.pump(event)

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        for event in held or ():
            self.pump(event)


def queue_on_cluster(app, settings, pool, ids: IdRanges, dst_dir: str, threads: int,
                     name: str | None = None) -> int:
    """Send a job on ``settings``' dataset to ``settings.cluster``; returns its id at once (the
    job shows once submitted). From the UI thread: opening the cluster and planning run in a
    thread; a failure is a notice. ``dst_dir`` is made absolute (workers have their own cwd).
    """
    conn = connection(app, settings)
    if conn is None:
        raise ValueError("no cluster in the config (defaults.cluster)")
    job_id = app.downloader.next_job_id()  # one counter for local and cluster jobs: ids never clash
    held = _Held(app.pump)
    # what each worker builds the pool from; a remote cluster is not sent the token (its workers
    # use their own HF_TOKEN), a local:N one, our own processes over TLS, is
    spec = spec_for(settings.cluster, settings.dataset(), send_token=False)
    label = (name or f"{settings.repo} {ids}")[:80]
    dst_dir = os.path.abspath(os.path.expanduser(dst_dir))

    def submit() -> None:
        from pools.cluster import ClusterRunner  # lazy: optional dependency (dask)

        try:
            client = conn.client()
            job = ClusterRunner(client, threads=threads).submit(spec, ids, dst_dir, on_event=held,
                                                                 job_id=job_id, name=f"{label} · cluster"[:80])
        except Exception as exc:  # noqa: BLE001 - a scheduler we cannot reach, a repo that is gone

            app.call_from_thread(app.notify, f"Job not sent to {conn.address}: {error_text(exc, settings.token)}",
                                 title="Cluster", severity="error")
            return
        app.call_from_thread(_added, app, job, pool, ids, held, threads)

    threading.Thread(target=submit, daemon=True, name=f"cluster-submit-{job_id}").start()
    return job_id


def _added(app, job, pool, ids, held: _Held, threads: int) -> None:
    view = app.track_job(job, pool, ids, threads, before_flush=held.release)
    app.notify(f"Job #{view.number}: {plural(len(ids), 'id')} on {plural(len(job.tasks), 'task')}", title="Sent to the cluster",
               timeout=3)


def shutdown_clusters(app) -> None:
    """Cancel the app's cluster jobs and close its cluster (the app is exiting)."""
    for view in list(app.model.jobs.values()):
        job = view.job
        if view.active and hasattr(job, "tasks") and hasattr(job, "cancel"):
            job.cancel()
    conn = getattr(app, "_cluster_connection", None)
    if conn is not None:
        conn.close()
