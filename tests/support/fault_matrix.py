"""The fault table for the README (issue 5): what was tried, and how many files came through.

Not a test (pytest does not collect it): a script that prints markdown.

    python tests/support/fault_matrix.py                 # wire faults at scale, then the reliability tests
    python tests/support/fault_matrix.py --ids 600 --seeds 5
    python tests/support/fault_matrix.py --no-tests      # only the wire-fault table

Part 1 runs each kind of wire fault the loopback Hub can inject (seeded, at the rate shown, on
archives, indexes, HEADs and API calls alike) against a fresh download of ``--ids`` ids, once per
seed, and counts the files that arrived complete and verified (sha256 equal to the manifest the
repo was built from) and the files lost (absent, failed, or with other bytes).

Part 2 runs the fetch, plan, write, resume and command-line error tests (bad input, destinations,
interruptions) and lists each
case with its outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="cheesechaser-matrix-hfhome-")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_ENDPOINT", None)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from huggingface_hub import constants  # noqa: E402

from app.hub.dataset import build_repo  # noqa: E402
from app.hub.server import FaultConfig, HubServer  # noqa: E402
from pools import Downloader, IncrementIDDataPool  # noqa: E402
from pools.transport import RetryPolicy  # noqa: E402

EVERYWHERE = {"on_api": True, "on_head": True}
SCENARIOS = [
    ("latency 40 ms", dict(latency_ms=40)),
    ("HTTP 500/502/503", dict(error_rate=0.30, retry_after=0)),
    ("HTTP 429 + Retry-After: 0", dict(rate_429=0.30, retry_after=0)),
    ("connection dropped mid-body", dict(drop_rate=0.30)),
    ("body cut short", dict(truncate_rate=0.30)),
    ("one byte altered in flight", dict(corrupt_rate=0.30)),
    ("mix of all kinds (15 %)", dict(latency_ms=1, error_rate=0.05, rate_429=0.03, retry_after=0, drop_rate=0.03,
                                     truncate_rate=0.02, corrupt_rate=0.02)),
    ("mix of all kinds (30 %)", dict(latency_ms=1, error_rate=0.10, rate_429=0.05, retry_after=0, drop_rate=0.06,
                                     truncate_rate=0.05, corrupt_rate=0.04)),
]
RATE_OF = {"latency 40 ms": "every request"}
RETRY = RetryPolicy(attempts=12, backoff=0.005, max_backoff=0.05, jitter=0.5)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _count(dst: Path, manifest) -> tuple[int, int]:
    intact = lost = 0
    for files in manifest.files.values():
        for name, sha in files.items():
            p = dst / name
            if p.is_file() and _sha(p) == sha:
                intact += 1
            else:
                lost += 1
    return intact, lost


def wire_table(n_ids: int, seeds: int, workers: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="cheesechaser-matrix-"))
    try:
        root = work / "hub"
        (root / "datasets").mkdir(parents=True)
        per = 25  # ids per archive: a few hundred ids over about a dozen archives
        ids = sorted(a + 1000 * k for a in range(-(-n_ids // per)) for k in range(1, per + 1))[:n_ids]
        resources = {rid: {f"{rid}.bin": random.Random(rid).randbytes(1500 + rid % 3000)} for rid in ids}
        manifest = build_repo(root, "matrix/faults", resources, base_level=3)
        rows = []
        with HubServer(root) as hub:
            for name, cfg in SCENARIOS:
                for merge_gap, how in ((0, "one GET per file"), (512 * 1024, "merged GETs")):
                    totals = Counter()
                    kinds = Counter()
                    t = time.monotonic()
                    for seed in range(seeds):
                        dst = work / f"dst-{len(rows)}-{seed}"
                        constants.HF_HUB_CACHE = str(work / f"cache-{len(rows)}-{seed}")
                        hub.faults = FaultConfig(**cfg, seed=seed, **EVERYWHERE)
                        hub.clear_log()
                        pool = IncrementIDDataPool("matrix/faults", endpoint=hub.url, retry=RETRY)
                        with Downloader(max_workers=workers, merge_gap=merge_gap, retry=RETRY) as dl:
                            report = dl.submit(pool, ids, str(dst)).wait(600)
                        log = hub.request_log
                        intact, lost = _count(dst, manifest)
                        leftovers = sum(1 for p in dst.rglob("*") if p.name.endswith(".part"))
                        totals.update(requests=len(log), faulted=sum(1 for r in log if r.fault),
                                      intact=intact, lost=lost, failed=len(report.failed),
                                      leftovers=leftovers, runs=1, ok=int(report.ok))
                        kinds.update(r.fault for r in log if r.fault)
                        if not report.ok:
                            print(f"  ! {name}, {how}, seed {seed}: {report.state}: {report.error} "
                                  f"{dict(list(report.failed.items())[:3])}", file=sys.stderr, flush=True)
                        shutil.rmtree(dst, ignore_errors=True)
                    hub.faults = None
                    share = totals["faulted"] / totals["requests"] if totals["requests"] else 0
                    hit = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "-"
                    rate = RATE_OF.get(name, f"{share:.0%} of {totals['requests']:,} requests")
                    rows.append(f"| {name} | {how} | {rate} | {hit} | {totals['intact']:,} | "
                                f"{totals['lost']} | {totals['leftovers']} | "
                                f"{totals['ok']}/{totals['runs']} | {time.monotonic() - t:.1f} s |")
                    print(f"  {name}, {how}: {totals['intact']} intact, {totals['lost']} lost", file=sys.stderr,
                          flush=True)
        header = [
            f"Wire faults: {n_ids} ids ({sum(len(f) for f in manifest.files.values())} files in "
            f"{len(manifest.archives)} archives) downloaded {seeds}x per row (seeds 0..{seeds - 1}), "
            f"{workers} workers, up to {RETRY.attempts} attempts per request; faults hit archives, indexes, "
            f"HEADs and API calls.",
            "",
            "| fault | fetching | faulted requests | faults seen | files intact | files lost | partial files "
            "left | runs ok | time |",
            "|---|---|---|---|---:|---:|---:|---:|---:|",
        ]
        return header + rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Outcomes:
    """A pytest plugin that keeps each test's outcome."""

    def __init__(self):
        self.results: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.results[report.nodeid.split("::", 1)[1]] = report.outcome


