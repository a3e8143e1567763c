"""Shards out of a pool, read back by the real consumers: the ``webdataset`` library,
``datasets.load_dataset("webdataset")`` and ``pyarrow``/``datasets`` over the Parquet shards."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from app.hub.dataset import build_repo
from app.hub.server import FaultConfig
from pools import IncrementIDDataPool
from pools.shards import Resize, write_shards

ROOT = Path(__file__).resolve().parents[3]
HELD = [rid for rid in range(100, 300) if rid % 9]  # ids % 9 == 0: in no archive


def _png(rid: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60 + rid % 13, 40 + rid % 7), (rid % 256, 9, 9)).save(out, "PNG")
    return out.getvalue()


def _resources():
    res = {rid: {f"{rid}.png": _png(rid)} for rid in HELD}
    for rid in HELD[:20]:  # the dataset's own sidecar for some of them
        res[rid][f"{rid}.json"] = json.dumps({"own": rid}).encode()
    return res


@pytest.fixture
def pool(hub, hub_root):
    build_repo(hub_root, "t/shards", _resources(), base_level=2)
    return IncrementIDDataPool("t/shards", base_level=2, endpoint=hub.url)


def _tars(dst: Path) -> list[str]:
    return sorted(str(p) for p in dst.glob("*.tar"))


def test_webdataset_shards_read_by_the_webdataset_library(pool, tmp_path):
    import webdataset as wds

    report = write_shards(pool, "90-310", tmp_path / "o", shard_size=50, workers=4,
                          captions={rid: f"caption {rid}" for rid in HELD})
    assert report.written == ["00000.tar", "00001.tar", "00002.tar", "00003.tar"] and report.samples == len(HELD)
    samples = list(wds.WebDataset(_tars(tmp_path / "o"), shardshuffle=False).decode("pil"))
    assert [int(s["__key__"]) for s in samples] == HELD  # each id once, in id order
    for s in samples:
        rid = int(s["__key__"])
        assert s["png"].tobytes() == Image.open(io.BytesIO(_png(rid))).tobytes()
        assert s["txt"] == f"caption {rid}"
        meta = s["meta.json"]
        assert meta["id"] == rid and meta["sha256"] == hashlib.sha256(_png(rid)).hexdigest()
        assert meta["archive"] == f"images/{rid % 100:03d}.tar" and (meta["width"], meta["height"]) == s["png"].size
        if rid in HELD[:20]:
            assert s["json"] == {"own": rid}  # the dataset's own sidecar, never replaced by ours
    stats = json.loads((tmp_path / "o" / "00000_stats.json").read_text())
    assert stats["samples"] == 50 and stats["failures"]["missing"] >= 1 and stats["bytes"] > 0


def test_webdataset_shards_load_with_datasets(pool, tmp_path):
    import datasets

    write_shards(pool, HELD, tmp_path / "o", shard_size=60, workers=4)
    ds = datasets.load_dataset("webdataset", data_files={"train": _tars(tmp_path / "o")}, split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert sorted(int(k) for k in ds["__key__"]) == HELD
    row = ds[0]
    assert row["png"].size == Image.open(io.BytesIO(_png(int(row["__key__"])))).size


def test_parquet_shards_resized_read_by_pyarrow_and_datasets(pool, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    write_shards(pool, HELD, tmp_path / "o", format="parquet", shard_size=70, workers=4,
                 resize=Resize(32, "center_crop", format="jpg", quality=90))
    shards = sorted(str(p) for p in (tmp_path / "o").glob("0*.parquet"))
    rows = [r for path in shards for r in pq.read_table(path).to_pylist()]
    assert [r["id"] for r in rows] == HELD
    image = Image.open(io.BytesIO(rows[0]["image"]))
    assert image.format == "JPEG" and image.size == (32, 32)
    assert json.loads(rows[0]["json"])["sha256"] == hashlib.sha256(_png(HELD[0])).hexdigest()  # of the original
    ds = datasets.load_dataset("parquet", data_files={"train": shards}, split="train", cache_dir=str(tmp_path / "c"))
    assert len(ds) == len(HELD)
    table = pq.read_table(tmp_path / "o" / "samples.parquet").to_pylist()
    assert [r["id"] for r in table] == HELD and table[0]["width"] == 32 and table[0]["shard"] == "00000.parquet"


@pytest.mark.parametrize("mode,size,expect", [
    ("keep_ratio", 20, lambda w, h: min(w, h) == 20),
    ("keep_ratio_largest", 20, lambda w, h: max(w, h) == 20),
    ("border", 20, lambda w, h: (w, h) == (20, 20)),
])
def test_resize_modes_mean_what_img2dataset_says(mode, size, expect):
    from pools.shards.resize import apply

    data, ext, w, h = apply(_png(105), Resize(size, mode), "png")
    assert expect(w, h) and Image.open(io.BytesIO(data)).size == (w, h) and ext == "png"
    same, _, w2, _ = apply(_png(105), Resize(1000, mode, only_if_bigger=True), "png")
    assert same == _png(105) and w2 == 60 + 105 % 13  # never enlarged


def test_an_image_that_cannot_be_decoded_fails_that_id_only(hub, hub_root, tmp_path):
    res = {rid: {f"{rid}.png": _png(rid)} for rid in range(100, 110)}
    res[104] = {"104.png": b"not an image at all"}
    build_repo(hub_root, "t/bad", res, base_level=2)
    pool = IncrementIDDataPool("t/bad", base_level=2, endpoint=hub.url)
    report = write_shards(pool, "100-109", tmp_path / "o", shard_size=100, resize=Resize(16), workers=2)
    assert report.samples == 9 and list(report.failed) == [104] and "decode" in report.failed[104]


def test_a_rerun_keeps_complete_shards_and_refuses_other_settings(pool, tmp_path):
    first = write_shards(pool, HELD, tmp_path / "o", shard_size=50, workers=4)
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").glob("*.tar")}
    again = write_shards(pool, HELD, tmp_path / "o", shard_size=50, workers=4)
    assert again.kept == first.written and again.written == [] and again.samples == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").glob("*.tar")} == before
    from pools.errors import DestinationError
    with pytest.raises(DestinationError, match="other settings"):
        write_shards(pool, HELD, tmp_path / "o", shard_size=40, workers=4)


def _cli(hub, tmp_path, dst, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.Popen([sys.executable, "-m", "app", "download", "t/shards", "100-299", "--base-level", "2",
                             "-o", str(dst), "--format", "webdataset", "--shard-size", "30", "--workers", "3"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_a_run_killed_mid_shard_resumes_to_the_same_shards_as_an_uninterrupted_one(pool, hub, tmp_path):
    whole = _cli(hub, tmp_path, tmp_path / "whole")
    assert whole.wait(120) == 0, whole.stderr.read()
    hub.faults = FaultConfig(latency_ms=150, paths="*.tar")  # slow enough to be killed mid-way
    victim = _cli(hub, tmp_path, tmp_path / "cut")
    for line in victim.stderr:  # a shard is complete: kill -9 while the next one is being read
        if line.startswith("00001.tar"):
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(60)
    cut = tmp_path / "cut"
    assert (cut / "00001.tar").exists() and not (cut / "00005.tar").exists()  # killed mid-way
    hub.faults = None
    resumed = _cli(hub, tmp_path, cut)
    out = resumed.communicate(timeout=120)[1]
    assert resumed.returncode == 0, out
    assert "2 shards kept from before" in out or "shards kept from before" in out
    shards = lambda d: {p.name: p.read_bytes() for p in d.glob("*.tar")}  # noqa: E731
    assert shards(cut) == shards(tmp_path / "whole") and len(shards(cut)) == 6
    assert not list((cut / ".cheesechaser-partial").glob("*")) if (cut / ".cheesechaser-partial").exists() else True


def _bomb() -> bytes:
    """A PNG whose header claims 60000 x 60000 pixels (3.6 G): never to be decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_a_hostile_dataset_cannot_break_a_shard(hub, hub_root, tmp_path):
    """Names that would take our keys or carry control characters, and a decompression bomb: each
    sample stays readable, the dataset's own caption is never replaced, the bomb fails its id only."""
    import webdataset as wds

    res = {
        100: {"100.png": _png(100), "100.meta.json": b'{"theirs": true}', "100.txt": b"their caption"},
        101: {"101.png": _png(101), "101.\x1b[2J.png": _png(102)},
        102: {"102.png": _bomb()},
        103: {"103.png": _png(103)},
    }
    build_repo(hub_root, "t/hostile-shards", res, base_level=2)
    pool = IncrementIDDataPool("t/hostile-shards", base_level=2, endpoint=hub.url)
    report = write_shards(pool, "100-103", tmp_path / "o", shard_size=10, workers=2, resize=Resize(16),
                          captions={100: "ours", 101: "ours"})
    assert sorted(report.failed) == [102] and "decode" in report.failed[102] and "limit" in report.failed[102]
    samples = {s["__key__"]: s for s in wds.WebDataset(_tars(tmp_path / "o"), shardshuffle=False)}
    assert sorted(samples) == ["100", "101", "103"]
    first = samples["100"]
    assert first["txt"] == b"their caption"  # the dataset's own caption is kept; ours goes in our metadata
    ours = json.loads(first["meta.json"])
    assert ours["id"] == 100 and ours["caption"] == "ours"
    # names that map to no id ("100.meta.json", one with an escape sequence) never enter a sample
    assert set(first) - {"__key__", "__url__", "__local_path__"} == {"png", "txt", "meta.json"}
    assert set(samples["101"]) - {"__key__", "__url__", "__local_path__"} == {"png", "txt", "meta.json"}
    with (tmp_path / "o" / "00000.tar").open("rb") as f:
        import tarfile
        names = tarfile.open(fileobj=f).getnames()
    assert all(n.isprintable() and "/" not in n and "\x1b" not in n for n in names)


def test_our_metadata_never_takes_the_key_of_a_dataset_file():
    """A pool whose naming rule lets ``ID.meta.json`` through (a subclass): ours moves aside."""
    from pools.shards.samples import finish, make_sample

    sample = make_sample(100, {"100.png": _png(100), "100.meta.json": b'{"theirs": 1}', "100.txt": b"theirs"},
                         [], "images/000.tar", None)
    members = dict(finish(sample, "ours", None))
    assert members["meta.json"] == b'{"theirs": 1}' and members["txt"] == b"theirs"
    assert json.loads(members["cheesechaser.json"])["caption"] == "ours"
