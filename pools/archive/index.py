"""An archive's index (made by hfutils' ``tar_create_index``), parsed, checked and looked up lazily.

A real index lists ~10,000 files; a job usually wants a few of them. So parsing does the least
that lets an id be found: the entries stay raw JSON text until looked up (:mod:`pools.archive.indexjson`,
read exactly as ``json`` reads them), each name is checked once, through a fast path for the common shapes
(``ID.ext``, ``./ID.ext``, ``dir/ID.ext``) and the full safety checks only for the rest, and
:class:`IndexEntry` objects are built only for the ids someone looks up (:meth:`ArchiveIndex.lookup`).
``entries``, ``by_id`` and ``unrecognized`` build everything on first use, for the TUI.

Unsafe names (``../x.png``, ``/etc/x.png``, control, C1, DEL or bidi characters), names with no
integer stem, and entries whose offset or size are invalid or run past the archive's end are set
aside as *unrecognized*, with the reason, and never downloaded.
"""

from __future__ import annotations

import heapq
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from pools.archive import indexjson
from pools.archive.layout import resource_id_of, safe_basename
from pools.archive.names import NO_ID, UNSAFE_NAME, NameTable, classify_name, fast_id
from pools.errors import IndexFormatError

__all__ = ["ArchiveIndex", "IndexEntry", "classify_name", "fast_id", "NO_ID", "UNSAFE_NAME"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
DUPLICATE = "duplicate file name: another entry is saved under the same name"
# decoded JSON costs about this many times its text in memory (dicts of small dicts and strings);
# an index read lazily (its entries left as slices of the text) about LAZY_MEMORY_PER_BYTE times
MEMORY_PER_BYTE = 4
LAZY_MEMORY_PER_BYTE = 2
# offsets, sizes and file sizes stop below 2**63 (no archive is 8 EiB): a bigger number is no count
MAX_COUNT = 2**63


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One file inside an archive: where its bytes are and what they must hash to."""

    name: str
    offset: int
    size: int
    sha256: str | None
    resource_id: int
    basename: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.basename:
            object.__setattr__(self, "basename", safe_basename(self.name) or "")


def _entry_problem(info: Any, filesize: int | None) -> str | None:
    if not isinstance(info, dict):
        return "index entry is not an object"
    offset, size, sha = info.get("offset"), info.get("size"), info.get("sha256")
    if not _is_count(offset) or not _is_count(size):
        return "index entry lacks a valid offset or size"
    if filesize is not None and offset + size > filesize:
        return f"offset+size ({offset + size}) past the archive's end ({filesize})"
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha.lower())):
        return "index entry has a malformed sha256"
    return None


class ArchiveIndex:
    """The files of one archive, by resource id. Thread-safe: a pool shares it between workers."""

    def __init__(self, archive: str, filesize: int | None = None, hash: str | None = None,
                 hash_lfs: str | None = None, files: dict[str, Any] | None = None,
                 id_of: Callable[[str], int | None] | None = None, raw_size: int = 0,
                 lazy: bool = False):
        self.archive = archive
        self.filesize = filesize
        self.hash = hash
        self.hash_lfs = hash_lfs
        self._files: dict[str, Any] = files if files is not None else {}
        self._lazy = lazy  # entries are raw JSON text until decoded (indexjson.entry)
        self.approx_bytes = max(raw_size, 64 * len(self._files)) * (LAZY_MEMORY_PER_BYTE if lazy else MEMORY_PER_BYTE)
        self._lock = threading.Lock()
        self._decoding = threading.Lock()
        self._built: dict[int, list[IndexEntry]] = {}
        self._entry_problems: dict[str, str] = {}
        self._full: tuple[list[IndexEntry], dict[int, list[IndexEntry]], list[tuple[str, str]]] | None = None
        self._names = NameTable(self._files, id_of)
        self.name_problems = self._names.problems

    # -- parsing
    @classmethod
    def from_bytes(cls, archive: str, raw: bytes | str,
                   id_of: Callable[[str], int | None] | None = resource_id_of) -> "ArchiveIndex":
        lazy = indexjson.loads_lazy(raw)
        if lazy is not None:
            frame, files = lazy
            return cls._made(archive, frame, files, id_of, len(raw), lazy=True)
        try:
            data = indexjson.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise IndexFormatError(f"index of {archive} is not valid JSON ({err.__class__.__name__})") from None
        except RecursionError:
            raise IndexFormatError(f"index of {archive} is nested too deeply to be an index") from None
        return cls.from_dict(archive, data, id_of, raw_size=len(raw))

    @classmethod
    def from_dict(cls, archive: str, data: Any, id_of: Callable[[str], int | None] | None = resource_id_of,
                  raw_size: int = 0) -> "ArchiveIndex":
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise IndexFormatError(f"index of {archive} has no 'files' table")
        return cls._made(archive, data, data["files"], id_of, raw_size)

    @classmethod
    def _made(cls, archive, frame, files, id_of, raw_size, lazy=False) -> "ArchiveIndex":
        filesize = frame.get("filesize")
        if not _is_count(filesize):
            filesize = None
        return cls(archive, filesize, _str_or_none(frame.get("hash")), _str_or_none(frame.get("hash_lfs")),
                   files, None if id_of is resource_id_of else id_of, raw_size, lazy)

    # -- the job's path: one id at a time
    def has(self, resource_id: int) -> bool:
        """True when some name stands for ``resource_id`` (its entries may still be unusable)."""
        return self._names.get(resource_id) is not None

    def ids(self):
        """Every id some name stands for, in the index's order (no entry is built)."""
        return self._names.ids()

    def lookup(self, resource_id: int) -> list[IndexEntry]:
        """The usable entries of ``resource_id`` (empty when none), built on first use."""
        got = self._built.get(resource_id)
        if got is not None:
            return got
        names = self._names.get(resource_id)
        if names is None:
            return []
        with self._lock:
            got = self._built.get(resource_id)
            if got is None:
                got = self._built[resource_id] = self._build(resource_id, names)
        return got

    def problems_of(self, resource_id: int) -> list[tuple[str, str]]:
        """``(name, reason)`` of the entries of ``resource_id`` that :meth:`lookup` set aside."""
        names = self._names.get(resource_id)
        if names is None:
            return []
        self.lookup(resource_id)
        names = (names,) if isinstance(names, str) else names
        return [(n, self._entry_problems[n]) for n in names if n in self._entry_problems]

    def _build(self, rid: int, names: str | list[str]) -> list[IndexEntry]:
        out: list[IndexEntry] = []
        for name in ((names,) if isinstance(names, str) else names):
            info = indexjson.entry(self._files.get(name))
            reason = _entry_problem(info, self.filesize)
            if reason is None:
                base = safe_basename(name) or ""
                if any(e.basename == base for e in out):
                    reason = DUPLICATE
            if reason is not None:
                self._entry_problems[name] = reason
                continue
            sha = info.get("sha256")
            out.append(IndexEntry(name, info["offset"], info["size"], sha.lower() if sha else None, rid, base))
        return out

    # -- the whole index, for browsing
    def first_entries(self, n: int) -> list[IndexEntry]:
        """The ``n`` usable entries of smallest offset (ties in the index's order): what the whole
        list sorted by offset starts with, found without building the other entries (a browser's
        first page of a 50,000-file archive)."""
        if self._full is not None:
            return sorted(self._full[0], key=_by_offset)[:n]
        files = self._decoded()
        candidates = [(info["offset"], pos, name) for pos, (name, info) in enumerate(files.items())
                      if type(info) is dict and type(info.get("offset")) is int]
        want = n * 2 + 16
        while True:
            out: list[IndexEntry] = []
            for _, _, name in heapq.nsmallest(want, candidates):
                rid = self._names.id_of_name(name)
                if rid is not None:
                    out.extend(e for e in self.lookup(rid) if e.name == name)
                    if len(out) == n:
                        return out
            if want >= len(candidates):
                return out
            want *= 4

    def _everything(self):
        full = self._full
        if full is None:
            with self._lock:
                full = self._full
                if full is None:
                    full = self._full = self._build_everything()
        return full

    def _build_everything(self):
        """Every entry at once (the TUI's file list): the same verdicts as :meth:`lookup`, with the
        checks of a well-formed entry of a single-name id inlined (about 4x faster for 50,000)."""
        built, files, filesize = self._built, self._decoded(), self.filesize
        sha_ok = _SHA256.fullmatch
        for rid, names in self._names.items():
            if rid in built:
                continue
            if isinstance(names, str):
                info = files.get(names)
                if type(info) is dict:
                    offset, size, sha = info.get("offset"), info.get("size"), info.get("sha256")
                    if type(offset) is int and type(size) is int and 0 <= offset < MAX_COUNT and \
                            0 <= size < MAX_COUNT and \
                            (filesize is None or offset + size <= filesize) and \
                            type(sha) is str and sha_ok(sha):
                        base = safe_basename(names) or ""
                        built[rid] = [IndexEntry(names, offset, size, sha, rid, base)]
                        continue
            built[rid] = self._build(rid, names)
        return self._collect()

    def _decoded(self) -> dict[str, Any]:
        """The files table with every entry decoded (the whole list needs them all)."""
        if self._lazy:
            with self._decoding:
                if self._lazy:
                    files, entry = self._files, indexjson.entry
                    for name, info in files.items():  # values only: no lookup sees the table change size
                        files[name] = entry(info)
                    self._lazy = False  # approx_bytes stays what the pool's cache was charged
        return self._files

    def _collect(self):
        by_name = {e.name: e for entries in self._built.values() for e in entries}
        bad = dict(self.name_problems)
        bad.update(self._entry_problems)
        entries = [by_name[n] for n in self._files if n in by_name]
        by_id = {rid: self._built[rid] for rid in self._names.ids() if self._built[rid]}
        unrecognized = [(n, bad[n]) for n in self._files if n in bad]
        return entries, by_id, unrecognized

    @property
    def entries(self) -> list[IndexEntry]:
        return self._everything()[0]

    @property
    def by_id(self) -> dict[int, list[IndexEntry]]:
        return self._everything()[1]

    @property
    def unrecognized(self) -> list[tuple[str, str]]:
        return self._everything()[2]

    @property
    def n_files(self) -> int:
        return len(self._files)

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

    def __repr__(self) -> str:
        return f"ArchiveIndex({self.archive!r}, {len(self._files)} files)"


def _by_offset(entry: IndexEntry) -> int:
    return entry.offset


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
