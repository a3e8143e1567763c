"""Benchmark: this engine against cheesechaser 0.2.2, side by side, on the loopback Hub.

Not a test (pytest collects only ``test_*.py``); prints figures and a markdown table for the README.

    python tests/bench_download.py                 # 3 rounds, 12 workers, 40 ms per request
    python tests/bench_download.py --rounds 5 --workers 8 --latency-ms 80

What it does:

* builds one dataset repo with ``build_repo`` (base level 3, files of 50-500 KB) in a temporary
  folder and serves it with ``HubServer`` and ``FaultConfig(latency_ms=...)`` on every request
  (file GETs and HEADs and API calls alike: a stand-in for the real Hub's round trip);
* runs each client in its own subprocess (the peer in its own venv: ``CHEESECHASER_PEER_PYTHON``
  or ``/work/peer/bin/python``), with the same ids and the same ``max_workers``, alternating which
  goes first in each round, and measures inside the child: wall time of the
  ``batch_download_to_directory`` call, user+sys CPU time of the process over that call, and the
  process's peak RSS;
* checks every file of every run against the dataset's sha256 (outside the timings).

Scenarios:

* ``dense``: a few hundred ids spread over about a dozen archives. **Cold**: a fresh huggingface_hub
  cache (no index cached) and an empty destination for every run, for both clients.
* ``sparse``: one id in each of a few hundred archives (one index per id). **Cold**, as above.
* ``sparse-warm``: the sparse job into an empty destination, with the indexes already in the
  huggingface_hub cache from an untimed run (a second batch from the same archives, a restart).
* ``rerun``: the dense job again with every file already in the destination. **Warm** for both:
  the cache holds the indexes from an untimed first run into the same destination (cheesechaser
  re-downloads the files, having no resume; this engine verifies their sha256 and fetches none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPO = "bench/booru"
DENSE_ARCHIVES = range(0, 12)  # residues (archives images/0000.tar .. images/0011.tar)
DENSE_PER_ARCHIVE = 25  # wanted ids per dense archive (of 40 in it)
SPARSE_ARCHIVES = range(100, 400)  # 300 archives, one wanted id in each
# name: (ids, warm huggingface_hub cache, files already in the destination)
SCENARIOS = {
    "dense": ("dense", False, False),
    "sparse": ("sparse", False, False),
    "sparse-warm": ("sparse", True, False),
    "rerun": ("dense", True, True),
}

# Run inside the child: argv = client, ids file, destination, workers. Prints one JSON line.
CHILD = r"""
import json, os, resource, sys, time
client, ids_file, dst, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ids = json.load(open(ids_file))
if client == "peer":
    import logging
    logging.disable(logging.WARNING)
    from cheesechaser.datapool import IncrementIDDataPool
    pool = IncrementIDDataPool(REPO, base_level=3)
    kw = {"silent": True}
