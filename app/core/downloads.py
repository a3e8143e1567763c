"""The downloads as the Watch screen shows them: workers, jobs and the error panes.

Plain Python, fed on the UI thread with batches of engine events (see ``app.tui.messages.EventPump``).
Every time-derived number (speed, throughput, ETA) comes from the app's clock, so a fixed clock
gives the same picture every run.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from app.core.missing import MissingIds
from pools import events as ev

UNRECOGNIZED_KEEP = 50_000
RATE_WINDOW = 5.0  # seconds of history for throughput
SPEED_WINDOW = 0.5  # seconds between two samples of a worker's speed


@dataclass
class WorkerView:
    worker: int
    state: str = "idle"
    job_id: int = -1
    archive: str = ""
    filename: str = ""
    done: int = 0
    total: int = 0
    speed: float = 0.0
    wait: float | None = None
    """Seconds until a rate-limited or retrying worker resumes, as of ``wait_at``."""
    wait_at: float = 0.0
    reason: str = ""
    _key: tuple = ()
    _t: float = 0.0
    _moved: int = 0
    _moved_at_t: int = 0
    _idle_since: float | None = None


@dataclass
class JobView:
    job_id: int
    name: str
    repo: str
    ids_text: str
    dst_dir: str
    job: Any = None
    pool: Any = None
    state: str = "queued"
    error: str | None = None
    ids_total: int = 0
    ids_done: int = 0
    files_done: int = 0
    bytes_done: int = 0
    bytes_planned: int = 0
    downloaded: int = 0
    skipped: int = 0
    missing: int = 0
    failed: int = 0
    unrecognized: int = 0
    started: float | None = None
    finished: float | None = None
    session_id: int | None = None
    """The job's row in the session store (``app.core.sessions``), once recorded."""
    output: dict | None = None
    """A shards job's output (``pools.shards.tracked``): None for files."""
    shards: int = 0
    last_shard: str = ""
    wall_started: float | None = None
    wall_finished: float | None = None
    """Wall-clock times (``time.time``) for the history; ``started``/``finished`` use the app's clock."""

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def number(self) -> int:
        """The job's number as people read it, the same in Downloads and History: its row in the
        session store once recorded (a resumed job keeps its number), else the engine's id."""
        return self.session_id if self.session_id is not None else self.job_id

    @property
    def outcome(self) -> str:
        """The state a person reads: a job that ran to its end with every id it reached failed is
        "failed", with some failed "partial"; otherwise the engine's state."""
        if self.state == "done" and self.failed:
            return "partial" if (self.downloaded or self.skipped) else "failed"
        return self.state

    @property
    def settled(self) -> int:
        """Ids with an outcome so far: fetched, already there, in no archive or failed."""
        return self.downloaded + self.skipped + self.missing + self.failed

    @property
    def fraction(self) -> float:
        return self.ids_done / self.ids_total if self.ids_total else (0.0 if self.active else 1.0)


@dataclass
class Overall:
    ids_total: int
    ids_done: int
    files: int
    nbytes: int
    rate: float | None
    eta: float | None
    running: int
    queued: int


