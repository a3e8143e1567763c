"""The ids the session's jobs found in no archive, as the Missing pane and the export read them.

Each job's missing ids are kept as the engine sends them: arithmetic runs (``pools.ranges.IdList``),
so a range of 4 * 10^18 ids that misses all but the demo's few thousand stays a few hundred runs
and every one of its ids is listed. A job whose runs pass :data:`RUNS_KEEP` (ids scattered at
random, or a hostile index) keeps counting exactly but stops storing; the union says so.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from pools.idruns import intervals
from pools.ranges import IdList

RUNS_KEEP = 100_000  # arithmetic runs kept per job; its count stays exact past them
RANGES_SHOWN = 100_000  # merged ranges listed at most in the pane and the export


@dataclass(frozen=True)
class MissingUnion:
    """The union of every job's missing ids, as far as it is listed."""

    runs: list[tuple[int, int, tuple[int, ...]]]
    """``(lo, hi, jobs)``: merged ranges, each with the jobs that missed some of it."""
    ids: int
    """Distinct ids in ``runs``."""
    complete: bool
    """False when a job stopped storing or the ranges were cut at their limit: ``ids`` is then a floor."""

    def ranges(self) -> list[tuple[int, int]]:
        """The union's ranges, without the jobs."""
        return [(lo, hi) for lo, hi, _ in self.runs]


@dataclass
class MissingIds:
    jobs: dict[int, IdList] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    """Every job's missing ids, stored or not: the count its row shows."""

    def add(self, job_id: int, ids) -> None:
        """Count ``ids`` (an ``IdList`` or a sequence) for the job; store them while there is room.

        What is stored is always a prefix of what arrived: once a batch does not fit, none after it
        is stored either.
        """
        before = self.counts.get(job_id, 0)
        self.counts[job_id] = before + len(ids)
        kept = self.jobs.setdefault(job_id, IdList())
        runs = ids.runs if isinstance(ids, IdList) else len(ids)
        if len(kept) == before and kept.runs + runs <= RUNS_KEEP:
            kept.extend(ids)

    def stored(self, job_id: int) -> int:
        kept = self.jobs.get(job_id)
        return len(kept) if kept is not None else 0

    def cut_jobs(self) -> list[int]:
        """Jobs whose missing ids are not all stored (their count is)."""
        return [jid for jid, n in self.counts.items() if n > self.stored(jid)]

    def union(self, limit: int = RANGES_SHOWN) -> MissingUnion:
        """The jobs' missing ids merged into ranges, at most ``limit`` of them.

        Two jobs that both miss 1-50 give one range ``(1, 50, (1, 2))``. Each job's runs are swept
        lazily (:func:`pools.idruns.intervals`), so the time follows the ranges listed.
        """
        streams = [_tagged(kept, jid) for jid, kept in self.jobs.items() if kept]
        runs: list[tuple[int, int, tuple[int, ...]]] = []
        current: list | None = None
        cut = False
        for lo, hi, jid in heapq.merge(*streams):
            if current is not None and lo <= current[1] + 1:
                current[1] = max(current[1], hi)
                current[2].add(jid)
                continue
            if current is not None:
                runs.append((current[0], current[1], tuple(sorted(current[2]))))
                if len(runs) >= limit:
                    cut = True
                    current = None
                    break
            current = [lo, hi, {jid}]
        if current is not None:
            runs.append((current[0], current[1], tuple(sorted(current[2]))))
        ids = sum(hi - lo + 1 for lo, hi, _ in runs)
        return MissingUnion(runs, ids, complete=not cut and not self.cut_jobs())


def _tagged(ids: IdList, job_id: int):
    for lo, hi in intervals(ids):
        yield lo, hi, job_id
