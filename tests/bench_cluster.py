"""Cluster benchmark (issue 13): the sparse scenario (one wanted file in each of 300 archives) at
40 ms per request, the engine on 12 threads in this process vs ``local:2`` and ``local:4`` Dask
clusters with the same total of requests in flight, then twice and four times as many; and a
rate-limited run showing the shared budget keeps the whole cluster under the Hub's quota.

    python tests/bench_cluster.py [--archives 300] [--latency-ms 40]

Prints figures; it asserts nothing about speed (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archives", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--quota", type=int, default=60, help="resolver quota of the rate-limited run")
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.environ["HF_HOME"] = str(work / "hf-home")
    from bench_common import start_hub
    from bench_data import build_small
    from distributed import Client, LocalCluster

    from pools import Downloader, IncrementIDDataPool
    from pools.cluster import ClusterRunner
    from pools.cluster.runner import PoolSpec

    ds = build_small(work / "hub", sparse_archives=args.archives)
    ids = ds.ids["sparse"]
    hub = start_hub(work / "hub", latency_ms=args.latency_ms)
    spec = PoolSpec(IncrementIDDataPool, ds.repo, base_level=3, endpoint=hub.url)
    results: dict[str, float] = {}

    def clear(dst: Path) -> None:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(work / "hf-home", ignore_errors=True)  # every run fetches its indexes

    def local(threads: int) -> float:
        dst = work / f"local-{threads}"
        clear(dst)
        start = time.perf_counter()
        with Downloader(max_workers=threads) as dl:
            report = dl.submit(IncrementIDDataPool(ds.repo, base_level=3, endpoint=hub.url), ids, str(dst)).wait()
        took = time.perf_counter() - start
        assert report.ok and len(report.downloaded) == len(ids), report.error
        return took

    print(f"sparse scenario: {len(ids)} files in {len(ids)} archives, {args.latency_ms:g} ms per request")
    print(f"{'run':28} {'in flight':>9} {'seconds':>8} {'files/s':>8} {'vs local':>9}")
    for total in (12, 24, 48):
        base = local(total)
        results[f"local {total}"] = base
        print(f"{'local threads':28} {total:9d} {base:8.2f} {len(ids) / base:8.1f} {'':>9}")
        for n in (2, 4):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   scheduler_port=0, dashboard_address=None)
            client = Client(cluster)
            try:
                client.wait_for_workers(n)
                client.run(__import__, "pools.cluster.runner")  # a running cluster has its imports done
                dst = work / f"cluster-{n}-{total}"
                clear(dst)
                start = time.perf_counter()
                runner = ClusterRunner(client, threads=total // n, files_per_task=max(1, len(ids) // (n * 4)))
                report = runner.submit(spec, ids, str(dst)).wait()
                took = time.perf_counter() - start
            finally:
                client.close()
                cluster.close()
            assert report.ok and len(report.downloaded) == len(ids), report.error
            overhead = (took - base) / base * 100
            note = f"{overhead:+8.1f}%" + (" (goal < 10%)" if total == 12 else "")
            print(f"{f'local:{n} x {total // n} threads':28} {total:9d} {took:8.2f} {len(ids) / took:8.1f} {note}")
    hub.stop()

    # the shared budget: a quota smaller than the job needs, four worker processes
    from app.hub.server import HubServer
    limited = HubServer(work / "hub", resolver_quota=args.quota, window=args.window).start()
    cluster = LocalCluster(n_workers=4, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=0, dashboard_address=None)
    client = Client(cluster)
    try:
        dst = work / "limited"
        clear(dst)
        start = time.perf_counter()
        spec = PoolSpec(IncrementIDDataPool, ds.repo, base_level=3, endpoint=limited.url)
        report = ClusterRunner(client, threads=3, files_per_task=max(1, len(ids) // 16)).submit(spec, ids, str(dst)).wait()
        took = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    refused = sum(1 for r in limited.request_log if r.status == 429)
    resolves = limited.resolves
    limited.stop()
    windows = max(1.0, took / args.window)
    print(f"rate-limited, local:4 x 3 threads, quota {args.quota} per {args.window:g}s: {resolves} resolves in "
          f"{took:.1f}s ({resolves / windows:.0f} per window on average), {refused} answered 429, "
          f"job {'ok' if report.ok else 'FAILED'}, report.resolves={report.resolves}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
