"""A download job and its bookkeeping: progress, cancel, and the outcome of every id.

A :class:`Job` is what :meth:`pools.Downloader.submit` returns. The stages (plan, fetch, write)
report what happened through its methods (``missing``, ``file_done``, ``resource_failed``...),
which fill the job's :class:`~pools.engine.report.DownloadReport` and emit :mod:`pools.events`.
The job ends itself when its last task is done (``task_ended``); the downloader only runs tasks.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

from pools import events as ev
from pools.archive.index import IndexEntry
from pools.engine.report import DownloadReport
from pools.engine.write import PARTIAL_DIR, metainfo_path, tmp_dir, write_json_atomic
from pools.errors import Cancelled
from pools.files import OutsideError, remove_empty_dir
from pools.ranges import IdList, IdRanges

SETTLED = ("done", "cancelled", "failed")


class JobLike(Protocol):
    """What a running job is, wherever it runs: a local :class:`Job` and a cluster's
    :class:`~pools.cluster.runner.ClusterJob` alike. ``wait(timeout)`` raises TimeoutError when
    ``timeout`` seconds pass first."""

    id: int
    name: str
    dst_dir: str

    @property
    def state(self) -> str: ...

    @property
    def done(self) -> bool: ...

    @property
    def report(self) -> DownloadReport: ...

    def cancel(self) -> None: ...

    def wait(self, timeout: float | None = None) -> DownloadReport: ...


class Job:
    """One request: these ids of this pool into that folder. Created by :meth:`Downloader.submit`.

    ``emit`` receives the job's events; ``wake`` is called after a cancel, so idle workers look
    at the queue again.
    """

    def __init__(self, job_id: int, pool, ids: IdRanges | Iterator[int], dst_dir: str, *,
                 save_metainfo: bool, metainfo_fmt: str, infos: dict[int, Any] | None, name: str,
                 emit: Callable[[Any], None], wake: Callable[[], None] = lambda: None, sink=None):
        self.id = job_id
        self.pool = pool
        # the ids asked for; a lazy stream is kept apart, consumed a chunk at a time by the plan
        self.ids: IdRanges | None = ids if isinstance(ids, IdRanges) else None
        self.stream: Iterator[int] | None = None if isinstance(ids, IdRanges) else ids
        self.expected: int | None = None  # how many the stream says it holds (its len()), if it says
        self.exception: BaseException | None = None  # what stopped the job, when something did
        # where the files go: a folder, or a sink that takes each resource's bytes in memory
        # (:class:`pools.engine.memory.Sink`): then nothing is written anywhere
        self.sink = sink
        self.dst_dir = os.path.abspath(dst_dir) if sink is None else ""
        self.real_dst = os.path.realpath(self.dst_dir) if sink is None else ""
        self.partial_dir = os.path.join(self.dst_dir, PARTIAL_DIR) if sink is None else ""
        self.save_metainfo = save_metainfo and sink is None
        self.metainfo_fmt = metainfo_fmt
        self.infos = infos if infos is not None else {}  # a stream fills it as it is consumed
        self.name = name
        self.state: str = "queued"
        self.error: str | None = None
        self.report = DownloadReport(state="queued", requested=self.ids)
        self.cancel_event = threading.Event()
        self.in_flight: set = set()  # open HTTP responses, closed by cancel() to stop them at once
        self.broken: dict[str, str] = {}  # archive -> why its index is unusable, for this job
        self.archive_facts: dict[str, tuple] = {}  # archive -> (filesize, hash_lfs) from its index
        self._emit = emit
        self._wake = wake
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._outstanding = 0  # tasks queued or running
        self._busy = 0  # tasks of this job running on a worker
        self._streaming = 0  # of which inside a ranged GET
        self._writing = 0  # temporary files open in the destination
        self._started: float | None = None  # monotonic time of the first task
        self._streamed = 0  # ids taken from the stream so far
        self._ids_done = 0
        self._bytes_done = 0
        self._bytes_planned = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._last_progress = 0.0
        self._seen_unrecognized: set[str] = set()  # archives whose unrecognized names were reported
        self._unrecognized_seen: set[tuple[str, str]] = set()
        self._finished = False
        self._give_ups = 0  # ranged GETs in a row that gave up on a transient error, no success between
        self._resolves = 0  # /resolve/ requests spent for this job (the Hub's quota counts them)

    def __repr__(self):
        return f"Job({self.id}, {self.name!r}, state={self.state})"

    # -- public
    def cancel(self) -> None:
        """Stop promptly: running transfers are dropped and their temporary files removed."""
        if not self._done.is_set():
            with self._lock:
                self.cancel_event.set()
            if self.sink is not None:
                self.sink.wake()  # workers waiting for the reader's room
            for response in list(self.in_flight):
                try:
                    response.close()  # the worker's read fails now, not at the read timeout
                except Exception:  # noqa: BLE001 - already closed or closing
                    pass
            self._wake()
            self.end_if_only_waiting()

    def wait(self, timeout: float | None = None) -> DownloadReport:
        """The report once the job ended; TimeoutError when ``timeout`` seconds pass first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still running")
        return self.report

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def ids_total(self) -> int:
        """How many ids the job has: for a stream, what its ``len()`` said, or how many were taken
        from it so far (the count once the job ended)."""
        if self.ids is not None:
            return len(self.ids)
        if self.expected is not None:
            return max(self.expected, self._streamed)
        return self._streamed

    def snapshot(self) -> ev.JobProgress:
        with self._lock:
            now = time.monotonic()
            elapsed = (now - self._started) if self._started else 0.0
            if self.report.state in SETTLED:
                elapsed = self.report.elapsed
            rate = 0.0
            if self._samples:
                t0, b0 = self._samples[0]
                span = now - t0
                if span > 0.2:
                    rate = (self._bytes_done - b0) / span
                elif elapsed > 0:
                    rate = self._bytes_done / elapsed
            return ev.JobProgress(self.id, self.ids_total, self._ids_done, self.report.files,
                                  self._bytes_done, self._bytes_planned, elapsed, rate)

    # -- the task lifecycle, called by the downloader's workers
    def task_queued(self) -> None:
        with self._lock:
            self._outstanding += 1

    def task_begun(self) -> bool:
        """A worker took one of this job's tasks: False when the job was cancelled (skip it)."""
        with self._lock:
            self._busy += 1
            if self.cancel_event.is_set():
                return False
            first = self.state == "queued"
            if first:
                self.state = self.report.state = "running"
                self._started = time.monotonic()
        if first:
            self._emit(ev.JobState(self.id, "running"))
        return True

    def task_ended(self) -> None:
        with self._lock:
            self._busy -= 1
            self._outstanding -= 1
            last = self._outstanding == 0 and not self._done.is_set()
        if last:
            self.finish()
        elif self.cancel_event.is_set():
            self.end_if_only_waiting()

    def end_if_only_waiting(self) -> None:
        """After a cancel: when every running task only waits on a request and no temporary file
        is open, nothing is left to clean, so the job ends now, not when the server answers."""
        with self._lock:
            idle = (self.cancel_event.is_set() and not self._finished and self._writing == 0
                    and self._busy == self._streaming)
        if idle:
            self.finish()

    def finish(self) -> None:
        """Settle the job once: its state, the report's totals, the last events."""
        report = self.report
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self.error is not None:
                state = "failed"
            elif self.cancel_event.is_set():
                state = "cancelled"
            else:
                state = "done"
            self.state = report.state = state
            report.error = self.error
            report.elapsed = (time.monotonic() - self._started) if self._started else 0.0
            report.nbytes = self._bytes_done
            report.not_reached = max(0, self.ids_total - self._ids_done)
            report.resolves = self._resolves
        try:
            if self.sink is not None:
                self.sink.end(self)
            else:
                remove_empty_dir(self.partial_dir)
            self._maybe_progress(force=True)
            self._emit(ev.JobState(self.id, state, self.error))
        finally:
            self._done.set()  # whatever happened above, nobody waits for this job forever

    def fail(self, error: str, exception: BaseException | None = None) -> None:
        """Stop the job for ``error`` (the first reason given is kept)."""
        with self._lock:
            if self.error is None:
                self.error = error
                self.exception = exception
        self.cancel_event.set()

    # -- what the stages tell the job
    def count_resolve(self) -> None:
        with self._lock:
            self._resolves += 1

    def took_from_stream(self, n: int) -> None:
        with self._lock:
            self._streamed += n

    def stream_ended(self) -> None:
        self.expected = None  # the stream is read to its end: what it held is what was taken

    def planned_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes_planned += n

    def first_look_at(self, archive: str) -> bool:
        """True the first time an archive's unrecognized names are to be reported by this job."""
        with self._lock:
            first = archive not in self._seen_unrecognized
            self._seen_unrecognized.add(archive)
        return first

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes_done += n
            now = time.monotonic()
            self._samples.append((now, self._bytes_done))
            while self._samples and now - self._samples[0][0] > 5.0:
                self._samples.popleft()
        self._maybe_progress()

    @contextmanager
    def streaming(self):
        """Around a ranged GET: a cancel may end the job while it only waits on the server."""
        with self._lock:
            if self.cancel_event.is_set():
                raise Cancelled()
            self._streaming += 1
        try:
            yield
        finally:
            with self._lock:
                self._streaming -= 1

    def file_opening(self) -> None:
        """A temporary file is about to open: decided together with cancel(), so that no file
        opens once the job may end. Raises Cancelled."""
        with self._lock:
            if self.cancel_event.is_set():
                raise Cancelled()
            self._writing += 1

    def file_closed(self) -> None:
        with self._lock:
            self._writing -= 1

    def got_bytes_back(self) -> None:
        """A ranged GET delivered a file: the give-ups in a row start again from zero."""
        with self._lock:
            self._give_ups = 0

    def gave_up(self, error: str, attempts: int, workers: int) -> None:
        """After as many give-ups in a row as there are workers (at least 3), the Hub is down:
        stop the job, rather than give every queued file its own round of retries (~20 s each
        with the default policy, hours for a big job)."""
        with self._lock:
            self._give_ups += 1
            down = self._give_ups >= max(3, workers)
            count = self._give_ups
        if down:
            self.fail(f"the Hub could not be reached: {count} requests in a row gave up after "
                      f"{attempts} attempts each (last: {error})")

    # -- outcomes, called by the stages
    def _settled(self, n: int = 1) -> None:
        with self._lock:
            self._ids_done += n
        self._maybe_progress()

    def _maybe_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= 0.1:
            self._last_progress = now
            self._emit(self.snapshot())

    def missing(self, ids: IdList) -> None:
        """Ids that are in no archive (a run list: a long range's gaps stay a few runs)."""
        if not ids:
            return
        with self._lock:  # IdList appends read then write its last run: one writer at a time
            if self._finished:
                return
            self.report.missing.extend(ids)
        if self.sink is not None:
            self.sink.missing(ids)
        self._emit(ev.ResourcesMissing(self.id, ids))
        self._settled(len(ids))

    def unrecognized(self, archive: str, name: str, reason: str) -> None:
        with self._lock:
            if (archive, name) in self._unrecognized_seen:
                return
            self._unrecognized_seen.add((archive, name))
            self.report.unrecognized.append((archive, name, reason))
        self._emit(ev.FileUnrecognized(self.id, archive, name, reason))

    def file_done(self, res: Resource, entry: IndexEntry, data: bytes | None = None) -> None:
        """A file of ``res`` is in place (or, for a sink, its verified ``data`` is in memory)."""
        with self._lock:
            if data is not None:
                if res.data is None:
                    res.data, res.entries = {}, []
                res.data[entry.basename] = data
                res.entries.append(entry)
            res.files.append(entry.basename)
            if not entry.sha256:
                res.unchecked = True  # the index gives nothing to check its bytes against
            res.nbytes += entry.size
            res.remaining -= 1
            last = res.remaining == 0
            self.report.files += 1
        if last:
            self.resource_complete(res, "downloaded")

    def file_failed(self, res: Resource, reason: str) -> None:
        with self._lock:
            res.failed = res.failed or reason
            res.remaining -= 1
            last = res.remaining == 0
        if last:
            self.resource_complete(res, "downloaded")

    def resource_complete(self, res: Resource, status: str) -> None:
        if res.failed is not None:
            self.resource_failed(res.rid, res.failed)
            return
        if self.save_metainfo and res.info is not None:
            try:
                path = metainfo_path(self.dst_dir, self.metainfo_fmt, res.rid)
            except (ValueError, OutsideError) as err:  # a folder swapped for a link during the job
                self.resource_failed(res.rid, f"metainfo not written: {err}")
                return
            write_json_atomic(path, res.info, tmp_dir=tmp_dir(self.dst_dir))
        with self._lock:
            if self._finished:  # see resource_failed: a verified file on disk, skipped by a rerun
                return
            (self.report.downloaded if status == "downloaded" else self.report.skipped).append(res.rid)
            if status == "unverified" or (status == "downloaded" and res.unchecked):
                self.report.unverified.append(res.rid)
        if self.sink is not None:
            data, res.data = res.data or {}, None
            entries, res.entries = res.entries or [], None
            self.sink.resource(res.rid, data, res.info, res.archive, entries)
        self._emit(ev.ResourceDone(self.id, res.rid, status, tuple(res.files), res.nbytes))  # type: ignore[arg-type]
        self._settled()

    def resource_failed(self, rid: int, reason: str) -> None:
        with self._lock:
            if self._finished:  # ended (cancelled, failed) while this request was on its way: the
                return  # report was handed out; the id stays "not reached", as it said
            self.report.failed[rid] = reason
        if self.sink is not None:
            self.sink.failed(rid, reason)
        self._emit(ev.ResourceFailed(self.id, rid, reason))
        self._settled()


class Resource:
    """One wanted id of a job: its files still to settle, and what became of them."""

    __slots__ = ("rid", "archive", "remaining", "files", "nbytes", "failed", "info", "data", "entries", "unchecked")

    def __init__(self, rid: int, archive: str, n: int, info: Any):
        self.rid = rid
        self.archive = archive
        self.remaining = n
        self.files: list[str] = []
        self.nbytes = 0
        self.failed: str | None = None
        self.info = info
        self.data: dict[str, bytes] | None = None  # the verified bytes, when the job has a sink
        self.entries: list[IndexEntry] | None = None  # ... and their index entries
        self.unchecked = False  # a file of it had no sha256 in the index: fetched, not verified
