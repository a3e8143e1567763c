"""The reports of a job's tasks merged into one :class:`~pools.engine.report.DownloadReport`."""

from __future__ import annotations

from typing import Iterable

from pools.engine.report import DownloadReport
from pools.ranges import IdList, IdRanges


def merge_reports(reports: Iterable[DownloadReport], requested: IdRanges | None = None, *,
                  not_run: int = 0, elapsed: float = 0.0, error: str | None = None,
                  cancelled: bool = False) -> DownloadReport:
    """One report for the whole job. ``not_run``: ids of tasks that never ran (not reached)."""
    out = DownloadReport(state="done", requested=requested)
    missing = []
    for rep in reports:
        out.downloaded.extend(rep.downloaded)
        out.skipped.extend(rep.skipped)
        out.failed.update(rep.failed)
        out.unrecognized.extend(rep.unrecognized)
        out.unverified.extend(rep.unverified)
        out.files += rep.files
        out.nbytes += rep.nbytes
        out.not_reached += rep.not_reached
        out.resolves += rep.resolves
        missing.append(rep.missing)
        if rep.error is not None and error is None:
            error = rep.error
        if rep.state == "cancelled":
            cancelled = True
    # missing ids as merged ranges, in ascending order (each task's come residue by residue)
    merged = IdList()
    spans = sorted(span for ids in missing for span in ids.to_ranges().ranges)
    for lo, hi in IdRanges(spans).ranges:
        merged.append_run(lo, 1, hi - lo + 1)
    out.missing = merged
    out.downloaded.sort()
    out.skipped.sort()
    out.not_reached += not_run
    out.elapsed = elapsed
    out.error = error
    out.state = "failed" if error is not None else "cancelled" if cancelled else "done"
    return out
