"""Writing a job's samples as shards: ``write_shards(pool, ids, dst, format="webdataset")``.

Ids are taken in ascending order, a window at a time; a window's samples are read in memory
through the planned downloader, spooled to a file under the destination's partial folder as they
arrive, then written to the shards in id order: shard ``k`` holds the samples that follow shard
``k-1``'s, up to ``shard_size`` samples (or ``shard_bytes``), so the same command gives the same
shards. A shard and its ``NNNNN_stats.json`` are written under temporary names and renamed when
complete; a rerun keeps the complete shards, removes an incomplete one, and goes on after the
last sample of the last complete shard (no sample written twice). At the end, ``samples.parquet``
lists every sample (id, shard, key, sha256, width, height, caption), as img2dataset does.
"""

from __future__ import annotations

import json
import os
import io
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import msgspec

from pools.engine.downloader import Downloader
from pools.engine.memory import MemoryReader
from pools.engine.write import PARTIAL_DIR, clean_stale_partials
from pools.errors import Cancelled, DestinationError, ResourceNotFoundError
from pools.files import OutsideError, real_dir_inside, remove_empty_dir, unlink_quiet, unpredictable_name, write_atomic
from pools.ids import chunks
from pools.ranges import IdRanges, parse_ids
from pools.shards.resize import Resize
from pools.shards.samples import finish, make_sample, sample_meta
from pools.shards.writers import WRITERS
from pools.stream.captions import Captions

FORMATS = ("webdataset", "parquet")
_SHARD = re.compile(r"^(\d{5,})(\.tar|\.parquet)$")


