"""An archive's index (made by hfutils' ``tar_create_index``), parsed and checked.

Every name is checked before it can become a file on disk: unsafe names (``../x.png``,
``/etc/x.png``), names with no integer stem and entries whose offset or size run past the
archive's end are set aside as *unrecognized*, with the reason, and never downloaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import IndexFormatError
from .layout import resource_id_of, safe_basename

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One file inside an archive: where its bytes are and what they must hash to."""

    name: str
    offset: int
    size: int
    sha256: str | None
    resource_id: int

    @property
    def basename(self) -> str:
        return safe_basename(self.name) or ""


@dataclass
class ArchiveIndex:
    archive: str
    filesize: int | None
    hash: str | None
    hash_lfs: str | None
    entries: list[IndexEntry] = field(default_factory=list)
    by_id: dict[int, list[IndexEntry]] = field(default_factory=dict)
    unrecognized: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len(self.entries) + len(self.unrecognized)

    @property
    def n_ids(self) -> int:
        return len(self.by_id)

    @property
    def id_min(self) -> int | None:
        return min(self.by_id) if self.by_id else None

    @property
    def id_max(self) -> int | None:
        return max(self.by_id) if self.by_id else None

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @classmethod
    def from_bytes(cls, archive: str, raw: bytes | str,
                   id_of: Callable[[str], int | None] = resource_id_of) -> "ArchiveIndex":
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise IndexFormatError(f"index of {archive} is not valid JSON ({err.__class__.__name__})") from None
        return cls.from_dict(archive, data, id_of)

    @classmethod
    def from_dict(cls, archive: str, data: Any,
                  id_of: Callable[[str], int | None] = resource_id_of) -> "ArchiveIndex":
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise IndexFormatError(f"index of {archive} has no 'files' table")
        filesize = data.get("filesize")
        if not isinstance(filesize, int) or isinstance(filesize, bool) or filesize < 0:
            filesize = None
        index = cls(archive=archive, filesize=filesize,
                    hash=_str_or_none(data.get("hash")), hash_lfs=_str_or_none(data.get("hash_lfs")))
        for name, info in data["files"].items():
            reason = None
            if safe_basename(name) is None:
                reason = "unsafe name (absolute, '..' or control characters)"
            elif not isinstance(info, dict):
                reason = "index entry is not an object"
            else:
                offset, size, sha = info.get("offset"), info.get("size"), info.get("sha256")
                if not _is_count(offset) or not _is_count(size):
                    reason = "index entry lacks a valid offset or size"
                elif filesize is not None and offset + size > filesize:
                    reason = f"offset+size ({offset + size}) past the archive's end ({filesize})"
                elif sha is not None and not (isinstance(sha, str) and _SHA256.match(sha.lower())):
                    reason = "index entry has a malformed sha256"
            if reason is None:
                rid = id_of(name)
                if rid is None:
                    reason = "name has no integer resource id"
            if reason is not None:
                index.unrecognized.append((name, reason))
                continue
            if any(e.basename == safe_basename(name) for e in index.by_id.get(rid, ())):
                index.unrecognized.append((name, "duplicate file name: another entry is saved under the same name"))
                continue
            entry = IndexEntry(name=name, offset=info["offset"], size=info["size"],
                               sha256=info.get("sha256").lower() if info.get("sha256") else None,
                               resource_id=rid)
            index.entries.append(entry)
            index.by_id.setdefault(rid, []).append(entry)
        return index


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