RELIABILITY = ("tests/pools/engine/test_fetch.py", "tests/pools/engine/test_plan.py", "tests/pools/engine/test_write.py",
               "tests/pools/engine/test_resume.py", "tests/app/commands/test_download_errors.py")


def tests_table() -> list[str]:
    import pytest

    plugin = _Outcomes()
    with contextlib.redirect_stdout(sys.stderr):  # pytest's own output is not part of the table
        code = pytest.main([str(HERE.parents[1] / f) for f in RELIABILITY] + ["-q", "-p", "no:cacheprovider",
                                                                            "-p", "no:logging"], plugins=[plugin])
    rows = ["| case | outcome |", "|---|---|"]
    for nodeid, outcome in plugin.results.items():
        rows.append(f"| `{nodeid}` | {outcome} |")
    rows.append("")
    rows.append(f"pytest exit code {int(code)}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--no-tests", action="store_true", help="skip part 2 (the reliability tests)")
    args = parser.parse_args(argv)
    cmd = f"python tests/support/fault_matrix.py --ids {args.ids} --seeds {args.seeds} --workers {args.workers}"
    lines = [f"`{cmd}` ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})", ""]
    lines += wire_table(args.ids, args.seeds, args.workers)
    if not args.no_tests:
        lines += ["", f"Bad input, destinations, interruptions (`python -m pytest {' '.join(RELIABILITY)} -v`):",
                  ""]
        lines += tests_table()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
