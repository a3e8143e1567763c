"""The cluster runner: a job's tasks submitted to Dask, each run by :class:`pools.Downloader`.

Pools hold locks and connections, so workers get a :class:`PoolSpec` (the class and its
arguments; its repr never shows a token) and build their own. A cancel is a Dask ``Event`` every
task polls, calling ``Job.cancel()``. A task whose worker dies is rerun elsewhere by the
scheduler; the engine skips the files the dead worker already verified.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import uuid
from typing import Any, Callable

from distributed import Client, Event, as_completed, get_worker

from pools import Downloader
from pools import events as ev
from pools.cluster.merge import merge_reports
from pools.cluster.partial import _hold_partial_dir, _release_partial_dir, _sweep_keepers
from pools.cluster.relay import JobEvents, TaskPublisher
from pools.cluster.shared_budget import give_back_all, use_shared_budgets
from pools.cluster.tasks import FILES_PER_TASK, ClusterTask, plan_tasks
from pools.engine.report import DownloadReport
from pools.ids import take
from pools.ranges import IdRanges

POLL = 0.25  # seconds between a task's looks at the cancel event
TASKS_PER_SLOT = 2  # a small job is cut into about this many tasks per Dask thread


class PoolSpec:
    """``cls(*args, **kwargs)``, built on the worker. Its repr names the class and repo only."""

    def __init__(self, cls: type, *args: Any, **kwargs: Any):
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __call__(self):
        return self.cls(*self.args, **self.kwargs)

    @property
    def repo(self) -> str:
        """What the job is named after: the first argument (the repo id), else the class."""
        return str(self.args[0]) if self.args else self.cls.__name__

    def __repr__(self) -> str:
        return f"PoolSpec({self.cls.__name__}, {self.args[:1]!r})"


_SHARED = threading.Lock()
_shared_done = False
_ENGINES: dict[tuple, Any] = {}


def _engine(threads: int, options: dict[str, Any]):
    """This worker process's engine for ``threads`` and ``options``, made once and kept.

    Every task a worker runs goes through one engine: its connection pools and threads are set
    up once, and when Dask runs two tasks at once on the worker (``nthreads`` 2 or more), the
    second one's files keep the threads busy while the first drains its last archives, within
    the same ``threads`` requests in flight.
    """

    key = (threads, tuple(sorted(options.items())))
    with _SHARED:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = Downloader(max_workers=threads, **options)
        return engine


def resolve_commits(pool) -> dict[tuple[str, str], str]:
    """``{(repo, revision): commit}`` of the pool's data and index revisions (two API calls at most)."""
    if not hasattr(pool, "resolve_revision"):
        return {}
    commits = {(pool.data_repo_id, pool.data_revision): pool.resolve_revision()}
    if hasattr(pool, "resolve_index_revision"):
        commits[(pool.idx_repo_id, pool.idx_revision)] = pool.resolve_index_revision()
    return commits


def _publisher(topic: str | None, key: str) -> TaskPublisher | None:
    if not topic:
        return None
    try:
        worker = get_worker()
    except ValueError:  # not on a worker (a test calling the task in place)
        return None
    return TaskPublisher(topic, key, worker.address, worker.log_event)


def _run_task(spec: PoolSpec, ids: IdRanges, dst_dir: str, threads: int, cancel_name: str,
              options: dict[str, Any], commits: dict | None = None, topic: str | None = None,
              key: str = "", submit_options: dict[str, Any] | None = None) -> DownloadReport:
    """On a worker: one task's ids through the engine, into ``dst_dir``; its report."""
    global _shared_done

    with _SHARED:
        if not _shared_done:
            use_shared_budgets()
            _shared_done = True
    cancel = Event(cancel_name)
    if cancel.is_set():
        publisher = _publisher(topic, key)
        if publisher is not None:
            publisher.end_unstarted()
        return DownloadReport(state="cancelled", not_reached=len(ids), requested=ids)
    pool = spec()
    if commits and hasattr(pool, "pin_commits"):  # resolved once by the client: no task asks again
        pool.pin_commits(commits)
    keeper = _hold_partial_dir(dst_dir)
    dl = _engine(threads, options)
    publisher = _publisher(topic, key)
    if publisher is not None:
        dl.add_listener(publisher.on_event)
    try:
        job = dl.submit(pool, ids, dst_dir, **(submit_options or {}))
        if publisher is not None:
            publisher.start(job)
        try:
            while True:
                try:
                    return job.wait(POLL)
                except TimeoutError:
                    if cancel.is_set():
                        job.cancel()
        finally:
            dl.forget(job)  # a long-lived engine keeps no finished job
    finally:
        if publisher is not None:
            dl.remove_listener(publisher.on_event)
            publisher.close()
        _release_partial_dir(keeper)
        give_back_all()


