"""A shards job as a running job: :class:`ShardJob` runs :func:`write_shards` on a thread of its
own and tells its listeners what happens with the same :mod:`pools.events` a download job sends
(under its own job id), so the TUI's Downloads screen and session store track it as they track a
download. It is a :class:`~pools.engine.job.JobLike`."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from pools import events as ev
from pools.engine.report import DownloadReport
from pools.errors import Cancelled, PoolError
from pools.ranges import IdList, IdRanges
from pools.shards.job import write_shards
from pools.shards.resize import Resize


def output_options(output: dict, captions: Any = None) -> dict:
    """:func:`write_shards`'s keyword arguments from an ``output`` record (plain JSON: ``format``,
    ``shard_size``, ``shard_bytes``, ``resize``: ``[size, mode, only_if_bigger, format, quality]``)."""
    resize = output.get("resize")
    return {"format": output.get("format", "webdataset"), "shard_size": int(output.get("shard_size") or 10_000),
            "shard_bytes": output.get("shard_bytes"), "resize": Resize(*resize) if resize else None,
            "captions": captions}


class ShardJob:
    """``start()`` it once its listeners are ready; ``shards`` lists the shards written so far.
    ``output``: what to write (see :func:`output_options`), kept as ``self.output`` so that the
    job can be recorded and queued again; ``captions``: a metadata table, as for write_shards."""

    def __init__(self, downloader, pool, ids: IdRanges, dst_dir: str, *, emit: Callable[[Any], None],
                 output: dict, name: str = "", captions: Any = None):
        self.id = downloader.next_job_id()
        self.downloader, self.pool, self.ids = downloader, pool, ids
        self.dst_dir = os.path.abspath(dst_dir)
        self.output = dict(output, captions=captions is not None)
        self.options = output_options(output, captions)
        fmt = self.options["format"]
        self.name = (name or f"{getattr(pool, 'data_repo_id', 'pool')} {ids}")[:60] + f" · {fmt} shards"
        self._emit = emit
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._report = DownloadReport(state="queued", requested=ids)
        self.shards: list[str] = []
        self._settled = 0
        self._last = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._emit(ev.JobState(self.id, "queued"))
        threading.Thread(target=self._run, daemon=True, name=f"cheesechaser-shards-{self.id}").start()

    # -- JobLike
    @property
    def state(self) -> str:
        return self._report.state

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def report(self) -> DownloadReport:
        return self._report

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> DownloadReport:
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still running")
        return self._report

    # -- the run
    def _run(self) -> None:
        report = self._report
        self._t0 = time.monotonic()
        report.state = "running"
        self._emit(ev.JobState(self.id, "running"))
        state, error = "done", None
        try:
            write_shards(self.pool, self.ids, self.dst_dir, downloader=self.downloader, cancel=self._cancel,
                         on_outcome=self._outcome, on_shard=self._shard, **self.options)
        except Cancelled:
            state = "cancelled"
        except (PoolError, ValueError, OSError) as err:
            state, error = "failed", str(err)
        except Exception as err:  # noqa: BLE001 - a bug must not leave the job running for ever
            state, error = "failed", f"internal error: {err.__class__.__name__}: {err}"
        finally:
            with self._lock:
                report.state, report.error = state, error
                report.elapsed = time.monotonic() - self._t0
                report.not_reached = max(0, len(self.ids) - self._settled)
            self._progress(force=True)
            self._emit(ev.JobState(self.id, state, error))
            self._done.set()

    def _outcome(self, kind: str, rid: int, detail: Any) -> None:
        report = self._report
        with self._lock:
            self._settled += 1
            if kind == "sample":
                names, nbytes = detail
                report.downloaded.append(rid)
                report.files += len(names)
                report.nbytes += nbytes
            elif kind == "missing":
                report.missing.append(rid)
            else:
                report.failed[rid] = str(detail)
        if kind == "sample":
            self._emit(ev.ResourceDone(self.id, rid, "downloaded", tuple(detail[0]), detail[1]))
        elif kind == "missing":
            self._emit(ev.ResourcesMissing(self.id, IdList([rid])))
        else:
            self._emit(ev.ResourceFailed(self.id, rid, str(detail)))
        self._progress()

    def _shard(self, name: str, stats: dict) -> None:
        self.shards.append(name)
        self._emit(ev.ShardWritten(self.id, name, stats["samples"], stats["bytes"]))

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        report = self._report
        with self._lock:
            elapsed = now - self._t0
            snap = ev.JobProgress(self.id, len(self.ids), self._settled, report.files, report.nbytes, 0, elapsed,
                                  report.nbytes / elapsed if elapsed > 0 else 0.0)
        self._emit(snap)
