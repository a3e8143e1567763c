"""The fetch stage: one ranged GET per run of files, retried until every file is settled.

A retry re-asks only for the files still missing; 5xx, dropped connections, stalls, short bodies
and bytes that fail their hash are retried with backoff and jitter. A 429 is waited out (the
resolver budget's window, or ``Retry-After``) without counting as an attempt. Every wait is a
visible ``rate-limited`` / ``retrying`` worker state.
"""

from __future__ import annotations

from typing import Callable

from huggingface_hub.errors import EntryNotFoundError

from pools.archive.index import IndexEntry
from pools.engine.job import Job, Resource
from pools.engine.workers import WorkerStates
from pools.engine.write import RunWriter, write_whole
from pools.errors import Cancelled, RateLimited, TransferError, TransientError
from pools.transport.budget import format_wait
from pools.transport.retry import RetryPolicy, wait_visibly


class Fetcher:
    """Fetches runs of files: ``fetch(wid, job, archive, run)`` is one task of the queue.

    ``retry``: the policy (None: each pool's client's own); ``workers()``: how many workers the
    downloader has now (so many give-ups in a row mean the Hub is down).
    """

    def __init__(self, states: WorkerStates, retry: RetryPolicy | None, workers: Callable[[], int]):
        self.states = states
        self.retry = retry
        self.workers = workers

    def fetch(self, wid: int, job: Job, archive: str, run: list[tuple[IndexEntry, Resource]]) -> None:
        pool = job.pool
        policy = self.retry or pool.client.policy
        sha = pool.resolve_revision(job.cancel_event)
        expect = archive_facts(job, archive)
        on_wait = self.states.on_wait(wid, job, archive)
        pending = [(e, r) for e, r in run if e.size > 0]
        for entry, res in run:
            if entry.size == 0:
                write_whole(job, entry, res, b"")
        attempt = 0
        while pending:
            if job.cancel_event.is_set():
                raise Cancelled()
            writer = RunWriter(job, pending, lambda name, done, size: self.states.state(
                wid, "download", job, archive, name, done, size, throttle=True))
            first = pending[0][0]
            self.states.state(wid, "download", job, archive, first.basename, 0, first.size)
            error, retry_after = "", None
            limited = None
            try:
                with job.streaming():
                    pool.client.stream_range(pool.data_repo_id, archive, sha, writer.start, writer.end - 1,
                                             writer.feed, job.cancel_event, in_flight=job.in_flight,
                                             on_wait=on_wait, on_resolve=job.count_resolve, **expect)
            except RateLimited as err:  # waited out below; never counted as a failed attempt
                limited = err
            except TransientError as err:
                error, retry_after = str(err), err.retry_after
            except (EntryNotFoundError, TransferError) as err:  # these bytes are not there: no retry helps
                why = f"archive {archive} is not in the repository" if isinstance(err, EntryNotFoundError) else str(err)
                writer.abort()
                for entry, res in pending:
                    if id(entry) not in writer.completed:
                        job.file_failed(res, why)
                return
            finally:
                writer.abort()
            pending = [(e, r) for e, r in pending if id(e) not in writer.completed]
            if writer.completed:
                job.got_bytes_back()
            if not pending:
                return
            if limited is not None:
                wait = policy.delay(0, limited.retry_after if limited.retry_after is not None else 1.0)
                wait_visibly(wait, job.cancel_event, on_wait,
                             lambda left: f"rate-limited: resumes in {format_wait(left)}")
                continue
            transient = bool(error)
            if writer.mismatched and not error:
                names = ", ".join(sorted(e.basename for e, _ in writer.mismatched))
                error = f"sha256 mismatch ({names[:120]})"
            attempt += 1
            if attempt >= policy.attempts:
                for entry, res in pending:
                    job.file_failed(res, f"{error} (after {attempt} attempts)")
                if transient:
                    job.gave_up(error, attempt, self.workers())
                return
            wait_visibly(policy.delay(attempt - 1, retry_after), job.cancel_event, on_wait,
                         lambda left: f"retrying (attempt {attempt + 1} of {policy.attempts}): {error}")


def archive_facts(job: Job, archive: str) -> dict:
    """The index's size and LFS sha256 of the archive, checked against the Hub's X-Linked-*
    headers: a stale index is then one clear error, not a row of sha256 mismatches."""
    facts = job.archive_facts.get(archive)  # noted by the plan: the index may be out of memory now
    if facts is None:
        try:
            index = job.pool.get_index(archive, job.cancel_event)
        except Exception:  # noqa: BLE001 - the plan already dealt with a broken index
            return {}
        if index is None:
            return {}
        facts = (getattr(index, "filesize", None), getattr(index, "hash_lfs", None))
    return {"expect_size": facts[0], "expect_sha256": facts[1]}
