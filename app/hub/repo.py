"""Repos on disk, as the loopback Hub sees them.

``ROOT/<type>/<owner>/<name>/`` is one repo with one branch, ``main``. A :class:`Snapshot` is an
immutable view of its files at one moment; its commit sha is derived from the files' paths, sizes
and mtimes, so it changes when the content changes. :class:`ContentHashes` computes the git blob
sha1 / LFS sha256 of a file once per (path, size, mtime) and shapes the tree entries the Hub
answers with.

Stdlib only; no Textual.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "REPO_TYPES",
    "FileEntry",
    "Snapshot",
    "Repo",
    "RepoStore",
    "ContentHashes",
    "iso_time",
    "split_repo_path",
    "is_lfs",
]

REPO_TYPES = ("datasets", "models", "spaces")
# Files stored in LFS on the real Hub: their ETag and tree `lfs.oid` are sha256.
LFS_SUFFIXES = frozenset(
    ".tar .zip .gz .tgz .7z .rar .bz2 .xz .zst .lz4 .bin .safetensors .parquet .arrow .npy .npz "
    ".pt .pth .ckpt .h5 .onnx .msgpack .pkl .pickle .tflite .ot .joblib .model".split()
)
LFS_MIN_SIZE = 10 * 1024 * 1024
HASH_CHUNK = 1024 * 1024
SNAPSHOT_TTL = 2.0  # seconds before a quick check also rescans every file
# Seconds between folder re-stats on the file path. A file that is missing, or whose size or mtime
# differs from the snapshot, always forces a fresh look, so only X-Repo-Commit can lag this much
# behind a change to *another* file; the API endpoints always rescan.
QUICK_CHECK_INTERVAL = 0.25
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SKIP_DIRS = frozenset({".git", ".cache"})


def iso_time(ns: int) -> str:
    t = time.gmtime(ns / 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % ((ns // 1_000_000) % 1000)


def is_lfs(path: str, size: int) -> bool:
    return size >= LFS_MIN_SIZE or os.path.splitext(path)[1].lower() in LFS_SUFFIXES


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _git_blob_sha1_bytes(data: bytes) -> str:
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def split_repo_path(path: str) -> str | None:
    """Normalize a path inside a repo; None when it could escape or is not a plain relative path."""
    path = path.strip("/")
    if not path:
        return ""
    parts = path.split("/")
    for p in parts:
        if p in ("", ".", "..") or "\x00" in p or p in _SKIP_DIRS:
            return None
    return "/".join(parts)


class FileEntry(NamedTuple):
    size: int
    mtime_ns: int
    abspath: str


class Snapshot:
    """An immutable view of one repo folder at one moment."""

    def __init__(self, repo_key: str, files: dict[str, FileEntry], dirs: dict[str, int]):
        self.files = files
        self.dirs = dirs  # relpath ("" = root) -> mtime_ns
        self.created = self.checked = time.monotonic()
        h = hashlib.sha1(repo_key.encode() + b"\0")
        for rel in sorted(files):
            e = files[rel]
            h.update(b"%s\0%d\0%d\n" % (rel.encode("utf-8", "surrogateescape"), e.size, e.mtime_ns))
        self.sha = h.hexdigest()
        self.last_modified_ns = max([e.mtime_ns for e in files.values()] + list(dirs.values()) + [0])
        self.total_size = sum(e.size for e in files.values())
        # Tree order: pre-order, names sorted at each level.
        paths = [p for p in dirs if p] + list(files)
        paths.sort(key=lambda p: p.split("/"))
        self.ordered = paths
        self._keys = [p.split("/") for p in paths]
        self.children: dict[str, list[str]] = {d: [] for d in dirs}
        for p in paths:
            parent = p.rpartition("/")[0]
            self.children.setdefault(parent, []).append(p)
        self.dir_oids = self._dir_oids()
        self._listing_cache: dict[tuple[str, bool], list[str]] = {}

    def _dir_oids(self) -> dict[str, str]:
        oids: dict[str, str] = {}
        for d in sorted(self.dirs, key=lambda p: -p.count("/") if p else 1):
            h = hashlib.sha1(b"tree\0")
            for child in self.children.get(d, ()):
                name = child.rpartition("/")[2].encode("utf-8", "surrogateescape")
                if child in self.files:
                    e = self.files[child]
                    h.update(b"f %s %d %d\n" % (name, e.size, e.mtime_ns))
                else:
                    h.update(b"d %s %s\n" % (name, oids.get(child, "").encode()))
            oids[d] = h.hexdigest()
        return oids

    def listing(self, path: str, recursive: bool) -> list[str]:
        key = (path, recursive)
        cached = self._listing_cache.get(key)
        if cached is not None:
            return cached
        if not recursive:
            out = self.children.get(path, [])
        elif not path:
            out = self.ordered
        else:
            prefix = path.split("/")
            lo = bisect_left(self._keys, prefix) + 1  # skip the folder itself
            hi = lo
            n = len(prefix)
            while hi < len(self._keys) and self._keys[hi][:n] == prefix:
                hi += 1
            out = self.ordered[lo:hi]
        self._listing_cache[key] = out
        return out

    def dirs_unchanged(self, base: str) -> bool:
        try:
            for rel, mtime in self.dirs.items():
                if os.stat(os.path.join(base, rel) if rel else base).st_mtime_ns != mtime:
                    return False
        except OSError:
            return False
        return True


class Repo:
    """One repo folder; hands out its current :class:`Snapshot`."""

    def __init__(self, repo_type: str, repo_id: str, path: Path):
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.path = str(path)
        self.key = f"{repo_type}/{repo_id}"
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self.shas_seen: set[str] = set()

    def _scan(self) -> tuple[dict[str, FileEntry], dict[str, int]]:
        real_root = os.path.realpath(self.path)
        files: dict[str, FileEntry] = {}
        dirs: dict[str, int] = {"": os.stat(self.path).st_mtime_ns}
        stack = [("", self.path)]
        while stack:
            rel, absdir = stack.pop()
            try:
                it = os.scandir(absdir)
            except OSError:
                continue
            with it:
                for de in it:
                    name = de.name
                    if name in _SKIP_DIRS or "\\" in name and os.sep == "\\":
                        continue
                    child_rel = f"{rel}/{name}" if rel else name
                    try:
                        if de.is_symlink():
                            target = os.path.realpath(de.path)
                            if not (target == real_root or target.startswith(real_root + os.sep)):
                                continue
                            st = os.stat(de.path)
                            if stat.S_ISREG(st.st_mode):
                                files[child_rel] = FileEntry(st.st_size, st.st_mtime_ns, de.path)
                            continue  # symlinked folders are not followed
                        if de.is_dir(follow_symlinks=False):
                            dirs[child_rel] = de.stat(follow_symlinks=False).st_mtime_ns
                            stack.append((child_rel, de.path))
                        elif de.is_file(follow_symlinks=False):
                            st = de.stat(follow_symlinks=False)
                            files[child_rel] = FileEntry(st.st_size, st.st_mtime_ns, de.path)
                    except OSError:
                        continue
        return files, dirs

    def snapshot(self, full: bool = False, recheck: bool = False) -> Snapshot:
        """The current snapshot. Quick mode re-stats folders only (new, removed or renamed files),
        at most every QUICK_CHECK_INTERVAL unless ``recheck``; ``full`` (and any snapshot older
        than SNAPSHOT_TTL) rescans every file."""
        snap = self._snap
        now = time.monotonic()
        if snap is not None and not full and now - snap.created < SNAPSHOT_TTL:
            if not recheck and now - snap.checked < QUICK_CHECK_INTERVAL:
                return snap
            if snap.dirs_unchanged(self.path):
                snap.checked = now
                return snap
        with self._lock:
            if self._snap is not None and self._snap is not snap and not full:
                return self._snap
            files, dirs = self._scan()
            new = Snapshot(self.key, files, dirs)
            if self._snap is not None and self._snap.sha == new.sha and self._snap.dirs == dirs:
                self._snap.created = self._snap.checked = new.created  # same content: keep caches
                return self._snap
            self._snap = new
            self.shas_seen.add(new.sha)
            return new


class RepoStore:
    """The repo folders under a hub root, each :class:`Repo` kept (with its snapshot) once found."""

    def __init__(self, root: Path):
        self.root = root
        self._repos: dict[str, Repo] = {}
        self._lock = threading.Lock()

    def inside(self, repo_type: str, owner: str, name: str) -> bool:
        """Whether ``ROOT/type/owner/name`` is a real folder at that very place: no symbolic link
        at any level (type, owner or repo folder) takes it outside the root, or anywhere else."""
        path = os.path.join(self.root, repo_type, owner, name)
        want = os.path.join(os.path.realpath(self.root), repo_type, owner, name)
        return os.path.realpath(path) == want and os.path.isdir(want)

    def names(self) -> list[str]:
        """``type/owner/name`` of every repo folder under the root."""
        out = []
        for t in REPO_TYPES:
            base = self.root / t
            if not base.is_dir():
                continue
            for owner in sorted(base.iterdir()):
                if not owner.is_dir() or not NAME_RE.match(owner.name):
                    continue
                for name in sorted(owner.iterdir()):
                    if NAME_RE.match(name.name) and self.inside(t, owner.name, name.name):
                        out.append(f"{t}/{owner.name}/{name.name}")
        return out

    def get(self, repo_type: str, owner: str, name: str) -> Repo | None:
        key = f"{repo_type}/{owner}/{name}"
        if repo_type not in REPO_TYPES:
            return None
        if not (NAME_RE.match(owner) and NAME_RE.match(name)) or ".." in owner + name or "--" in owner + name:
            return None
        if not self.inside(repo_type, owner, name):  # checked every time: a folder can become a link
            self.forget(key)
            return None
        repo = self._repos.get(key)
        if repo is not None:
            return repo
        path = self.root / repo_type / owner / name
        with self._lock:
            repo = self._repos.get(key)
            if repo is None:
                repo = self._repos[key] = Repo(repo_type, f"{owner}/{name}", path)
            return repo

    def forget(self, key: str) -> None:
        """Drop a repo whose folder is gone, so a new folder of that name starts afresh."""
        with self._lock:
            self._repos.pop(key, None)


class ContentHashes:
    """Content hashes cached by (path, size, mtime_ns); hashing a big file happens once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._git: dict[tuple[str, int, int], str] = {}
        self._sha256: dict[tuple[str, int, int], str] = {}
        self._index: dict[tuple[str, int, int], tuple[int, str] | None] = {}
        self._key_locks: dict[tuple[str, str, int, int], threading.Lock] = {}

    def _key_lock(self, kind: str, key: tuple[str, int, int]) -> threading.Lock:
        with self._lock:
            lk = self._key_locks.get((kind, *key))
            if lk is None:
                lk = self._key_locks[(kind, *key)] = threading.Lock()
            return lk

    @staticmethod
    def _hash_file(path: str, h: Any) -> None:
        with open(path, "rb", buffering=0) as f:
            buf = bytearray(HASH_CHUNK)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])

    def git_sha1(self, e: FileEntry) -> str:
        key = (e.abspath, e.size, e.mtime_ns)
        v = self._git.get(key)
        if v is not None:
            return v
        with self._key_lock("git", key):
            v = self._git.get(key)
            if v is None:
                h = hashlib.sha1(b"blob %d\0" % e.size)
                self._hash_file(e.abspath, h)
                v = self._git[key] = h.hexdigest()
            return v

    def _from_index(self, e: FileEntry) -> str | None:
        """``hash_lfs`` of an archive from its sibling hfutils index, when ``filesize`` matches."""
        if not e.abspath.endswith(".tar"):
            return None
        idx = e.abspath[:-4] + ".json"
        try:
            st = os.stat(idx)
        except OSError:
            return None
        key = (idx, st.st_size, st.st_mtime_ns)
        if key not in self._index:
            found = None
            if st.st_size < 512 * 1024 * 1024:
                try:
                    with open(idx, "rb") as f:
                        data = json.load(f)
                    size, sha = data.get("filesize"), data.get("hash_lfs")
                    if isinstance(size, int) and isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha):
                        found = (size, sha)
                except (OSError, ValueError, AttributeError):
                    found = None
            self._index[key] = found
        found = self._index[key]
        if found and found[0] == e.size:
            return found[1]
        return None

    def sha256(self, e: FileEntry, compute: bool = True) -> str | None:
        """The file's sha256; with ``compute=False`` only what is already known (no I/O)."""
        key = (e.abspath, e.size, e.mtime_ns)
        v = self._sha256.get(key)
        if v is not None or not compute:
            return v
        v = self._from_index(e)
        if v is not None:
            self._sha256[key] = v
            return v
        with self._key_lock("sha256", key):
            v = self._sha256.get(key)
            if v is None:
                h = hashlib.sha256()
                self._hash_file(e.abspath, h)
                v = self._sha256[key] = h.hexdigest()
            return v

    def etag(self, rel: str, e: FileEntry, compute: bool = True) -> str | None:
        if is_lfs(rel, e.size):
            return self.sha256(e, compute)
        return self.git_sha1(e)  # non-LFS files are small: hashing once is cheap

    def tree_entry(self, rel: str, e: FileEntry) -> dict[str, Any]:
        if is_lfs(rel, e.size):
            sha = self.sha256(e)
            assert sha is not None
            pointer = _lfs_pointer(sha, e.size)
            return {
                "type": "file",
                "oid": _git_blob_sha1_bytes(pointer),
                "size": e.size,
                "path": rel,
                "lfs": {"oid": sha, "size": e.size, "pointerSize": len(pointer)},
            }
        return {"type": "file", "oid": self.git_sha1(e), "size": e.size, "path": rel}
