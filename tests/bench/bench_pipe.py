"""Benchmark: ``SimpleImagePipe(pool).batch_retrieve(ids)``, ours against cheesechaser 0.2.2's, side by side.

Not a test; a script that prints figures.

    python tests/bench/bench_pipe.py                   # dense, dense x10, sparse; 40 ms per request
    python tests/bench/bench_pipe.py --rounds 1 --dense 120 --sparse 60

Each pipe runs in its own child process (the peer in its own venv: ``CHEESECHASER_PEER_PYTHON`` or
``/work/peer/bin/python``) and iterates the session to its end, as a training loop would; the
figures are images per second (wall time of the loop) and the child's peak RSS (VmHWM).

Scenarios, over JPEG images of 256x256 (~30 KB), on the loopback Hub with ``--latency-ms`` on
every request and its default redirects (the index 307 to its resolve cache, the archive 302 to
the CDN):

* ``dense``: ``--dense`` ids in 12 archives (``--dense`` / 12 wanted per archive);
* ``dense x10``: ten times as many ids in the same 12 archives: peak RSS must stay flat;
* ``sparse``: one id in each of ``--sparse`` archives of 4 files.

The floor: the requests a minimal client needs x latency / workers, plus one latency for the
revision's API call: per archive its index (as many requests as the Hub's redirects take, probed)
and the archive's redirect, and one ranged GET per image. For dense ids a ranged GET per image is more
than our merged reads need, so the floor is given for the sparse case, where every image is its
own archive.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from bench_clients import peak_rss_kb  # noqa: E402 - stdlib only: the peer's child runs it too


def child(client: str, spec_file: str) -> int:
    """One pipe run: prints a JSON line (wall, cpu, rss_kb, items, pixels)."""
    import logging

    logging.disable(logging.WARNING)
    spec = json.loads(Path(spec_file).read_text())
    if client == "peer":
        from cheesechaser.datapool import IncrementIDDataPool
        from cheesechaser.pipe import SimpleImagePipe
    else:
        from pools.datapool import IncrementIDDataPool
        from pools.pipe import SimpleImagePipe
    pool = IncrementIDDataPool(spec["repo"], base_level=3)
    pipe = SimpleImagePipe(pool)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    items = pixels = 0
    session = pipe.batch_retrieve(spec["ids"], max_workers=spec["workers"], silent=True)
    for item in session:
        items += 1
        pixels += item.data.size[0] * item.data.size[1]
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_kb": peak_rss_kb(), "items": items, "pixels": pixels}))
    os._exit(0)  # the peer's producer thread may linger on its 1 s polls


def build(root: Path, dense: int, sparse: int) -> dict[str, list[int]]:
    """The repo ``bench/pipe``: 12 dense archives holding ``10 * dense`` wanted images in all,
    ``sparse`` archives of 4 images (one wanted each)."""
    sys.path.insert(0, str(ROOT))
    import io
    import random

    from PIL import Image

    from tests.bench.bench_data import repo_dir, write_archive
    from pools.archive.layout import archive_path

    rng = random.Random(0)
    bases = [Image.effect_noise((256, 256), 40 + 5 * k).convert("RGB") for k in range(8)]

    def jpeg(rid: int) -> bytes:
        img = bases[rid % len(bases)].rotate(rid % 360)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=80 + rid % 10)
        return out.getvalue()

    top = repo_dir(root, "bench/pipe")
    ids: dict[str, list[int]] = {"dense": [], "dense x10": [], "sparse": []}
    per = max(1, -(-10 * dense // 12))
    for residue in range(12):
        members = []
        for k in range(1, per + 1):
            rid = 1000 * k + residue
            members.append((f"{rid}.jpg", jpeg(rid)))
            ids["dense x10"].append(rid)
        write_archive(top, archive_path(residue, 3), members)
    ids["dense x10"] = sorted(ids["dense x10"])[:10 * dense]
    ids["dense"] = ids["dense x10"][::10]
    for residue in range(100, 100 + sparse):
        members = [(f"{1000 * k + residue}.jpg", jpeg(1000 * k + residue)) for k in range(1, 5)]
        write_archive(top, archive_path(residue, 3), members)
        ids["sparse"].append(3000 + residue)
    rng.shuffle(ids["sparse"])
    return ids


def run_child(python: str, client: str, spec: dict, work: Path, hub_url: str) -> dict:
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    home = work / f"home-{client}-{time.monotonic_ns()}"
    from bench_common import child_env  # the parent's: the peer's child never imports this project

    env = child_env(home, hub_url, ours=client != "peer")
    out = subprocess.run([python, str(Path(__file__).resolve()), "--child", client, str(spec_file)],
                         env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    shutil.rmtree(home, ignore_errors=True)
    if out.returncode != 0 or not out.stdout.strip():
        return {"error": (out.stderr.strip().splitlines() or ["(no output)"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peer_python() -> str | None:
    exe = os.environ.get("CHEESECHASER_PEER_PYTHON") or "/work/peer/bin/python"
    return exe if os.path.exists(exe) else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dense", type=int, default=300, help="dense ids (dense x10 takes ten times as many)")
    p.add_argument("--sparse", type=int, default=300, help="sparse ids, one per archive")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--latency-ms", type=float, default=40.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-peer", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from app.hub.server import FaultConfig, HubServer

    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-pipe-"))
    try:
        (work / "hub" / "datasets").mkdir(parents=True)
        t0 = time.perf_counter()
        ids = build(work / "hub", args.dense, args.sparse)
        print(f"dataset: {len(ids['dense x10'])} dense images in 12 archives, {len(ids['sparse'])} sparse "
              f"archives; built in {time.perf_counter() - t0:.1f} s", flush=True)
        faults = FaultConfig(latency_ms=args.latency_ms, on_head=True, on_api=True) if args.latency_ms else None
        hub = HubServer(work / "hub", faults=faults, log_limit=1_000_000).start()
        peer = None if args.no_peer else _peer_python()
        clients = {"ours": sys.executable, **({"peer": peer} if peer else {})}
        results: dict[tuple[str, str], list[dict]] = {}
        from tests.bench.bench_common import redirect_hops
        hops = redirect_hops(hub, "bench/pipe", "images/0100.tar", "images/0100.json")
        try:
            for scenario in ("dense", "dense x10", "sparse"):
                spec = {"repo": "bench/pipe", "ids": ids[scenario], "workers": args.workers}
                for rnd in range(args.rounds):
                    order = list(clients) if rnd % 2 == 0 else list(clients)[::-1]
                    for client in order:
                        hub.clear_log()
                        res = run_child(clients[client], client, spec, work, hub.url)
                        res["requests"] = len(hub.request_log)
                        results.setdefault((scenario, client), []).append(res)
                        if "error" in res:
                            print(f"  {scenario:9} {client:5} FAILED: {res['error']}", flush=True)
                        else:
                            print(f"  {scenario:9} {client:5} round {rnd + 1}: {res['items']} images in "
                                  f"{res['wall']:.2f} s = {res['items'] / res['wall']:,.0f} img/s, "
                                  f"{res['rss_kb'] / 1024:,.0f} MiB peak RSS, {res['requests']} requests", flush=True)
        finally:
            hub.stop()
        print()
        print(table(results, ids, args, hops))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _best(runs: list[dict], key: str, pick=min):
    good = [r[key] for r in runs if "error" not in r]
    return pick(good) if good else None


def table(results, ids, args, hops: tuple[int, int]) -> str:
    lat, w = args.latency_ms / 1000, args.workers
    n_sparse = len(ids["sparse"])
    # per archive: its index (and the index's redirect), the archive's redirect; per image: one ranged GET
    idx_hops, data_hops = hops
    requests = n_sparse * idx_hops + n_sparse * (data_hops - 1) + n_sparse
    floor = lat + requests * lat / w
    lines = [f"`python tests/bench/bench_pipe.py {' '.join(sys.argv[1:])}`".rstrip(), "",
             "| scenario | images | cheesechaser 0.2.2 img/s | ours img/s | speed-up | peak RSS peer | peak RSS ours | goal |",
             "|---|---|---|---|---|---|---|---|"]
    for scenario in ("dense", "dense x10", "sparse"):
        ours = results.get((scenario, "ours"), [])
        peer = results.get((scenario, "peer"), [])
        n = len(ids[scenario])
        ow, pw = _best(ours, "wall"), _best(peer, "wall")
        o_rate = f"{n / ow:,.0f}" if ow else "–"
        p_rate = f"{n / pw:,.0f}" if pw else "–"
        up = pw / ow if ow and pw else None
        o_rss, p_rss = _best(ours, "rss_kb", max), _best(peer, "rss_kb", max)
        if scenario == "sparse":
            goal = (f"within 1.15x of the floor {floor:.2f} s ({requests + 1} requests): {ow / floor:.2f}x: "
                    f"{'met' if ow / floor <= 1.15 else 'NOT met'}" if ow else "–")
        elif scenario == "dense":
            goal = f"≥ 5x: {'met' if up and up >= 5 else 'NOT met' if up else '–'}"
        else:
            base = _best(results.get(("dense", "ours"), []), "rss_kb", max)
            goal = f"RSS x{o_rss / base:.2f} for 10x the ids" if o_rss and base else "–"
        lines.append(f"| {scenario} | {n} | {p_rate} | {o_rate} | {f'{up:.1f}x' if up else '–'} | "
                     f"{f'{p_rss / 1024:,.0f} MiB' if p_rss else '–'} | {f'{o_rss / 1024:,.0f} MiB' if o_rss else '–'} | {goal} |")
    lines.append("")
    lines.append(f"Floor (sparse): {args.latency_ms:g} ms for the revision's API call, then {requests} requests "
                 f"x {args.latency_ms:g} ms / {w} workers (per archive its index, {idx_hops} request(s) on this Hub, and "
                 f"{data_hops - 1} redirect(s) of the archive; per image one ranged GET). Best of the rounds; "
                 "RSS the highest.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
