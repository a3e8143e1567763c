"""Pipes: resources of a pool handed to a loop one at a time, as cheesechaser's ``pipe`` does.

``Pipe(pool).batch_retrieve(ids)`` returns a :class:`PipeSession`: iterate it for
:class:`PipeItem` objects (errors are skipped there, as in cheesechaser) or call ``next()`` for
items and :class:`PipeError` objects alike.

Where cheesechaser fetches each id through ``mock_resource`` (a temporary folder, an index lookup
and a request per file), the image pipes here read through the planned downloader
(:class:`pools.engine.memory.MemoryReader`): one index per archive, merged ranged GETs, every file
checked against its sha256, never written to disk, with at most a bounded number of items read
ahead of the loop. A pipe whose ``retrieve`` is a subclass's own, or a pool that is not
index-based (a Newest pool, the manga pool), is served the way cheesechaser serves it: ``retrieve``
per id on ``max_workers`` threads.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Union

from tqdm import tqdm

from pools.base import HfBasedDataPool
from pools.engine.memory import MemoryReader, Outcome

__all__ = ["Pipe", "PipeItem", "PipeError", "PipeSession"]

log = logging.getLogger(__name__)


@dataclass
class PipeItem:
    """A resource retrieved: ``data`` is what the pipe makes of its files."""

    id: Union[int, str]
    data: Any
    order_id: int
    metainfo: Optional[dict]


@dataclass
class PipeError:
    """A resource that could not be retrieved, and why (``ResourceNotFoundError`` when no archive holds it)."""

    id: Union[int, str]
    error: Exception
    order_id: int
    metainfo: Optional[dict]


def _item(outcome: Outcome) -> PipeItem | PipeError:
    if outcome.error is not None:
        return PipeError(id=outcome.id, error=outcome.error, order_id=outcome.order, metainfo=outcome.info)
    return PipeItem(id=outcome.id, data=outcome.value, order_id=outcome.order, metainfo=outcome.info)


class _RetrieveSource:
    """cheesechaser's way: ``retrieve(id, info)`` per id on a thread pool, at most ``ahead`` items
    waiting for the loop; stops taking ids once closed."""

    def __init__(self, retrieve: Callable[[Any, Any], Any], ids, max_workers: int):
        self._retrieve = retrieve
        self._ids = ids
        self._workers = max_workers
        self._queue: queue.Queue = queue.Queue()
        self._room = threading.Semaphore(max_workers * 3)
        self._stop = threading.Event()
        self.finished = threading.Event()
        threading.Thread(target=self._produce, daemon=True, name="cheesechaser-pipe").start()

    def _produce(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=self._workers) as tp:
                for order, item in enumerate(self._ids):
                    rid, info = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
                    while not self._room.acquire(timeout=0.5):
                        if self._stop.is_set():
                            break
                    if self._stop.is_set():
                        break
                    tp.submit(self._one, order, rid, info)
        finally:
            self._queue.put(None)
            self.finished.set()

    def _one(self, order: int, rid, info) -> None:
        if self._stop.is_set():
            self._room.release()
            return
        try:
            outcome = Outcome(rid, self._retrieve(rid, info), None, order, info)
        except Exception as err:  # noqa: BLE001 - the id's error, handed to the loop as a PipeError
            log.debug("resource %r: %r", rid, err)
            outcome = Outcome(rid, None, err, order, info)
        self._queue.put(outcome)

    def next(self, timeout: float | None) -> Outcome | None:
        outcome = self._queue.get(timeout=timeout)
        if outcome is not None:
            self._room.release()
        return outcome

    def close(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None) -> bool:
        return self.finished.wait(timeout)


class _ReaderSource:
    """The engine's way: a :class:`MemoryReader`'s outcomes, one at a time."""

    def __init__(self, reader: MemoryReader):
        self.reader = reader
        self._batch: Iterator[Outcome] = iter(())
        self._ended = False
        self._tail: Iterator[Outcome] | None = None

    def next(self, timeout: float | None) -> Outcome | None:
        while True:
            outcome = next(self._batch, None)
            if outcome is not None:
                return outcome
            if self._tail is not None:
                return next(self._tail, None)
            batch = self.reader.next_item(timeout)  # queue.Empty after timeout
            if batch is None:
                self._tail = self.reader.unreached()
                continue
            self._batch = batch

    def close(self) -> None:
        self.reader.close()

    def wait(self, timeout: float | None) -> bool:
        try:
            self.reader.job.wait(timeout)
            return True
        except TimeoutError:
            return False


class PipeSession:
    """One ``batch_retrieve``: started by the first ``next()`` (or iteration), stopped by
    ``shutdown()``, by leaving its ``with`` block, by ``max_count`` items, or when a ``for`` loop
    over it stops early; stopping cancels the transfers still running."""

    def __init__(self, start: Callable[[], Any], max_count: Optional[int] = None, silent: bool = False):
        self._start = start
        self._source = None
        self._lock = threading.Lock()
        self.max_count: Optional[int] = max_count
        self.silent = silent
        self.is_start = threading.Event()
        self.is_stopped = threading.Event()
        self.is_finished = threading.Event()
        self._current_count = 0

    def _started(self):
        with self._lock:
            if self._source is None:
                self.is_start.set()
                self._source = self._start()
            return self._source

    def next(self, block: bool = True, timeout: Optional[float] = None) -> PipeItem | PipeError:
        """The next item or error; ``queue.Empty`` when none comes in ``timeout`` seconds (at once
        when ``block`` is false) or when the session has ended."""
        if self.is_finished.is_set():
            raise queue.Empty
        source = self._started()
        outcome = source.next(timeout if block else 0)
        if outcome is None:
            self.is_stopped.set()
            self.is_finished.set()
            raise queue.Empty
        return _item(outcome)

    def __iter__(self) -> Iterator[PipeItem]:
        if self.max_count is not None and self.max_count <= 0:
            return
        bar = tqdm(desc="Piped Items", total=self.max_count, disable=self.silent or not sys.stderr.isatty())
        try:
            while not self.is_stopped.is_set():
                try:
                    item = self.next(block=True, timeout=1.0)
                except queue.Empty:
                    continue
                if isinstance(item, PipeItem):
                    bar.update()
                    yield item
                    self._current_count += 1
                    if self.max_count is not None and self._current_count >= self.max_count:
                        break
        finally:
            bar.close()
            self.shutdown(wait=False)

    def shutdown(self, wait: bool = True, timeout: Optional[float] = None) -> None:
        """Stop: no more ids are fetched, running transfers are dropped."""
        self.is_stopped.set()
        with self._lock:
            source = self._source
            if source is None:  # never started: nothing runs
                self.is_finished.set()
                return
        source.close()
        if wait and source.wait(timeout):
            self.is_finished.set()

    def __enter__(self) -> "PipeSession":
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.shutdown(wait=True, timeout=None)


class Pipe:
    """Retrieves resources of ``pool``; a subclass says what a resource becomes in ``retrieve``.

    ``downloader``: a :class:`pools.Downloader` to run on (its workers and the Hub's rate limit
    shared with its other jobs); by default each session has its own of ``max_workers`` threads.
    """

    def __init__(self, pool, *, downloader=None):
        self.pool = pool
        self.downloader = downloader

    def retrieve(self, resource_id, resource_metainfo, silent: bool = False):
        raise NotImplementedError  # pragma: no cover

    def _from_files(self, resource_id, files: dict[str, bytes]) -> Any:
        """What a resource becomes, from its files read in memory (name -> bytes)."""
        raise NotImplementedError  # pragma: no cover

    # the ``retrieve`` that ``_from_files`` stands for: the engine's way is taken only while a
    # subclass has not overridden it (decided per class, as the pools decide their fast paths)
    _retrieve_in_memory: Callable | None = None

    def reads_in_memory(self) -> bool:
        own = type(self)._retrieve_in_memory
        pool = self.pool
        return (own is not None and type(self).retrieve is own and isinstance(pool, HfBasedDataPool)
                and pool._own("mock_resource", HfBasedDataPool))

    def batch_retrieve(self, resource_ids, max_workers: int = 12, max_count: Optional[int] = None,
                       silent: bool = False) -> PipeSession:
        """Retrieve ``resource_ids`` (ids or ``(id, metainfo)`` tuples, taken lazily) on
        ``max_workers`` threads; items arrive as they are read, ``order_id`` saying where each
        was in ``resource_ids``."""
        if self.reads_in_memory():
            def start():
                return _ReaderSource(MemoryReader(self.pool, resource_ids, workers=max_workers,
                                                  convert=self._from_files, downloader=self.downloader))
        else:
            def start():
                return _RetrieveSource(lambda rid, info: self.retrieve(rid, info, silent=silent),
                                       resource_ids, max_workers)
        return PipeSession(start, max_count=max_count, silent=silent)