class ClusterJob:
    """A job running on the cluster: ``wait()`` gives the merged report, ``cancel()`` stops every task.

    It is a :class:`~pools.engine.job.JobLike`, as a local :class:`pools.Job` is: ``id``, ``name``,
    ``state``, ``done``, ``report``, ``cancel()`` and ``wait(timeout)`` answer alike. Listeners
    (``on_event`` of :meth:`ClusterRunner.submit`) hear :mod:`pools.events` with this ``id`` and
    a :class:`~pools.cluster.relay.ClusterWorkerState` per worker, on a thread of the client's.
    """

    def __init__(self, client: Client, ids: IdRanges, tasks: list[ClusterTask], futures: list, cancel_name: str,
                 dst_dir: str = "", *, job_id: int = 0, name: str = "", events: JobEvents | None = None,
                 topic: str | None = None):
        self.client = client
        self.dst_dir = dst_dir
        self.ids = ids
        self.ids_total = len(ids)
        self.tasks = tasks
        self.futures = futures
        self.id = job_id
        self.name = name
        self.events = events
        self._topic = topic
        self._cancel = Event(cancel_name, client=client)
        self._started = time.monotonic()
        self._report: DownloadReport | None = None
        self._done = threading.Event()
        if events is not None:
            events.emit(ev.JobState(job_id, "queued"))
            events.emit(ev.JobState(job_id, "running"))
            threading.Thread(target=self._watch_workers, daemon=True, name="cluster-workers").start()
        threading.Thread(target=self._settle, daemon=True, name=f"cluster-job-{job_id}").start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def state(self) -> str:
        return self._report.state if self._report is not None else "running"

    @property
    def report(self) -> DownloadReport:
        """The merged report once every task is done; until then an empty running one."""
        return self._report if self._report is not None else DownloadReport(state="running", requested=self.ids)

    def _watch_workers(self) -> None:
        """Tell the listeners of workers that left the cluster (the scheduler's view, once a second)."""
        seen: set[str] = set()
        while not self._done.wait(1.0):
            try:
                now = set(self.client.scheduler_info().get("workers", {}))
            except Exception:  # noqa: BLE001 - a client closing under us
                return
            for gone in seen - now:
                self.events.worker_lost(gone)
            seen = now

    def wait(self, timeout: float | None = None) -> DownloadReport:
        """The merged report once every task is done; TimeoutError when ``timeout`` seconds pass first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"cluster job {self.id} still running")
        return self._report

    def _settle(self) -> None:
        try:
            self._report = self._gather()
        except Exception as err:  # noqa: BLE001 - a client closed under us: the job still ends
            self._report = DownloadReport(state="failed", error=f"the cluster went away: {err.__class__.__name__}",
                                          not_reached=len(self.ids), requested=self.ids)
        finally:
            self._done.set()

    def _gather(self) -> DownloadReport:
        reports: list[DownloadReport] = []
        not_run = 0
        error = None
        heard: set[str] = set()
        by_future = {f.key: t for f, t in zip(self.futures, self.tasks)}
        for future in as_completed(self.futures):
            try:
                report = future.result()
            except Exception as err:  # noqa: BLE001 - a task that kept killing its workers
                not_run += len(by_future[future.key])
                error = error or f"a cluster task failed: {err.__class__.__name__}: {err}"[:300]
                continue
            reports.append(report)
            heard.add(str(future.key))
        report = merge_reports(reports, self.ids, not_run=not_run,
                               elapsed=time.monotonic() - self._started, error=error,
                               cancelled=self.cancelled)
        self._cancel.clear()
        if self.dst_dir:
            _sweep_keepers(self.dst_dir)
        if self.events is not None:
            self.events.wait_ended(heard)  # every event a finished task sent, before the end
            try:
                self.client.unsubscribe_topic(self._topic)
            except Exception:  # noqa: BLE001 - a client already closing
                pass
            self.events.close()
            self.events.emit(ev.JobState(self.id, report.state, report.error))
        return report


_JOB_IDS = itertools.count(1)


def name_of(spec, ids: IdRanges) -> str:
    """A job's label: the spec's ``repo`` (any callable spec may name one) and its ids."""
    return f"{getattr(spec, 'repo', None) or type(spec).__name__} {ids}"[:80]


class ClusterRunner:
    """Submits download jobs to a Dask cluster through ``client``.

    ``threads``: engine threads of each worker process (requests in flight per worker; the tasks a
    worker runs at once share them);
    ``files_per_task``: about how many ids a task takes (whole archives, contiguous ids);
    ``save_metainfo``: as for :meth:`pools.Downloader.submit`; the rest goes to each worker's
    :class:`pools.Downloader` (``merge_gap``, ``max_span``...).
    """

    def __init__(self, client: Client, *, threads: int = 6, files_per_task: int = FILES_PER_TASK,
                 save_metainfo: bool = True, **downloader_options: Any):
        self.client = client
        self.submit_options = {"save_metainfo": bool(save_metainfo)}
        self.threads = max(1, int(threads))
        self.files_per_task = files_per_task
        self.options = downloader_options

    def _task_size(self, n_ids: int) -> int:
        """``files_per_task``, smaller when the job is small: enough tasks for every worker's threads."""
        try:
            slots = sum(w.get("nthreads", 1) for w in self.client.scheduler_info().get("workers", {}).values())
        except Exception:  # noqa: BLE001 - an answer we cannot read: the configured size
            slots = 0
        if slots <= 0:
            return self.files_per_task
        return max(1, min(self.files_per_task, math.ceil(n_ids / (slots * TASKS_PER_SLOT))))

    def submit(self, spec: PoolSpec, ids, dst_dir: str, *, commits: dict | None = None,
               on_event: Callable[[Any], None] | list | None = None, job_id: int | None = None,
               name: str | None = None) -> ClusterJob:
        """Plan ``ids`` into tasks and submit them. ``commits``: the pool's revisions already
        resolved (:func:`resolve_commits`), else resolved here (a ``PoolError`` when they cannot be).
        ``on_event``: a listener (or a list of them) for the job's events, as a local job's."""

        ranges = take(ids, {})
        if not isinstance(ranges, IdRanges):
            ranges = IdRanges.of(ranges)
        pool = spec()
        if commits is None:
            commits = resolve_commits(pool)  # once, here: the tasks are given the commits
        tasks = plan_tasks(pool, ranges, self._task_size(len(ranges)))
        cancel_name = f"cheesechaser-cancel-{uuid.uuid4().hex}"
        Event(cancel_name, client=self.client).clear()
        job_id = next(_JOB_IDS) if job_id is None else job_id
        listeners = on_event if isinstance(on_event, list) else [on_event] if on_event is not None else []
        topic = events = None
        if listeners:
            topic = f"cheesechaser-events-{cancel_name[-32:]}"
            events = JobEvents(job_id, len(ranges), listeners)
            self.client.subscribe_topic(topic, events.handler)
        keys = [f"cheesechaser-task-{cancel_name[-12:]}-{task.key}" for task in tasks]
        futures = [self.client.submit(_run_task, spec, task.ids, dst_dir, self.threads, cancel_name, self.options,
                                      commits, topic, key, self.submit_options, key=key, pure=False)
                   for task, key in zip(tasks, keys)]
        label = name_of(spec, ranges) if name is None else name
        return ClusterJob(self.client, ranges, tasks, futures, cancel_name, dst_dir, job_id=job_id, name=label,
                          events=events, topic=topic)


