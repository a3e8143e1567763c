"""The fetch stage: one ranged GET per run of files, retried until every file is settled.

A retry re-asks only for the files still missing; 5xx, dropped connections, stalls, short bodies
and bytes that fail their hash are retried with backoff and jitter. A 429 is waited out (the
resolver budget's window, or ``Retry-After``) without counting as an attempt. Every wait is a
visible ``rate-limited`` / ``retrying`` worker state.
"""

from __future__ import annotations

from typing import Callable

from huggingface_hub.errors import EntryNotFoundError

from . import events as ev
from .budget import format_wait

from .errors import TransferError
from .index import IndexEntry
from .jobs import Job, Resource
from .transport import Cancelled, RateLimited, TransientError, wait_visibly
from .write import RunWriter, write_whole


class FetchStage:
    """The fetching half of :class:`~pools.downloader.Downloader` (a mixin)."""

    # -- fetching
    def _fetch(self, wid: int, job: Job, archive: str, run: list[tuple[IndexEntry, Resource]]) -> None:
        pool = job.pool
        policy = self.retry or pool.client.policy
        sha = pool.resolve_revision(job.cancel_event)
        expect = self._archive_facts(job, archive)
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
            limited = None
            try:
                pool.client.stream_range(pool.data_repo_id, archive, sha, writer.start, writer.end - 1,
                                         writer.feed, job.cancel_event, in_flight=job.in_flight,
                                         on_wait=self._on_wait(wid, job, archive),
                                         on_resolve=job._count_resolve, **expect)
            except RateLimited as err:  # waited out below; never counted as a failed attempt
                limited = err
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
                    job._file_failed(res, f"{error} (after {attempt} attempts)")
                if transient:
                    self._gave_up(job, error, attempt)
                return
            wait_visibly(policy.delay(attempt - 1, retry_after), job.cancel_event, self._on_wait(wid, job, archive),
                         lambda left: f"retrying (attempt {attempt + 1} of {policy.attempts}): {error}")

    @staticmethod
    def _archive_facts(job: Job, archive: str) -> dict:
        """The index's size and LFS sha256 of the archive, checked against the Hub's X-Linked-*
        headers: a stale index is then one clear error, not a row of sha256 mismatches."""
        facts = job._archive_facts.get(archive)  # noted by the plan: the index may be out of memory now
        if facts is None:
            try:
                index = job.pool.get_index(archive, job.cancel_event)
            except Exception:  # noqa: BLE001 - the plan already dealt with a broken index
                return {}
            if index is None:
                return {}
            facts = (getattr(index, "filesize", None), getattr(index, "hash_lfs", None))
        return {"expect_size": facts[0], "expect_sha256": facts[1]}

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
