"""Load benchmark (issue 5): a sparse range of a million ids and a dense one of a hundred thousand.

Not a test (pytest does not collect it): a script that prints figures.

    python tests/bench/bench_load.py                      # builds the repo once under /tmp, then runs
    python tests/bench/bench_load.py --latency-ms 40      # with the Hub's per-request latency
    python tests/bench/bench_load.py --dense 20000        # smaller, quicker

The synthetic repo ``bench/load`` (base level 3, so 1000 archives) holds

* **dense** ids ``2,000,000 .. 2,000,000 + DENSE - 1``: every id present, one tiny file each
  (100 000 files by default, 100 per archive);
* **sparse** ids: ``SPARSE_HITS`` ids drawn (seeded) from ``0 .. SPARSE_RANGE - 1`` (10 000 of a
  million by default), spread over all 1000 archives.

Each job runs in a fresh child process (``Downloader`` into an empty folder, fresh huggingface_hub
cache) against a loopback Hub in this process, so the child's peak RSS is the engine's alone:

* sparse: the range ``0-999999`` (a million ids, 99 % of them missing);
* dense: the range ``2000000-2099999`` (a hundred thousand files);
* dense again into the same folder (resume: every file verified in place, no ranged GET).

Printed per job: ids, files, missing, failed, time to first file, total time, files/s, peak RSS
(and the RSS right after imports, for comparison), CPU seconds, requests the Hub served.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from app.hub.dataset import build_repo
from app.hub.server import FaultConfig, HubServer

REPO = "bench/load"
DENSE_FIRST = 2_000_000

CHILD = r"""
import json, os, resource, sys, threading, time
t_import = time.monotonic()
from pools import Downloader, IncrementIDDataPool, events as ev
def peak_rss_kb():
    # VmHWM: this program's own high-water mark (ru_maxrss would include the parent's, from fork)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss_after_import = peak_rss_kb()
root, url, ids, dst, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
first = {}
lock = threading.Lock()
def on_event(e):
    if isinstance(e, ev.ResourceDone) and "file" not in first:
        with lock:
            first.setdefault("file", time.monotonic() - start)
pool = IncrementIDDataPool(sys.argv[6], base_level=3, endpoint=url)
start = time.monotonic()
with Downloader(max_workers=workers, on_event=on_event) as dl:
    job = dl.submit(pool, ids, dst, save_metainfo=False)
    report = job.wait()
