"""A download job and its bookkeeping: progress, cancel, and the outcome of every id.

A :class:`Job` is what :meth:`pools.downloader.Downloader.submit` returns; the stages (plan, fetch,
write) report each id's outcome through its ``_file_done`` / ``_resource_*`` methods, which fill
the job's :class:`~pools.report.DownloadReport` and emit :mod:`pools.events`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator

from . import events as ev
from .index import IndexEntry
from .ranges import IdList, IdRanges
from .report import DownloadReport
from .files import OutsideError
from .write import PARTIAL_DIR, metainfo_path, tmp_dir, write_json_atomic

if TYPE_CHECKING:
    from .downloader import Downloader


class Job:
    """One request: these ids of this pool into that folder. Created by :meth:`Downloader.submit`."""

    def __init__(self, downloader: "Downloader", job_id: int, pool, ids: IdRanges | Iterator[int], dst_dir: str,
                 save_metainfo: bool, metainfo_fmt: str, infos: dict[int, Any] | None, name: str):
        self.downloader = downloader
        self.id = job_id
        self.pool = pool
        # the ids asked for; a lazy stream is kept apart, consumed a chunk at a time by the plan
        self.ids: IdRanges | None = ids if isinstance(ids, IdRanges) else None
        self.stream: Iterator[int] | None = None if isinstance(ids, IdRanges) else ids
        self._streamed = 0  # ids taken from the stream so far
        self._expected: int | None = None  # how many the stream says it holds (its len()), if it says
        self.exception: BaseException | None = None  # what stopped the job, when something did
        self.dst_dir = os.path.abspath(dst_dir)
        self.real_dst = os.path.realpath(self.dst_dir)  # every path written is checked against it
        self.partial_dir = os.path.join(self.dst_dir, PARTIAL_DIR)
        self.save_metainfo = save_metainfo
        self.metainfo_fmt = metainfo_fmt
        self.infos = infos if infos is not None else {}  # a stream fills it as it is consumed
        self.name = name
        self.state: str = "queued"
        self.error: str | None = None
        self.report = DownloadReport(state="queued", requested=self.ids)
        self.cancel_event = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._started = None  # monotonic time of the first task
        self._ids_done = 0
        self._bytes_done = 0
        self._bytes_planned = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._last_progress = 0.0
        self._seen_unrecognized: set[str] = set()  # archives whose unrecognized names were reported
        self._unrecognized_seen: set[tuple[str, str]] = set()
        self._broken: dict[str, str] = {}  # archive -> why its index is unusable, for this job
        self._archive_facts: dict[str, tuple] = {}  # archive -> (filesize, hash_lfs) from its index
        self.in_flight: set = set()  # open HTTP responses, closed by cancel() to stop them at once
        self._busy = 0  # tasks of this job running on a worker
        self._streaming = 0  # of which inside a ranged GET
        self._writing = 0  # temporary files open in the destination
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
            for response in list(self.in_flight):
                try:
                    response.close()  # the worker's read fails now, not at the read timeout
                except Exception:  # noqa: BLE001 - already closed or closing
                    pass
            self.downloader._wake()
            self._end_if_only_waiting()

    def _end_if_only_waiting(self) -> None:
        """After a cancel: when every running task only waits on a request and no temporary file
        is open, nothing is left to clean, so the job ends now, not when the server answers."""
        with self._lock:
            idle = (self.cancel_event.is_set() and not self._finished and self._writing == 0
                    and self._busy == self._streaming)
        if idle:
            self.downloader._finish(self)

    def wait(self, timeout: float | None = None) -> DownloadReport:
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still running")
        return self.report

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def snapshot(self) -> ev.JobProgress:
        with self._lock:
            now = time.monotonic()
            elapsed = (now - self._started) if self._started else 0.0
            if self.report.state in ("done", "cancelled", "failed"):
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

    # -- bookkeeping, called by workers
    def _count_resolve(self) -> None:
        with self._lock:
            self._resolves += 1

    def _emit(self, event) -> None:
        self.downloader._emit(event)

    def _settled(self, n: int = 1) -> None:
        with self._lock:
            self._ids_done += n
        self._maybe_progress()

    def _add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes_done += n
            now = time.monotonic()
            self._samples.append((now, self._bytes_done))
            while self._samples and now - self._samples[0][0] > 5.0:
                self._samples.popleft()
        self._maybe_progress()

    def _maybe_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= 0.1:
            self._last_progress = now
            self._emit(self.snapshot())

    @property
    def ids_total(self) -> int:
        """How many ids the job has: for a stream, what its ``len()`` said, or how many were taken
        from it so far (the count once the job ended)."""
        if self.ids is not None:
            return len(self.ids)
        if self._expected is not None:
            return max(self._expected, self._streamed)
        return self._streamed

    def _fail(self, error: str, exception: BaseException | None = None) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
                self.exception = exception
        self.cancel_event.set()

    # -- outcomes, called by the stages
    def _missing(self, ids: IdList) -> None:
        """Ids that are in no archive (a run list: a long range's gaps stay a few runs)."""
        if not ids:
            return
        with self._lock:  # IdList appends read then write its last run: one writer at a time
            if self._finished:
                return
            self.report.missing.extend(ids)
        self._emit(ev.ResourcesMissing(self.id, ids))
        self._settled(len(ids))

    def _unrecognized(self, archive: str, name: str, reason: str) -> None:
        with self._lock:
            if (archive, name) in self._unrecognized_seen:
                return
            self._unrecognized_seen.add((archive, name))
            self.report.unrecognized.append((archive, name, reason))
        self._emit(ev.FileUnrecognized(self.id, archive, name, reason))

    def _file_done(self, res: Resource, entry: IndexEntry) -> None:
        with self._lock:
            res.files.append(entry.basename)
            res.nbytes += entry.size
            res.remaining -= 1
            last = res.remaining == 0
            self.report.files += 1
        if last:
            self._resource_complete(res, "downloaded")

    def _file_failed(self, res: Resource, reason: str) -> None:
        with self._lock:
            res.failed = res.failed or reason
            res.remaining -= 1
            last = res.remaining == 0
        if last:
            self._resource_complete(res, "downloaded")

    def _resource_complete(self, res: Resource, status: str) -> None:
        if res.failed is not None:
            self._resource_failed(res.rid, res.failed)
            return
        if self.save_metainfo and res.info is not None:
            try:
                path = metainfo_path(self.dst_dir, self.metainfo_fmt, res.rid)
            except (ValueError, OutsideError) as err:  # a folder swapped for a link during the job
                self._resource_failed(res.rid, f"metainfo not written: {err}")
                return
            write_json_atomic(path, res.info, tmp_dir=tmp_dir(self))
        with self._lock:
            if self._finished:  # see _resource_failed: a verified file on disk, skipped by a rerun
                return
            (self.report.downloaded if status == "downloaded" else self.report.skipped).append(res.rid)
            if status == "unverified":
                self.report.unverified.append(res.rid)
        self._emit(ev.ResourceDone(self.id, res.rid, status, tuple(res.files), res.nbytes))  # type: ignore[arg-type]
        self._settled()

    def _resource_failed(self, rid: int, reason: str) -> None:
        with self._lock:
            if self._finished:  # ended (cancelled, failed) while this request was on its way: the
                return  # report was handed out; the id stays "not reached", as it said
            self.report.failed[rid] = reason
        self._emit(ev.ResourceFailed(self.id, rid, reason))
        self._settled()


class Resource:
    """One wanted id of a job: its files still to settle, and what became of them."""

    __slots__ = ("rid", "archive", "remaining", "files", "nbytes", "failed", "info")

    def __init__(self, rid: int, archive: str, n: int, info: Any):
        self.rid = rid
        self.archive = archive
        self.remaining = n
        self.files: list[str] = []
        self.nbytes = 0
        self.failed: str | None = None
        self.info = info
