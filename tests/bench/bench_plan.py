"""Benchmark: CPU to plan the range ``1-100000000`` over a repo of 1,000 archives, and peak RSS.

Not a test (pytest collects only ``test_*.py``); a script that prints figures.

    python tests/bench/bench_plan.py                       # 3 rounds
    python tests/bench/bench_plan.py --range 1-10000000 --rounds 1 --markdown

The repo ``bench/plan`` (base level 3: 1,000 archives) holds ``--per-archive`` tiny files per
archive (ids ``1000*k + residue``), all inside the range. The loopback Hub serves it (no other
network). Every job runs in a fresh child process through ``Downloader`` (``Downloader.submit``
then ``Job.wait``), CPU as user+sys of the process over the job, peak RSS as VmHWM:

1. an untimed first job fills the huggingface_hub cache with the 1,000 indexes and the destination
   with the files;
2. **range**: the job ``1-100000000`` again: every index cached, every file present (verified in
   place, not fetched): what is left is planning 100,000,000 ids, of which all but a few thousand
   are missing;
3. **same files as a list**: the job of exactly the ids that exist, same cache and destination.

Planning CPU = (2) - (3): what the range costs beyond the files it finds. Goal: under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    HERE,
    ROOT,
    check_files,
    child_env,
    command_line,
    goal,
    mib,
    start_hub,
)

REPO = "bench/plan"
GOAL_S = 1.0


def child(spec_file: str) -> int:
    import resource

    from bench_clients import peak_rss_kb

    from pools import Downloader, IncrementIDDataPool

    spec = json.loads(Path(spec_file).read_text())
    pool = IncrementIDDataPool(REPO, base_level=3, endpoint=spec["endpoint"])
    ids = spec["ids"]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with Downloader(max_workers=spec["workers"]) as dl:
        job = dl.submit(pool, ids, spec["dst"], save_metainfo=False)
        report = job.wait()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "wall": wall, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "rss_kb": peak_rss_kb(), "state": report.state, "error": report.error,
        "downloaded": len(report.downloaded), "skipped": len(report.skipped),
        "missing": len(report.missing), "failed": len(report.failed),
    }))
    return 0


def run_child(spec: dict, work: Path, home: Path, endpoint: str) -> dict:
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = subprocess.run([sys.executable, str(HERE / "bench_plan.py"), "--child", str(spec_file)], check=False,
                         cwd=ROOT, env=child_env(home, endpoint, ours=True), capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["state"] != "done" or res["failed"]:
        raise SystemExit(f"job did not complete: state {res['state']}, {res['failed']} failed, {res['error']}")
    return res


def parse_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise SystemExit(f"--range must look like A-B with A <= B, got {text!r}")
    return int(first), int(last)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--range", default="1-100000000", help="the id range planned (default 1-100000000)")
    p.add_argument("--archives", type=int, default=1000, help="archives in the repo (at most 1000)")
    p.add_argument("--per-archive", type=int, default=2, help="files per archive")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    first, last = parse_range(args.range)
    if not 1 <= args.archives <= 1000:
        p.error("--archives must be 1..1000 (base level 3)")

    from bench_data import build_plan_repo

    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-plan-"))
    try:
        root = work / "hub"
        t0 = time.perf_counter()
        ds = build_plan_repo(root, REPO, archives=args.archives, per_archive=args.per_archive)
        present = [rid for rid in ds.ids["all"] if first <= rid <= last]
        print(f"repo: {len(ds.files):,} files in {ds.archives} archives ({len(present):,} in the range), "
              f"built in {time.perf_counter() - t0:.1f} s", flush=True)
        home, dst = work / "hf-home", work / "dst"
        spec = {"dst": str(dst), "workers": args.workers}
        runs: dict[str, list[dict]] = {"range": [], "list": []}
        with start_hub(root) as hub:
            spec["endpoint"] = hub.url
            cold = run_child(dict(spec, ids=args.range), work, home, hub.url)
            _, bad = check_files(dst, ds.expected(present))
            if bad:
                raise SystemExit(f"the first job left {len(bad)} files missing or wrong, e.g. {bad[0]}")
            print(f"  first job (cold cache): {cold['wall']:.2f} s wall, {cold['cpu']:.2f} s CPU, "
                  f"{cold['downloaded']:,} downloaded, {cold['missing']:,} missing", flush=True)
            for rnd in range(args.rounds):
                for kind in ("range", "list") if rnd % 2 == 0 else ("list", "range"):
                    hub.clear_log()
                    ids = args.range if kind == "range" else present
                    res = run_child(dict(spec, ids=ids), work, home, hub.url)
                    res["requests"] = len(hub.request_log)
                    runs[kind].append(res)
                    print(f"  round {rnd + 1} {kind:5}: {res['wall']:.2f} s wall, {res['cpu']:.2f} s CPU, "
                          f"{res['rss_kb'] / 1024:.0f} MiB RSS, {res['skipped']:,} present, "
                          f"{res['missing']:,} missing, {res['requests']} requests", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(kind, key):
        return statistics.median(r[key] for r in runs[kind])

    plan = med("range", "cpu") - med("list", "cpu")
    n = last - first + 1
    rows = [(f"job `{args.range}` ({n:,} ids), files present", f"{med('range', 'cpu'):.2f} s",
             f"{med('range', 'wall'):.2f} s", mib(med("range", "rss_kb"))),
            (f"job of the {len(present):,} ids that exist, as a list", f"{med('list', 'cpu'):.2f} s",
             f"{med('list', 'wall'):.2f} s", mib(med("list", "rss_kb"))),
            ("planning the range (the difference)", f"**{plan:.2f} s**", "", "")]
    print()
    if args.markdown:
        print(f"`{command_line('bench_plan.py', argv)}` ({os.cpu_count()} CPUs; median of {args.rounds} rounds)\n")
        print(f"| {ds.archives:,} archives, indexes cached | CPU | wall | peak RSS |\n|---|---:|---:|---:|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print(f"{r[0]:55} CPU {r[1].strip('*'):>8}  wall {r[2]:>8}  RSS {r[3]:>8}")
    print("\n" + goal(plan < GOAL_S, f"planning {n:,} ids over {ds.archives} archives under {GOAL_S:g} s of CPU "
                      f"({plan:.2f} s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
