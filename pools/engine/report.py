"""What a download job did, id by id."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from pools.idruns import _merge, intervals
from pools.ranges import IdList, IdRanges


@dataclass
class DownloadReport:
    """The outcome of a job. ``missing`` ids are in no archive; ``failed`` maps id -> reason.

    ``missing`` is an :class:`IdList` (arithmetic runs): a range whose ids are mostly absent
    stays small however long it is.
    """

    downloaded: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    missing: IdList = field(default_factory=IdList)
    failed: dict[int, str] = field(default_factory=dict)
    unrecognized: list[tuple[str, str, str]] = field(default_factory=list)
    files: int = 0
    nbytes: int = 0
    elapsed: float = 0.0
    state: str = "done"
    error: str | None = None
    not_reached: int = 0
    """Ids the job never settled because it was cancelled or stopped by an error (rerun them)."""
    resolves: int = 0
    """``/resolve/`` requests the job spent against the Hub's resolver quota."""
    unverified: list[int] = field(default_factory=list)
    """Ids kept on a rerun without a hash check: present, of the right size, and the index gives
    no sha256 (also counted in ``skipped``)."""
    requested: IdRanges | None = field(default=None, repr=False, compare=False)
    """The ids asked for, when known as ranges: lets ``missing`` be written as ranges cheaply."""

    @property
    def ok(self) -> bool:
        """True when nothing failed and the job was not stopped by an error or a cancel."""
        return not self.failed and self.error is None and self.state == "done"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "error": self.error,
            "downloaded": sorted(self.downloaded),
            "skipped": sorted(self.skipped),
            "missing": self.missing_ranges(),
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
            "unrecognized": [{"archive": a, "name": n, "reason": r} for a, n, r in self.unrecognized],
            "files": self.files,
            "bytes": self.nbytes,
            "elapsed": round(self.elapsed, 3),
            "not_reached": self.not_reached,
            "resolves": self.resolves,
            "unverified": sorted(self.unverified),
            "not_reached_ids": self.not_reached_ranges(),
        }

    def missing_ranges(self) -> list[str]:
        """``missing`` as ``["0-99", "101-4799", "5000"]``: its size follows what exists, not the
        span asked for."""
        settled = (self.state == "done" and not self.not_reached and self.requested is not None
                   and len(self.requested) == len(self.missing) + len(self.downloaded) + len(self.skipped)
                   + len(self.failed))
        if settled:  # every other id asked for is missing: the complement of the few that exist
            gaps = self.requested.without(sorted({*self.downloaded, *self.skipped, *self.failed}))
        else:
            gaps = self.missing.to_ranges()
        return [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in gaps.ranges]

    def not_reached_ranges(self) -> list[str] | None:
        """The ids asked for that a cancelled or failed job never settled, as ranges (rerun
        them); None when they cannot be told (the ids came from a stream)."""
        if not self.not_reached:
            return []
        if self.requested is None:
            return None

        explicit = ((rid, rid) for rid in sorted({*self.downloaded, *self.skipped, *self.failed}))
        settled = _merge(heapq.merge(intervals(self.missing), explicit))
        return [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.requested.minus(settled).ranges]


def ranges_of(items) -> IdRanges:
    """A report's id list read back, in either form it is written: ints or ``"lo-hi"`` ranges."""
    spans = []
    for item in items or ():
        if isinstance(item, str):
            lo, _, hi = item.partition("-")
            spans.append((int(lo), int(hi or lo)))
        else:
            spans.append((int(item), int(item)))
    return IdRanges(spans)
