"""Where a resource id lives: the archive path rule of increment-id datasets, and id-from-name."""

from __future__ import annotations

import posixpath
import re

from pools.text import is_unsafe_text

_DIGITS = re.compile(r"[0-9]+")
MAX_ID_DIGITS = 19  # ids stop below 2**63; a longer stem is no id (and int() of 5,000 digits is slow)


def archive_path(resource_id: int, base_level: int, base_dir: str = "images") -> str:
    """The archive holding ``resource_id`` at ``base_level``.

    ``id % 10**L`` zero-padded to L digits, cut into 3-digit groups from the right, the last
    group prefixed with ``0``: id 114514 is ``images/0514.tar`` at L=3, ``images/4/0514.tar`` at L=4.
    """
    if base_level < 1:
        raise ValueError(f"base level must be at least 1, got {base_level}")
    digits = str(resource_id % (10 ** base_level)).zfill(base_level)
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups[-1] = "0" + groups[-1]
    body = "/".join(groups) + ".tar"
    base_dir = base_dir.strip("/")
    return f"{base_dir}/{body}" if base_dir else body


def index_path(archive: str) -> str:
    """The index JSON that describes ``archive``: the same path with ``.json`` for ``.tar``."""
    stem, ext = posixpath.splitext(archive)
    return f"{stem}.json" if ext == ".tar" else f"{archive}.json"


def safe_basename(name: str) -> str | None:
    """The basename a file is saved under, or None when the stored name is unsafe.

    Names with ``..`` parts, absolute paths, backslashes, control, C1, DEL or bidi characters are
    refused outright (not merely stripped): an index that holds them is not to be trusted.
    """
    if not name or "\\" in name or is_unsafe_text(name):
        return None
    if name.startswith("/"):
        return None
    if "/" not in name:  # the commonest shape, "ID.ext"
        return None if name in (".", "..") else name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return parts[-1]


def resource_id_of(name: str) -> int | None:
    """The resource id a stored name stands for: the integer stem of its basename.

    ``./1000.png``, ``sub/1000.png`` and ``1000.png`` are all 1000; anything else is None.
    """
    base = safe_basename(name)
    if base is None:
        return None
    stem, _ = posixpath.splitext(base)
    if len(stem) > MAX_ID_DIGITS or not _DIGITS.fullmatch(stem):
        return None
    return int(stem)


def id_modulo_cut(id_text: str) -> list[str]:
    """An id's digits in groups of three from the right: ``"123456789"`` -> ``["123", "456", "789"]``,
    ``"12345"`` -> ``["12", "345"]`` (cheesechaser's helper for nested folders by id)."""
    text = str(id_text)
    head = len(text) % 3
    return ([text[:head]] if head else []) + [text[i:i + 3] for i in range(head, len(text), 3)]


def archive_template_problem(template: str) -> str | None:
    """Why ``template`` cannot name archives (``"must use only {residue}"``...), or None."""
    try:
        path = template.format(residue=0)
    except (KeyError, IndexError, ValueError, AttributeError):
        return "must use only {residue}"
    if not path.endswith(".tar") or safe_basename(path) is None or path.startswith("/") or ".." in path.split("/"):
        return "must name a .tar inside the repo"
    return None
