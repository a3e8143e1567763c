"""A metadata table fetched from the loopback Hub (302 to its CDN) while connections drop: the bytes
the server sent and the wall time, ours (``HubClient.download_file``, resumed from its ``.part``)
next to huggingface_hub's ``hf_hub_download`` (which resumes its ``.incomplete`` file).

    python tests/bench/bench_table_fetch.py [--mib 256] [--drop 0.5] [--rounds 3]

Each round is a fresh cache; the same seeded drops (the server cuts a body about half way) for both.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.hub.dataset import build_repo  # noqa: E402
from app.hub.faults import FaultConfig  # noqa: E402
from app.hub.server import HubServer  # noqa: E402
from pools.transport import HubClient, RetryPolicy  # noqa: E402


GOAL = 1.5  # a restart from zero after each drop costs ~1.5x the table or more


def _table(mib: int) -> bytes:
    block = hashlib.sha256(b"table").digest() * 32_768  # 1 MiB that does not compress
    return block * mib


def _ours(url: str, sha: str) -> None:
    client = HubClient(url, policy=RetryPolicy(attempts=40, backoff=0.0, max_backoff=0.0, jitter=0.0))
    client.download_file("t/meta", "meta/table.parquet", sha)


def _hf(url: str, sha: str) -> None:
    from huggingface_hub import hf_hub_download

    for _ in range(40):  # what a script does: call again after a failure (the .incomplete file resumes)
        try:
            hf_hub_download("t/meta", "meta/table.parquet", repo_type="dataset", revision=sha, endpoint=url)
            return
        except Exception:  # noqa: BLE001 - a dropped connection: try again
            continue
    raise RuntimeError("hf_hub_download gave up after 40 calls")


def run(mib: int, drop: float, rounds: int) -> None:
    table = _table(mib)
    rows = {"ours": [], "hf_hub_download": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub"
        build_repo(root, "t/meta", {1: {"1.bin": b"x" * 100}}, repo_files={"meta/table.parquet": table})
        hub = HubServer(root)
        hub.start()
        try:
            sha = HubClient(hub.url).resolve("t/meta", "main")
            for r in range(rounds):
                for name, fetch in (("ours", _ours), ("hf_hub_download", _hf)):
                    cache = Path(tmp) / f"cache-{name}-{r}"
                    os.environ["HF_HUB_CACHE"] = str(cache)
                    from huggingface_hub import constants

                    constants.HF_HUB_CACHE = str(cache)
                    hub.faults = FaultConfig(drop_rate=drop, paths="*.parquet", seed=r + 1)
                    hub.clear_log()
                    t0 = time.perf_counter()
                    fetch(hub.url, sha)
                    wall = time.perf_counter() - t0
                    sent = sum(rec.bytes_sent for rec in hub.data_gets("table.parquet"))
                    drops = sum(rec.fault == "drop" for rec in hub.data_gets("table.parquet"))
                    rows[name].append((wall, sent, drops))
        finally:
            hub.stop()
    print(f"`python tests/bench/bench_table_fetch.py --mib {mib} --drop {drop} --rounds {rounds}` "
          f"({mib} MiB table, {drop:.0%} of GETs dropped half way, medians of {rounds})")
    print("| client | wall | bytes sent by the server | x the table | drops |")
    print("|---|---|---|---|---|")
    ratio = {}
    for name, runs in rows.items():
        wall = statistics.median(w for w, _, _ in runs)
        sent = statistics.median(s for _, s, _ in runs)
        drops = statistics.median(d for _, _, d in runs)
        ratio[name] = sent / len(table)
        print(f"| {name} | {wall:.2f} s | {sent / 2**20:,.0f} MiB | {ratio[name]:.2f} | {drops:g} |")
    met = "met" if ratio["ours"] <= GOAL else "NOT met"
    print(f"goal: a dropped fetch goes on from its bytes, ours sent at most {GOAL}x the table: {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--drop", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run(args.mib, args.drop, args.rounds)


if __name__ == "__main__":
    main()
