"""What a download job did, id by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ranges import IdList


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
            "missing": sorted(self.missing),
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
            "unrecognized": [{"archive": a, "name": n, "reason": r} for a, n, r in self.unrecognized],
            "files": self.files,
            "bytes": self.nbytes,
            "elapsed": round(self.elapsed, 3),
            "not_reached": self.not_reached,
            "resolves": self.resolves,
        }