@dataclass
class ShardReport:
    """What a :func:`write_shards` run did: shards written now and kept from before, samples
    written, ids no archive held, ids that failed (id -> why)."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    samples: int = 0
    missing: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


def _ascending(ids) -> Iterator[int]:
    if isinstance(ids, str):
        ids = parse_ids(ids)
    if isinstance(ids, IdRanges):
        return iter(ids)
    if hasattr(ids, "in_order"):  # a query's matching ids, in id order
        return ids.in_order()
    return iter(sorted(set(int(i) for i in ids)))


class _Spool:
    """A window's samples as they arrive, read back by id: kept in memory up to ``budget`` bytes,
    then in a file under the partial folder (msgpack frames)."""

    def __init__(self, folder: str, budget: int = 256 * 1024 * 1024):
        self.folder, self.budget = folder, budget
        self.path: str | None = None
        self._file = None
        self.held = 0
        self.where: dict[int, tuple] = {}  # id -> (sample, size) in memory, or (offset, length) on disk

    def put(self, rid: int, sample: dict) -> None:
        size = sum(len(data) for _, data in sample["members"])
        if self.held + size <= self.budget:
            self.where[rid] = (sample, size)
            self.held += size
            return
        blob = msgspec.msgpack.encode(sample)
        if self._file is None:
            self.path = os.path.join(self.folder, unpredictable_name("spool"))
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            self._file = open(os.open(self.path, flags, 0o600), "wb+")  # new, never through a link
        self._file.seek(0, os.SEEK_END)
        self.where[rid] = (self._file.tell(), len(blob))
        self._file.write(blob)

    def take(self, rid: int) -> dict:
        place = self.where.pop(rid)
        if isinstance(place[0], dict):
            self.held -= place[1]
            return place[0]
        self._file.seek(place[0])
        return msgspec.msgpack.decode(self._file.read(place[1]))

    def close(self) -> None:
        self.where.clear()
        if self._file is not None:
            self._file.close()
            unlink_quiet(self.path)


class _Shards:
    """The shards of a destination: those complete at the start, and the one being written."""

    def __init__(self, dst: str, partial: str, fmt: str, shard_size: int, shard_bytes: int | None):
        self.dst, self.partial, self.fmt = dst, partial, fmt
        self.suffix = WRITERS[fmt].suffix
        self.size, self.max_bytes = shard_size, shard_bytes
        self.settings = {"format": fmt, "shard_size": shard_size, "shard_bytes": shard_bytes}
        self.stats: list[dict] = []
        self.current = None
        self.rows: list[list] = []
        self.failures: dict[str, int] = {}
        self.started = 0.0

    def complete(self) -> list[dict]:
        """The complete shards at the start, 00000 on without a gap; anything after is removed."""
        names = sorted(n for n in os.listdir(self.dst) if _SHARD.match(n))
        for n, name in enumerate(names):
            index = int(_SHARD.match(name)[1])
            stats = self._stats_of(index)
            if index != n or stats is None or not name.endswith(self.suffix):
                for later in names[n:]:
                    unlink_quiet(os.path.join(self.dst, later))
                    unlink_quiet(os.path.join(self.dst, f"{_SHARD.match(later)[1]}_stats.json"))
                break
            if stats.get("settings") != self.settings:
                raise DestinationError(f"{self.dst} holds shards made with other settings ({stats.get('settings')}): "
                                       "use another folder, or remove them")
            self.stats.append(stats)
        return self.stats

    def _stats_of(self, index: int) -> dict | None:
        try:
            with open(os.path.join(self.dst, f"{index:05d}_stats.json"), "rb") as f:
                return json.loads(f.read(4 << 20))
        except (OSError, ValueError):
            return None

    def add(self, rid: int, sample: dict, caption: str | None, row: dict | None) -> None:
        if self.current is None:
            index = len(self.stats)
            name = f"{index:05d}{self.suffix}"
            self.current = WRITERS[self.fmt](os.path.join(self.dst, name),
                                             os.path.join(self.partial, unpredictable_name(name)))
            self.started = time.monotonic()
        meta = sample_meta(sample, caption, row)
        record = {"id": rid, "caption": caption, "image_ext": sample["image_ext"], "meta": meta}
        members = finish(sample, caption, row, meta)
        self.current.add(str(rid), members, record)
        sha = sample["meta"]["sha256"] or next(iter(sample["meta"]["files"].values()), {}).get("sha256")
        self.rows.append([rid, str(rid), sha, sample["width"], sample["height"], caption])
        if len(self.rows) >= self.size or (self.max_bytes and self.current.bytes >= self.max_bytes):
            self.close()

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def close(self) -> str | None:
        if self.current is None:
            return None
        shard, self.current = self.current, None
        index = len(self.stats)
        stats = {"shard": os.path.basename(shard.final), "samples": len(self.rows), "failures": self.failures,
                 "bytes": shard.bytes, "seconds": round(time.monotonic() - self.started, 3),
                 "first_id": self.rows[0][0], "last_id": self.rows[-1][0], "settings": self.settings,
                 "rows": self.rows}
        shard.close()
        write_atomic(os.path.join(self.dst, f"{index:05d}_stats.json"), json.dumps(stats).encode(),
                     tmp_dir=self.partial, prefix=".stats.", suffix=".part")
        self.stats.append(stats)
        self.rows, self.failures = [], {}
        return stats["shard"]

    def abort(self) -> None:
        if self.current is not None:
            self.current.abort()
            self.current = None


def write_shards(pool, ids, dst_dir: str, *, format: str = "webdataset", shard_size: int = 10_000,
                 shard_bytes: int | None = None, captions: Any = None, resize: Resize | None = None,
                 workers: int = 12, window: int | None = None,
                 on_shard: Callable[[str, dict], None] | None = None, downloader=None,
                 cancel: threading.Event | None = None,
                 on_outcome: Callable[[str, int, Any], None] | None = None) -> ShardReport:
    """Write the samples of ``ids`` of ``pool`` into ``dst_dir`` as ``NNNNN.tar`` (webdataset) or
    ``NNNNN.parquet`` shards; see the module's docstring. ``captions``: as
    :func:`pools.stream.iter_samples`; ``resize``: a :class:`~pools.shards.resize.Resize`;
    ``on_shard(name, stats)`` hears each shard written, ``on_outcome(kind, id, detail)`` each id
    settled (``"sample"`` with ``(names, bytes)``, ``"missing"``, ``"failed"`` with the reason).
    ``downloader``: run on a shared :class:`~pools.Downloader`; ``cancel``: an event that stops the
    job (Cancelled is raised; the complete shards stay). Raises the job's
    :class:`~pools.errors.PoolError` when it fails as a whole (the complete shards stay)."""
    if format not in FORMATS:
        raise ValueError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if shard_size < 1 or (shard_bytes is not None and shard_bytes < 1):
        raise ValueError("shard size and shard bytes must be at least 1")
    t0 = time.monotonic()
    try:
        os.makedirs(dst_dir, exist_ok=True)
        clean_stale_partials(os.path.join(dst_dir, PARTIAL_DIR))  # a killed run's spool and shard
        partial = real_dir_inside(dst_dir, [PARTIAL_DIR])
    except (OSError, OutsideError) as err:
        raise DestinationError(f"cannot write to {dst_dir}: {getattr(err, 'strerror', None) or err}") from None
    shards = _Shards(dst_dir, partial, format, shard_size, shard_bytes)
    report = ShardReport(kept=[s["shard"] for s in shards.complete()])
    after = shards.stats[-1]["last_id"] if shards.stats else None
    todo: Iterable[int] = _ascending(ids)
    if after is not None:
        todo = (rid for rid in todo if rid > after)
    lookup = Captions.of(captions)
    window = window or shard_size  # the spool holds at most one window: about one shard
    own = downloader is None
    if own:
        downloader = Downloader(max_workers=workers, max_span=4 * 1024 * 1024)
    hooks = _Hooks(on_shard, on_outcome, cancel)
    try:
        try:
            for block in chunks(todo, window):
                if hooks.cancelled():
                    raise Cancelled()
                _one_window(pool, list(block), shards, lookup, resize, downloader, report, hooks)
            name = shards.close()
            if name:
                report.written.append(name)
                hooks.shard(name, shards.stats[-1])
        except BaseException:
            shards.abort()
            raise
    finally:
        if own:
            downloader.close(wait=False)
    _write_samples_table(dst_dir, partial, shards.stats)
    remove_empty_dir(partial)
    report.seconds = time.monotonic() - t0
    return report


class _Hooks:
    def __init__(self, on_shard, on_outcome, cancel):
        self.on_shard, self.on_outcome, self.cancel = on_shard, on_outcome, cancel

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def shard(self, name: str, stats: dict) -> None:
        if self.on_shard:
            self.on_shard(name, stats)

    def outcome(self, kind: str, rid: int, detail: Any) -> None:
        if self.on_outcome:
            self.on_outcome(kind, rid, detail)


def _one_window(pool, block: list[int], shards: _Shards, lookup, resize, downloader, report, hooks) -> None:
    """Read ``block`` (ascending ids) and write its samples in id order: each as soon as every id
    before it is settled, so writing overlaps reading; the rest waits in the spool."""
    def convert(rid, files, archive, entries):  # on the reader's threads: decoding and resizing off the loop
        try:
            return make_sample(rid, files, entries, archive, resize)
        except ValueError as err:  # an image that cannot be decoded: this id fails
            raise _Undecodable(f"decode: {err}") from None

    reader = MemoryReader(pool, block, convert=convert, convert_entries=True, downloader=downloader, missing=True)
    spool = _Spool(shards.partial)
    failed: dict[int, str] = {}
    found: dict[int, tuple] = {}
    looked: set[int] = set()
    at = 0

    def caption_of(rid: int) -> tuple:
        if lookup is None:
            return None, None
        if rid not in looked:  # a batch of the spooled ids from here on: one query, not one per id
            batch = [r for r in block[at:] if r in spool.where and r not in looked][:512]
            found.update(lookup.lookup(batch))
            looked.update(batch)
        return found.pop(rid, (None, None))

    def emit(until_end: bool) -> None:
        nonlocal at
        while at < len(block):
            rid = block[at]
            if rid in spool.where:
                caption, row = caption_of(rid)
                sample = spool.take(rid)
                shards.add(rid, sample, caption, row)
                report.samples += 1
                hooks.outcome("sample", rid, ([f"{rid}.{ext}" for ext, _ in sample["members"]],
                                              sum(len(d) for _, d in sample["members"])))
                if shards.current is None:  # the sample closed a shard
                    report.written.append(shards.stats[-1]["shard"])
                    hooks.shard(shards.stats[-1]["shard"], shards.stats[-1])
            elif rid in failed:
                why = failed.pop(rid)
                if why == "missing":
                    report.missing += 1
                    hooks.outcome("missing", rid, None)
                else:
                    report.failed[rid] = why
                    hooks.outcome("failed", rid, why)
                shards.fail("missing" if why == "missing" else why.split(":")[0][:40])
            elif not until_end:
                return  # not read yet: the ids after it wait
            at += 1

    try:
        for outcome in _outcomes(reader, hooks):
            if outcome.error is not None:
                failed[outcome.id] = ("missing" if isinstance(outcome.error, ResourceNotFoundError)
                                      else str(outcome.error))
            else:
                spool.put(outcome.id, outcome.value)
            if at < len(block) and block[at] == outcome.id:
                emit(False)
        if reader.error is not None:
            raise reader.error
        emit(True)
    finally:
        spool.close()
        reader.close()


def _outcomes(reader: MemoryReader, hooks: _Hooks) -> Iterator:
    """The reader's outcomes; Cancelled within half a second of a cancel, even while the network
    is silent."""
    while True:
        if hooks.cancelled():
            raise Cancelled()
        try:
            batch = reader.next_item(0.5)
        except queue.Empty:
            continue
        if batch is None:
            break
        yield from batch
    yield from reader.unreached()  # a job that failed as a whole: reader.error says why


class _Undecodable(ValueError):
    """An id whose image could not be decoded for its resize (its reason is the message)."""


def _write_samples_table(dst: str, partial: str, stats: list[dict]) -> None:
    import pyarrow as pa  # lazy: pyarrow only when shards are written
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    # read from JSON lines: building arrays from Python lists makes pyarrow import pandas when it
    # is installed (a third of a second, every run)
    names = ("id", "key", "sha256", "width", "height", "caption")
    body = b"".join(msgspec.json.encode({"shard": s["shard"], **dict(zip(names, r))}) + b"\n"
                    for s in stats for r in s.get("rows", ()))
    schema = pa.schema([("id", pa.int64()), ("shard", pa.string()), ("key", pa.string()), ("sha256", pa.string()),
                        ("width", pa.int32()), ("height", pa.int32()), ("caption", pa.string())])
    if body:
        table = pj.read_json(io.BytesIO(body), parse_options=pj.ParseOptions(explicit_schema=schema))
        table = table.select([f.name for f in schema])
    else:
        table = schema.empty_table()
    tmp = os.path.join(partial, unpredictable_name("samples.parquet"))
    pq.write_table(table, tmp)
    os.replace(tmp, os.path.join(dst, "samples.parquet"))
