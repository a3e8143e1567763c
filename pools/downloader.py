"""The batch downloader: a queue of jobs served by a pool of worker threads.

How a job runs:

* **Plan** ids archive by archive. A range over an ``id % 10**L`` layout is walked residue by
  residue without ever listing its ids; each archive's index is fetched once per pool (and from
  the huggingface_hub cache, keyed by commit, when it is there).
* **Resume**: a file already in the destination whose sha256 matches the index is not fetched.
* **Fetch** the wanted files of an archive in *runs*: neighbours closer than ``merge_gap`` bytes
  share one ranged GET, which is then split into files, each hashed as it streams.
* **Write** every file to a temporary name under ``<dst>/.cheesechaser-partial/`` and rename it
  into place only once its sha256 matched; a cancel or a failure removes the temporary file.
* **Retry** 5xx, 429 (honouring ``Retry-After``), dropped connections, short bodies and bytes that
  fail their hash, with backoff and jitter; a retry re-asks only for the files still missing.

Work is prioritised so that fetching beats planning beats starting new archives: memory stays
bounded by the number of workers, whatever the size of the range.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import itertools
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from . import events as ev
from .errors import DestinationError, IndexFormatError, PoolError, TransferError
from .files import remove_empty_dir, unlink_quiet
from .index import IndexEntry
from .ranges import IdRanges, parse_ids
from .report import DownloadReport
from huggingface_hub.errors import EntryNotFoundError

from .budget import format_wait
from .transport import Cancelled, RateLimited, RetryPolicy, TransientError, wait_visibly

PARTIAL_DIR = ".cheesechaser-partial"
# Temporary names are unique in the process (all downloaders, all jobs), and a temporary file of
# this pid older than this process was left by an earlier process that had the same pid.
_TMP_NAMES = itertools.count()
_STARTED = time.time()
_FETCH, _PLAN, _FEED = 0, 1, 2


class Job:
    """One request: these ids of this pool into that folder. Created by :meth:`Downloader.submit`."""

    def __init__(self, downloader: "Downloader", job_id: int, pool, ids: IdRanges, dst_dir: str,
                 save_metainfo: bool, metainfo_fmt: str, infos: dict[int, Any] | None, name: str):
        self.downloader = downloader
        self.id = job_id
        self.pool = pool
        self.ids = ids
        self.dst_dir = os.path.abspath(dst_dir)
        self.partial_dir = os.path.join(self.dst_dir, PARTIAL_DIR)
        self.save_metainfo = save_metainfo
        self.metainfo_fmt = metainfo_fmt
        self.infos = infos or {}
        self.name = name
        self.state: str = "queued"
        self.error: str | None = None
        self.report = DownloadReport(state="queued")
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
        self._seen_unrecognized: set[str] = set()
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
            return ev.JobProgress(self.id, len(self.ids), self._ids_done, self.report.files,
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

    def _fail(self, error: str) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
        self.cancel_event.set()


class _Resource:
    __slots__ = ("rid", "archive", "remaining", "files", "nbytes", "failed", "info")

    def __init__(self, rid: int, archive: str, n: int, info: Any):
        self.rid = rid
        self.archive = archive
        self.remaining = n
        self.files: list[str] = []
        self.nbytes = 0
        self.failed: str | None = None
        self.info = info


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
        self.merge_gap = merge_gap
        self.max_span = max_span
        self.plan_chunk = plan_chunk
        self.retry = retry
        self._listeners: list[Callable[[Any], None]] = [on_event] if on_event is not None else []
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Job, Callable[[int], None]]] = []
        self._seq = itertools.count()
        self._job_ids = itertools.count(1)
        self._jobs: list[Job] = []
        self._threads: dict[int, threading.Thread] = {}
        self._want_workers = 0
        self._closed = False
        self._worker_last: dict[int, float] = {}
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
        if isinstance(ids, str):
            ranges = parse_ids(ids)
        elif isinstance(ids, IdRanges):
            ranges = ids
        else:
            plain = []
            for item in ids:
                if isinstance(item, tuple):
                    rid, info = item
                    infos[int(rid)] = info
                    plain.append(int(rid))
                else:
                    plain.append(int(item))
            ranges = IdRanges.of(plain)
        try:
            metainfo_fmt.format(resource_id=0)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"bad metainfo_fmt {metainfo_fmt!r}: {err}") from None
        try:
            os.makedirs(dst_dir, exist_ok=True)
            if not os.access(dst_dir, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "permission denied")
        except OSError as err:
            raise DestinationError(f"cannot write to {dst_dir}: {err.strerror or err}") from None
        job = Job(self, next(self._job_ids), pool, ranges, dst_dir, save_metainfo, metainfo_fmt,
                  infos, name or f"{getattr(pool, 'data_repo_id', 'pool')} {ranges}"[:80])
        _clean_stale_partials(job.partial_dir)
        self._jobs.append(job)
        groups = self._groups(job)
        self._emit(ev.JobState(job.id, "queued"))
        self._push(_FEED, job, lambda wid: self._first_feed(wid, job, groups))
        return job

    # -- the queue
    def _push(self, priority: int, job: Job, task: Callable[[int], None]) -> None:
        with self._cond:
            with job._lock:
                job._outstanding += 1
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
            with job._lock:
                job._busy += 1
            try:
                if not job.cancel_event.is_set():
                    if job.state == "queued":
                        self._start(job)
                    task(wid)
            except Cancelled:
                pass
            except PoolError as err:
                job._fail(str(err))
            except OSError as err:
                job._fail(_os_message(err, job.dst_dir))
            except Exception as err:  # noqa: BLE001 - a bug must not kill the worker silently
                job._fail(f"internal error: {err.__class__.__name__}: {err}")
            finally:
                with job._lock:
                    job._busy -= 1
                self._worker(wid, "idle")
                self._task_done(job)
                if job.cancel_event.is_set():
                    job._end_if_only_waiting()

    def _start(self, job: Job) -> None:
        with job._lock:
            if job.state != "queued":
                return
            job.state = "running"
            job.report.state = "running"
            job._started = time.monotonic()
        self._emit(ev.JobState(job.id, "running"))

    def _task_done(self, job: Job) -> None:
        with job._lock:
            job._outstanding -= 1
            finished = job._outstanding == 0 and not job._done.is_set()
        if finished:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        report = job.report
        with job._lock:
            if job._finished:
                return
            job._finished = True
            if job.error is not None:
                state = "failed"
            elif job.cancel_event.is_set():
                state = "cancelled"
            else:
                state = "done"
            job.state = state
            report.state = state
            report.error = job.error
            report.elapsed = (time.monotonic() - job._started) if job._started else 0.0
            report.nbytes = job._bytes_done
            report.not_reached = max(0, len(job.ids) - job._ids_done)
            report.resolves = job._resolves
        try:
            remove_empty_dir(job.partial_dir)
            job._maybe_progress(force=True)
            self._emit(ev.JobState(job.id, state, job.error))
        finally:
            job._done.set()  # whatever happened above, nobody waits for this job forever

    def _emit(self, event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - an observer's bug must not stop a download
                pass

    def _worker(self, wid: int, state: str, job: Job | None = None, archive: str = "",
                filename: str = "", done: int = 0, total: int = 0, throttle: bool = False) -> None:
        if throttle:
            now = time.monotonic()
            if now - self._worker_last.get(wid, 0.0) < 0.1:
                return
            self._worker_last[wid] = now
        self._emit(ev.WorkerState(wid, state, job.id if job else -1, archive, filename, done, total))

    # -- planning
    def _groups(self, job: Job) -> Iterator[tuple[str, Iterable[int]]]:
        """(first candidate archive, its ids) pairs, lazily."""
        pool = job.pool
        layers = pool.archive_layers() if hasattr(pool, "archive_layers") else None
        if layers:
            modulus, path_of = layers[0]
            for residue in job.ids.residues(modulus):
                yield path_of(residue), job.ids.with_residue(residue, modulus)
            return
        by_archive: dict[str, list[int]] = {}
        nowhere: list[int] = []  # ids the pool maps to no archive at all
        for rid in job.ids:
            candidates = pool.archives_for(rid)
            if candidates:
                by_archive.setdefault(candidates[0], []).append(rid)
            else:
                nowhere.append(rid)
        if nowhere:
            with job._lock:
                job.report.missing.extend(nowhere)
            job._emit(ev.ResourcesMissing(job.id, tuple(nowhere)))
            job._settled(len(nowhere))
        for archive, rids in by_archive.items():
            yield archive, rids

    def _first_feed(self, wid: int, job: Job, groups: Iterator[tuple[str, Iterable[int]]]) -> None:
        # Resolve the revisions before the next group can start on another worker: otherwise
        # every worker's first index lookup resolves them again, all at once.
        for resolve in ("resolve_revision", "resolve_index_revision"):
            if hasattr(job.pool, resolve):
                getattr(job.pool, resolve)(job.cancel_event)
        self._feed(wid, job, groups)

    def _feed(self, wid: int, job: Job, groups: Iterator[tuple[str, Iterable[int]]]) -> None:
        group = next(groups, None)
        if group is None:
            return
        self._push(_FEED, job, lambda w: self._feed(w, job, groups))
        archive, rids = group
        self._plan(wid, job, archive, iter(rids))

    def _index(self, wid: int, job: Job, archive: str, broken: dict[str, str]):
        if archive in broken:
            return None
        self._worker(wid, "index", job, archive, job.pool.index_path_of(archive))
        try:
            index = job.pool.get_index(archive, job.cancel_event)
        except IndexFormatError as err:
            broken[archive] = str(err)
            return None
        if index is not None and index.unrecognized:
            with job._lock:
                first = archive not in job._seen_unrecognized
                job._seen_unrecognized.add(archive)
            if not first:
                return index
            for name, reason in index.unrecognized:
                job.report.unrecognized.append((archive, name, reason))
                job._emit(ev.FileUnrecognized(job.id, archive, name, reason))
        return index

    def _plan(self, wid: int, job: Job, archive0: str, rids: Iterator[int]) -> None:
        """Resolve up to ``plan_chunk`` ids of one group, queue their fetches, then continue later."""
        if job.cancel_event.is_set():
            return
        chunk = list(itertools.islice(rids, self.plan_chunk))
        if not chunk:
            return
        more = len(chunk) == self.plan_chunk
        broken: dict[str, str] = {}
        missing: list[int] = []
        wanted: dict[str, list[tuple[IndexEntry, _Resource]]] = {}
        indexes: dict[str, Any] = {}  # this chunk's indexes: one lookup per archive, not per id
        layers = job.pool.archive_layers() if hasattr(job.pool, "archive_layers") else None
        if layers:
            # every id of the group lives in archive0 at the first level: with one level, what its
            # index lacks is missing, settled in one pass instead of id by id
            index0 = indexes[archive0] = self._index(wid, job, archive0, broken)
            if len(layers) == 1 and archive0 not in broken:
                by_id = index0.by_id if index0 is not None else {}
                missing = [rid for rid in chunk if rid not in by_id]
                if missing:
                    chunk = [rid for rid in chunk if rid in by_id]
        paths: dict[tuple[int, ...], list[str]] = {}
        for rid in chunk:
            found = None
            reason = None
            if layers:
                key = tuple(rid % modulus for modulus, _ in layers)
                candidates = paths.get(key)
                if candidates is None:
                    candidates = paths[key] = [path_of(r) for (_, path_of), r in zip(layers, key)]
            else:
                candidates = job.pool.archives_for(rid)
            for archive in candidates:
                if archive in indexes:
                    index = indexes[archive]
                else:
                    index = indexes[archive] = self._index(wid, job, archive, broken)
                if archive in broken:
                    reason = reason or f"broken index: {broken[archive]}"
                if index is not None and rid in index.by_id:
                    found = (archive, index.by_id[rid])
                    break
            if found is None:
                if reason is not None:
                    self._resource_failed(job, rid, reason)
                else:
                    missing.append(rid)
                continue
            archive, entries = found
            self._prepare(wid, job, rid, archive, entries, wanted)
        if missing:
            with job._lock:  # IdList appends read then write its last run: one writer at a time
                job.report.missing.extend(missing)
            job._emit(ev.ResourcesMissing(job.id, tuple(missing)))
            job._settled(len(missing))
        for archive, items in wanted.items():
            for run in self._runs(items):
                with job._lock:
                    job._bytes_planned += sum(e.size for e, _ in run)
                self._push(_FETCH, job, lambda w, a=archive, r=run: self._fetch(w, job, a, r))
        if more:
            self._push(_PLAN, job, lambda w: self._plan(w, job, archive0, rids))

    def _prepare(self, wid: int, job: Job, rid: int, archive: str, entries: list[IndexEntry],
                 wanted: dict[str, list[tuple[IndexEntry, _Resource]]]) -> None:
        """Skip the files already present and verified; queue the rest of the resource."""
        todo = []
        present: list[str] = []
        for entry in entries:
            final = os.path.join(job.dst_dir, entry.basename)
            if _verified(final, entry, lambda: self._worker(wid, "verify", job, archive, entry.basename)):
                present.append(entry.basename)
            else:
                todo.append(entry)
        resource = _Resource(rid, archive, len(todo), job.infos.get(rid))
        resource.files = present
        if not todo:
            self._resource_complete(job, resource, "skipped")
            return
        bucket = wanted.setdefault(archive, [])
        for entry in todo:
            bucket.append((entry, resource))

    def _runs(self, items: list[tuple[IndexEntry, _Resource]]) -> Iterator[list[tuple[IndexEntry, _Resource]]]:
        """Group an archive's wanted files into runs fetched by one ranged GET each."""
        items = sorted(items, key=lambda it: it[0].offset)
        run: list[tuple[IndexEntry, _Resource]] = []
        start = end = 0
        for entry, res in items:
            e_end = entry.offset + entry.size
            if run and (entry.offset < end or entry.offset - end > self.merge_gap
                        or e_end - start > self.max_span):
                yield run
                run = []
            if not run:
                start = entry.offset
                end = e_end
            run.append((entry, res))
            end = max(end, e_end)
        if run:
            yield run

    # -- fetching
    def _fetch(self, wid: int, job: Job, archive: str, run: list[tuple[IndexEntry, _Resource]]) -> None:
        pool = job.pool
        policy = self.retry or pool.client.policy
        sha = pool.resolve_revision(job.cancel_event)
        pending = [(e, r) for e, r in run if e.size > 0]
        for entry, res in run:
            if entry.size == 0:
                self._write_whole(job, entry, res, b"")
        attempt = 0
        while pending:
            if job.cancel_event.is_set():
                raise Cancelled()
            writer = _RunWriter(self, wid, job, archive, pending)
            first = pending[0][0]
            self._worker(wid, "download", job, archive, first.basename, 0, first.size)
            error, retry_after = "", None
            with job._lock:
                if job.cancel_event.is_set():
                    raise Cancelled()
                job._streaming += 1
            limited = None
            try:
                pool.client.stream_range(pool.data_repo_id, archive, sha, writer.start, writer.end - 1,
                                         writer.feed, job.cancel_event, in_flight=job.in_flight,
                                         on_wait=self._on_wait(wid, job, archive),
                                         on_resolve=job._count_resolve)
            except RateLimited as err:  # waited out below; never counted as a failed attempt
                limited = err
            except TransientError as err:
                error, retry_after = str(err), err.retry_after
            except EntryNotFoundError:
                writer.abort()
                for entry, res in pending:
                    if id(entry) not in writer.completed:
                        self._file_failed(job, res, f"archive {archive} is not in the repository")
                return
            except TransferError as err:  # these files' bytes are not there: no retry helps
                writer.abort()
                for entry, res in pending:
                    if id(entry) not in writer.completed:
                        self._file_failed(job, res, str(err))
                return
            finally:
                writer.abort()
                with job._lock:
                    job._streaming -= 1
            pending = [(e, r) for e, r in pending if id(e) not in writer.completed]
            if writer.completed:
                job._give_ups = 0
            if not pending:
                return
            if limited is not None:
                wait = policy.delay(0, limited.retry_after if limited.retry_after is not None else 1.0)
                wait_visibly(wait, job.cancel_event, self._on_wait(wid, job, archive),
                             lambda left: f"rate-limited: resumes in {format_wait(left)}")
                continue
            transient = bool(error)
            if writer.mismatched and not error:
                names = ", ".join(sorted(e.basename for e, _ in writer.mismatched))
                error = f"sha256 mismatch ({names[:120]})"
            attempt += 1
            if attempt >= policy.attempts:
                for entry, res in pending:
                    self._file_failed(job, res, f"{error} (after {attempt} attempts)")
                if transient:
                    self._gave_up(job, error, attempt)
                return
            if job.cancel_event.wait(policy.delay(attempt - 1, retry_after)):
                raise Cancelled()

    def _on_wait(self, wid: int, job: Job, archive: str) -> Callable[[float, str], None]:
        """What the transport calls while this worker waits: a visible ``rate-limited``/``retrying`` state."""
        def on_wait(seconds: float, reason: str) -> None:
            self._emit(ev.WorkerState(wid, ev.wait_state(reason), job.id, archive, wait=seconds, reason=reason))
        return on_wait

    def _gave_up(self, job: Job, error: str, attempts: int) -> None:
        """After as many give-ups in a row as there are workers (at least 3), the Hub is down:
        stop the job, rather than give every queued file its own round of retries (~20 s each
        with the default policy, hours for a big job)."""
        with job._lock:
            job._give_ups += 1
            down = job._give_ups >= max(3, self._want_workers)
        if down:
            job._fail(f"the Hub could not be reached: {job._give_ups} requests in a row gave up after "
                      f"{attempts} attempts each (last: {error})")

    def _write_whole(self, job: Job, entry: IndexEntry, res: _Resource, data: bytes) -> None:
        if entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
            self._file_failed(job, res, f"sha256 mismatch for {entry.basename}")
            return
        tmp = self._tmp_path(job, entry.basename)
        with _create(tmp) as f:
            f.write(data)
        why = _place(tmp, os.path.join(job.dst_dir, entry.basename))
        if why is not None:
            self._file_failed(job, res, why)
            return
        self._file_done(job, res, entry)

    def _tmp_dir(self, job: Job) -> str:
        os.makedirs(job.partial_dir, exist_ok=True)
        return job.partial_dir

    def _tmp_path(self, job: Job, basename: str) -> str:
        os.makedirs(job.partial_dir, exist_ok=True)
        return os.path.join(job.partial_dir, f"{basename}.{os.getpid()}.{next(_TMP_NAMES)}.part")

    # -- outcomes
    def _file_done(self, job: Job, res: _Resource, entry: IndexEntry) -> None:
        with job._lock:
            res.files.append(entry.basename)
            res.nbytes += entry.size
            res.remaining -= 1
            last = res.remaining == 0
            job.report.files += 1
        if last:
            self._resource_complete(job, res, "downloaded")

    def _file_failed(self, job: Job, res: _Resource, reason: str) -> None:
        with job._lock:
            res.failed = res.failed or reason
            res.remaining -= 1
            last = res.remaining == 0
        if last:
            self._resource_complete(job, res, "downloaded")

    def _resource_complete(self, job: Job, res: _Resource, status: str) -> None:
        if res.failed is not None:
            self._resource_failed(job, res.rid, res.failed)
            return
        if job.save_metainfo and res.info is not None:
            from .base import _metainfo_path, _write_json_atomic
            _write_json_atomic(_metainfo_path(job.dst_dir, job.metainfo_fmt, res.rid), res.info,
                               tmp_dir=self._tmp_dir(job))
        with job._lock:
            (job.report.downloaded if status == "downloaded" else job.report.skipped).append(res.rid)
        job._emit(ev.ResourceDone(job.id, res.rid, status, tuple(res.files), res.nbytes))  # type: ignore[arg-type]
        job._settled()

    def _resource_failed(self, job: Job, rid: int, reason: str) -> None:
        with job._lock:
            job.report.failed[rid] = reason
        job._emit(ev.ResourceFailed(job.id, rid, reason))
        job._settled()


