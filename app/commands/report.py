"""A finished job as the CLI gives it back: the JSON report and the summary's lists of ids.

Missing ids are written as ranges (``"missing": ["0-99", "101-4799", …]``, by
``DownloadReport.to_dict()``, from the complement of what exists or the report's arithmetic runs,
never by listing ids): a ``0-100000000`` job over a small repo writes a report of a few lines.
The report is written atomically (a temporary file renamed into place), so a full disk leaves
the old report or none, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from typing import Any

from pools.idruns import range_texts


class ReportWriteError(Exception):
    """The report could not be written; ``str()`` is one line naming the file and the reason."""


def report_dict(report) -> dict[str, Any]:
    """``report.to_dict()`` (missing ids as ranges) with the exact count of missing ids."""
    data = report.to_dict()
    data["missing_count"] = len(report.missing)
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

