"""What the downloader tells its observers, as small frozen dataclasses.

Callbacks receive these from worker threads; a UI turns them into its own messages (and should
coalesce them: a fast job emits thousands a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

WorkerActivity = Literal["idle", "index", "download", "verify", "rate-limited", "retrying"]
JobStatus = Literal["queued", "running", "done", "cancelled", "failed"]


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What one worker is doing now. ``job_id`` is -1 while idle.

    While ``"rate-limited"`` (the resolver quota is spent) or ``"retrying"`` (waiting before
    another attempt), ``wait`` is the seconds until it resumes and ``reason`` says why.
    """

    worker: int
    state: WorkerActivity
    job_id: int = -1
    archive: str = ""
    filename: str = ""
    done: int = 0
    total: int = 0
    wait: float | None = None
    reason: str = ""


def wait_state(reason: str) -> WorkerActivity:
    """The worker state for a wait the transport reported through ``on_wait(seconds, reason)``."""
    return "rate-limited" if reason.startswith("rate-limited") else "retrying"


@dataclass(frozen=True, slots=True)
class ResourceDone:
    """A resource is complete in the destination: ``downloaded`` now, ``skipped`` (present and verified)
    or ``unverified`` (present, of the right size, and the index gives no sha256 to check)."""

    job_id: int
    resource_id: int
    status: Literal["downloaded", "skipped", "unverified"]
    files: tuple[str, ...]
    nbytes: int


@dataclass(frozen=True, slots=True)
class ResourcesMissing:
    """Ids that are in no archive of the pool (batched per archive)."""

    job_id: int
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ResourceFailed:
    job_id: int
    resource_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class FileUnrecognized:
    """A name in an index that maps to no resource id (or is unsafe); never downloaded."""

    job_id: int
    archive: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class JobProgress:
    job_id: int
    ids_total: int
    ids_done: int
    files_done: int
    bytes_done: int
    bytes_planned: int
    elapsed: float
    rate_bps: float

    @property
    def fraction(self) -> float:
        return self.ids_done / self.ids_total if self.ids_total else 1.0

    @property
    def eta(self) -> float | None:
        """Seconds left, from the rate at which ids get settled so far; None before any is."""
        if self.ids_done <= 0 or self.elapsed <= 0:
            return None
        left = self.ids_total - self.ids_done
        return left * self.elapsed / self.ids_done


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: int
    state: JobStatus
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ShardWritten:
    """A shards job (:class:`pools.shards.tracked.ShardJob`) completed one shard."""

    job_id: int
    name: str
    samples: int
    nbytes: int


Event = Union[WorkerState, ResourceDone, ResourcesMissing, ResourceFailed, FileUnrecognized,
              JobProgress, JobState, ShardWritten]


def tell(listeners, event) -> None:
    """Give ``event`` to every listener; an observer's bug never stops the job that emits it."""
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - an observer's bug must not stop a download
            pass
