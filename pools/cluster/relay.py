"""A cluster job's events: published by the tasks on their workers, merged on the client.

Each task listens to its engine job and, every :data:`FLUSH` seconds, publishes one batch
through Dask's structured events (``Worker.log_event`` on a topic of the job's own; the client
``subscribe_topic``\\ s it): the resource events since the last batch (:mod:`pools.events`,
as plain dicts), the task's progress so far, and what its engine threads are doing. The last
batch of a task says so (``end``), so the client knows when it has heard everything.

On the client, :class:`JobEvents` turns the batches back into :mod:`pools.events` objects with
the cluster job's id (so ``--json``, captions and the TUI take them as from a local job), one
merged :class:`~pools.events.JobProgress` for the whole job, and a :class:`ClusterWorkerState`
per Dask worker (its tasks, files, bytes, speed, state). Listeners are called on one thread of
the client's, never Dask's event loop.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Any, Callable

from pools import events as ev
from pools.ranges import IdList

FLUSH = 0.2  # seconds between two batches of one task
MAX_BATCH = 2000  # resource events in one batch at most (a bigger backlog goes in several)
_KINDS = {cls.__name__: cls for cls in (ev.ResourceDone, ev.ResourcesMissing, ev.ResourceFailed,
                                        ev.FileUnrecognized)}
_TUPLES = ("files", "ids")


@dataclass(frozen=True, slots=True)
class ClusterWorkerState:
    """One Dask worker of a cluster job: ``state`` is ``"busy"``, ``"rate-limited"``, ``"idle"``
    (no task of the job running there now) or ``"lost"`` (it left the cluster)."""

    job_id: int
    worker: str
    state: str
    tasks_running: int
    tasks_done: int
    files: int
    nbytes: int
    speed: float  # bytes per second, over the last second or so


def _plain(value):
    """Only the types Dask's events carry (an ``int`` subclass is refused there)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "arithmetic_runs"):  # an IdList of missing ids: its runs, never id by id
        return {"runs": [[int(a), int(b), int(c)] for a, b, c in value.arithmetic_runs()]}
    if isinstance(value, (array, range)):
        return [int(v) for v in value]
    return str(value)


def encode(event) -> dict[str, Any]:
    data = asdict(event)
    data.pop("job_id", None)
    data["kind"] = type(event).__name__
    return _plain(data)


def decode(data: dict[str, Any], job_id: int):
    """A :mod:`pools.events` object from :func:`encode`'s dict (remote: anything odd is None)."""
    try:
        data = dict(data)
        cls = _KINDS[data.pop("kind")]
        for name in _TUPLES:
            value = data.get(name)
            if isinstance(value, dict):
                data[name] = _runs(value["runs"])
            elif value is not None:
                data[name] = tuple(value)
        return cls(job_id=job_id, **data)
    except (KeyError, TypeError, ValueError):
        return None


def _runs(runs) -> IdList:
    ids = IdList()
    for start, step, count in runs:
        ids.append_run(int(start), int(step), int(count))
    return ids