elapsed = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "state": report.state, "error": report.error, "ids": len(job.ids),
    "downloaded": len(report.downloaded), "skipped": len(report.skipped),
    "missing": len(report.missing), "failed": len(report.failed), "files": report.files,
    "bytes": report.nbytes, "first_file_s": first.get("file"), "elapsed_s": elapsed,
    "peak_rss_kb": peak_rss_kb(), "rss_after_import_kb": rss_after_import,
    "cpu_s": ru.ru_utime + ru.ru_stime,
}))
"""


def _payload(rid: int) -> bytes:
    return rid.to_bytes(8, "big") * 24  # 192 bytes: small enough that per-file costs dominate


def build(root: Path, dense: int, sparse_range: int, sparse_hits: int, seed: int) -> dict:
    """Build the repo under ``root`` unless a build with the same parameters is already there."""
    params = {"dense": dense, "sparse_range": sparse_range, "sparse_hits": sparse_hits, "seed": seed, "v": 1}
    marker = root / "bench-load.json"
    if marker.exists() and json.loads(marker.read_text()).get("params") == params:
        return json.loads(marker.read_text())
    if root.exists():
        shutil.rmtree(root)
    (root / "datasets").mkdir(parents=True)
    sparse = sorted(random.Random(seed).sample(range(sparse_range), sparse_hits))
    dense_ids = range(DENSE_FIRST, DENSE_FIRST + dense)

    def resources():
        for rid in sparse:
            yield rid, {f"{rid}.bin": _payload(rid)}
        for rid in dense_ids:
            yield rid, {f"{rid}.bin": _payload(rid)}

    t = time.monotonic()
    manifest = build_repo(root, REPO, resources(), base_level=3)
    info = {"params": params, "archives": len(manifest.archives), "files": len(manifest.ids),
            "bytes": sum(manifest.archive_sizes.values()), "build_s": round(time.monotonic() - t, 1)}
    marker.write_text(json.dumps(info))
    return info


def run_job(hub: HubServer, root: Path, ids: str, dst: Path, workers: int, cache: Path) -> dict:
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    hub.clear_log()
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), hub.url, ids, str(dst), str(workers), REPO],
                         check=False, capture_output=True, text=True, env=env, cwd=str(HERE.parents[1]))
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    log = hub.request_log
    result["requests"] = len(log)
    result["ranged_gets"] = sum(1 for r in log if r.method == "GET" and r.status == 206)  # not the 302s
    result["resolves"] = sum(1 for r in log if getattr(r, "kind", "resolve" if "/resolve/" in r.path else "")
                             == "resolve")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(), "cheesechaser-bench-load"),
                        help="where the synthetic repo is built (reused when its parameters match)")
    parser.add_argument("--dense", type=int, default=100_000, help="ids in the dense range (default 100000)")
    parser.add_argument("--sparse-range", type=int, default=1_000_000, help="size of the sparse range")
    parser.add_argument("--sparse-hits", type=int, default=10_000, help="ids of the sparse range that exist")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="per-request latency of the Hub")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    root = Path(args.root)
    print(f"building {REPO} under {root} (reused if already built) ...", file=sys.stderr, flush=True)
    info = build(root, args.dense, args.sparse_range, args.sparse_hits, args.seed)
    print(f"repo: {info['files']} files in {info['archives']} archives, "
          f"{info['bytes'] / 2**20:.0f} MiB (built in {info['build_s']} s)", file=sys.stderr)

    jobs = [
        ("sparse", f"0-{args.sparse_range - 1}", "fresh"),
        ("dense", f"{DENSE_FIRST}-{DENSE_FIRST + args.dense - 1}", "fresh"),
        ("dense, rerun", f"{DENSE_FIRST}-{DENSE_FIRST + args.dense - 1}", "same folder"),
    ]
    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-load-"))
    rows = []
    faults = FaultConfig(latency_ms=args.latency_ms) if args.latency_ms else None
    try:
        with HubServer(root, faults=faults, log_limit=1_000_000) as hub:
            for name, ids, where in jobs:
                dst = work / name.split(",")[0]
                cache = work / f"cache-{name.split(',')[0]}"
                print(f"{name}: {ids} ...", file=sys.stderr, flush=True)
                rows.append((name, ids, run_job(hub, root, ids, dst, args.workers, cache)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n`python tests/bench/bench_load.py --workers {args.workers} --latency-ms {args.latency_ms:g} "
          f"--dense {args.dense} --sparse-range {args.sparse_range} --sparse-hits {args.sparse_hits}` "
          f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")
    print("| job | ids in range | downloaded | skipped | missing | failed | first file | total | files/s "
          "| peak RSS | RSS after imports | CPU | requests (ranged GETs, resolves) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, ids, r in rows:
        n = r["downloaded"] + r["skipped"]
        first = f"{r['first_file_s']:.2f} s" if r["first_file_s"] is not None else "-"
        print(f"| {name} | {r['ids']:,} | {r['downloaded']:,} | {r['skipped']:,} | {r['missing']:,} | "
              f"{r['failed']} | {first} | {r['elapsed_s']:.1f} s | {n / r['elapsed_s']:,.0f} | "
              f"{r['peak_rss_kb'] / 1024:.0f} MiB | {r['rss_after_import_kb'] / 1024:.0f} MiB | "
              f"{r['cpu_s']:.1f} s | {r['requests']:,} ({r['ranged_gets']:,}, {r['resolves']:,}) |")
        if r["state"] != "done" or r["failed"]:
            print(f"  ! {name}: state {r['state']}, error {r['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
