"""The fetch stage: one ranged GET per run of files, retried until every file is settled.

A retry re-asks only for the files still missing; 5xx, 429 (honouring ``Retry-After``), dropped
connections, short bodies and bytes that fail their hash are retried with backoff and jitter.
"""

from __future__ import annotations

from huggingface_hub.errors import EntryNotFoundError

from .errors import TransferError
from .index import IndexEntry
from .jobs import Job, Resource
from .transport import Cancelled, TransientError
from .write import RunWriter, write_whole


class FetchStage:
    """The fetching half of :class:`~pools.downloader.Downloader` (a mixin)."""

    # -- fetching
    def _fetch(self, wid: int, job: Job, archive: str, run: list[tuple[IndexEntry, Resource]]) -> None:
        pool = job.pool
        policy = self.retry or pool.client.policy
        sha = pool.resolve_revision(job.cancel_event)
        pending = [(e, r) for e, r in run if e.size > 0]
        for entry, res in run:
            if entry.size == 0:
                write_whole(job, entry, res, b"")
        attempt = 0
        while pending:
            if job.cancel_event.is_set():
                raise Cancelled()
            writer = RunWriter(self, wid, job, archive, pending)
            first = pending[0][0]
            self._worker(wid, "download", job, archive, first.basename, 0, first.size)
            error, retry_after = "", None
            with job._lock:
                if job.cancel_event.is_set():
                    raise Cancelled()
                job._streaming += 1
            try:
                pool.client.stream_range(pool.data_repo_id, archive, sha, writer.start, writer.end - 1,
                                         writer.feed, job.cancel_event, in_flight=job.in_flight)
            except TransientError as err:
                error, retry_after = str(err), err.retry_after
            except EntryNotFoundError:
                writer.abort()
                for entry, res in pending:
                    if id(entry) not in writer.completed:
                        job._file_failed(res, f"archive {archive} is not in the repository")
                return
            except TransferError as err:  # these files' bytes are not there: no retry helps
                writer.abort()
                for entry, res in pending:
                    if id(entry) not in writer.completed:
                        job._file_failed(res, str(err))
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
            transient = bool(error)
            if writer.mismatched and not error:
                names = ", ".join(sorted(e.basename for e, _ in writer.mismatched))
                error = f"sha256 mismatch ({names[:120]})"
            attempt += 1
            if attempt >= policy.attempts:
                for entry, res in pending:
                    job._file_failed(res, f"{error} (after {attempt} attempts)")
                if transient:
                    self._gave_up(job, error, attempt)
                return
            if job.cancel_event.wait(policy.delay(attempt - 1, retry_after)):
                raise Cancelled()

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
