"""The batch downloader: a queue of jobs served by a pool of worker threads.

A job runs as stages, each an object in its own module:

* :mod:`pools.engine.plan` (:class:`Planner`): ids grouped by archive, looked up in the archive's
  index (fetched once per pool), already-present files skipped, the rest cut into runs;
* :mod:`pools.engine.fetch` (:class:`Fetcher`): one ranged GET per run, retried for the files
  still missing;
* :mod:`pools.engine.write` (:class:`RunWriter`): the bytes split into files, verified, renamed
  into place;
* :mod:`pools.engine.job` (:class:`Job`): the job's bookkeeping, report and events.

This module holds the queue and the workers: every task is ``task(worker_id)`` with a priority,
so that fetching beats planning beats starting new archives, and memory stays bounded by the
number of workers, whatever the range.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import threading
from typing import Any, Callable

from pools import events as ev
from pools.engine.fetch import Fetcher
from pools.engine.job import Job
from pools.engine.plan import Planner
from pools.engine.workers import WorkerStates
from pools.engine.write import PARTIAL_DIR, check_metainfo_fmt, clean_stale_partials
from pools.errors import Cancelled, DestinationError, PoolError
from pools.ids import expected_count, take
from pools.ranges import IdRanges
from pools.transport.retry import RetryPolicy

__all__ = ["Downloader", "Job", "PARTIAL_DIR"]


class Downloader:
    """Runs download jobs on ``max_workers`` threads; more jobs can be submitted while it runs.

    ``on_event`` (and listeners added later) receive :mod:`pools.events` objects from worker
    threads. ``merge_gap``: wanted files of one archive closer than this many bytes are fetched
    with one ranged GET; ``max_span`` caps the bytes of one such request.
    """

    def __init__(self, max_workers: int = 12, *, on_event: Callable[[Any], None] | None = None,
                 merge_gap: int = 512 * 1024, max_span: int = 32 * 1024 * 1024,
                 plan_chunk: int = 4096, retry: RetryPolicy | None = None):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._listeners: list[Callable[[Any], None]] = [on_event] if on_event is not None else []
        self.states = WorkerStates(self._emit)
        self.fetcher = Fetcher(self.states, retry, lambda: self._want_workers)
        self.planner = Planner(self._push, self.states, self.fetcher, merge_gap=merge_gap,
                               max_span=max_span, plan_chunk=plan_chunk)
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Job, Callable[[int], None]]] = []
        self._seq = itertools.count()
        self._job_ids = itertools.count(1)
        self._jobs: list[Job] = []
        self._threads: dict[int, threading.Thread] = {}
        self._want_workers = 0
        self._closed = False
        self.set_workers(max_workers)

    # -- lifecycle
    def __enter__(self) -> "Downloader":
        return self

    def __exit__(self, *exc) -> None:
        if exc and exc[0] is not None:
            self.cancel_all()
        self.close()

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    @property
    def workers(self) -> int:
        return self._want_workers

    @property
    def retry(self) -> RetryPolicy | None:
        return self.fetcher.retry

    def next_job_id(self) -> int:
        """A new job id: a job run elsewhere (a cluster) takes one here, so ids never clash."""
        return next(self._job_ids)

    def forget(self, job: Job) -> None:
        """Drop a finished job from :attr:`jobs` (a long-lived downloader keeps none)."""
        try:
            self._jobs.remove(job)
        except ValueError:
            pass

    def add_listener(self, callback: Callable[[Any], None]) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Any], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def set_workers(self, n: int) -> None:
        """Grow or shrink the worker pool; shrinking lets busy workers finish their task first."""
        n = max(1, int(n))
        with self._cond:
            self._want_workers = n
            for wid in range(n):
                thread = self._threads.get(wid)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(target=self._work, args=(wid,), daemon=True,
                                              name=f"cheesechaser-worker-{wid}")
                    self._threads[wid] = thread
                    thread.start()
            self._cond.notify_all()

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def close(self, wait: bool = True) -> None:
        if wait:
            for job in list(self._jobs):
                job.wait()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for thread in list(self._threads.values()):
                if thread is not threading.current_thread():
                    thread.join(timeout=2)  # a worker still waiting on a cancelled request is a daemon

    # -- submitting
    def submit(self, pool, ids, dst_dir: str, *, save_metainfo: bool = True,
               metainfo_fmt: str = '{resource_id}_metainfo.json', infos: dict[int, Any] | None = None,
               name: str | None = None) -> Job:
        """Queue a job. ``ids``: an :class:`IdRanges`, a range expression, or ids / ``(id, info)`` tuples."""
        if self._closed:
            raise RuntimeError("downloader is closed")
        infos = dict(infos or {})
        ranges = take(ids, infos)  # IdTypeError (a TypeError) naming the first bad item
        expected = None if isinstance(ranges, IdRanges) else expected_count(ids)
        try:
            os.makedirs(dst_dir, exist_ok=True)
            if not os.access(dst_dir, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "permission denied")
        except OSError as err:
            raise DestinationError(f"cannot write to {dst_dir}: {err.strerror or err}") from None
        if save_metainfo:
            check_metainfo_fmt(metainfo_fmt, dst_dir)
        partial = os.path.join(dst_dir, PARTIAL_DIR)
        if os.path.lexists(partial) and (os.path.islink(partial) or not os.path.isdir(partial)):
            raise DestinationError(f"cannot use {partial}: it is a link or not a folder; remove it and run again")
        what = ranges if isinstance(ranges, IdRanges) else "(ids streamed)"
        job = Job(self.next_job_id(), pool, ranges, dst_dir, save_metainfo=save_metainfo,
                  metainfo_fmt=metainfo_fmt, infos=infos, emit=self._emit, wake=self._wake,
                  name=name or f"{getattr(pool, 'data_repo_id', 'pool')} {what}"[:80])
        job.expected = expected
        clean_stale_partials(job.partial_dir)
        self._jobs.append(job)
        self._emit(ev.JobState(job.id, "queued"))
        self.planner.start(job)
        return job

    def read(self, pool, ids, sink, *, name: str | None = None) -> Job:
        """Queue a job whose files are read into memory: each id's verified bytes go to ``sink``
        (a :class:`pools.engine.memory.Sink`), never to disk. Workers wait for the sink's room
        between tasks, so memory stays bounded by the sink's limit, whatever the number of ids."""
        if self._closed:
            raise RuntimeError("downloader is closed")
        ranges = take(ids, {})
        expected = None if isinstance(ranges, IdRanges) else expected_count(ids)
        what = ranges if isinstance(ranges, IdRanges) else "(ids streamed)"
        job = Job(self.next_job_id(), pool, ranges, "", save_metainfo=False, metainfo_fmt="", infos={},
                  emit=self._emit, wake=self._wake, sink=sink,
                  name=name or f"{getattr(pool, 'data_repo_id', 'pool')} {what} (in memory)"[:80])
        job.expected = expected
        self._jobs.append(job)
        self._emit(ev.JobState(job.id, "queued"))
        self.planner.start(job)
        return job

    # -- the queue
    def _push(self, priority: int, job: Job, task: Callable[[int], None]) -> None:
        with self._cond:
            job.task_queued()
            heapq.heappush(self._heap, (priority, next(self._seq), job, task))
            self._cond.notify()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _work(self, wid: int) -> None:
        while True:
            with self._cond:
                while True:
                    if wid >= self._want_workers or (self._closed and not self._heap):
                        self._threads.pop(wid, None)
                        return
                    if self._heap:
                        _, _, job, task = heapq.heappop(self._heap)
                        break
                    self._cond.wait()
            try:
                if job.task_begun():
                    task(wid)
                    if job.sink is not None:  # the consumer is behind: fetch no more until it catches up
                        job.sink.wait_room(job.cancel_event)
            except Cancelled:
                pass
            except PoolError as err:
                job.fail(str(err), err)
            except OSError as err:
                job.fail(_os_message(err, job.dst_dir), DestinationError(_os_message(err, job.dst_dir)))
            except Exception as err:  # noqa: BLE001 - a bug must not kill the worker silently
                job.fail(f"internal error: {err.__class__.__name__}: {err}")
            finally:
                self.states.state(wid, "idle")
                job.task_ended()

    def _emit(self, event) -> None:
        ev.tell(self._listeners, event)


def _os_message(err: OSError, dst_dir: str) -> str:
    if err.errno == errno.ENOSPC:
        return f"disk full while writing to {dst_dir}"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {dst_dir}: {err.strerror}"
    return f"I/O error in {dst_dir}: {err.strerror or err}"
