"""A real two-process Dask ``LocalCluster`` for the cluster tests (not a test module)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def local_cluster_client(workers: int = 2):
    """A ``Client`` of a fresh ``LocalCluster`` of ``workers`` processes on 127.0.0.1, closed after."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=0, dashboard_address=None)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