class _RunWriter:
    """Splits the bytes of one ranged GET into files: hash as they stream, rename when verified."""

    def __init__(self, dl: Downloader, wid: int, job: Job, archive: str,
                 items: list[tuple[IndexEntry, _Resource]]):
        self.dl, self.wid, self.job, self.archive = dl, wid, job, archive
        self.items = items
        self.start = items[0][0].offset
        self.end = max(e.offset + e.size for e, _ in items)
        self.pos = self.start
        self.i = 0
        self.completed: set[int] = set()
        self.mismatched: list[tuple[IndexEntry, _Resource]] = []
        self._file = None
        self._tmp: str | None = None
        self._hash = None
        self._written = 0
        self._counted = 0  # bytes added to the job's progress by this attempt
        self._kept = 0  # of which belong to files verified and renamed into place

    def _open(self, entry: IndexEntry) -> None:
        with self.job._lock:  # decided together with cancel(): no file opens once a job may end
            if self.job.cancel_event.is_set():
                raise Cancelled()
            self.job._writing += 1
        self._tmp = self.dl._tmp_path(self.job, entry.basename)
        try:
            self._file = _create(self._tmp)
        except BaseException:
            self._tmp = None
            self._closed_file()
            raise
        self._hash = hashlib.sha256()
        self._written = 0

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view.nbytes and self.i < len(self.items):
            entry, res = self.items[self.i]
            if self.pos < entry.offset:  # the gap between two wanted files
                skip = min(entry.offset - self.pos, view.nbytes)
                view = view[skip:]
                self.pos += skip
                continue
            if self._file is None:
                self._open(entry)
            take = min(entry.offset + entry.size - self.pos, view.nbytes)
            part = view[:take]
            self._file.write(part)
            self._hash.update(part)
            self._written += take
            self.pos += take
            view = view[take:]
            self.job._add_bytes(take)
            self._counted += take
            self.dl._worker(self.wid, "download", self.job, self.archive, entry.basename,
                            self._written, entry.size, throttle=True)
            if self._written == entry.size:
                self._finish_entry(entry, res)
                self.i += 1

    def _closed_file(self) -> None:
        with self.job._lock:
            self.job._writing -= 1

    def _finish_entry(self, entry: IndexEntry, res: _Resource) -> None:
        """The file's last byte arrived: verify it, rename it into place or drop it."""
        tmp, self._tmp = self._tmp, None
        placed = False
        try:
            self._file.close()
            self._file = None
            if entry.sha256 and self._hash.hexdigest() != entry.sha256:
                unlink_quiet(tmp)
                self.mismatched.append((entry, res))
                return
            why = _place(tmp, os.path.join(self.job.dst_dir, entry.basename))
            self.completed.add(id(entry))  # settled either way: a name that cannot be taken is not retried
            if why is not None:
                self.dl._file_failed(self.job, res, why)
                return
            placed = True
            self._kept += entry.size
        except BaseException:
            unlink_quiet(tmp)
            raise
        finally:
            self._file = None
            self._closed_file()  # only now: a cancel may end the job once no temporary file is left
        if placed:
            self.dl._file_done(self.job, res, entry)

    def abort(self) -> None:
        # bytes of files that were not kept come off the progress, so a retry does not count them
        # twice and the job's bytes end equal to the bytes of the files it wrote
        if self._counted != self._kept:
            self.job._add_bytes(self._kept - self._counted)
            self._counted = self._kept
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
            self._closed_file()
        if self._tmp is not None:
            unlink_quiet(self._tmp)
            self._tmp = None


