"""The cluster runner: a job's tasks submitted to Dask, each run by :class:`pools.Downloader`.

Pools hold locks and connections, so workers get a :class:`PoolSpec` (the class and its
arguments; its repr never shows a token) and build their own. A cancel is a Dask ``Event`` every
task polls, calling ``Job.cancel()``. A task whose worker dies is rerun elsewhere by the
scheduler; the engine skips the files the dead worker already verified.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from typing import Any, Callable

from distributed import Client, Event, as_completed

from ..ranges import IdRanges
from ..report import DownloadReport
from ..write import PARTIAL_DIR
from .merge import merge_reports
from .plan import FILES_PER_TASK, ClusterTask, plan_tasks

POLL = 0.25  # seconds between a task's looks at the cancel event
TASKS_PER_SLOT = 2  # a small job is cut into about this many tasks per Dask thread


class PoolSpec:
    """``cls(*args, **kwargs)``, built on the worker. Its repr names the class and repo only."""

    def __init__(self, cls: type, *args: Any, **kwargs: Any):
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __call__(self):
        return self.cls(*self.args, **self.kwargs)

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
    from .. import Downloader

    key = (threads, tuple(sorted(options.items())))
    with _SHARED:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = Downloader(max_workers=threads, **options)
        return engine


def _pin(pool, commits: dict[tuple[str, str], str]) -> None:
    """The commits the client resolved, given to a worker's pool: no task asks the Hub again."""
    shas = getattr(pool, "_shas", None)
    if isinstance(shas, dict) and commits:
        with pool._lock:
            shas.update(commits)


def resolve_commits(pool) -> dict[tuple[str, str], str]:
    """``{(repo, revision): commit}`` of the pool's data and index revisions (two API calls at most)."""
    if not hasattr(pool, "resolve_revision"):
        return {}
    commits = {(pool.data_repo_id, pool.data_revision): pool.resolve_revision()}
    if hasattr(pool, "resolve_index_revision"):
        commits[(pool.idx_repo_id, pool.idx_revision)] = pool.resolve_index_revision()
    return commits


def _run_task(spec: PoolSpec, ids: IdRanges, dst_dir: str, threads: int, cancel_name: str,
              options: dict[str, Any], commits: dict | None = None) -> DownloadReport:
    """On a worker: one task's ids through the engine, into ``dst_dir``; its report."""
    global _shared_done
    from .budget import give_back_all, use_shared_budgets

    with _SHARED:
        if not _shared_done:
            use_shared_budgets()
            _shared_done = True
    cancel = Event(cancel_name)
    if cancel.is_set():
        return DownloadReport(state="cancelled", not_reached=len(ids), requested=ids)
    pool = spec()
    _pin(pool, commits or {})
    keeper = _hold_partial_dir(dst_dir)
    dl = _engine(threads, options)
    try:
        job = dl.submit(pool, ids, dst_dir)
        try:
            while not job.done:
                if cancel.is_set():
                    job.cancel()
                    break
                job._done.wait(POLL)
            return job.wait()
        finally:
            try:
                dl._jobs.remove(job)  # a long-lived engine keeps no finished job
            except ValueError:
                pass
    finally:
        _release_partial_dir(keeper)
        give_back_all()


KEEP = ".keep"


def _hold_partial_dir(dst_dir: str) -> str | None:
    """Keep the shared partial folder from being removed while this task writes in it.

    Every task's engine removes the partial folder when it finds it empty; tasks of one job on
    other workers write into the same folder, so each holds a marker file in it (never a
    ``.part``: the stale-file sweep leaves it alone) until its engine is done.
    """
    from ..files import real_dir_inside

    name = f".task-{os.getpid()}-{uuid.uuid4().hex}{KEEP}"
    for _ in range(5):  # another task may remove the empty folder between our two steps
        try:
            os.makedirs(dst_dir, exist_ok=True)
            folder = real_dir_inside(os.path.abspath(dst_dir), [PARTIAL_DIR])
            path = os.path.join(folder, name)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
            return path
        except FileNotFoundError:
            continue
        except OSError:
            return None  # the engine reports what is wrong with the destination
    return None


