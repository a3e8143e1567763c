"""A finished job as the CLI gives it back: the JSON report and the summary's lists of ids.

Missing ids are written as ranges (``"missing": ["0-99", "101-4799", …]``), computed from the
report's arithmetic runs (:func:`pools.idruns.intervals`), never by listing ids: a
``0-100000000`` job over a small repo writes a report of a few lines. Everything else comes from
``DownloadReport.to_dict()``. The report is written atomically (a temporary file renamed into
place), so a full disk leaves the old report or none, never half of one.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import secrets
from typing import Any

from pools.idruns import range_texts
from pools.ranges import IdList

REPORT_RANGES = 1_000_000
"""Missing ranges written at most (each is one gap between ids that exist; past this the report
says ``missing_cut``). ``missing_count`` is always exact."""


class ReportWriteError(Exception):
    """The report could not be written; ``str()`` is one line naming the file and the reason."""


def report_dict(report) -> dict[str, Any]:
    """``report.to_dict()`` with the missing ids as ranges, their exact count, and no id list."""
    lean = dataclasses.replace(report, missing=IdList())  # to_dict would list every missing id
    data = lean.to_dict()
    ranges, cut = range_texts(report.missing, REPORT_RANGES)
    data["missing"] = ranges
    data["missing_count"] = len(report.missing)
    if cut:
        data["missing_cut"] = True
    resolves = getattr(report, "resolves", None)
    if resolves is not None and "resolves" not in data:
        data["resolves"] = resolves
    return data


def write_report(path: str, report) -> None:
    """Write the JSON report to ``path`` atomically; raises :class:`ReportWriteError`."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        # an unpredictable name, never an existing file or link; the mode follows the umask
        name = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(8)}.part")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        tmp = name  # ours from here: removed if anything below fails
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(report_dict(report), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        reason = "disk full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (
            err.strerror or err.__class__.__name__)
        raise ReportWriteError(f"cannot write the report to {path}: {reason}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def short_ranges(ids, limit: int = 20) -> str:
    """The first ``limit`` ranges of ``ids`` and, when there are more, how many ids in all."""
    texts, cut = range_texts(ids, limit)
    text = ", ".join(texts)
    if cut:
        text += f", … ({len(ids):,} ids)"
    return text

