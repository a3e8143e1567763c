"""``pools.pipe``: cheesechaser's pipes, read through the planned downloader in memory.

Each test runs against the loopback Hub over real HTTP. The comparison with cheesechaser 0.2.2 runs
the same script with both (the peer venv; skipped without it) and compares what the loop received.
"""

from __future__ import annotations

import io
import json
import queue
import textwrap
import threading

import pytest
from PIL import Image

from app.hub.dataset import build_repo
from pools import IncrementIDDataPool
from pools.engine.memory import MemoryReader
from pools.errors import AccessDeniedError, ResourceNotFoundError
from pools.pipe import DataAttachedImage, DataAttachedImagePipe, Pipe, PipeError, PipeItem, SimpleImagePipe
from tests.support.helpers import tar_gets
from tests.support.peer import needs_peer, run_script

IDS = list(range(100, 220))


def _png(rid: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4 + rid % 7, 3 + rid % 5), (rid % 256, 7, 9)).save(out, "PNG")
    return out.getvalue()


def _resources():
    res = {rid: {f"{rid}.png": _png(rid), f"{rid}.json": json.dumps({"id": rid}).encode()} for rid in IDS}
    res[150] = {"150.json": b"{}"}  # data, no image
    res[151] = {"151.png": _png(151), "151.webp": _png(151)}  # two images
    res[152] = {"152.png": _png(152)}  # an image without its JSON
    return res


@pytest.fixture
def pool(hub, hub_root):
    build_repo(hub_root, "t/pipe", _resources(), base_level=2)
    return IncrementIDDataPool("t/pipe", base_level=2, endpoint=hub.url)


def _drain(session, timeout=30) -> list:
    out = []
    while True:
        try:
            out.append(session.next(timeout=timeout))
        except queue.Empty:
            return out


