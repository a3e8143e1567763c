"""Files read into memory through the planned downloader: what :mod:`pools.pipe` and
:mod:`pools.stream` are built on.

A :class:`Sink` takes each id's verified bytes from the engine (one index per archive, merged
ranged GETs, sha256 checked) and holds at most ``limit`` outcomes: a worker that finds it full
waits before its next task, so memory stays bounded by the sink and the runs in flight, never by
the number of ids. :class:`MemoryReader` runs such a job and hands the outcomes to one consumer.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from pools.engine.downloader import Downloader
from pools.errors import PoolError, ResourceFailedError, ResourceNotFoundError
from pools.ranges import IdList, IdRanges

__all__ = ["Outcome", "Sink", "MemoryReader"]


@dataclass
class Outcome:
    """What became of one id: ``value`` (its files, or what ``convert`` made of them) or ``error``.
    ``order``: the id's position in the ids given (-1 for a range, which is not enumerated)."""

    id: int
    value: Any
    error: BaseException | None
    order: int
    info: Any = None
    archive: str = ""  # where the files were read from
    entries: tuple = ()  # their index entries (name, offset, size, sha256), in the order read


class Sink:
    """The engine's side: ``resource``/``failed``/``missing`` from worker threads, ``end`` once.
    The consumer's side: :meth:`get`. ``convert(id, files)`` runs on the worker that read the
    files (decoding an image there keeps the consumer's thread free); what it raises is the id's
    error."""

    def __init__(self, limit: int, convert: Callable[..., Any] | None = None, convert_entries: bool = False):
        self.limit = max(1, int(limit))
        self.convert = convert
        self.convert_entries = convert_entries  # convert(id, files, archive, entries) instead of (id, files)
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._ended = False
        self._closed = False
        self.job = None  # the job it serves (set by the reader): its cancel lets a waiting worker go

    # -- the engine's side
    def resource(self, rid: int, files: dict[str, bytes], info: Any, archive: str = "", entries=()) -> None:
        value, error = files, None
        if self.convert is not None:
            try:
                value = (self.convert(rid, files, archive, entries) if self.convert_entries
                         else self.convert(rid, files))
            except Exception as err:  # noqa: BLE001 - the id's error, handed to the consumer
                value, error = None, err
        with self._cond:  # a run of many small files must not pile up past the limit either:
            # its stream waits (TCP holds the rest) until the reader has taken some
            while len(self._items) >= 2 * self.limit and not self._closed and not self._cancelled():
                self._cond.wait()
        self._put(("ok", rid, value, error, archive, tuple(entries)))

    def _cancelled(self) -> bool:
        return self.job is not None and self.job.cancel_event.is_set()

    def failed(self, rid: int, reason: str) -> None:
        self._put(("failed", rid, reason))

    def missing(self, ids: IdList) -> None:
        self._put(("missing", ids))

    def end(self, job) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_room(self, cancel: threading.Event) -> None:
        with self._cond:
            while len(self._items) >= self.limit and not cancel.is_set() and not self._closed:
                self._cond.wait()

    def _put(self, item: tuple) -> None:
        with self._cond:
            if not self._closed:
                self._items.append(item)
                self._cond.notify_all()

    # -- the consumer's side
    def get(self, timeout: float | None = None) -> tuple | None:
        """The next item, None once the job ended and all were taken; queue.Empty after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._ended, timeout):
                raise queue.Empty
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    def close(self) -> None:
        """The consumer is gone: drop what is held, let waiting workers go."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


class MemoryReader:
    """Reads ``ids`` of ``pool`` into memory and yields an :class:`Outcome` per id as each is read
    (in the order they arrive, not the order given).

    ``ids``: an :class:`IdRanges` or a range expression (planned by residue, ids not enumerated),
    or ids / ``(id, info)`` tuples, taken lazily. ``missing``: whether ids that no archive holds
    are yielded (with ResourceNotFoundError); a range's missing ids are never listed one by one
    otherwise. ``prefetch``: outcomes held ahead of the consumer. ``downloader``: run on a shared
    one (its workers and the Hub's rate limit shared with other jobs); else one of ``workers``
    threads is made and closed here.
    """

    def __init__(self, pool, ids, *, workers: int = 12, prefetch: int | None = None,
                 convert: Callable[..., Any] | None = None, convert_entries: bool = False, missing: bool = True,
                 downloader=None, max_span: int = 4 * 1024 * 1024, name: str | None = None):
        self.pool = pool
        self.report_missing = missing
        self._pending: dict[int, tuple[int, Any]] = {}
        self._lock = threading.Lock()
        self.sink = Sink(prefetch if prefetch is not None else max(16, 2 * workers), convert, convert_entries)
        self._own = downloader is None
        self.downloader = downloader or Downloader(max_workers=workers, max_span=max_span)
        if isinstance(ids, (IdRanges, str)):
            source = ids
        else:
            source = self._enumerated(ids)
        self.job = self.sink.job = self.downloader.read(pool, source, self.sink, name=name)
        self.error: BaseException | None = None  # what stopped the job as a whole, if anything did

    def _enumerated(self, ids: Iterable) -> Iterator[int]:
        for order, item in enumerate(ids):
            if isinstance(item, tuple) and len(item) == 2:
                rid, info = item
            else:
                rid, info = item, None
            with self._lock:
                self._pending[rid] = (order, info)
            yield rid

    def _settle(self, rid: int) -> tuple[int, Any]:
        with self._lock:
            return self._pending.pop(rid, (-1, None))

    def __iter__(self) -> Iterator[Outcome]:
        try:
            while True:
                item = self.sink.get()
                if item is None:
                    break
                yield from self._outcomes(item)
            yield from self.unreached()
        finally:
            self.close()

    def next_item(self, timeout: float | None = None) -> Iterator[Outcome] | None:
        """The outcomes of the next item of the sink (a missing range may be several); None at the
        end; queue.Empty after ``timeout``."""
        item = self.sink.get(timeout)
        if item is None:
            return None
        return self._outcomes(item)

    def _outcomes(self, item: tuple) -> Iterator[Outcome]:
        kind = item[0]
        if kind == "ok":
            _, rid, value, error, archive, entries = item
            order, info = self._settle(rid)
            yield Outcome(rid, value, error, order, info, archive, entries)
        elif kind == "failed":
            _, rid, reason = item
            order, info = self._settle(rid)
            yield Outcome(rid, None, ResourceFailedError(f"resource {rid}: {reason}"), order, info)
        else:
            ids = item[1]
            if not self.report_missing:
                for rid in (ids if self._pending else ()):
                    self._settle(rid)
                return
            for rid in ids:
                order, info = self._settle(rid)
                yield Outcome(rid, None, ResourceNotFoundError(f"Resource {rid!r} not found."), order, info)

    def unreached(self) -> Iterator[Outcome]:
        """After the job ended: a job that failed as a whole leaves ids never reached; each gets
        the job's error (``self.error``)."""
        job = self.job
        if job.state == "failed":
            self.error = job.exception if isinstance(job.exception, PoolError) else PoolError(job.error or "failed")
            with self._lock:
                left = sorted(self._pending.items(), key=lambda kv: kv[1][0])
                self._pending.clear()
            for rid, (order, info) in left:
                yield Outcome(rid, None, self.error, order, info)

    def close(self) -> None:
        """Stop: the job is cancelled (running transfers dropped), the sink emptied."""
        if not self.job.done:
            self.job.cancel()
        self.sink.close()
        if self._own:
            self.downloader.close(wait=False)

    def __enter__(self) -> "MemoryReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

