"""Benchmark: the training outputs, side by side in one run.

Not a test; a script that prints figures.

    python tests/bench/bench_training.py                  # every part, 40 ms per request
    python tests/bench/bench_training.py --dense 120 --sparse 60 --rounds 1

1. **Shards against files**: ``download --format webdataset`` against the plain files download
   (``pools.IncrementIDDataPool.batch_download_to_directory``) on the dense and the sparse ids,
   each in its own child process with a cold cache; images per second (goal: shards at least 0.9
   of the files' rate).
2. **Resize**: ``--resize 512`` (keep_ratio, re-encoded as JPEG q95) CPU seconds per image of ours
   (Pillow, JPEG draft decoding) against OpenCV's ``INTER_AREA`` (img2dataset's resizer: decode,
   resize, encode) on the same images in the same process (goal: within 1.2x of OpenCV, or faster).
3. **The stream**: ``pools.stream.TorchDataset`` through a ``DataLoader`` (2 workers, decoding
   to PIL in the workers) against cheesechaser 0.2.2's ``SimpleImagePipe`` on the same ids
   (``--stream`` JPEGs of 256x256 in 12 archives: the reading is measured, not the decoding, which
   both do alike): samples per second (goal: 5x).

Images: JPEGs of 1024x768 (~150 KB), 12 dense archives and ``--sparse`` archives of 4 images (one
wanted each), on the loopback Hub with ``--latency-ms`` on every request including redirects.
"""

from __future__ import annotations

import argparse
import io
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
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from bench_clients import peak_rss_kb  # noqa: E402 - stdlib only: the peer's child runs it too


