"""A whole (big) repo file into the cache, resumed where an attempt or an earlier run stopped.

A metadata table is GBs: a connection dropped at 90 % must not cost the 90 %. The bytes fetched so
far stay in ``<target>.part`` (locked while a process writes it); the next attempt, or the next
run, asks for the rest with ``Range: bytes=N-``. The URL names a commit, so the file cannot have
changed in between; the whole is still checked against the Hub's sha256 (or git blob sha1) before
it is renamed into place, and a file that fails the check, or a server that sends too much, leaves
nothing behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Callable

from pools.errors import TooLargeError, TransferError, TransientError
from pools.files import unlink_quiet
from pools.transport import cache, http
from pools.transport.answers import HEX40, HEX64, content_length, content_tag, raise_for
from pools.transport.retry import with_retries

if TYPE_CHECKING:
    from pools.transport.client import HubClient

CHUNK = 1 << 20
PART_DAYS = 7  # a part nobody resumed for this long (another commit's, an abandoned fetch) is removed
_CONTENT_RANGE = re.compile(r"bytes (\d{1,19})-(\d{1,19})/(\d{1,19})")  # a server's numbers: bounded


def download_whole(client: HubClient, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None,
                   on_progress: Callable[[int, int | None], None] | None = None,
                   max_bytes: int | None = None) -> str:
    """``HubClient.download_file``: the local path of the repo file, fetched (and resumed) if needed."""
    what = f"{repo_id}/{path}"
    url = client.file_url(repo_id, path, sha)
    target = cache._target(client.endpoint, repo_id, path, sha, absent=False)
    part = target + ".part"
    seen: dict[str, str | None] = {"digest": None}
    sweep_parts(cache.repo_root(client.endpoint, repo_id), keep=part)

    def attempt() -> str:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                         0o644)
        except OSError as err:  # a link at its name (ELOOP), a full or read-only cache: no retry fixes it
            raise TransferError(f"cannot write the cache file {part}: {err.strerror or err}") from None
        with os.fdopen(fd, "rb+") as f:  # never through a link planted at its name
            fcntl.flock(f, fcntl.LOCK_EX)  # another process fetching the same file: wait for it
            if os.path.exists(target):
                return target  # it finished meanwhile
            return _fetch(client, f, url, what, part, target, seen, cancel, on_progress, max_bytes)

    return with_retries(attempt, what, client.policy, cancel)


def _fetch(client: HubClient, f, url: str, what: str, part: str, target: str, seen: dict,
           cancel, on_progress, max_bytes: int | None) -> str:
    have = f.seek(0, os.SEEK_END)
    headers = client.headers()
    headers["Accept-Encoding"] = "identity"
    if have:
        headers["Range"] = f"bytes={have}-"
    with http.request("GET", url, endpoint=client.endpoint, headers=headers, policy=client.policy, what=what,
                      cancel=cancel, budget=client.budget) as reply:
        if reply.status == 416 and have:  # the part is the whole file, or more: start again
            _restart(f)
            raise TransientError(f"{what}: the part kept from before did not fit; fetching it again")
        raise_for(reply, what)
        if reply.status == 206 and have:
            found = _CONTENT_RANGE.fullmatch(reply.headers.get("Content-Range", "").strip())
            if found is None or int(found[1]) != have:
                _restart(f)
                raise TransientError(f"unexpected Content-Range for {what}")
            total: int | None = int(found[3])
        elif reply.status == 200:
            if have:
                _restart(f)  # the server sends the whole file: from the start
            have = 0
            total = content_length(reply.headers)
        else:
            raise TransientError(f"unexpected HTTP {reply.status} for {what}")
        if max_bytes is not None and total is not None and total > max_bytes:
            _discard(f, part)
            raise TooLargeError(f"{what} is {total:,} bytes, more than the {max_bytes:,} allowed")
        tag = content_tag(reply.first_headers)
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(b"blob %d\0" % total) if total is not None else None
        if have:
            _hash_from_start(f, have, sha256, sha1)  # the bytes an earlier attempt fetched, read once
        done = have
        for chunk in reply.chunks(CHUNK):
            f.write(chunk)
            sha256.update(chunk)
            if sha1 is not None:
                sha1.update(chunk)
            done += len(chunk)
            if max_bytes is not None and done > max_bytes:  # a server that did not say, or lied
                _discard(f, part)
                raise TooLargeError(f"{what} goes on past the {max_bytes:,} bytes allowed")
            if on_progress is not None:
                on_progress(done, total)
        f.flush()
        if total is not None and done != total:
            raise TransientError(f"short body for {what}: {done:,} of {total:,} bytes (the rest is asked for next)")
    if sha1 is None and HEX40.fullmatch(tag):  # no length was given: git's blob hash needs it first
        sha1 = hashlib.sha1(b"blob %d\0" % done)
        _hash_from_start(f, done, sha1)
    digest = sha256.hexdigest()
    ok = digest == tag if HEX64.fullmatch(tag) else sha1.hexdigest() == tag if HEX40.fullmatch(tag) else True
    try:
        client._check_content(what, ok, digest, seen)
    except TransientError:
        _discard(f, part)  # altered bytes: none of them is kept
        raise
    os.fsync(f.fileno())
    os.replace(part, target)
    return target


def sweep_parts(root: str, keep: str, now: float | None = None) -> None:
    """Remove the ``.part`` files under ``root`` (one repo's cache) that nobody touched for
    :data:`PART_DAYS` and no process holds (a fetch holds its part's lock); never ``keep``, never a
    link, never anything but a ``.part``."""
    cutoff = (time.time() if now is None else now) - PART_DAYS * 86400
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not name.endswith(".part") or path == keep:
                continue
            try:
                fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            try:
                if os.fstat(fd).st_mtime >= cutoff:
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.remove(path)
            except OSError:
                continue  # being fetched, or gone meanwhile
            finally:
                os.close(fd)


def _restart(f) -> None:
    f.seek(0)
    f.truncate()


def _discard(f, part: str) -> None:
    """Bytes not worth keeping (too many, or altered): gone, the part file with them."""
    _restart(f)
    unlink_quiet(part)


def _hash_from_start(f, size: int, *hashes) -> None:
    """Feed the part's first ``size`` bytes to ``hashes`` (None ones skipped); the file is left at
    ``size``, where the next bytes are written."""
    hashes = tuple(h for h in hashes if h is not None)
    f.seek(0)
    left = size
    while left:
        block = f.read(min(CHUNK, left))
        if not block:
            break
        for h in hashes:
            h.update(block)
        left -= len(block)
    f.seek(size)