def _verified(path: str, entry: IndexEntry, on_hash: Callable[[], None]) -> bool:
    """True when ``path`` already holds exactly the bytes the index describes."""
    try:
        if os.path.getsize(path) != entry.size or not os.path.isfile(path):
            return False
    except OSError:
        return False
    if not entry.sha256:
        return False
    on_hash()
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return False
    return h.hexdigest() == entry.sha256


def _clean_stale_partials(partial_dir: str) -> None:
    """Remove temporary files left by a process that died (kill -9, power loss)."""
    if os.path.islink(partial_dir):
        return  # not ours: never follow a link out of the destination
    try:
        names = os.listdir(partial_dir)
    except OSError:
        return
    for name in names:
        parts = name.rsplit(".", 3)
        path = os.path.join(partial_dir, name)
        if not name.endswith(".part") or os.path.islink(path) or not os.path.isfile(path):
            continue
        if len(parts) == 4 and parts[3] == "part" and parts[1].isdigit():
            pid = int(parts[1])
            if pid == os.getpid():
                try:
                    if os.stat(path).st_mtime >= _STARTED:
                        continue  # another job of this process is writing it, into the same folder
                except OSError:
                    continue
            elif _pid_alive(pid):
                continue
        unlink_quiet(path)
    remove_empty_dir(partial_dir)


def _place(tmp: str, final: str) -> str | None:
    """Rename a verified temporary file into place: None, or why this one name cannot be taken
    (a folder or a non-empty directory stands there). The temporary file never stays behind."""
    try:
        os.replace(tmp, final)
        return None
    except OSError as err:
        unlink_quiet(tmp)
        if err.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
            return f"cannot save {os.path.basename(final)}: {err.strerror}"
        raise


def _create(path: str):
    """A new temporary file; its folder may have just been removed by a job that ended."""
    for _ in range(3):
        try:
            return open(path, "wb")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "wb")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _os_message(err: OSError, dst_dir: str) -> str:
    if err.errno == errno.ENOSPC:
        return f"disk full while writing to {dst_dir}"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {dst_dir}: {err.strerror}"
    return f"I/O error in {dst_dir}: {err.strerror or err}"