else:
    from pools import IncrementIDDataPool
    pool = IncrementIDDataPool(REPO, base_level=3)
    kw = {}
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
pool.batch_download_to_directory(ids, dst, max_workers=workers, save_metainfo=False, **kw)
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
rss_kb = r1.ru_maxrss  # on Linux this survives exec (the parent's size): prefer the peak of this image
try:
    with open("/proc/self/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"wall": wall, "cpu": cpu, "rss_kb": rss_kb}))
""".replace("REPO", repr(REPO))


def peer_python() -> str | None:
    exe = os.environ.get("CHEESECHASER_PEER_PYTHON")
    if exe:
        return exe
    default = "/work/peer/bin/python"
    return default if os.path.exists(default) else None


def build(root: Path, seed: int = 0) -> tuple[dict[int, dict[str, str]], list[int], list[int]]:
    """The dataset: dense archives with 40 files, sparse ones with the wanted file and 3 small others."""
    from app.hub.dataset import build_repo

    rng = random.Random(seed)
    resources: dict[int, dict[str, bytes]] = {}
    dense, sparse = [], []

    def blob(size: int) -> bytes:
        return rng.randbytes(size)

    for residue in DENSE_ARCHIVES:
        for k in range(40):
            rid = 1000 * (k + 1) + residue
            resources[rid] = {f"{rid}.webp": blob(rng.randint(50_000, 500_000))}
            if k < DENSE_PER_ARCHIVE:
                dense.append(rid)
    for residue in SPARSE_ARCHIVES:
        for k in range(4):
            rid = 1000 * (k + 1) + residue
            wanted = k == 2
            resources[rid] = {f"{rid}.webp": blob(rng.randint(50_000, 500_000) if wanted else 20_000)}
            if wanted:
                sparse.append(rid)
    ordered = dict(sorted(resources.items()))
    manifest = build_repo(root, REPO, ordered, base_level=3)
    return manifest.files, dense, sparse


def run_client(python: str, client: str, ids_file: Path, dst: Path, hf_home: Path, workers: int,
               endpoint: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    out = subprocess.run([python, "-c", CHILD, client, str(ids_file), str(dst), str(workers)],
                         cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise SystemExit(f"{client} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(dst: Path, files: dict[int, dict[str, str]], ids: list[int], client: str) -> None:
    for rid in ids:
        for name, sha in files[rid].items():
            path = dst / name
            if not path.is_file():
                raise SystemExit(f"{client}: {name} missing from {dst}")
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != sha:
                    raise SystemExit(f"{client}: {name} has the wrong bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--only", choices=list(SCENARIOS), action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--no-peer", action="store_true", help="run this engine only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    from app.hub.server import FaultConfig, HubServer

    peer = None if args.no_peer else peer_python()
    if peer is None and not args.no_peer:
        print("cheesechaser 0.2.2 not found (set CHEESECHASER_PEER_PYTHON); running this engine only")
    ours = sys.executable
    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-"))
    try:
        hub_root = work / "hub"
        (hub_root / "datasets").mkdir(parents=True)
        t0 = time.perf_counter()
        files, dense, sparse = build(hub_root)
        size = sum(p.stat().st_size for p in (hub_root / "datasets").rglob("*.tar"))
        print(f"dataset: {len(files)} ids in {len(list((hub_root / 'datasets').rglob('*.tar')))} archives, "
              f"{size / 2**20:.0f} MiB, built in {time.perf_counter() - t0:.1f}s")
        faults = FaultConfig(latency_ms=args.latency_ms, on_head=True, on_api=True)
        scenarios = [s for s in SCENARIOS if not args.only or s in args.only]
        clients = [("peer", peer), ("ours", ours)] if peer else [("ours", ours)]
        results: dict[tuple[str, str], list[dict]] = {}
        with HubServer(hub_root, faults=faults) as hub:
            for scenario in scenarios:
                which, warm_cache, keep_dst = SCENARIOS[scenario]
                ids = sparse if which == "sparse" else dense
                ids_file = work / f"{scenario}.json"
                ids_file.write_text(json.dumps(ids))
                warm: dict[str, tuple[Path, Path]] = {}
                if warm_cache:  # an untimed first run fills the cache (and, for a rerun, the destination)
                    for name, python in clients:
                        home, dst = work / f"{scenario}-{name}-home", work / f"{scenario}-{name}-dst"
                        run_client(python, name, ids_file, dst, home, args.workers, hub.url)
                        check(dst, files, ids, name)
                        warm[name] = (home, dst)
                        if not keep_dst:
                            shutil.rmtree(dst)
                for rnd in range(args.rounds):
                    order = clients if rnd % 2 == 0 else clients[::-1]
                    for name, python in order:
                        home = warm[name][0] if warm_cache else work / f"{scenario}-{name}-{rnd}-home"
                        dst = warm[name][1] if keep_dst else work / f"{scenario}-{name}-{rnd}-dst"
                        res = run_client(python, name, ids_file, dst, home, args.workers, hub.url)
                        check(dst, files, ids, name)
                        results.setdefault((scenario, name), []).append(res)
                        print(f"  {scenario:11} round {rnd + 1} {name:4}: {res['wall']:6.2f}s wall, "
                              f"{1000 * res['cpu'] / len(ids):6.2f} ms CPU/file, {res['rss_kb'] / 1024:5.0f} MiB RSS",
                              flush=True)
                        if not keep_dst:
                            shutil.rmtree(dst, ignore_errors=True)
                        if not warm_cache:
                            shutil.rmtree(home, ignore_errors=True)
        print()
        print(table(results, scenarios, bool(peer), args, len(dense), len(sparse)))
        print()
        extra = "" if args.rounds == 3 and args.workers == 12 and args.latency_ms == 40 else \
            f" --rounds {args.rounds} --workers {args.workers} --latency-ms {args.latency_ms:g}"
        print(f"Reproduce: python tests/bench_download.py{extra}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def table(results, scenarios, with_peer, args, n_dense, n_sparse) -> str:
    def med(scenario, name, key):
        return statistics.median(r[key] for r in results[(scenario, name)])

    what = {"dense": f"dense: {n_dense} ids in {len(DENSE_ARCHIVES)} archives, cold",
            "sparse": f"sparse: {n_sparse} ids, one per archive, cold",
            "sparse-warm": "sparse, indexes already in the hf cache",
            "rerun": f"rerun: dense again, all {n_dense} files present, warm"}
    lines = [f"Median of {args.rounds} alternating runs, {args.workers} workers, "
             f"{args.latency_ms:g} ms per request, files of 50-500 KB, base level 3.", ""]
    if with_peer:
        lines += ["| scenario | cheesechaser 0.2.2 | this engine | speed-up | CPU/file peer | CPU/file ours | peak RSS peer | peak RSS ours |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
    else:
        lines += ["| scenario | this engine | CPU/file | peak RSS |", "|---|---:|---:|---:|"]
    for s in scenarios:
        n = n_sparse if SCENARIOS[s][0] == "sparse" else n_dense
        ours_wall, ours_cpu, ours_rss = (med(s, "ours", k) for k in ("wall", "cpu", "rss_kb"))
        if with_peer:
            peer_wall, peer_cpu, peer_rss = (med(s, "peer", k) for k in ("wall", "cpu", "rss_kb"))
            lines.append(f"| {what[s]} | {peer_wall:.2f} s | {ours_wall:.2f} s | **{peer_wall / ours_wall:.1f}x** | "
                         f"{1000 * peer_cpu / n:.1f} ms | {1000 * ours_cpu / n:.1f} ms | "
                         f"{peer_rss / 1024:.0f} MiB | {ours_rss / 1024:.0f} MiB |")
        else:
            lines.append(f"| {what[s]} | {ours_wall:.2f} s | {1000 * ours_cpu / n:.1f} ms | {ours_rss / 1024:.0f} MiB |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