def _release_partial_dir(keeper: str | None) -> None:
    if keeper is None:
        return
    try:
        os.unlink(keeper)
    except OSError:
        pass
    try:
        os.rmdir(os.path.dirname(keeper))  # only when empty: another task may still hold it
    except OSError:
        pass


def _sweep_keepers(dst_dir: str) -> None:
    """After the job, from the client when it sees the destination: markers of dead workers."""
    folder = os.path.join(os.path.abspath(dst_dir), PARTIAL_DIR)
    if os.path.islink(folder) or not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(".task-") and name.endswith(KEEP) and not os.path.islink(path):
            try:
                os.unlink(path)
            except OSError:
                pass
    try:
        os.rmdir(folder)
    except OSError:
        pass


class ClusterJob:
    """A job running on the cluster: ``wait()`` gives the merged report, ``cancel()`` stops every task."""

    def __init__(self, client: Client, ids: IdRanges, tasks: list[ClusterTask], futures: list, cancel_name: str,
                 dst_dir: str = ""):
        self.client = client
        self.dst_dir = dst_dir
        self.ids = ids
        self.tasks = tasks
        self.futures = futures
        self._cancel = Event(cancel_name, client=client)
        self._started = time.monotonic()
        self._report: DownloadReport | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, on_report: Callable[[DownloadReport], None] | None = None) -> DownloadReport:
        """Wait for every task; ``on_report`` hears each task's report as it finishes."""
        if self._report is not None:
            return self._report
        reports: list[DownloadReport] = []
        not_run = 0
        error = None
        by_future = {f.key: t for f, t in zip(self.futures, self.tasks)}
        for future in as_completed(self.futures):
            try:
                report = future.result()
            except Exception as err:  # noqa: BLE001 - a task that kept killing its workers
                not_run += len(by_future[future.key])
                error = error or f"a cluster task failed: {err.__class__.__name__}: {err}"[:300]
                continue
            reports.append(report)
            if on_report is not None:
                on_report(report)
        self._report = merge_reports(reports, self.ids, not_run=not_run,
                                     elapsed=time.monotonic() - self._started, error=error,
                                     cancelled=self.cancelled)
        self._cancel.clear()
        if self.dst_dir:
            _sweep_keepers(self.dst_dir)
        return self._report


class ClusterRunner:
    """Submits download jobs to a Dask cluster through ``client``.

    ``threads``: engine threads of each worker process (requests in flight per worker; the tasks a
    worker runs at once share them);
    ``files_per_task``: about how many ids a task takes (whole archives, contiguous ids).
    """

    def __init__(self, client: Client, *, threads: int = 6, files_per_task: int = FILES_PER_TASK,
                 **downloader_options: Any):
        self.client = client
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

    def submit(self, spec: PoolSpec, ids, dst_dir: str, *, commits: dict | None = None) -> ClusterJob:
        """Plan ``ids`` into tasks and submit them. ``commits``: the pool's revisions already
        resolved (:func:`resolve_commits`), else resolved here (a ``PoolError`` when they cannot be)."""
        from ..ids import take

        ranges = take(ids, {})
        if not isinstance(ranges, IdRanges):
            ranges = IdRanges.of(ranges)
        pool = spec()
        if commits is None:
            commits = resolve_commits(pool)  # once, here: the tasks are given the commits
        tasks = plan_tasks(pool, ranges, self._task_size(len(ranges)))
        name = f"cheesechaser-cancel-{uuid.uuid4().hex}"
        Event(name, client=self.client).clear()
        futures = [self.client.submit(_run_task, spec, task.ids, dst_dir, self.threads, name, self.options,
                                      commits, key=f"cheesechaser-task-{name[-12:]}-{task.key}", pure=False)
                   for task in tasks]
        return ClusterJob(self.client, ranges, tasks, futures, name, dst_dir)


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
        cluster = LocalCluster(n_workers=n, threads_per_worker=2, processes=True, host="127.0.0.1",
                               scheduler_port=0, dashboard_address=None,
                               silence_logs=logging.CRITICAL)  # Dask's own comm chatter is not ours to print
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    client = Client(address, timeout=10)
    return client, client.close
