"""What the archives screen shows of each archive: its row, its index summary, and the hint for a failure."""

from __future__ import annotations

from app.core.format import fmt_bytes, fmt_count, fmt_hash
from app.tui.messages import ArchiveSummary
from app.tui.widgets.virtual_table import Column, Row
from pools import (
    AccessDeniedError,
    ArchiveInfo,
    HubUnreachableError,
    RepoNotFoundError,
    RevisionNotFoundError,
)

PANEL_LIMIT = 600  # characters per line of a panel that quotes remote names or errors
FATAL = (AccessDeniedError, HubUnreachableError, RepoNotFoundError, RevisionNotFoundError)

COLUMNS = [
    Column("archive", "Archive", None, min_width=14),
    Column("size", "Size", 9, "right"),
    Column("files", "Files", 7, "right"),
    Column("ids", "Ids", 7, "right"),
    Column("id_min", "Id min", 9, "right"),
    Column("id_max", "Id max", 9, "right"),
    Column("unrec", "Unrec", 5, "right", drop=1),
    Column("hash", "Hash", 10, drop=2),
    Column("lfs", "LFS hash", 10, drop=3),  # too narrow: hashes go first, never names
]


def hint_for(exc: BaseException, hub_label: str) -> str:
    if isinstance(exc, AccessDeniedError):
        return ("The Hub refused access: the repo is gated or private (or, without a token, may "
                "not exist). Check the repo id; for a gated repo accept its terms on the Hub; give "
                "a token that can read it (HF_TOKEN, `hf auth login`, or the picker's Token field).")
    if isinstance(exc, RepoNotFoundError):
        return ("Check the repo id (owner/name). A private repo looks the same without a token "
                "that can read it.")
    if isinstance(exc, RevisionNotFoundError):
        return "Check the revision: a branch, a tag or a commit sha of this repo."
    if isinstance(exc, HubUnreachableError):
        return f"Check the network, or the endpoint ({hub_label})."
    return "This is unexpected; the message above says what went wrong."


def summary_row(info: ArchiveInfo, summary: ArchiveSummary | None) -> Row:
    size = summary.filesize if summary and summary.filesize is not None else info.size
    if summary is None:
        return Row(info.path, (info.path, fmt_bytes(size), "…", "…", "…", "…", "…", "…",
                               fmt_hash(info.lfs_sha256, 10)),
                   (info.path, size, None, None, None, None, None, None, info.lfs_sha256),
                   style="dim")
    if summary.error or not summary.has_index:
        note = "broken" if summary.error else "no index"
        return Row(info.path, (info.path, fmt_bytes(size), note, "–", "–", "–", "–", "–",
                               fmt_hash(info.lfs_sha256, 10)),
                   (info.path, size, -1, None, None, None, None, None, info.lfs_sha256),
                   style="error" if summary.error else "warn")
    return Row(
        info.path,
        (info.path, fmt_bytes(size), fmt_count(summary.n_files), fmt_count(summary.n_ids),
         fmt_count(summary.id_min), fmt_count(summary.id_max), fmt_count(summary.n_unrecognized),
         fmt_hash(summary.hash, 10), fmt_hash(summary.hash_lfs or info.lfs_sha256, 10)),
        (info.path, size, summary.n_files, summary.n_ids, summary.id_min, summary.id_max,
         summary.n_unrecognized, summary.hash, summary.hash_lfs),
        cell_styles={6: "warn"} if summary.n_unrecognized else {},
    )


def summarize(archive: str, index) -> ArchiveSummary:
    if index is None:
        return ArchiveSummary(archive, None, 0, 0, None, None, None, None, 0, has_index=False)
    return ArchiveSummary(archive, index.filesize, index.n_files, index.n_ids, index.id_min,
                          index.id_max, index.hash, index.hash_lfs, len(index.unrecognized))