class TaskPublisher:
    """On a worker: ``job``'s events (an engine job of task ``key``) published on ``topic``."""

    def __init__(self, topic: str, key: str, worker_name: str, publish: Callable[[str, dict], None]):
        self.topic, self.key, self.worker_name, self._publish = topic, key, worker_name, publish
        self.job = None
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._threads: dict[int, str] = {}  # engine thread -> its state, for this job's threads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cluster-events")

    def start(self, job) -> None:
        self.job = job
        self._thread.start()

    def on_event(self, event) -> None:
        """The engine's listener (any job's events: this task's job only are kept)."""
        job = self.job
        if job is None or getattr(event, "job_id", None) != job.id:
            if isinstance(event, ev.WorkerState) and event.state == "idle":
                with self._lock:
                    self._threads.pop(event.worker, None)
            return
        if isinstance(event, ev.WorkerState):
            with self._lock:
                self._threads[event.worker] = event.state
        elif type(event).__name__ in _KINDS:
            with self._lock:
                self._events.append(encode(event))

    def _batch(self, end: bool) -> dict:
        with self._lock:
            events, self._events = self._events[:MAX_BATCH], self._events[MAX_BATCH:]
            states = list(self._threads.values())
            more = bool(self._events)
        p = self.job.snapshot()
        return _plain({"task": self.key, "worker": self.worker_name, "events": events,
                       "progress": [p.ids_total, p.ids_done, p.files_done, p.bytes_done, p.bytes_planned],
                       "limited": sum(1 for s in states if s == "rate-limited"),
                       "end": end and not more})

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH):
            self._send(self._batch(False))

    def end_unstarted(self) -> None:
        """A task that never started (cancelled before): its end, so the client does not wait for it."""
        self._send({"task": self.key, "worker": self.worker_name, "events": [],
                    "progress": [0, 0, 0, 0, 0], "limited": 0, "end": True})

    def _send(self, batch: dict) -> None:
        try:
            self._publish(self.topic, batch)
        except Exception:  # noqa: BLE001 - a lost scheduler: the task's report still says it all
            pass

    def close(self) -> None:
        """The last batches, the final one marked ``end``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.job is None:
            return
        while True:
            batch = self._batch(True)
            self._send(batch)
            if batch["end"]:
                return


class JobEvents:
    """On the client: the batches of a cluster job turned into events for ``listeners``."""

    def __init__(self, job_id: int, ids_total: int, listeners: list[Callable[[Any], None]],
                 clock: Callable[[], float] = time.monotonic):
        self.job_id, self.ids_total = job_id, ids_total
        self.listeners = listeners
        self.clock = clock
        self._queue: queue.Queue = queue.Queue()
        self._tasks: dict[str, tuple[str, list[int]]] = {}  # task -> (worker, progress)
        self._ended: set[str] = set()
        self._told: set[str] = set()  # ended, and their last events passed on
        self._done_on: dict[str, int] = {}  # worker -> tasks it finished
        self._limited: dict[str, int] = {}  # worker -> its threads rate-limited now
        self._speed: dict[str, tuple[float, int, float]] = {}  # worker -> (time, bytes, speed)
        self._lost: set[str] = set()
        self._heard = threading.Condition()
        self._started = clock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cluster-job-events")
        self._thread.start()

    def handler(self, event) -> None:
        """``Client.subscribe_topic``'s handler (on Dask's event loop): queue it, nothing more."""
        try:
            _, batch = event
        except (TypeError, ValueError):
            return
        if isinstance(batch, dict):
            self._queue.put(batch)

    def worker_lost(self, worker: str) -> None:
        self._queue.put({"lost": worker})

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def wait_ended(self, tasks: set[str], timeout: float = 5.0) -> bool:
        """Wait (bounded) until every task of ``tasks`` has sent its last batch."""
        deadline = time.monotonic() + timeout
        with self._heard:
            while not tasks <= self._told:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._heard.wait(left)
        return True

    def emit(self, event) -> None:
        ev.tell(self.listeners, event)

    def _loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self._apply(batch)
            except Exception:  # noqa: BLE001 - a malformed batch is dropped, never fatal
                pass

    def _apply(self, batch: dict) -> None:
        if "lost" in batch:
            self._lost.add(str(batch["lost"]))
            self._workers()
            return
        key, worker = str(batch["task"]), str(batch["worker"])
        for data in batch.get("events", ())[:MAX_BATCH]:
            event = decode(data, self.job_id)
            if event is not None:
                self.emit(event)
        progress = [int(x) for x in batch.get("progress", ())][:5]
        if len(progress) == 5:
            self._tasks[key] = (worker, progress)  # a rerun task's latest word replaces the lost one's
        self._limited[worker] = int(batch.get("limited", 0))
        end = bool(batch.get("end"))
        if end and key not in self._ended:
            self._done_on[worker] = self._done_on.get(worker, 0) + 1
            with self._heard:
                self._ended.add(key)
        self._progress()
        self._workers()
        if end:  # told after the listeners heard its last events
            with self._heard:
                self._told.add(key)
                self._heard.notify_all()

    def _progress(self) -> None:
        sums = [sum(p[i] for _, p in self._tasks.values()) for i in range(5)]
        elapsed = self.clock() - self._started
        self.emit(ev.JobProgress(self.job_id, self.ids_total, min(sums[1], self.ids_total), sums[2], sums[3],
                                 sums[4], elapsed, sums[3] / elapsed if elapsed > 0 else 0.0))

    def _workers(self) -> None:
        now = self.clock()
        names = sorted({w for w, _ in self._tasks.values()} | set(self._done_on) | self._lost)
        for worker in names:
            mine = [(key, p) for key, (w, p) in self._tasks.items() if w == worker]
            running = sum(1 for key, _ in mine if key not in self._ended)
            files = sum(p[2] for _, p in mine)
            nbytes = sum(p[3] for _, p in mine)
            t0, b0, speed = self._speed.get(worker, (now, nbytes, 0.0))
            if now - t0 >= 1.0:
                speed, t0, b0 = (nbytes - b0) / (now - t0), now, nbytes
            self._speed[worker] = (t0, b0, speed if running else 0.0)
            if worker in self._lost:
                state = "lost"
            elif not running:
                state = "idle"
            else:
                state = "rate-limited" if self._limited.get(worker) else "busy"
            self.emit(ClusterWorkerState(self.job_id, worker, state, 0 if state == "lost" else running,
                                         self._done_on.get(worker, 0), files, nbytes,
                                         speed if running else 0.0))