def open_client(address: str) -> tuple[Client, Callable[[], None]]:
    """``local:N`` (a LocalCluster of N worker processes) or a scheduler address; and its closer."""
    if address.startswith("local:"):
        from distributed import LocalCluster

        try:
            n = int(address[len("local:"):])
        except ValueError:
            raise ValueError(f"--cluster local:N needs a number of workers, got {address!r}") from None
        if not 1 <= n <= 256:
            raise ValueError("--cluster local:N needs 1 to 256 workers")
        # TLS with credentials made for this run alone: no other local process can attach to the
        # scheduler (it would run code in ours and read the token the spec carries); no dashboard
        security = _temporary_security()
        # Dask starts an HTTP server even without a dashboard (on :8787 by default): here it
        # serves no route at all, on a port nobody knows in advance
        import dask

        with dask.config.set({"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=2, processes=True, host="127.0.0.1",
                                   scheduler_port=0, dashboard_address="127.0.0.1:0", security=security,
                                   silence_logs=logging.CRITICAL)  # Dask's comm chatter is not ours to print
        client = Client(cluster, security=security)

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    client = Client(address, timeout=10)
    return client, client.close


def _temporary_security():
    """Dask's per-run TLS credentials (``Security.temporary()``, which needs ``cryptography``)."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        raise ValueError("--cluster local:N encrypts and authenticates its workers with TLS, which needs the "
                         "cryptography package: pip install 'cheesechaser-tui[dask]'") from None
