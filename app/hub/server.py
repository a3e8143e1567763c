"""A loopback, Hub-compatible HTTP server over folders on disk.

``ROOT/datasets/<owner>/<name>/`` (also ``models/`` and ``spaces/``) is served as a repo with one
branch, ``main``, whose commit sha is derived from the files' paths, sizes and mtimes: it changes
when the content changes, so the client cache (keyed by commit) never serves stale files.

It speaks the subset of the Hub protocol that huggingface_hub, hfutils and cheesechaser use (see
the endpoint table in the project's hub-protocol notes): ``resolve`` HEAD/GET with ranges, repo
info, paged tree listings, paths-info and refs, with the error headers the client maps to its
exception classes. Access rules come from ``ROOT/access.json`` and/or ``access=``; seeded faults
from :class:`~app.hub.faults.FaultConfig`.

Stdlib only; no Textual.

    with HubServer(root) as srv:
        os.environ["HF_ENDPOINT"] = srv.url
        ...
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import hashlib
import json
import logging
import mimetypes
import os
import re
import signal
import socket
import stat
import struct
import sys
import threading
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode

from .faults import NO_FAULT, Fault, FaultConfig, FaultDice

__all__ = [
    "HubServer",
    "FaultConfig",
    "RequestRecord",
    "RepoAccess",
    "add_serve_arguments",
    "run_serve",
    "serve_main",
]

logger = logging.getLogger(__name__)

REPO_TYPES = ("datasets", "models", "spaces")
TREE_PAGE = 1000
# Files stored in LFS on the real Hub: their ETag and tree `lfs.oid` are sha256.
LFS_SUFFIXES = frozenset(
    ".tar .zip .gz .tgz .7z .rar .bz2 .xz .zst .lz4 .bin .safetensors .parquet .arrow .npy .npz "
    ".pt .pth .ckpt .h5 .onnx .msgpack .pkl .pickle .tflite .ot .joblib .model".split()
)
LFS_MIN_SIZE = 10 * 1024 * 1024
SMALL_BODY = 256 * 1024  # read + one sendall below this, sendfile above
CHUNK = 1024 * 1024
SNAPSHOT_TTL = 2.0  # seconds before a quick check also rescans every file
# Seconds between folder re-stats on the file path. A file that is missing, or whose size or mtime
# differs from the snapshot, always forces a fresh look, so only X-Repo-Commit can lag this much
# behind a change to *another* file; the API endpoints always rescan.
QUICK_CHECK_INTERVAL = 0.25
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")
_SKIP_DIRS = frozenset({".git", ".cache"})


class RequestRecord(NamedTuple):
    """One served request, as seen by the server (``path`` is unquoted, without the query)."""

    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int
    fault: str | None = None


@dataclass(frozen=True)
class RepoAccess:
    """Access rule for one repo. ``gated`` may be True/"auto"/"manual"."""

    private: bool = False
    gated: bool | str = False
    tokens: frozenset[str] = frozenset()

    @classmethod
    def from_obj(cls, obj: Any) -> "RepoAccess":
        if not isinstance(obj, Mapping):
            raise ValueError("each access entry must be an object")
        tokens = obj.get("tokens") or ()
        if isinstance(tokens, str):
            tokens = (tokens,)
        if not all(isinstance(t, str) for t in tokens):
            raise ValueError("tokens must be strings")
        gated = obj.get("gated", False)
        if gated not in (True, False, "auto", "manual"):
            raise ValueError("gated must be true, false, 'auto' or 'manual'")
        return cls(private=bool(obj.get("private", False)), gated=gated, tokens=frozenset(tokens))


def _parse_access(data: Any) -> dict[str, RepoAccess]:
    """``{"owner/name" | "datasets/owner/name": {...}}`` -> normalized keys."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("access rules must be a JSON object")
    out: dict[str, RepoAccess] = {}
    for key, value in data.items():
        parts = str(key).strip("/").split("/")
        if len(parts) == 3 and parts[0] in REPO_TYPES:
            norm = "/".join(parts)
        elif len(parts) == 2:
            norm = "/".join(parts)
        else:
            raise ValueError(f"bad repo id in access rules: {key!r}")
        out[norm] = value if isinstance(value, RepoAccess) else RepoAccess.from_obj(value)
    return out


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)