@dataclass
class DownloadsModel:
    clock: Callable[[], float]
    workers: dict[int, WorkerView] = field(default_factory=dict)
    jobs: dict[int, JobView] = field(default_factory=dict)
    missing: MissingIds = field(default_factory=MissingIds)
    unrecognized: list[tuple[int, str, str, str]] = field(default_factory=list)
    """Each unrecognized file once, with the first job that met it (another job over the same
    archive meets the same files: they are counted in its row, not again here)."""
    _unrecognized_seen: set = field(default_factory=set)
    failed: dict[tuple[int, int], str] = field(default_factory=dict)
    cluster_workers: dict[tuple[int, str], Any] = field(default_factory=dict)
    """``(job id, Dask worker) -> pools.cluster.relay.ClusterWorkerState``, its latest."""
    version: int = 0
    _samples: deque = field(default_factory=deque)
    _active_since: float | None = None

    # ---- setup ----------------------------------------------------------------------------

    def set_worker_count(self, n: int) -> None:
        for i in range(n):
            self.workers.setdefault(i, WorkerView(i))
        for i in [w for w in self.workers if w >= n and self.workers[w].state == "idle"]:
            del self.workers[i]
        self.version += 1

    def add_job(self, job: Any, pool: Any, ids_text: str, ids_total: int, dst_dir: str,
                name: str | None = None) -> JobView:
        repo = getattr(pool, "data_repo_id", "?")
        view = JobView(job_id=job.id, name=name or getattr(job, "name", None) or f"job {job.id}",
                       repo=repo, ids_text=ids_text, dst_dir=str(dst_dir), job=job, pool=pool,
                       ids_total=ids_total)
        state = getattr(job, "state", "queued")
        if isinstance(state, str):
            view.state = state
        self.jobs[job.id] = view
        if self._active_since is None:
            self._active_since = self.clock()
        self.version += 1
        return view

    # ---- events ---------------------------------------------------------------------------

    def apply(self, events: Iterable[Any]) -> list[JobView]:
        """Fold a batch of engine events in; returns jobs that just finished (for a notice)."""
        now = self.clock()
        finished: list[JobView] = []
        changed = False
        for event in events:
            changed = True
            if isinstance(event, ev.WorkerState):
                self._worker(event, now)
                continue
            if type(event).__name__ == "ClusterWorkerState":  # a cluster job's Dask worker
                self.cluster_workers[(event.job_id, event.worker)] = event
                continue
            job = self.jobs.get(event.job_id)
            if job is None:
                continue  # a job this app did not queue (cannot happen, but never crash on it)
            if isinstance(event, ev.JobProgress):
                job.ids_total = event.ids_total
                job.ids_done = max(event.ids_done, job.settled)
                job.files_done = event.files_done
                job.bytes_done = event.bytes_done
                job.bytes_planned = event.bytes_planned
            elif isinstance(event, ev.ResourceDone):
                if event.status in ("skipped", "unverified"):
                    job.skipped += 1
                else:
                    job.downloaded += 1
            elif isinstance(event, ev.ResourcesMissing):
                job.missing += len(event.ids)
                self.missing.add(job.job_id, event.ids)
            elif isinstance(event, ev.ResourceFailed):
                job.failed += 1
                self.failed[(job.job_id, event.resource_id)] = event.reason
            elif isinstance(event, ev.FileUnrecognized):
                job.unrecognized += 1
                key = (event.archive, event.name)
                if key not in self._unrecognized_seen and len(self.unrecognized) < UNRECOGNIZED_KEEP:
                    self._unrecognized_seen.add(key)
                    self.unrecognized.append((job.job_id, event.archive, event.name, event.reason))
            if isinstance(event, (ev.ResourceDone, ev.ResourcesMissing, ev.ResourceFailed)):
                # the outcomes arrive between the (throttled) progress snapshots: the row's Ids never
                # says fewer settled than its Miss/Fail (a retry read "Ids 7/9" beside "0/8")
                job.ids_done = max(job.ids_done, job.settled)
            if isinstance(event, ev.ShardWritten):
                job.shards += 1
                job.last_shard = event.name
            elif isinstance(event, ev.JobState):
                was_active = job.active
                job.state = event.state
                job.error = event.error
                if event.state == "running" and job.started is None:
                    job.started = now
                    job.wall_started = time.time()
                if not job.active and job.finished is None:
                    job.finished = now
                    job.wall_finished = time.time()
                    if was_active:
                        finished.append(job)
        if changed:
            self._sample(now)
            self._speeds(now)
            self.version += 1
        return finished

    def _worker(self, event: ev.WorkerState, now: float) -> None:
        view = self.workers.get(event.worker)
        if view is None:
            view = self.workers[event.worker] = WorkerView(event.worker)
        key = (event.job_id, event.archive, event.filename)
        if event.state == "download":
            # bytes moved by this worker, across files: most files are smaller than one update
            view._moved += max(0, event.done - view.done) if key == view._key else event.done
        view._key = key
        view.state = event.state
        view.job_id = event.job_id
        view.archive = event.archive
        view.filename = event.filename
        view.done = event.done
        view.total = event.total
        # transport's additions to WorkerState; read through getattr until they land
        view.wait = getattr(event, "wait", None)
        view.wait_at = now
        view.reason = getattr(event, "reason", "") or ""
        if event.state == "idle":
            view._idle_since = view._idle_since if view._idle_since is not None else now
        else:
            view._idle_since = None

    def _speeds(self, now: float) -> None:
        """Each worker's speed over the last half second or more of the app's clock."""
        for view in self.workers.values():
            if view._idle_since is not None and now - view._idle_since >= SPEED_WINDOW:
                view.speed = 0.0
            span = now - view._t
            if span >= SPEED_WINDOW:
                inst = (view._moved - view._moved_at_t) / span
                view.speed = inst if view.speed <= 0 else 0.5 * view.speed + 0.5 * inst
                view._t, view._moved_at_t = now, view._moved

    def _sample(self, now: float) -> None:
        total = sum(j.bytes_done for j in self.jobs.values())
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()

    # ---- views ----------------------------------------------------------------------------

    def overall(self) -> Overall:
        # while jobs run, the ids, files and bytes are theirs (a finished job is not "100%" of a new
        # one); once none runs, the session's: a cancelled or failed job counts the ids it settled,
        # not those it never reached (a retry queues those again)
        active = [j for j in self.jobs.values() if j.active]
        counted = active or list(self.jobs.values())  # ids, files and bytes of the same jobs
        if active:
            ids_total = sum(j.ids_total for j in active)
        else:
            ids_total = sum(j.ids_total if j.state == "done" else j.ids_done for j in counted)
        ids_done = sum(j.ids_done for j in counted)
        rate = None
        if active and len(self._samples) >= 2:
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            if t1 > t0:
                rate = (b1 - b0) / (t1 - t0)
        eta = None
        if active:
            started = [j.started for j in active if j.started is not None]
            done = sum(j.ids_done for j in active)
            if started and done:
                elapsed = self.clock() - min(started)
                if elapsed > 0:
                    eta = (sum(j.ids_total for j in active) - done) * elapsed / done
        return Overall(
            ids_total=ids_total, ids_done=ids_done,
            files=sum(j.files_done for j in counted),
            nbytes=sum(j.bytes_done for j in counted),
            rate=rate, eta=eta,
            running=sum(1 for j in self.jobs.values() if j.state == "running"),
            queued=sum(1 for j in self.jobs.values() if j.state == "queued"),
        )

    def number(self, job_id: int) -> int:
        """What ``#N`` says for the engine's job ``job_id`` (:attr:`JobView.number`)."""
        view = self.jobs.get(job_id)
        return view.number if view is not None else job_id

    def failed_ids(self, job_id: int | None = None) -> list[int]:
        return sorted({rid for (jid, rid) in self.failed if job_id is None or jid == job_id})

    @property
    def missing_total(self) -> int:
        return sum(j.missing for j in self.jobs.values())