def child(kind: str, spec_file: str) -> int:
    import logging

    logging.disable(logging.WARNING)
    spec = json.loads(Path(spec_file).read_text())
    ids, dst, workers = spec["ids"], spec["dst"], spec["workers"]
    # imports and set-up first: the figures are the job's, not the interpreter's start-up
    if kind == "peer":
        from cheesechaser.datapool import IncrementIDDataPool
        from cheesechaser.pipe import SimpleImagePipe

        pool = IncrementIDDataPool(spec["repo"], base_level=3)

        def run() -> int:
            n = 0
            for item in SimpleImagePipe(pool).batch_retrieve(ids, max_workers=workers, silent=True):
                n += item.data.size[0] > 0
            return n
    else:
        import pyarrow.parquet  # noqa: F401 - imported by the shards' job table
        from PIL import Image
        from torch.utils.data import DataLoader

        from pools import IncrementIDDataPool
        from pools.shards import write_shards
        from pools.stream import TorchDataset

        pool = IncrementIDDataPool(spec["repo"], base_level=3)

        def decode(batch):
            out = []
            for item in batch:
                name = next(k for k in item["files"] if k.endswith(".jpg"))
                image = Image.open(io.BytesIO(item["files"][name]))
                image.load()
                out.append((item["id"], image.size))
            return out

        def run() -> int:
            if kind == "files":
                report = pool.batch_download_to_directory(ids, dst, max_workers=workers, save_metainfo=False,
                                                          silent=True)
                return len(report.downloaded)
            if kind == "webdataset":
                return write_shards(pool, ids, dst, format="webdataset", shard_size=10_000, workers=workers).samples
            dataset = TorchDataset(pool, ids, workers=max(1, workers // 2))
            return sum(len(b) for b in DataLoader(dataset, batch_size=16, num_workers=2, collate_fn=decode))
    t0 = time.perf_counter()
    n = run()
    wall = time.perf_counter() - t0
    print(json.dumps({"wall": wall, "n": n, "rss_kb": peak_rss_kb()}))
    sys.stdout.flush()
    os._exit(0)


def build(root: Path, dense: int, sparse: int, stream: int = 600) -> tuple[dict[str, list[int]], list[bytes]]:
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from pools.archive.layout import archive_path
    from tests.bench.bench_data import repo_dir, write_archive

    bases = [Image.effect_noise((1024, 768), 30 + 4 * k).convert("RGB") for k in range(6)]
    cache: dict[int, bytes] = {}

    def jpeg(rid: int) -> bytes:
        key = rid % 24
        if key not in cache:
            out = io.BytesIO()
            bases[key % 6].rotate(15 * (key // 6)).save(out, "JPEG", quality=80 + key % 10)
            cache[key] = out.getvalue()
        return cache[key] + rid.to_bytes(8, "big")  # distinct bytes, the same decode

    top = repo_dir(root, "bench/train")
    ids: dict[str, list[int]] = {"dense": [], "sparse": []}
    per = max(1, -(-dense // 12))
    for residue in range(12):
        members = [(f"{1000 * k + residue}.jpg", jpeg(1000 * k + residue)) for k in range(1, per + 1)]
        ids["dense"] += [1000 * k + residue for k in range(1, per + 1)]
        write_archive(top, archive_path(residue, 3), members)
    ids["dense"] = sorted(ids["dense"])[:dense]
    for residue in range(100, 100 + sparse):
        write_archive(top, archive_path(residue, 3), [(f"{1000 * k + residue}.jpg", jpeg(1000 * k + residue))
                                                     for k in range(1, 5)])
        ids["sparse"].append(3000 + residue)
    small = [Image.effect_noise((256, 256), 40 + 5 * k).convert("RGB") for k in range(8)]

    def small_jpeg(rid: int) -> bytes:
        out = io.BytesIO()
        small[rid % 8].rotate(rid % 360).save(out, "JPEG", quality=85)
        return out.getvalue()

    top = repo_dir(root, "bench/stream")  # small images: the stream's figure is the reading, not the decoding
    per = max(1, -(-stream // 12))
    ids["stream"] = []
    for residue in range(12):
        rids = [1000 * k + residue for k in range(1, per + 1)]
        write_archive(top, archive_path(residue, 3), [(f"{rid}.jpg", small_jpeg(rid)) for rid in rids])
        ids["stream"] += rids
    ids["stream"] = sorted(ids["stream"])[:stream]
    return ids, [jpeg(r) for r in range(24)]


def run_child(python: str, kind: str, spec: dict, work: Path, url: str) -> dict:
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    home = work / f"home-{time.monotonic_ns()}"
    from bench_common import child_env  # the parent's: the peer's child never imports this project

    env = child_env(home, url, ours=kind != "peer")
    out = subprocess.run([python, str(Path(__file__).resolve()), "--child", kind, str(spec_file)], env=env,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(spec["dst"], ignore_errors=True)
    if out.returncode != 0 or not out.stdout.strip():
        return {"error": (out.stderr.strip().splitlines() or ["(no output)"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_resize(images: list[bytes], rounds: int) -> tuple[float, float]:
    """CPU seconds per image: ours (Resize(512)) and OpenCV's INTER_AREA, decode + resize + encode."""
    import cv2
    import numpy as np

    from pools.shards.resize import Resize, apply

    how = Resize(512, "keep_ratio", format="jpg", quality=95)

    def ours(data):
        apply(data, how, "jpg")

    def opencv(data):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        scale = 512 / min(w, h)
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])

    cv2.setNumThreads(1)  # per image, as img2dataset runs one resizer per process
    best = {}
    for name, fn in (("ours", ours), ("opencv", opencv)) * rounds:
        t0 = time.process_time()
        for data in images * 4:
            fn(data)
        per = (time.process_time() - t0) / (len(images) * 4)
        best[name] = min(best.get(name, per), per)
    return best["ours"], best["opencv"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dense", type=int, default=240)
    p.add_argument("--sparse", type=int, default=120)
    p.add_argument("--stream", type=int, default=600, help="ids of 256x256 JPEGs for the stream against the pipe")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--latency-ms", type=float, default=40.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-peer", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from app.hub.server import FaultConfig, HubServer

    peer = None if args.no_peer else (os.environ.get("CHEESECHASER_PEER_PYTHON") or "/work/peer/bin/python")
    peer = peer if peer and os.path.exists(peer) else None
    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-train-"))
    lines = []
    try:
        (work / "hub" / "datasets").mkdir(parents=True)
        ids, images = build(work / "hub", args.dense, args.sparse, args.stream)
        faults = FaultConfig(latency_ms=args.latency_ms, on_head=True, on_api=True) if args.latency_ms else None
        hub = HubServer(work / "hub", faults=faults).start()
        best: dict[tuple[str, str], float] = {}
        try:
            runs = [(s, k) for s in ("dense", "sparse") for k in ("files", "webdataset")]
            runs += [("stream", "stream")] + ([("stream", "peer")] if peer else [])
            for rnd in range(args.rounds):
                for scenario, kind in (runs if rnd % 2 == 0 else runs[::-1]):
                    spec = {"repo": "bench/stream" if scenario == "stream" else "bench/train",
                            "ids": ids[scenario], "workers": args.workers,
                            "dst": str(work / f"out-{kind}")}
                    res = run_child(peer if kind == "peer" else sys.executable, kind, spec, work, hub.url)
                    if "error" in res:
                        print(f"  {scenario:6} {kind:10} FAILED: {res['error']}", flush=True)
                        continue
                    rate = res["n"] / res["wall"]
                    print(f"  {scenario:6} {kind:10} round {rnd + 1}: {res['n']} images in {res['wall']:.2f} s = "
                          f"{rate:,.0f}/s, {res['rss_kb'] / 1024:,.0f} MiB peak RSS", flush=True)
                    best[(scenario, kind)] = max(best.get((scenario, kind), 0), rate)
        finally:
            hub.stop()
        ours_cpu, cv_cpu = bench_resize(images, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += [f"`python tests/bench/bench_training.py {' '.join(argv)}`".rstrip(), "",
              "| what | ours | reference | ratio | goal |", "|---|---|---|---|---|"]
    for scenario in ("dense", "sparse"):
        wd, files = best.get((scenario, "webdataset")), best.get((scenario, "files"))
        ratio = wd / files if wd and files else None
        lines.append(f"| {scenario}: webdataset shards vs files (img/s) | {wd or 0:,.0f} | {files or 0:,.0f} | "
                     f"{f'{ratio:.2f}' if ratio else '–'} | ≥ 0.9: {'met' if ratio and ratio >= 0.9 else 'NOT met'} |")
    ratio = ours_cpu / cv_cpu
    lines.append(f"| --resize 512, CPU ms per 1024x768 JPEG vs OpenCV INTER_AREA | {1000 * ours_cpu:.2f} | "
                 f"{1000 * cv_cpu:.2f} | {ratio:.2f} | ≤ 1.2: {'met' if ratio <= 1.2 else 'NOT met'} |")
    st, pp = best.get(("stream", "stream")), best.get(("stream", "peer"))
    up = st / pp if st and pp else None
    lines.append(f"| {len(ids['stream'])} ids: stream into a DataLoader vs cheesechaser's SimpleImagePipe "
                 f"(samples/s) | {st or 0:,.0f} | "
                 f"{f'{pp:,.0f}' if pp else '–'} | {f'{up:.1f}x' if up else '–'} | "
                 f"5x: {'met' if up and up >= 5 else 'NOT met' if up else '–'} |")
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    random.seed(0)
    sys.exit(main())