def _iso(ns: int) -> str:
    t = time.gmtime(ns / 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % ((ns // 1_000_000) % 1000)


def _is_lfs(path: str, size: int) -> bool:
    return size >= LFS_MIN_SIZE or os.path.splitext(path)[1].lower() in LFS_SUFFIXES


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _git_blob_sha1_bytes(data: bytes) -> str:
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _split_repo_path(path: str) -> str | None:
    """Normalize a path inside a repo; None when it could escape or is not a plain relative path."""
    path = path.strip("/")
    if not path:
        return ""
    parts = path.split("/")
    for p in parts:
        if p in ("", ".", "..") or "\x00" in p or p in _SKIP_DIRS:
            return None
    return "/".join(parts)


# --------------------------------------------------------------------------------------------
# Repo snapshots and content hashes


class _FileEntry(NamedTuple):
    size: int
    mtime_ns: int
    abspath: str


class _Snapshot:
    """An immutable view of one repo folder at one moment."""

    def __init__(self, repo_key: str, files: dict[str, _FileEntry], dirs: dict[str, int]):
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


class _Repo:
    def __init__(self, repo_type: str, repo_id: str, path: Path):
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.path = str(path)
        self.key = f"{repo_type}/{repo_id}"
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None
        self.shas_seen: set[str] = set()

    def _scan(self) -> tuple[dict[str, _FileEntry], dict[str, int]]:
        real_root = os.path.realpath(self.path)
        files: dict[str, _FileEntry] = {}
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
                                files[child_rel] = _FileEntry(st.st_size, st.st_mtime_ns, de.path)
                            continue  # symlinked folders are not followed
                        if de.is_dir(follow_symlinks=False):
                            dirs[child_rel] = de.stat(follow_symlinks=False).st_mtime_ns
                            stack.append((child_rel, de.path))
                        elif de.is_file(follow_symlinks=False):
                            st = de.stat(follow_symlinks=False)
                            files[child_rel] = _FileEntry(st.st_size, st.st_mtime_ns, de.path)
                    except OSError:
                        continue
        return files, dirs

    def snapshot(self, full: bool = False, recheck: bool = False) -> _Snapshot:
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
            new = _Snapshot(self.key, files, dirs)
            if self._snap is not None and self._snap.sha == new.sha and self._snap.dirs == dirs:
                self._snap.created = self._snap.checked = new.created  # same content: keep caches
                return self._snap
            self._snap = new
            self.shas_seen.add(new.sha)
            return new


class _Hashes:
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
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])

    def git_sha1(self, e: _FileEntry) -> str:
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

    def _from_index(self, e: _FileEntry) -> str | None:
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

    def sha256(self, e: _FileEntry, compute: bool = True) -> str | None:
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

    def etag(self, rel: str, e: _FileEntry, compute: bool = True) -> str | None:
        if _is_lfs(rel, e.size):
            return self.sha256(e, compute)
        return self.git_sha1(e)  # non-LFS files are small: hashing once is cheap

    def tree_entry(self, rel: str, e: _FileEntry) -> dict[str, Any]:
        if _is_lfs(rel, e.size):
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


# --------------------------------------------------------------------------------------------
# HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], hub: "HubServer"):
        self.hub = hub
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        logger.exception("loopback hub: unexpected error")


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server_version = "loopback-hub/1"
    sys_version = ""
    server: _HTTPServer

    # Quiet by default; never prints headers (so never a token).
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.hub.verbose:
            sys.stderr.write("hub: %s\n" % (format % args))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ---- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form request target
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        raw_path, _, query = target.partition("?")
        raw_path = raw_path.split("#", 1)[0]
        self._rec: dict[str, Any] = {"status": 0, "sent": 0, "fault": None}
        self._logged = False
        self._method, self._raw_path = method, raw_path
        body = b""
        if method == "POST":
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                body = self._read_chunked()
            else:
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    n = 0
                body = self.rfile.read(n) if n > 0 else b""
        self._headers_sent = False
        try:
            hub._route(self, method, raw_path, query, body)
        except _HubError as e:
            if not self._headers_sent:
                self.send_hub_error(e, head=method == "HEAD")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            logger.exception("loopback hub: error serving %s %s", method, raw_path)
            if not self._headers_sent:
                try:
                    self.send_hub_error(_HubError(500, "Internal server error"), head=method == "HEAD")
                except OSError:
                    pass
            self.close_connection = True
        finally:
            self.log_now()

    def log_now(self) -> None:
        """Record this request, once, before its last byte leaves (so a client that has read the
        answer always finds it in ``request_log``); ``sent`` is the body size the server writes."""
        if self._logged:
            return
        self._logged = True
        rec = self._rec
        hub = self.server.hub
        hub._log(
            RequestRecord(
                self._method, unquote(self._raw_path), self.headers.get("Range"), rec["status"], rec["sent"],
                rec["fault"],
            )
        )
        if hub.verbose:
            self.log_message('"%s %s" %s %s', self._method, self._raw_path, rec["status"], rec["sent"])

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline(1024)

    def _header_block(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {self.server_version}", f"Date: {_http_date()}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    def send_bytes(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        head: bool = False,
        fault: Fault = NO_FAULT,
        content_length: int | None = None,
    ) -> None:
        """Send a whole response in one write. ``content_length`` is what a HEAD announces."""
        length = len(body) if content_length is None else content_length
        headers = headers + [("Content-Length", str(length))]
        self._rec["status"] = status
        if head:
            self._headers_sent = True
            block = self._header_block(status, headers)
            self.log_now()
            self.connection.sendall(block)
            return
        self._send_segments(status, headers, [body], None, fault)

    def send_hub_error(self, e: _HubError, head: bool = False) -> None:
        body = json.dumps({"error": e.message}).encode()
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if e.code:
            headers.append(("X-Error-Code", e.code))
        headers.append(("X-Error-Message", e.message))
        headers += e.headers
        self.send_bytes(e.status, headers, body, head=head)

    def send_json(
        self, obj: Any, headers: Iterable[tuple[str, str]] = (), *, head: bool = False, fault: Fault = NO_FAULT
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_bytes(
            200, [("Content-Type", "application/json; charset=utf-8"), *headers], body, head=head, fault=fault
        )

    def _send_segments(
        self,
        status: int,
        headers: list[tuple[str, str]],
        segments: list[bytes | tuple[int, int]],
        fd: int | None,
        fault: Fault,
    ) -> None:
        """Send headers and a body made of literal bytes and (offset, length) ranges of file ``fd``,
        applying a drop / truncate / corrupt fault across the whole body."""
        total = sum(len(s) if isinstance(s, bytes) else s[1] for s in segments)
        limit = total
        flip = -1
        kind = fault.kind if total > 0 else None
        if kind == "drop":
            limit = min(total - 1, int(total * fault.where))
        elif kind == "truncate":
            limit = total - max(1, total // 8)
        elif kind == "corrupt":
            flip = min(total - 1, int(total * fault.where))
        if kind in ("drop", "truncate", "corrupt"):
            self._rec["fault"] = kind
        sock = self.connection
        out = bytearray(self._header_block(status, headers))
        if kind in ("drop", "truncate"):
            self.close_connection = True  # after the headers: a real cut is never announced
        self._headers_sent = True
        self._rec["status"] = status
        self._rec["sent"] = limit
        self.log_now()
        pos = 0

        def flush() -> None:
            if out:
                sock.sendall(out)
                out.clear()

        for seg in segments:
            if pos >= limit:
                break
            if isinstance(seg, bytes):
                take = min(len(seg), limit - pos)
                chunk = bytearray(seg[:take]) if pos <= flip < pos + take else seg[:take]
                if pos <= flip < pos + take:
                    chunk[flip - pos] ^= 0xFF
                out += chunk
                pos += take
                if len(out) >= CHUNK:
                    flush()
                continue
            off, seglen = seg
            take = min(seglen, limit - pos)
            has_flip = pos <= flip < pos + take
            if take <= SMALL_BODY or has_flip:
                done = 0
                while done < take:
                    n = min(CHUNK, take - done)
                    data = os.pread(fd, n, off + done)
                    if not data:
                        raise ConnectionAbortedError("file shrank while serving")
                    if pos + done <= flip < pos + done + len(data):
                        data = bytearray(data)
                        data[flip - pos - done] ^= 0xFF
                    out += data
                    done += len(data)
                    if len(out) >= CHUNK:
                        flush()
            else:
                flush()
                with open(fd, "rb", buffering=0, closefd=False) as fobj:
                    done = sock.sendfile(fobj, off, take)
                if done != take:
                    raise ConnectionAbortedError("file shrank while serving")
            pos += take
        flush()
        if kind == "drop":
            # Reset, not a clean close: the client sees "connection reset" mid-body.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    def abort(self) -> None:
        """Close the connection without an answer (a dropped HEAD)."""
        self.close_connection = True
        self._headers_sent = True
        self.log_now()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# The server


class HubServer:
    """A Hub-compatible server for the repos under ``root``, on a background thread.

    ``faults`` and ``access`` may be swapped at run time (``srv.faults = FaultConfig(...)``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        access: Mapping[str, Any] | None = None,
        *,
        verbose: bool = False,
        log_limit: int = 200_000,
    ):
        self.root = Path(root)
        self.host = host
        self.port = port
        self.verbose = verbose
        self._dice: FaultDice | None = None
        self.faults = faults
        self._access_arg = _parse_access(access)
        self._access_file: tuple[tuple[int, int] | None, dict[str, RepoAccess]] = (None, {})
        self._access_lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._repos_lock = threading.Lock()
        self.hashes = _Hashes()
        self._log_lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=log_limit)
        self._counters = {"requests": 0, "bytes_sent": 0}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> "HubServer":
        if self._httpd is not None:
            return self
        if not self.root.is_dir():
            raise FileNotFoundError(f"hub root is not a folder: {self.root}")
        self._load_access()  # fail early on a broken access.json
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="loopback-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ---- configuration -------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig | None:
        return self._dice.config if self._dice else None

    @faults.setter
    def faults(self, config: FaultConfig | None) -> None:
        self._dice = FaultDice(config) if config is not None and config.active else None

    @property
    def access(self) -> dict[str, RepoAccess]:
        return dict(self._access_arg)

    @access.setter
    def access(self, rules: Mapping[str, Any] | None) -> None:
        self._access_arg = _parse_access(rules)

    def _load_access(self) -> dict[str, RepoAccess]:
        path = self.root / "access.json"
        try:
            st = path.stat()
            sig: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = None
        with self._access_lock:
            if sig != self._access_file[0]:
                rules: dict[str, RepoAccess] = {}
                if sig is not None:
                    try:
                        rules = _parse_access(json.loads(path.read_text("utf-8")))
                    except (OSError, ValueError) as e:
                        if self._access_file[0] is None:
                            raise ValueError(f"{path}: {e}") from None
                        logger.warning("loopback hub: ignoring broken %s (%s), keeping the old rules", path, e)
                        return self._access_file[1]
                self._access_file = (sig, rules)
            return self._access_file[1]

    def _rules(self) -> dict[str, RepoAccess]:
        try:
            rules = dict(self._load_access())
        except ValueError:
            # Fail closed: a broken access.json must not make private repos public.
            raise _HubError(500, "The hub's access rules are broken") from None
        rules.update(self._access_arg)
        return rules

    # ---- observability -------------------------------------------------------------------

    def _log(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self._records.append(rec)
            self._counters["requests"] += 1
            self._counters["bytes_sent"] += rec.bytes_sent

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._records)

    def clear_log(self) -> None:
        with self._log_lock:
            self._records.clear()

    def count(self, method: str | None = None, path_suffix: str | None = None, status: int | None = None) -> int:
        with self._log_lock:
            return sum(
                1
                for r in self._records
                if (method is None or r.method == method)
                and (path_suffix is None or r.path.endswith(path_suffix))
                and (status is None or r.status == status)
            )

    @property
    def stats(self) -> dict[str, int]:
        with self._log_lock:
            return dict(self._counters)

    def repos(self) -> list[str]:
        """``type/owner/name`` of every repo folder under the root."""
        out = []
        for t in REPO_TYPES:
            base = self.root / t
            if not base.is_dir():
                continue
            for owner in sorted(base.iterdir()):
                if not owner.is_dir() or not _NAME_RE.match(owner.name):
                    continue
                for name in sorted(owner.iterdir()):
                    if name.is_dir() and _NAME_RE.match(name.name):
                        out.append(f"{t}/{owner.name}/{name.name}")
        return out

    # ---- repos and access ----------------------------------------------------------------

    def _repo(self, repo_type: str, owner: str, name: str) -> _Repo | None:
        key = f"{repo_type}/{owner}/{name}"
        repo = self._repos.get(key)
        if repo is not None:
            return repo  # a vanished folder shows up when its snapshot is refreshed
        if not (_NAME_RE.match(owner) and _NAME_RE.match(name)) or ".." in owner + name or "--" in owner + name:
            return None
        path = self.root / repo_type / owner / name
        if not path.is_dir() or path.is_symlink():
            with self._repos_lock:
                self._repos.pop(key, None)
            return None
        with self._repos_lock:
            repo = self._repos.get(key)
            if repo is None:
                repo = self._repos[key] = _Repo(repo_type, f"{owner}/{name}", path)
            return repo

    @staticmethod
    def _token(h: _Handler) -> str | None:
        auth = h.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None

    def _open_repo(
        self, h: _Handler, repo_type: str, owner: str, name: str, files: bool, full: bool
    ) -> tuple[_Repo, RepoAccess, _Snapshot]:
        """The repo, or the error a client without access must see. Gated repos answer their
        metadata to everyone and guard only files (as the Hub does)."""
        token = self._token(h)
        repo = self._repo(repo_type, owner, name)
        rules = self._rules()
        rule = rules.get(f"{repo_type}/{owner}/{name}") or rules.get(f"{owner}/{name}") or RepoAccess()
        not_found = _HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        if repo is None:
            raise not_found
        if rule.private or (rule.gated and files):
            if token is None or token not in rule.tokens:
                if token is not None and not any(token in r.tokens for r in rules.values()):
                    raise _HubError(401, INVALID_CREDENTIALS)
                if rule.private:
                    raise not_found
                raise _HubError(
                    401 if token is None else 403,
                    f"Access to {repo_type[:-1]} {owner}/{name} is restricted. You must have access to it"
                    " and be authenticated to access it. Please log in.",
                    "GatedRepo",
                )
        try:
            snap = repo.snapshot(full=full)
        except FileNotFoundError:
            with self._repos_lock:
                self._repos.pop(repo.key, None)
            raise not_found from None
        return repo, rule, snap

    @staticmethod
    def _check_rev(repo: _Repo, snap: _Snapshot, rev: str) -> None:
        if rev in ("main", "refs/heads/main") or rev.lower() == snap.sha:
            return
        raise _HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    # ---- routing -------------------------------------------------------------------------

    def _route(self, h: _Handler, method: str, raw_path: str, query: str, body: bytes) -> None:
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        params = parse_qs(query, keep_blank_values=True)
        head = method == "HEAD"
        if parts and parts[0] == "api":
            fault = self._fault(h, "api", unquote(raw_path))
            if fault is None:
                return
            if len(parts) >= 4 and parts[1] in REPO_TYPES:
                self._api(h, method, parts[1], parts[2], parts[3], parts[4:], params, body, raw_path, fault)
                return
            if parts[1:] == ["whoami-v2"] and method in ("GET", "HEAD"):
                self._whoami(h, head)
                return
            if parts[1:] == ["agent-harnesses"] and method in ("GET", "HEAD"):
                # huggingface_hub fetches this registry once a day; an empty one disables detection.
                h.send_json({"standardEnvVars": [], "harnesses": {}}, head=head)
                return
            raise _HubError(404, "Not found")
        if len(parts) >= 1 and parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0], parts[1:]
        else:
            repo_type = "models"
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            owner, name, _, rev = parts[:4]
            path = "/".join(parts[4:])
            fault = self._fault(h, "head" if head else "get", path)
            if fault is None:
                return
            self._resolve(h, head, repo_type, owner, name, rev, path, fault)
            return
        raise _HubError(404, "Not found")

    def _fault(self, h: _Handler, kind: str, path: str) -> Fault | None:
        """Draw this request's fault; answer it here and return None when it ends the request."""
        dice = self._dice
        if dice is None:
            return NO_FAULT
        fault = dice.draw(kind, path)
        if fault.latency_s:
            time.sleep(fault.latency_s)
        if fault.kind in ("429", "error"):
            h._rec["fault"] = fault.kind
            retry = str(dice.config.retry_after)
            if fault.kind == "429":
                err = _HubError(429, "Too many requests (injected)", headers=[("Retry-After", retry)])
            else:
                err = _HubError(fault.status, "Injected server error")
                if fault.status == 503:
                    err.headers.append(("Retry-After", retry))
            h.send_hub_error(err, head=h.command == "HEAD")
            return None
        if fault.kind == "drop" and kind == "head":
            h._rec["fault"] = "drop"
            h.abort()
            return None
        if kind == "head":
            return NO_FAULT
        return fault

    # ---- resolve -------------------------------------------------------------------------

    def _resolve(
        self, h: _Handler, head: bool, repo_type: str, owner: str, name: str, rev: str, path: str, fault: Fault
    ) -> None:
        repo, _, snap = self._open_repo(h, repo_type, owner, name, files=True, full=False)
        self._check_rev(repo, snap, rev)
        rel = _split_repo_path(path)
        fd = -1
        for attempt in (0, 1):
            entry = snap.files.get(rel) if rel else None
            if entry is None and rel and attempt == 0:
                snap = repo.snapshot(recheck=True)  # maybe just created
                entry = snap.files.get(rel)
            if entry is None:
                raise _HubError(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", snap.sha)])
            try:
                fd = os.open(entry.abspath, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                fd = -1
            if fd >= 0:
                st = os.fstat(fd)
                if (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns) and stat.S_ISREG(st.st_mode):
                    break
                os.close(fd)
                fd = -1
            if attempt == 1:
                raise _HubError(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", snap.sha)])
            snap = repo.snapshot(full=True)  # changed under us: new content, new commit
        assert rel is not None
        try:
            self._send_file(h, head, snap, rel, entry, fd, fault)
        finally:
            os.close(fd)

    def _send_file(
        self, h: _Handler, head: bool, snap: _Snapshot, rel: str, entry: _FileEntry, fd: int, fault: Fault
    ) -> None:
        size = entry.size
        etag = self.hashes.etag(rel, entry, compute=head or h.headers.get("Range") is None)
        ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        headers = [
            ("Content-Type", ctype),
            ("Accept-Ranges", "bytes"),
            ("X-Repo-Commit", snap.sha),
            ("Last-Modified", email.utils.formatdate(entry.mtime_ns / 1e9, usegmt=True)),
        ]
        if etag:
            headers.append(("ETag", f'"{etag}"'))
        ranges = _parse_range(h.headers.get("Range"), size)
        if ranges == "unsatisfiable":
            raise _HubError(416, "Requested range not satisfiable", headers=[("Content-Range", f"bytes */{size}")])
        if not ranges:
            status, segments = 200, [(0, size)]
        elif len(ranges) == 1:
            a, b = ranges[0]
            status, segments = 206, [(a, b - a + 1)]
            headers.append(("Content-Range", f"bytes {a}-{b}/{size}"))
        else:
            boundary = "hubrange" + hashlib.sha1(repr(ranges).encode()).hexdigest()[:16]
            segments = []
            for a, b in ranges:
                segments.append(
                    (
                        f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n"
                        f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n"
                    ).encode()
                )
                segments.append((a, b - a + 1))
            segments.append(f"\r\n--{boundary}--\r\n".encode())
            status = 206
            headers[0] = ("Content-Type", f"multipart/byteranges; boundary={boundary}")
        length = sum(len(s) if isinstance(s, bytes) else s[1] for s in segments)
        headers.append(("Content-Length", str(length)))
        if head:
            h._rec["status"] = status
            h._headers_sent = True
            block = h._header_block(status, headers)
            h.log_now()
            h.connection.sendall(block)
            return
        h._send_segments(status, headers, segments, fd, fault)

    # ---- api -----------------------------------------------------------------------------

    def _whoami(self, h: _Handler, head: bool) -> None:
        token = self._token(h)
        if token is None or not any(token in r.tokens for r in self._rules().values()):
            raise _HubError(401, INVALID_CREDENTIALS)
        h.send_json(
            {"type": "user", "name": "loopback", "fullname": "Loopback Hub user", "orgs": [],
             "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "read"}}},
            head=head,
        )

    def _api(
        self,
        h: _Handler,
        method: str,
        repo_type: str,
        owner: str,
        name: str,
        rest: list[str],
        params: dict[str, list[str]],
        body: bytes,
        raw_path: str,
        fault: Fault,
    ) -> None:
        head = method == "HEAD"
        get = method in ("GET", "HEAD")
        if get and (not rest or (len(rest) == 2 and rest[0] == "revision")):
            repo, rule, snap = self._open_repo(h, repo_type, owner, name, files=False, full=True)
            if rest:
                self._check_rev(repo, snap, rest[1])
            h.send_json(self._info(repo, rule, snap, _flag(params, "blobs")), head=head, fault=fault)
            return
        if get and len(rest) >= 2 and rest[0] == "tree":
            repo, _, snap = self._open_repo(h, repo_type, owner, name, files=False, full=True)
            self._check_rev(repo, snap, rest[1])
            self._tree(h, head, snap, "/".join(rest[2:]), params, raw_path, fault)
            return
        if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            repo, _, snap = self._open_repo(h, repo_type, owner, name, files=False, full=True)
            self._check_rev(repo, snap, rest[1])
            self._paths_info(h, snap, body, fault)
            return
        if get and rest == ["refs"]:
            repo, _, snap = self._open_repo(h, repo_type, owner, name, files=False, full=True)
            h.send_json(
                {
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": snap.sha}],
                    "converts": [],
                    "tags": [],
                    "pullRequests": [],
                },
                head=head,
                fault=fault,
            )
            return
        raise _HubError(404, "Not found")

    def _info(self, repo: _Repo, rule: RepoAccess, snap: _Snapshot, blobs: bool) -> dict[str, Any]:
        siblings = []
        for rel in sorted(snap.files):
            e = snap.files[rel]
            sib: dict[str, Any] = {"rfilename": rel, "size": e.size}
            if blobs:
                entry = self.hashes.tree_entry(rel, e)
                sib["blobId"] = entry["oid"]
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sib["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
            siblings.append(sib)
        owner = repo.repo_id.split("/")[0]
        gated: bool | str = rule.gated
        if gated is True:
            gated = "manual"
        created = min([e.mtime_ns for e in snap.files.values()] + [snap.last_modified_ns])
        info: dict[str, Any] = {
            "_id": snap.sha[:24],
            "id": repo.repo_id,
            "author": owner,
            "sha": snap.sha,
            "lastModified": _iso(snap.last_modified_ns),
            "createdAt": _iso(created),
            "private": rule.private,
            "gated": gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": snap.total_size,
        }
        if repo.repo_type == "models":
            info["modelId"] = repo.repo_id
        return info

    def _tree_entry(self, snap: _Snapshot, rel: str, expand: bool) -> dict[str, Any]:
        e = snap.files.get(rel)
        if e is not None:
            out = self.hashes.tree_entry(rel, e)
            mtime = e.mtime_ns
        else:
            out = {"type": "directory", "oid": snap.dir_oids.get(rel, ""), "size": 0, "path": rel}
            mtime = snap.dirs.get(rel, snap.last_modified_ns)
        if expand:
            out["lastCommit"] = {"id": snap.sha, "title": "Loopback snapshot", "date": _iso(mtime)}
        return out

    def _tree(
        self,
        h: _Handler,
        head: bool,
        snap: _Snapshot,
        path: str,
        params: dict[str, list[str]],
        raw_path: str,
        fault: Fault,
    ) -> None:
        rel = _split_repo_path(path)
        if rel is None or (rel and rel not in snap.dirs):
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound", [("X-Repo-Commit", snap.sha)])
        recursive = _flag(params, "recursive")
        expand = _flag(params, "expand")
        listing = snap.listing(rel, recursive)
        try:
            offset = _decode_cursor(params["cursor"][0]) if params.get("cursor") else 0
            limit = int(params["limit"][0]) if params.get("limit") else TREE_PAGE
        except (ValueError, KeyError):
            raise _HubError(400, "Invalid cursor or limit") from None
        limit = max(1, min(TREE_PAGE, limit))
        page = listing[offset : offset + limit]
        headers: list[tuple[str, str]] = [("X-Repo-Commit", snap.sha)]
        if offset + limit < len(listing):
            q = {k: v[-1] for k, v in params.items() if k != "cursor"}
            q["cursor"] = _encode_cursor(offset + limit)
            headers.append(("Link", f'<{self._base_url(h)}{raw_path}?{urlencode(q)}>; rel="next"'))
        h.send_json([self._tree_entry(snap, p, expand) for p in page], headers, head=head, fault=fault)

    def _base_url(self, h: _Handler) -> str:
        host = h.headers.get("Host")
        if host and _HOST_RE.match(host):
            return f"http://{host}"
        return self.url

    def _paths_info(self, h: _Handler, snap: _Snapshot, body: bytes, fault: Fault) -> None:
        ctype = (h.headers.get("Content-Type") or "").lower()
        paths: list[str]
        expand = False
        if ctype.startswith("application/json"):
            try:
                data = json.loads(body or b"{}")
                paths = [str(p) for p in data.get("paths", [])]
                expand = bool(data.get("expand"))
            except (ValueError, AttributeError):
                raise _HubError(400, "Invalid JSON body") from None
        else:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = _flag(form, "expand")
        out = []
        seen = set()
        for p in paths:
            rel = _split_repo_path(p)
            if not rel or rel in seen or (rel not in snap.files and rel not in snap.dirs):
                continue
            seen.add(rel)
            out.append(self._tree_entry(snap, rel, expand))
        h.send_json(out, [("X-Repo-Commit", snap.sha)], fault=fault)


def _flag(params: Mapping[str, list[str]], key: str) -> bool:
    v = params.get(key)
    return bool(v) and v[-1].strip().lower() in ("1", "true", "yes", "on")


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    offset = json.loads(raw)["o"]
    if not isinstance(offset, int) or offset < 0:
        raise ValueError("bad cursor")
    return offset


def _parse_range(value: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """``None`` = whole file (no or unparsable header), ``"unsatisfiable"``, or inclusive ranges."""
    if not value:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not dash:
            return None
        try:
            if first == "":
                n = int(last)
                if n <= 0:
                    continue
                a, b = max(0, size - n), size - 1
            else:
                a = int(first)
                b = int(last) if last else size - 1
                if last and b < a:
                    return None  # syntactically invalid: ignore the header
                b = min(b, size - 1)
        except ValueError:
            return None
        if a < 0:
            return None
        if a <= b and a < size:
            out.append((a, b))
    if not out:
        return "unsatisfiable"
    return out


# --------------------------------------------------------------------------------------------
# Command line: `cheesechaser-tui serve ROOT`


def _repo_token(value: str) -> tuple[str, str | None]:
    repo, eq, token = value.partition("=")
    repo = repo.strip().strip("/")
    if repo.count("/") not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME[=TOKEN], got {value.split('=')[0]!r}")
    return repo, (token if eq else None)


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``serve`` options to ``parser`` (used by ``cheesechaser-tui serve``)."""
    parser.add_argument("root", metavar="ROOT", help="folder holding datasets/<owner>/<name>/ repos")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 picks a free one (default: 0)")
    g = parser.add_argument_group("fault injection (per request, seeded)")
    g.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="delay before each answer")
    g.add_argument("--fail-rate", type=float, default=0.0, metavar="P", help="share of 5xx answers")
    g.add_argument(
        "--fail-codes", default="500,502,503", metavar="CODES", help="status codes for --fail-rate (%(default)s)"
    )
    g.add_argument("--rate-429", type=float, default=0.0, metavar="P", help="share of 429 answers")
    g.add_argument("--retry-after", type=int, default=1, metavar="S", help="Retry-After seconds on 429/503")
    g.add_argument("--drop-rate", type=float, default=0.0, metavar="P", help="share of bodies cut by a reset")
    g.add_argument("--truncate-rate", type=float, default=0.0, metavar="P", help="share of short bodies")
    g.add_argument("--corrupt-rate", type=float, default=0.0, metavar="P", help="share of bodies with a flipped byte")
    g.add_argument("--seed", type=int, default=0, help="fault dice seed (default: 0)")
    g.add_argument(
        "--fault-paths", action="append", metavar="GLOB", help="only fault these files (glob or re:REGEX; repeatable)"
    )
    g.add_argument("--fault-head", action="store_true", help="also fault file HEAD requests")
    g.add_argument("--fault-api", action="store_true", help="also fault /api/ requests")
    a = parser.add_argument_group("access control (adds to ROOT/access.json)")
    a.add_argument(
        "--private", action="append", type=_repo_token, default=[], metavar="REPO[=TOKEN]",
        help="make REPO private, readable with TOKEN (repeatable)",
    )
    a.add_argument(
        "--gated", action="append", type=_repo_token, default=[], metavar="REPO[=TOKEN]",
        help="make REPO gated, files readable with TOKEN (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request to stderr")
    return parser


def _access_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for flag in ("private", "gated"):
        for repo, token in getattr(args, flag, None) or []:
            r = rules.setdefault(repo, {"private": False, "gated": False, "tokens": []})
            r[flag] = True
            if token:
                r["tokens"].append(token)
    return rules


def run_serve(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM. The first stdout line is the base URL."""
    root = Path(args.root)
    if not root.is_dir():
        print(f"cheesechaser-tui serve: error: {root}: no such folder", file=sys.stderr)
        return 2
    try:
        codes = tuple(int(c) for c in str(args.fail_codes).replace(" ", "").split(",") if c)
        faults = FaultConfig(
            latency_ms=args.latency_ms,
            error_rate=args.fail_rate,
            error_codes=codes or (500,),
            rate_429=args.rate_429,
            retry_after=args.retry_after,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            corrupt_rate=args.corrupt_rate,
            seed=args.seed,
            paths=args.fault_paths or None,
            on_head=args.fault_head,
            on_api=args.fault_api,
        )
        srv = HubServer(root, host=args.host, port=args.port, faults=faults, access=_access_from_args(args),
                        verbose=args.verbose)
        srv.start()
    except (ValueError, OSError) as e:
        print(f"cheesechaser-tui serve: error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        print(srv.url, flush=True)
        repos = srv.repos()
        print(
            f"serving {len(repos)} repo(s) from {root} at {srv.url} (Ctrl-C to stop)"
            + (f"; faults: {faults}" if faults.active else ""),
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 0


def serve_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cheesechaser-tui serve", description="Serve a folder as a loopback Hub.")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(serve_main())
