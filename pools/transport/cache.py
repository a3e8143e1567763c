"""The local cache of small repo files (archive indexes), keyed by endpoint, repo and commit.

The default endpoint (``https://huggingface.co``) keeps the huggingface_hub layout under
``HF_HUB_CACHE`` (``datasets--owner--name/snapshots/<commit>/<path>``, absence under
``.no_exist/<commit>/<path>``), so ``hf_hub_download`` and this engine share what they fetched.
Any other endpoint gets a folder of its own (``HF_HUB_CACHE/cheesechaser-endpoints/<host>_<port>-<hash>/``,
same layout inside): what a mirror or a hostile server sent under a real commit sha is never read
back for another endpoint. Only 40-hex commit shas name folders, and every write is checked to
stay inside the repo's folder.

Writes can be handed to a background thread (:func:`write_later`): the job does not wait on the
disk, and a look-up sees a pending write as cached.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import re
import threading
from urllib.parse import urlsplit

from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name

from pools.errors import HubUnreachableError
from pools.files import write_atomic
from pools.transport.answers import is_commit

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_TYPE = "dataset"
NOT_FOUND = object()


def endpoint_root(endpoint: str) -> str:
    """The cache folder holding what ``endpoint`` sent."""
    endpoint = endpoint.rstrip("/")
    if endpoint == DEFAULT_ENDPOINT:
        return constants.HF_HUB_CACHE
    parts = urlsplit(endpoint)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", parts.hostname or "host")[:60]
    digest = hashlib.sha256(endpoint.encode("utf-8", "replace")).hexdigest()[:12]
    return os.path.join(constants.HF_HUB_CACHE, "cheesechaser-endpoints",
                        f"{host}_{parts.port or ''}-{digest}")


def repo_root(endpoint: str, repo_id: str) -> str:
    return os.path.join(endpoint_root(endpoint), repo_folder_name(repo_id=repo_id, repo_type=REPO_TYPE))


def _paths(endpoint: str, repo_id: str, path: str, sha: str) -> tuple[str, str]:
    root = repo_root(endpoint, repo_id)
    rel = path.split("/")
    return (os.path.join(root, "snapshots", sha, *rel), os.path.join(root, ".no_exist", sha, *rel))


_pending: dict[str, bytes] = {}
_pending_lock = threading.Lock()
_queue: "queue.Queue[tuple[str, str, bytes] | None]" = queue.Queue()
_writer: threading.Thread | None = None


def lookup(endpoint: str, repo_id: str, path: str, sha: str) -> str | object | None:
    """The cached file's path, ``NOT_FOUND`` when its absence is cached, else None."""
    if not is_commit(sha):
        return None
    found, absent = _paths(endpoint, repo_id, path, sha)
    with _pending_lock:
        if found in _pending:
            return found
        if absent in _pending:
            return NOT_FOUND
    if os.path.isfile(absent):
        return NOT_FOUND
    return found if os.path.isfile(found) else None


def read(endpoint: str, repo_id: str, path: str, sha: str) -> bytes | object | None:
    """The cached bytes, ``NOT_FOUND``, or None (not cached)."""
    if not is_commit(sha):
        return None
    found, absent = _paths(endpoint, repo_id, path, sha)
    with _pending_lock:
        if found in _pending:
            return _pending[found]
        if absent in _pending:
            return NOT_FOUND
    try:
        with open(found, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        return None
    return NOT_FOUND if os.path.isfile(absent) else None


def _target(endpoint: str, repo_id: str, path: str, sha: str, absent: bool) -> str:
    if not is_commit(sha):  # the sha names a folder: anything but 40 hex digits could lead outside it
        raise HubUnreachableError("refusing to cache under a revision that is not a commit sha")
    found, missing = _paths(endpoint, repo_id, path, sha)
    target = missing if absent else found
    if not _inside(os.path.dirname(target), repo_root(endpoint, repo_id)):
        raise HubUnreachableError(f"refusing to cache {path!r}: it leads outside the cache folder")
    return target


_INSIDE: dict[tuple[str, str], bool] = {}  # (folder, root) -> verdict: a job writes 1,000 indexes to a few folders


def _inside(folder: str, root: str) -> bool:
    """True when ``folder`` (symlinks resolved) is inside ``root``'s. The file itself needs no check:
    it is replaced atomically (``os.replace`` swaps a symlink there, never writes through it)."""
    key = (folder, root)
    verdict = _INSIDE.get(key)
    if verdict is None:
        real = os.path.realpath(root)
        verdict = os.path.commonpath([os.path.realpath(folder), real]) == real
        if len(_INSIDE) > 4096:
            _INSIDE.clear()
        _INSIDE[key] = verdict
    return verdict


def write(endpoint: str, repo_id: str, path: str, sha: str, data: bytes, *, absent: bool = False) -> str:
    """Write now; the cached file's path."""
    return write_atomic(_target(endpoint, repo_id, path, sha, absent), data)


def write_later(endpoint: str, repo_id: str, path: str, sha: str, data: bytes, *, absent: bool = False) -> None:
    """Write on the background writer; look-ups see it as cached meanwhile."""
    global _writer
    target = _target(endpoint, repo_id, path, sha, absent)
    with _pending_lock:
        _pending[target] = data
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_write_loop, name="cheesechaser-cache-writer", daemon=True)
            _writer.start()
    _queue.put((target, path, data))


def _write_loop() -> None:
    while True:
        item = _queue.get()
        try:
            if item is None:
                continue
            target, _, data = item
            try:
                write_atomic(target, data)
            except OSError:
                pass  # a cache that cannot be written costs a request next time, nothing else
            finally:
                with _pending_lock:
                    if _pending.get(target) is data:
                        del _pending[target]
        finally:
            _queue.task_done()


def flush() -> None:
    """Wait until every write handed to the background writer is on disk."""
    if _writer is not None and _writer.is_alive():
        _queue.join()


atexit.register(flush)
