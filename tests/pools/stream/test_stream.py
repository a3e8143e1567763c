"""``pools.stream``: samples read in memory for training loops, and the PyTorch dataset over them,
read by the real consumers (``torch.utils.data.DataLoader``, torchdata's ``StatefulDataLoader``)
against the loopback Hub."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.hub.dataset import build_repo
from pools import IdRanges, IncrementIDDataPool
from pools.stream import iter_samples
from pools.stream.split import ArchiveGroups, Progress, share

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from pools.stream import TorchDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
HELD = [rid for rid in range(100, 400) if rid % 7]  # ids % 7 == 0: in no archive


def _body(rid: int) -> bytes:
    return hashlib.sha256(str(rid).encode()).digest() * (10 + rid % 5)


@pytest.fixture
def pool(hub, hub_root):
    build_repo(hub_root, "t/stream", {rid: {f"{rid}.bin": _body(rid), f"{rid}.json": b'{"src": 1}'} for rid in HELD},
               base_level=2)
    return IncrementIDDataPool("t/stream", base_level=2, endpoint=hub.url)


def test_iter_samples_gives_every_held_id_once_with_its_files_caption_and_metadata(pool):
    stream = iter_samples(pool, "100-399", workers=4, captions={rid: f"tags of {rid}" for rid in HELD[:10]})
    samples = {s.id: s for s in stream}
    assert sorted(samples) == HELD and stream.missing == 300 - len(HELD) and not stream.failed
    one = samples[HELD[0]]
    assert one.files == {f"{HELD[0]}.bin": _body(HELD[0]), f"{HELD[0]}.json": b'{"src": 1}'}
    assert one.caption == f"tags of {HELD[0]}" and samples[HELD[-1]].caption is None
    meta = one.metadata
    assert meta["id"] == HELD[0] and meta["archive"] == f"images/{HELD[0] % 100:03d}.tar"
    assert meta["files"][f"{HELD[0]}.bin"]["sha256"] == hashlib.sha256(_body(HELD[0])).hexdigest()


def test_a_loop_that_stops_early_cancels_the_reads(pool):
    stream = iter_samples(pool, HELD, workers=2, prefetch=4)
    for n, _ in enumerate(stream):
        if n == 3:
            break
    stream.close()
    stream.reader.job.wait(30)
    assert stream.reader.job.state == "cancelled"
    assert len(stream.reader.job.report.downloaded) < len(HELD)


def test_the_split_deals_whole_archives_once_to_each_reader():
    class Layered:
        def archive_layers(self):
            return [(100, lambda r: f"images/{r:04d}.tar")]

    groups = ArchiveGroups(Layered(), IdRanges.of(HELD))
    keys = groups.keys()
    shares = [share(keys, slot, 4, True, 3, 0) for slot in range(4)]
    assert sorted(k for s in shares for k in s) == keys  # every archive once
    assert shares != [share(keys, slot, 4, True, 3, 1) for slot in range(4)]  # another epoch, another deal
    assert sum(groups.count(k) for k in keys) == len(HELD)
    assert sorted(r for k in keys for r in groups.ids(k)) == HELD


def test_a_state_saved_by_another_number_of_readers_is_refused():
    state = Progress(0, 1, 4, done=["a"]).as_dict()
    with pytest.raises(ValueError, match="4 readers"):
        Progress.of(state, 0, 1, 2)
    assert Progress.of(state, 0, 1, 4).done == {"a"}
    assert Progress.of(state, 1, 1, 4).done == set()  # another epoch starts afresh


def test_two_ranks_of_two_dataloader_workers_see_each_id_exactly_once(pool):
    seen: list[int] = []
    for rank in range(2):
        dataset = TorchDataset(pool, "100-399", shuffle=True, seed=5, rank=rank, world_size=2, workers=3)
        loader = DataLoader(dataset, batch_size=7, num_workers=2, collate_fn=lambda b: b)
        for batch in loader:
            for item in batch:
                assert set(item) == {"id", "files", "caption", "metadata"}
                assert item["files"][f"{item['id']}.bin"] == _body(item["id"])
                seen.append(item["id"])
    assert sorted(seen) == HELD


def _child(hub, tmp_path: Path, state: Path, out: Path, *stop) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([sys.executable, "-m", "tests.support.stream_child", hub.url, "t/stream", "2",
                           "100-399", str(state), str(out), *map(str, stop)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_a_loop_stopped_mid_epoch_resumes_in_a_new_process_with_nothing_repeated_or_skipped(pool, hub, tmp_path):
    state = tmp_path / "state.pt"
    first = _child(hub, tmp_path, state, tmp_path / "first.json", 12)
    assert len(first) == 60 and state.exists()
    rest = _child(hub, tmp_path, state, tmp_path / "rest.json")
    assert not set(first) & set(rest)
    assert sorted(first + rest) == HELD