def test_simple_image_pipe_reads_every_image_in_memory_and_reports_the_rest(pool, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    pipe = SimpleImagePipe(pool)
    assert pipe.reads_in_memory()
    asked = [90, *IDS, 999]  # 90 and 999: in no archive
    with pipe.batch_retrieve(asked, max_workers=4, silent=True) as session:
        got = _drain(session)
    items = {it.id: it for it in got if isinstance(it, PipeItem)}
    errors = {it.id: it for it in got if isinstance(it, PipeError)}
    assert set(items) | set(errors) == set(asked) and len(got) == len(asked)
    for rid, item in items.items():
        assert item.data.tobytes() == Image.open(io.BytesIO(_png(rid))).convert("RGB").tobytes()
        assert item.order_id == asked.index(rid)
    assert isinstance(errors[90].error, ResourceNotFoundError) and isinstance(errors[999].error, ResourceNotFoundError)
    assert isinstance(errors[150].error, ResourceNotFoundError)  # only JSON there
    assert "not unique" in str(errors[151].error)
    assert list(work.iterdir()) == []  # nothing written where the loop runs


def test_data_attached_pipe_gives_the_image_with_its_json(pool):
    with pytest.warns(UserWarning, match="152"):
        with DataAttachedImagePipe(pool).batch_retrieve([101, 152, 150], max_workers=2, silent=True) as s:
            got = {it.id: it for it in _drain(s)}
    assert isinstance(got[101].data, DataAttachedImage) and got[101].data.data == {"id": 101}
    assert got[152].data.data is None
    assert isinstance(got[150], PipeError)


def test_iteration_yields_items_only_and_stops_at_max_count(pool):
    items = list(SimpleImagePipe(pool).batch_retrieve([90, *IDS], max_workers=3, max_count=7, silent=True))
    assert len(items) == 7 and all(isinstance(it, PipeItem) for it in items)


def test_metainfo_travels_with_each_item(pool):
    with SimpleImagePipe(pool).batch_retrieve([(101, {"k": 1}), (102, {"k": 2})], silent=True) as s:
        got = {it.id: it.metainfo for it in _drain(s)}
    assert got == {101: {"k": 1}, 102: {"k": 2}}


def test_a_loop_that_stops_early_cancels_the_reads_still_to_come(hub, pool):
    session = SimpleImagePipe(pool).batch_retrieve(IDS, max_workers=2, silent=True)
    for n, _ in enumerate(session):
        if n == 2:
            break
    source = session._source
    source.reader.job.wait(30)
    assert source.reader.job.state == "cancelled"
    assert len(tar_gets(hub)) < len({rid % 100 for rid in IDS})  # not every archive was read


def test_the_reader_holds_no_more_than_its_limit_while_the_loop_waits(pool):
    reader = MemoryReader(pool, IDS, workers=2, prefetch=4, max_span=1)  # one file per ranged GET
    first = next(iter(reader.next_item(30)))
    assert first.error is None or first.id in (150, 151)
    with reader.sink._cond:  # the workers stop once the sink is full: wait for that, not for a time
        assert reader.sink._cond.wait_for(lambda: len(reader.sink._items) >= reader.sink.limit, 30)
    assert not reader.job.done
    held = len(reader.sink._items)
    assert held <= 2 * reader.sink.limit
    reader.close()
    reader.job.wait(30)
    assert reader.job.state == "cancelled" and len(reader.job.report.downloaded) < len(IDS) // 2


def test_a_subclass_that_writes_its_own_retrieve_is_called_per_id(pool):
    seen = []

    class Sizes(Pipe):
        def retrieve(self, resource_id, resource_metainfo, silent=False):
            seen.append(resource_id)
            with self.pool.mock_resource(resource_id, resource_metainfo, silent=True) as (td, _):
                import os
                return sorted(os.listdir(td))

    pipe = Sizes(pool)
    assert not pipe.reads_in_memory()
    with pipe.batch_retrieve([101, 102, 90], max_workers=2, silent=True) as s:
        got = {it.id: it for it in _drain(s)}
    assert got[101].data == ["101.json", "101.png"] and isinstance(got[90], PipeError)
    assert sorted(seen) == [90, 101, 102]


def test_an_override_of_the_possible_archives_still_reads_in_memory(hub, hub_root):
    build_repo(hub_root, "t/shards", {rid: {f"{rid}.png": _png(rid)} for rid in IDS},
               archives=lambda rid: f"shards/part-{rid % 3}.tar")

    class Shards(IncrementIDDataPool):
        def _request_possible_archives(self, resource_id):
            return [f"shards/part-{int(resource_id) % 3}.tar"]

    pool = Shards("t/shards", base_level=2, endpoint=hub.url)
    items = list(SimpleImagePipe(pool).batch_retrieve(IDS[:20], max_workers=3, silent=True))
    assert sorted(it.id for it in items) == IDS[:20]


def test_a_repo_the_user_may_not_read_gives_every_id_the_reason(hub, hub_root):
    build_repo(hub_root, "t/gated", {rid: {f"{rid}.png": _png(rid)} for rid in IDS[:5]}, base_level=2, gated=True)
    pool = IncrementIDDataPool("t/gated", base_level=2, endpoint=hub.url)
    with SimpleImagePipe(pool).batch_retrieve(IDS[:5], silent=True) as s:
        got = _drain(s)
    assert len(got) == 5 and all(isinstance(it, PipeError) for it in got)
    assert all(isinstance(it.error, AccessDeniedError) for it in got)


def test_a_shutdown_from_another_thread_ends_a_waiting_loop(hub, hub_root):
    build_repo(hub_root, "t/slow", {rid: {f"{rid}.png": _png(rid)} for rid in IDS[:6]}, base_level=2)
    from app.hub.server import FaultConfig
    hub.faults = FaultConfig(latency_ms=60_000, paths="*.tar")
    pool = IncrementIDDataPool("t/slow", base_level=2, endpoint=hub.url)
    session = SimpleImagePipe(pool).batch_retrieve(IDS[:6], max_workers=2, silent=True)
    out = []
    loop = threading.Thread(target=lambda: out.extend(session))
    loop.start()
    assert session.is_start.wait(30)
    session.shutdown(wait=True, timeout=30)
    loop.join(30)
    assert not loop.is_alive() and out == [] and session.is_finished.is_set()


PIPE_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from {module}.datapool import IncrementIDDataPool
from {module}.pipe import SimpleImagePipe, DataAttachedImagePipe, PipeItem
pool = IncrementIDDataPool("t/pipe", base_level=2)
out = {{}}
for name, pipe in (("simple", SimpleImagePipe(pool)), ("attached", DataAttachedImagePipe(pool))):
    session = pipe.batch_retrieve({ids!r}, max_workers=4, silent=True)
    got = {{}}
    while True:
        try:
            item = session.next(timeout=20)
        except Exception:
            break
        if isinstance(item, PipeItem):
            image = item.data if name == "simple" else item.data.image
            data = None if name == "simple" else item.data.data
            got[item.id] = [list(image.size), image.mode, image.tobytes().hex()[:64], data, item.order_id]
        else:
            got[item.id] = [type(item.error).__name__ in ("ResourceNotFoundError", "InvalidResourceDataError"),
                            item.order_id]
        if len(got) == {n}:
            break
    session.shutdown()
    out[name] = {{str(k): v for k, v in sorted(got.items())}}
print(json.dumps(out))
"""


@pytest.mark.peer
@needs_peer
def test_the_same_pipe_script_gets_the_same_items_as_cheesechaser(pool, hub, tmp_path):
    ids = [90, 101, 102, 150, 151, 152, 160, 999]
    outs = []
    for module in ("cheesechaser", "pools"):
        proc = run_script(module, textwrap.dedent(PIPE_SCRIPT).format(module=module, ids=ids, n=len(ids)),
                          hub, tmp_path)
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    theirs, ours = outs
    assert len(theirs["simple"]) == len(ids) and ours == theirs
