"""Cluster benchmark (issue 13): the sparse scenario (one wanted file in each of 300 archives) at
40 ms per request, the engine on 12 threads in this process vs ``local:2`` and ``local:4`` Dask
clusters with the same total of requests in flight, then twice and four times as many; and a
rate-limited run showing the shared budget keeps the whole cluster under the Hub's quota.

    python tests/bench/bench_cluster.py [--archives 300] [--latency-ms 40] [--repeat 3] [--quota 150]

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
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archives", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row; the fastest is shown")
    parser.add_argument("--quota", type=int, default=150, help="resolver quota of the rate-limited run")
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.environ["HF_HOME"] = str(work / "hf-home")  # before the workers start: they share it
    from bench_common import start_hub
    from bench_data import build_small

    from pools import Downloader, IncrementIDDataPool
    from pools.cluster import ClusterRunner, open_client
    from pools.cluster.runner import PoolSpec

    ds = build_small(work / "hub", sparse_archives=args.archives)
    ids = ds.ids["sparse"]
    hub = start_hub(work / "hub", latency_ms=args.latency_ms)
    spec = PoolSpec(IncrementIDDataPool, ds.repo, base_level=3, endpoint=hub.url)

    def clear(dst: Path) -> None:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(work / "hf-home", ignore_errors=True)  # every run fetches its indexes

    def best(run) -> float:
        return min(run() for _ in range(max(1, args.repeat)))

    def local(threads: int) -> float:
        dst = work / f"local-{threads}"
        clear(dst)
        start = time.perf_counter()
        with Downloader(max_workers=threads) as dl:
            report = dl.submit(IncrementIDDataPool(ds.repo, base_level=3, endpoint=hub.url), ids, str(dst)).wait()
        took = time.perf_counter() - start
        assert report.ok and len(report.downloaded) == len(ids), report.error
        return took

    def on_cluster(client, n: int, total: int) -> float:
        dst = work / f"cluster-{n}-{total}"
        clear(dst)
        start = time.perf_counter()  # from submit (plan, commits, tasks) to the merged report
        report = ClusterRunner(client, threads=total // n).submit(spec, ids, str(dst)).wait()
        took = time.perf_counter() - start
        assert report.ok and len(report.downloaded) == len(ids), report.error
        return took

    totals = (12, 24, 48)
    print(f"sparse scenario: {len(ids)} files in {len(ids)} archives, {args.latency_ms:g} ms per request, "
          f"fastest of {args.repeat}")
    print("measured: submit to merged report on a running cluster (workers started and imports done: "
          "start-up is shown apart); every run fetches its indexes")
    print(f"{'run':26} {'in flight':>9} {'seconds':>8} {'files/s':>8} {'vs local, same in flight':>25}")
    base = {}
    for total in totals:
        base[total] = best(lambda: local(total))
        print(f"{'local threads':26} {total:9d} {base[total]:8.2f} {len(ids) / base[total]:8.1f}")
    for n in (2, 4):
        started = time.perf_counter()
        client, close = open_client(f"local:{n}")  # what --cluster local:N starts
        try:
            client.wait_for_workers(n)
            client.run(__import__, "pools.cluster.runner")
            startup = time.perf_counter() - started
            print(f"{f'local:{n} start-up':26} {'':9} {startup:8.2f}")
            for total in totals:
                took = best(lambda: on_cluster(client, n, total))
                overhead = (took - base[total]) / base[total] * 100
                scale = f"{total // 12}x" if total > 12 else "equal"
                note = f"{overhead:+8.1f}% ({scale}" + (", goal < 10%)" if total == 12 else
                                                         f"; {base[12] / took:.2f}x local 12's speed)")
                print(f"{f'local:{n} x {total // n} threads':26} {total:9d} {took:8.2f} {len(ids) / took:8.1f} "
                      f"{note:>25}")
        finally:
            close()
    hub.stop()
    limited_run(args, work, ds, ids, clear)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def limited_run(args, work: Path, ds, ids, clear) -> None:
    """The shared budget: a quota smaller than the job needs, four worker processes."""
    from app.hub.server import HubServer
    from pools import IncrementIDDataPool
    from pools.cluster import ClusterRunner, open_client
    from pools.cluster.runner import PoolSpec

    limited = HubServer(work / "hub", resolver_quota=args.quota, window=args.window).start()
    windows: dict[float, list[int]] = {}  # window start -> [resolves allowed, refused]
    take = limited.quota.take

    def counted(key):
        allowed, headers = take(key)
        start = limited.quota._windows[key][0]
        windows.setdefault(start, [0, 0])[0 if allowed else 1] += 1
        return allowed, headers
    limited.quota.take = counted  # the Hub's own count, window by window
    client, close = open_client("local:4")
    try:
        client.wait_for_workers(4)
        dst = work / "limited"
        clear(dst)
        start = time.perf_counter()
        spec = PoolSpec(IncrementIDDataPool, ds.repo, base_level=3, endpoint=limited.url)
        report = ClusterRunner(client, threads=3).submit(spec, ids, str(dst)).wait()
        took = time.perf_counter() - start
    finally:
        close()
        limited.stop()
    per_window = [allowed for allowed, _ in windows.values()]
    refused = sum(r for _, r in windows.values())
    print(f"rate-limited, local:4 x 3 threads, quota {args.quota} per {args.window:g}s: job "
          f"{'ok' if report.ok else 'FAILED'} in {took:.1f}s, report.resolves={report.resolves}")
    print(f"  resolves per window (the Hub's count): {per_window}, most {max(per_window, default=0)} "
          f"vs quota {args.quota}; {refused} answered 429")


if __name__ == "__main__":
    sys.exit(main())
