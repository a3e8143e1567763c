"""A wrong layout is not silent: tell when no archive a plan needs exists, and what the repo has.

A repo at another base level or base dir than the one asked for would report every id "missing";
:func:`diagnose_layout` compares the archives the plan maps ids to (``pool.preview``) with the
ones the repo lists (``pool.list_archives``) and, when none exists, says so in one line and
guesses the layout the repo's archive names follow. Uses only the pool's public methods.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from typing import Iterable

from app.core.format import plural
from pools.archive.layout import archive_path
from pools.text import shown

SHOWN_PATH = 80  # a remote path quoted in the message is escaped and cut to this


def layout_of(path: str) -> tuple[str, int] | None:
    """``(base_dir, base_level)`` under which ``path`` is an increment-id archive, or None.

    ``images/0514.tar`` is ``("images", 3)``; ``images/4/0514.tar`` is ``("images", 4)``.
    """
    if not path.endswith(".tar"):
        return None
    parts = path[:-4].split("/")
    numeric: list[str] = []
    while parts and parts[-1].isdigit() and parts[-1].isascii():
        numeric.insert(0, parts.pop())
    if not numeric or len(numeric[-1]) < 2 or not numeric[-1].startswith("0"):
        return None
    digits = "".join(numeric[:-1]) + numeric[-1][1:]
    base_dir = "/".join(parts)
    level = len(digits)
    if not 1 <= level <= 9 or archive_path(int(digits), level, base_dir) != path:
        return None
    return base_dir, level


def _where(pool) -> str:
    base_dir = getattr(pool, "base_dir", None)
    level = getattr(pool, "base_level", None)
    templates = getattr(pool, "archive_templates", None)
    if templates:
        return "named by " + " then ".join(shown(t, SHOWN_PATH) for t in templates)
    if base_dir is not None and level is not None:
        levels = ",".join(map(str, level)) if isinstance(level, list) else str(level)
        return f"under {shown(base_dir.strip('/') or '.', SHOWN_PATH)}/ at level {levels}"
    return "in the layout asked for"


def describe_missing_layout(pool, needed: list[str], existing: Iterable[str]) -> str | None:
    """The one-line complaint when none of ``needed`` is in ``existing``; None when one is."""
    existing = sorted(existing)
    have = set(existing)
    if not needed or any(a in have for a in needed):
        return None
    head = f"none of the {plural(len(needed), 'archive')} these ids map to exists {_where(pool)}"
    if not existing:
        return f"{head}; the repo has no .tar archive at all"
    layouts = Counter(filter(None, (layout_of(p) for p in existing)))
    sample = f"{shown(existing[0], SHOWN_PATH)}"
    if len(existing) > 1:
        sample += f" … {shown(existing[-1], SHOWN_PATH)}"
    if layouts:
        (base_dir, level), n = layouts.most_common(1)[0]
        where = f"under {shown(base_dir or '.', SHOWN_PATH)}/ at level {level}"
        return (f"{head}; the repo has {sample} ({plural(len(existing), 'archive')}), "
                f"{plural(n, 'archive')} {where}?" if n != len(existing)
                else f"{head}; the repo has {sample} {where}?")
    folders = sorted({posixpath.dirname(p) or "." for p in existing})
    return (f"{head}; the repo has {sample} ({plural(len(existing), 'archive')} in "
            f"{shown(', '.join(folders[:3]), SHOWN_PATH)}{', …' if len(folders) > 3 else ''})")


def diagnose_layout(pool, ids) -> str | None:
    """None when the plan for ``ids`` finds at least one archive; else what is wrong, in one line.

    Costs the repo's tree listing (API calls, no resolve): call it once per plan, off the UI thread.
    """
    needed = list(pool.preview(ids).archives)
    if not needed:
        return None
    listed = set(listed_archives(pool))
    if any(a in listed for a in needed):
        return None
    return describe_missing_layout(pool, needed, set(listed_archives(pool, "")) | listed)


def listed_archives(pool, path: str | None = None) -> dict:
    """``{path: ArchiveInfo}`` of the repo's archives (under ``path``; default the pool's base
    dir); empty when that folder does not exist. Access and network errors propagate."""
    try:
        return {a.path: a for a in pool.list_archives(path)}
    except Exception as err:  # noqa: BLE001 - "no such folder" from the tree listing
        if type(err).__name__ in ("FileMissing", "RemoteEntryNotFoundError", "EntryNotFoundError"):
            return {}
        raise
