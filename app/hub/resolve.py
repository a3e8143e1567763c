"""File answers of the loopback Hub: ``resolve``, the CDN port and ``/api/resolve-cache/``.

By default the loopback Hub answers ``resolve`` (GET and HEAD) the way the real Hub does:

- an LFS-style file (``.tar``, ``.parquet``, anything of 10 MB or more) gets a ``302`` to the
  CDN port of the same process, with a signed, expiring URL (see :mod:`app.hub.signing`); the
  302 carries ``X-Repo-Commit``, ``X-Linked-Size``, ``X-Linked-Etag`` (the sha256, quoted),
  ``ETag`` and ``Content-Length``. The CDN checks the signature, honours a single ``Range``
  (several: the whole file, as S3 does) and refuses (403) a request carrying ``Authorization``;
- a regular file gets a relative ``307`` to ``/api/resolve-cache/{type}/{repo}/{commit}/{path}``
  carrying its git blob sha1 ``ETag``; that URL answers the bytes (text gzip-encoded when the
  client accepts it), with the same access rules as ``resolve``.

``direct`` answers every file in place instead (the loopback Hub's old behaviour). The resolver
quota counts every ``/resolve/`` request. Seeded faults are drawn once per file GET where its
body is served (the CDN or resolve-cache request when redirected), and on a resolve HEAD.

Stdlib only; no Textual.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import mimetypes
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Mapping
from urllib.parse import quote, urlencode

from app.hub.access import bearer_token
from app.hub.faults import NO_FAULT, Fault
from app.hub.handler import HubError, HubRequestHandler, parse_range
from app.hub.repo import REPO_TYPES, FileEntry, Repo, Snapshot, is_lfs, split_repo_path
from app.hub.signing import SignatureProblem, opaque_etag

if TYPE_CHECKING:
    from app.hub.routes import HubRoutes

__all__ = ["FileAnswers", "CDN_PREFIX", "CACHE_PREFIX"]

CDN_PREFIX = "/lfs"
CACHE_PREFIX = "/api/resolve-cache"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TEXT_TYPES = ("application/json", "application/xml", "application/x-ndjson", "application/toml",
               "application/yaml", "application/javascript")
_TEXT_SUFFIXES = (".json", ".jsonl", ".txt", ".csv", ".tsv", ".md", ".yaml", ".yml", ".toml", ".xml", ".html")
GZIP_CACHE_BYTES = 32 * 1024 * 1024


def _is_text(rel: str) -> bool:
    ctype = mimetypes.guess_type(rel)[0] or ""
    return ctype.startswith("text/") or ctype in _TEXT_TYPES or rel.lower().endswith(_TEXT_SUFFIXES)


def _accepts_gzip(value: str | None) -> bool:
    for item in (value or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.", "0.0", "0.00", "0.000"))
    return False


class _GzipCache:
    """Compressed bodies by (path, size, mtime), bounded in bytes (least recently used go first)."""

    def __init__(self, limit: int = GZIP_CACHE_BYTES):
        self.limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._bytes = 0

    def get(self, e: FileEntry, fd: int) -> bytes:
        key = (e.abspath, e.size, e.mtime_ns)
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
                return body
        data = os.pread(fd, e.size, 0)
        if len(data) != e.size:
            raise ConnectionAbortedError("file shrank while serving")
        body = gzip.compress(data, compresslevel=6, mtime=0)
        with self._lock:
            if key not in self._items and len(body) <= self.limit:
                self._items[key] = body
                self._bytes += len(body)
                while self._bytes > self.limit:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= len(old)
        return body


class FileAnswers:
    """The file-serving half of :class:`~app.hub.routes.HubRoutes`."""

    def __init__(self, routes: "HubRoutes"):
        self.routes = routes
        self.hub = routes.hub
        self._gzip = _GzipCache()

    # ---- helpers -------------------------------------------------------------------------

    def _open(self, repo: Repo, snap: Snapshot, rel: str | None) -> tuple[Snapshot, FileEntry, int]:
        """Snapshot, entry and an open fd of ``rel``; 404 EntryNotFound when it is not a file of
        the repo, or leads outside the repo's folder (a link, at any level)."""
        real_root = os.path.join(os.path.realpath(self.hub.root), repo.repo_type, *repo.repo_id.split("/"))
        for attempt in (0, 1):
            entry = snap.files.get(rel) if rel else None
            if entry is None and rel and attempt == 0:
                snap = repo.snapshot(recheck=True)  # maybe just created
                entry = snap.files.get(rel)
            if entry is None:
                break
            real = os.path.realpath(entry.abspath)
            if not real.startswith(real_root + os.sep):
                break  # a link out of the root, at any level: never served
            try:
                fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                fd = -1
            if fd >= 0:
                st = os.fstat(fd)
                if (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns) and stat.S_ISREG(st.st_mode):
                    return snap, entry, fd
                os.close(fd)
            if attempt == 1:
                break
            snap = repo.snapshot(full=True)  # changed under us: new content, new commit
        raise HubError(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", snap.sha)])

    def _etag(self, rel: str, e: FileEntry, compute: bool = True) -> str | None:
        if self.hub.opaque_etags:
            return opaque_etag(self.hub.secret, e.abspath, e.size, e.mtime_ns)
        return self.hub.hashes.etag(rel, e, compute=compute)

    def _draw(self, h: HubRequestHandler, head: bool, rel: str) -> Fault | None:
        return self.routes.fault(h, "head" if head else "get", rel)

    @staticmethod
    def _file_headers(rel: str, e: FileEntry) -> list[tuple[str, str]]:
        return [
            ("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
            ("Last-Modified", email.utils.formatdate(e.mtime_ns / 1e9, usegmt=True)),
        ]

    def _quota(self, h: HubRequestHandler) -> None:
        quota = self.hub.quota
        if quota is None:
            return
        key = bearer_token(h.headers.get("Authorization")) or f"ip:{h.client_address[0]}"
        allowed, headers = quota.take(key)
        h.extra_headers += headers
        if not allowed:
            raise HubError(429, "You have been rate-limited: too many resolve requests. Retry later.")

    # ---- resolve -------------------------------------------------------------------------

    def resolve(self, h: HubRequestHandler, head: bool, repo_type: str, owner: str, name: str, rev: str,
                path: str) -> None:
        h.note_kind("resolve", path)
        self._quota(h)
        redirect = not self.hub.direct
        fault = NO_FAULT
        if head or not redirect:
            fault = self._draw(h, head, path)
            if fault is None:
                return
        elif (self.hub.dice is not None and self.hub.dice.config.latency_ms
              and self.hub.dice.in_scope("get", path)):
            # a redirect is a round trip like any other: it pays the latency (its faults are drawn
            # where it leads)
            time.sleep(self.hub.dice.config.latency_ms / 1000.0)
        repo, _, snap = self.routes.open_repo(h, repo_type, owner, name, files=True, full=False)
        self.routes.check_rev(repo, snap, rev)
        snap, entry, fd = self._open(repo, snap, split_repo_path(path))
        rel = split_repo_path(path)
        assert rel
        try:
            if not redirect:
                headers = self._file_headers(rel, entry) + [("X-Repo-Commit", snap.sha)]
                etag = self._etag(rel, entry, compute=head or h.headers.get("Range") is None)
                if etag:
                    headers.append(("ETag", f'"{etag}"'))
                self._send_file(h, head, rel, entry.size, fd, fault, headers, multi=True)
                return
        finally:
            os.close(fd)
        if is_lfs(rel, entry.size):
            self._redirect_cdn(h, head, repo, snap, rel, entry)
        else:
            self._redirect_cache(h, head, repo, snap, rel, entry, rev)

    def _redirect_cdn(self, h: HubRequestHandler, head: bool, repo: Repo, snap: Snapshot, rel: str,
                      entry: FileEntry) -> None:
        sha256 = self.hub.hashes.sha256(entry)
        assert sha256 is not None
        cdn_path = f"{CDN_PREFIX}/{sha256}/{repo.repo_type}/{repo.repo_id}/{rel}"
        location = self.hub.signer.url(self.hub.cdn_url, cdn_path)
        etag = self._etag(rel, entry) if self.hub.opaque_etags else sha256
        body = f"Found. Redirecting to {location}".encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Location", location),
            ("X-Repo-Commit", snap.sha),
            ("X-Linked-Size", str(entry.size)),
            ("X-Linked-Etag", f'"{etag}"'),
            ("ETag", f'"{etag}"'),
            ("Accept-Ranges", "bytes"),
        ]
        h.send_bytes(302, headers, body, head=head)

    def _redirect_cache(self, h: HubRequestHandler, head: bool, repo: Repo, snap: Snapshot, rel: str,
                        entry: FileEntry, rev: str) -> None:
        etag = self._etag(rel, entry)
        resolve_path = f"/{repo.repo_type}/{repo.repo_id}/resolve/{rev}/{rel}"
        query = urlencode({resolve_path: "", "etag": f'"{etag}"'})
        location = f"{CACHE_PREFIX}/{repo.repo_type}/{repo.repo_id}/{snap.sha}/{quote(rel, safe='/')}?{query}"
        body = f"Temporary Redirect. Redirecting to {location}".encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Location", location),
            ("X-Repo-Commit", snap.sha),
            ("ETag", f'"{etag}"'),
        ]
        h.send_bytes(307, headers, body, head=head)

    # ---- /api/resolve-cache/{type}/{owner}/{name}/{commit}/{path} ------------------------

    def resolve_cache(self, h: HubRequestHandler, head: bool, parts: list[str]) -> None:
        """``parts`` are the unquoted path segments after ``resolve-cache``."""
        if len(parts) < 5 or parts[0] not in REPO_TYPES:
            h.note_kind("cache")
            raise HubError(404, "Not found")
        repo_type, owner, name, commit = parts[:4]
        path = "/".join(parts[4:])
        h.note_kind("cache", path)
        fault = NO_FAULT if head else self._draw(h, False, path)
        if fault is None:
            return
        repo, _, snap = self.routes.open_repo(h, repo_type, owner, name, files=True, full=False)
        if commit.lower() != snap.sha:
            raise HubError(404, f"Invalid rev id: {commit}", "RevisionNotFound")
        snap, entry, fd = self._open(repo, snap, split_repo_path(path))
        rel = split_repo_path(path)
        assert rel
        try:
            headers = self._file_headers(rel, entry) + [("X-Repo-Commit", snap.sha)]
            etag = self._etag(rel, entry)
            if etag:
                headers.append(("ETag", f'"{etag}"'))
            if (_is_text(rel) and h.headers.get("Range") is None and _accepts_gzip(h.headers.get("Accept-Encoding"))
                    and not is_lfs(rel, entry.size)):
                body = self._gzip.get(entry, fd)
                headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
                h.send_bytes(200, headers, body, head=head, fault=fault)
                return
            self._send_file(h, head, rel, entry.size, fd, fault, headers, multi=True)
        finally:
            os.close(fd)

    # ---- the CDN port: /lfs/{sha256}/{type}/{owner}/{name}/{path}?<signed query> ---------

    def cdn(self, h: HubRequestHandler, head: bool, parts: list[str], params: Mapping[str, list[str]]) -> None:
        """``parts`` are the unquoted path segments after ``lfs``."""
        h.note_kind("cdn", "/".join(parts[4:]))
        if h.headers.get("Authorization") is not None:
            raise HubError(403, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                                "Signature query string parameter or the Authorization header should be specified")
        if len(parts) < 5 or not _HEX64.fullmatch(parts[0]) or parts[1] not in REPO_TYPES:
            raise HubError(404, "NoSuchKey")
        sha256, repo_type, owner, name = parts[:4]
        path = "/".join(parts[4:])
        try:
            self.hub.signer.check(f"{CDN_PREFIX}/" + "/".join(parts), params)
        except SignatureProblem as e:
            raise HubError(403, str(e)) from None
        fault = self._draw(h, head, path) if not head else NO_FAULT
        if fault is None:
            return
        repo = self.hub.store.get(repo_type, owner, name)
        if repo is None:
            raise HubError(404, "NoSuchKey")
        snap, entry, fd = self._open(repo, repo.snapshot(), split_repo_path(path))
        rel = split_repo_path(path)
        assert rel
        try:
            if self.hub.hashes.sha256(entry) != sha256:
                raise HubError(404, "NoSuchKey")  # the blob this URL was signed for is gone
            headers = self._file_headers(rel, entry)
            etag = self._etag(rel, entry)
            headers.append(("ETag", f'"{etag}"'))
            self._send_file(h, head, rel, entry.size, fd, fault, headers, multi=False)
        finally:
            os.close(fd)

    # ---- bodies --------------------------------------------------------------------------

    @staticmethod
    def _send_file(h: HubRequestHandler, head: bool, rel: str, size: int, fd: int, fault: Fault,
                   headers: list[tuple[str, str]], multi: bool) -> None:
        """200, 206 (one range, or ``multipart/byteranges`` when ``multi``) or 416."""
        ranges = parse_range(h.headers.get("Range"), size)
        if ranges == "unsatisfiable":
            raise HubError(416, "Requested range not satisfiable", headers=[("Content-Range", f"bytes */{size}")])
        if ranges and len(ranges) > 1 and not multi:
            ranges = None  # the CDN honours a single range; several get the whole file
        if not ranges:
            status, segments = 200, [(0, size)]
        elif len(ranges) == 1:
            a, b = ranges[0]
            status, segments = 206, [(a, b - a + 1)]
            headers.append(("Content-Range", f"bytes {a}-{b}/{size}"))
        else:
            ctype = headers[0][1]
            boundary = "hubrange" + hashlib.sha1(repr(ranges).encode()).hexdigest()[:16]
            segments = []
            for a, b in ranges:
                segments.append(
                    f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n".encode()
                )
                segments.append((a, b - a + 1))
            segments.append(f"\r\n--{boundary}--\r\n".encode())
            status = 206
            headers[0] = ("Content-Type", f"multipart/byteranges; boundary={boundary}")
        length = sum(len(s) if isinstance(s, bytes) else s[1] for s in segments)
        headers.append(("Content-Length", str(length)))
        if head:
            h.send_headers_only(status, headers)
            return
        h.send_segments(status, headers, segments, fd, fault)
