"""Benchmark: this engine against cheesechaser 0.2.2 (and the floors), side by side, on the loopback Hub.

Not a test (pytest collects only ``test_*.py``); a script that prints figures, and with
``--markdown`` the README's tables with the command that made them.

    python tests/bench/bench_download.py                          # every scenario, 3 rounds
    python tests/bench/bench_download.py --scenario sparse-real --rounds 1
    python tests/bench/bench_download.py --quick --rounds 1       # smaller sizes, for a busy machine
    python tests/bench/bench_download.py --markdown > figures.md

Each client runs in its own child process (``tests/bench/bench_clients.py``; the peer in its own venv:
``CHEESECHASER_PEER_PYTHON`` or ``/work/peer/bin/python``), with the same ids and ``--workers``,
alternating which goes first from round to round. Inside the child: wall time of the download
call, user+sys CPU of the process over it, peak RSS. After each run every file is checked against
its sha256 (outside the timings); a client that did not bring every file back is shown as
incomplete, never timed as if it had. The Hub's request log gives requests and resolves served.

Scenarios (``--scenario NAME``, repeatable; all by default):

* ``dense``: 300 ids in 12 archives of 40 files (50-500 KB); **cold** (empty hf cache and destination).
* ``sparse``: one id in each of 300 archives of 4 files (one index per id); cold.
* ``sparse-warm``: the sparse job with the indexes already in the hf cache (an untimed first run).
* ``rerun``: the dense job again, every file already in the destination, cache warm.
  These four print the floor beside them: one latency for the revision's API call, then the
  requests a minimal client needs x latency / workers (per archive its index unless cached, and
  its resolve when the Hub redirects archives to a CDN; one ranged GET per file to fetch).
* ``sparse-real``: one wanted file in each of 300 archives whose indexes list 10,000 well-formed
  entries (~1.3 MB of JSON each, see ``tests/bench/bench_data.py``); clients: cheesechaser 0.2.2, an
  hfutils loop (``hf_tar_file_download`` per file), this engine, and the bare urllib3 client (the floor).
* ``rate-limited``: the loopback Hub's resolver quota scaled down (``--quota 100`` resolves per
  ``--window 10`` s); cheesechaser 0.2.2 and this engine on one-file-per-archive ids and on dense
  ids: wall, resolves per file, files per quota window, and the floor the quota sets.
* ``rate-limited-warm``: the one-file-per-archive job again under the quota, each client's indexes
  already in its cache (an untimed first run): a second query over the same repo.
* ``big``: 200 files of 5-20 MiB, no added latency: MB/s of this engine and of the bare client
  with ``--workers`` connections, peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    Served,
    check_files,
    command_line,
    hub_lacks,
    peer_python,
    redirect_hops,
    run_client,
    start_hub,
)
from bench_data import build_big, build_padded, build_small
from bench_tables import render_tables


@dataclass(frozen=True)
class Scenario:
    dataset: str  # "small", "real" or "big"
    cases: tuple[tuple[str, str], ...]  # (label, id set of the dataset)
    clients: tuple[str, ...]
    warm: bool = False  # an untimed first run fills each client's hf cache
    keep_dst: bool = False  # ... and its destination, kept for the timed runs
    latency: bool = True
    rate_limited: bool = False


SCENARIOS = {
    "dense": Scenario("small", (("dense", "dense"),), ("peer", "ours")),
    "sparse": Scenario("small", (("sparse", "sparse"),), ("peer", "ours")),
    "sparse-warm": Scenario("small", (("sparse", "sparse"),), ("peer", "ours"), warm=True),
    "rerun": Scenario("small", (("dense", "dense"),), ("peer", "ours"), warm=True, keep_dst=True),
    "sparse-real": Scenario("real", (("sparse", "sparse"),), ("peer", "hfutils", "ours", "bare")),
    "rate-limited": Scenario("small", (("sparse", "rl-sparse"), ("dense", "dense")), ("peer", "ours"),
                             rate_limited=True),
    "rate-limited-warm": Scenario("small", (("sparse", "rl-sparse"),), ("peer", "ours"), warm=True,
                                  rate_limited=True),
    "big": Scenario("big", (("all", "all"),), ("bare", "ours"), latency=False),
}
QUICK = {"sparse_archives": 60, "real_archives": 30, "rl_sparse": 60, "big_files": 24}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", "--only", dest="scenarios", choices=list(SCENARIOS), action="append",
                   help="run only this scenario (repeatable; all by default)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--latency-ms", type=float, default=40.0)
    p.add_argument("--quota", type=int, default=100, help="rate-limited: resolves per window")
    p.add_argument("--window", type=float, default=10.0, help="rate-limited: window, seconds")
    p.add_argument("--sparse-archives", type=int, default=300, help="sparse: archives (one id each)")
    p.add_argument("--real-archives", type=int, default=300, help="sparse-real: archives")
    p.add_argument("--real-entries", type=int, default=10_000, help="sparse-real: index entries per archive")
    p.add_argument("--rl-sparse", type=int, default=200, help="rate-limited: one-per-archive ids")
    p.add_argument("--big-files", type=int, default=200, help="big: files of 5-20 MiB")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes (" + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + ")")
    p.add_argument("--no-peer", action="store_true", help="leave cheesechaser 0.2.2 out")
    p.add_argument("--markdown", action="store_true", help="print the README's tables, with this command")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
    if args.rounds < 1 or args.workers < 1:
        p.error("--rounds and --workers must be at least 1")
    return args


class Bench:
    def __init__(self, args, work: Path) -> None:
        self.args = args
        self.work = work
        self.peer = None if args.no_peer else peer_python()
        self.datasets: dict = {}
        self.results: dict[tuple[str, str, str], list[dict]] = {}
        self.meta: dict[str, dict] = {}  # per scenario: what the tables need besides the runs

    def python(self, client: str) -> str | None:
        return self.peer if client == "peer" else sys.executable

    def dataset(self, name: str):
        if name not in self.datasets:
            root = self.work / f"hub-{name}"
            (root / "datasets").mkdir(parents=True)
            t0 = time.perf_counter()
            a = self.args
            if name == "small":
                ds = build_small(root, sparse_archives=a.sparse_archives)
                ds.ids["rl-sparse"] = ds.ids["sparse"][:a.rl_sparse]
            elif name == "real":
                ds = build_padded(root, "bench/real", archives=a.real_archives, entries=a.real_entries)
            else:
                ds = build_big(root, files=a.big_files, archives=max(1, a.big_files // 10))
            print(f"dataset {name}: {len(ds.files)} wanted-able files in {ds.archives} archives, "
                  f"{ds.nbytes / 2**20:,.0f} MiB of tars, {ds.index_bytes / ds.archives / 1e6:.2f} MB "
                  f"per index, built in {time.perf_counter() - t0:.1f} s", flush=True)
            self.datasets[name] = ds
        return self.datasets[name]

    def features(self, sc: Scenario) -> dict:
        return {"resolver_quota": self.args.quota, "window": self.args.window} if sc.rate_limited else {}

    def hub(self, sc: Scenario, ds):
        return start_hub(ds.root, self.args.latency_ms if sc.latency else 0.0, **self.features(sc))

    def run(self, name: str) -> None:
        sc = SCENARIOS[name]
        clients = [c for c in sc.clients if self.python(c)]
        if len(clients) < len(sc.clients):
            print(f"{name}: cheesechaser 0.2.2 not found (set CHEESECHASER_PEER_PYTHON); without it")
        lacking = hub_lacks(self.features(sc))
        if lacking:
            print(f"{name}: skipped: this loopback Hub has no {', '.join(lacking)} yet")
            return
        ds = self.dataset(sc.dataset)
        hub = self.hub(sc, ds)
        try:
            first = ds.ids[sc.cases[0][1]][0]
            archive, _ = ds.tasks([first])[0]
            hops = redirect_hops(hub, ds.repo, archive, archive[:-4] + ".json")
            self.meta[name] = {"hops": hops, "cases": {}}
            for label, key in sc.cases:
                ids = ds.ids[key]
                self.meta[name]["cases"][label] = {"ids": len(ids), "files": len(ds.expected(ids)),
                                                   "archives": len({a for a, _ in ds.tasks(ids)})}
                self.run_case(name, sc, label, ids, ds, clients, hub)
        finally:
            hub.stop()

    def run_case(self, name, sc, label, ids, ds, clients, hub) -> None:
        expected = ds.expected(ids)
        spec = {"repo": ds.repo, "base_level": ds.base_level, "ids": ids, "tasks": ds.tasks(ids),
                "workers": self.args.workers}
        tag = f"{name}-{label}"
        warm = {}
        if sc.warm:  # an untimed first run fills the cache (and, for a rerun, the destination)
            for client in clients:
                home, dst = self.work / f"{tag}-{client}-home", self.work / f"{tag}-{client}-dst"
                res = run_client(self.python(client), client, dict(spec, dst=str(dst)), self.work / "spec.json",
                                 home, hub.url)
                good, _ = check_files(dst, expected)
                if "error" in res or good < len(expected):
                    print(f"  {name}: warm-up run of {client} incomplete ({good}/{len(expected)} files): "
                          f"{res.get('error', '')}")
                warm[client] = (home, dst)
                if not sc.keep_dst:
                    shutil.rmtree(dst, ignore_errors=True)
        for rnd in range(self.args.rounds):
            order = clients if rnd % 2 == 0 else clients[::-1]
            for client in order:
                home = warm[client][0] if sc.warm else self.work / f"{tag}-{client}-{rnd}-home"
                dst = warm[client][1] if sc.keep_dst else self.work / f"{tag}-{client}-{rnd}-dst"
                if sc.rate_limited:
                    hub.quota.reset()  # a fresh quota window for every run, on the same endpoint
                hub.clear_log()
                res = run_client(self.python(client), client, dict(spec, dst=str(dst)),
                                 self.work / "spec.json", home, hub.url)
                res["served"] = asdict(Served.of(hub))
                res["good"], bad = check_files(dst, expected)
                res["files"] = len(expected)
                res["bytes"] = sum((dst / n).stat().st_size for n in expected if n not in bad)
                self.results.setdefault((name, label, client), []).append(res)
                self.print_run(name, label, rnd, client, res)
                if not sc.keep_dst:
                    shutil.rmtree(dst, ignore_errors=True)
                if not sc.warm:
                    shutil.rmtree(home, ignore_errors=True)

    def print_run(self, name, label, rnd, client, res) -> None:
        head = f"  {name:12} {label:6} round {rnd + 1} {client:7}:"
        if "wall" not in res:
            print(f"{head} FAILED: {res.get('error')}", flush=True)
            if res.get("stderr"):
                print("    " + res["stderr"].strip().replace("\n", "\n    ")[-1500:])
            return
        s = res["served"]
        done = "" if res["good"] == res["files"] else f"  INCOMPLETE: {res['good']}/{res['files']} files"
        own = f", report.resolves {res['resolves']}" if "resolves" in res else ""
        print(f"{head} {res['wall']:7.2f} s wall, {1000 * res['cpu'] / max(1, res['good']):6.2f} ms CPU/file, "
              f"{res['rss_kb'] / 1024:5.0f} MiB RSS, {s['requests']} requests ({s['resolves']} resolves, "
              f"{s['limited']} x 429){own}{done}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-"))
    bench = Bench(args, work)
    try:
        for name in args.scenarios or list(SCENARIOS):
            bench.run(name)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(render_tables(bench.results, bench.meta, args, command_line("bench_download.py", argv),
                        markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
