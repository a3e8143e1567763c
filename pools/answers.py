"""What a file GET's answer means: the engine's error for a status, and whether an ETag checks out.

Only headers are read (bodies are untrusted and HEAD has none): ``X-Error-Code`` as huggingface_hub
reads it, then the status. A plain 404 (no ``X-Error-Code``: a mirror, a static file server) is
told apart from the Hub's "not in the repository".
"""

from __future__ import annotations

import hashlib
import re

from huggingface_hub.errors import EntryNotFoundError

from . import http
from .errors import (
    AccessDeniedError,
    HubUnreachableError,
    IndexFormatError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransferError,
)
from .http import RateLimited, TransientError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class FileMissing(EntryNotFoundError):
    """The Hub says the file is not in the repo at that commit (``X-Error-Code: EntryNotFound``)."""


class PlainNotFound(TransferError):
    """A 404 without ``X-Error-Code`` (a mirror, a static file server): missing here, not an I/O error."""


class RangeIgnoredError(TransferError):
    """The server answered a ranged GET at a large offset with the whole file."""


class IndexTooLargeError(IndexFormatError):
    """An index past the size cap (after decoding): that archive fails, nothing is cached."""


def raise_for(reply: http.Reply, what: str) -> None:
    """Raise the engine's error for a non-2xx answer of a file GET (headers only: bodies are untrusted)."""
    status = reply.status
    if status < 400:
        return
    code = reply.headers.get("X-Error-Code") or reply.first_headers.get("X-Error-Code")
    if code == "RepoNotFound":
        if status == 401:
            raise AccessDeniedError(f"access denied: {what} is private or does not exist; give a token that can read it")
        raise RepoNotFoundError(f"repository not found: {what} (or private, and the token has no access)")
    if code == "GatedRepo":
        raise AccessDeniedError(f"access denied: {what} is gated; accept its terms and use a token of that account")
    if code == "RevisionNotFound":
        raise RevisionNotFoundError(f"revision not found for {what}")
    if code == "EntryNotFound":
        raise FileMissing(f"{what} is not in the repository")
    if status in (401, 403):
        raise AccessDeniedError(f"access denied to {what}: the token is invalid or lacks permission (HTTP {status})")
    if status == 429:
        raise RateLimited(f"HTTP 429 (rate limited) for {what}", None)
    if status in RETRY_STATUS:
        raise TransientError(f"HTTP {status} from the Hub for {what}")
    if status == 404:
        raise PlainNotFound(f"{what}: not found on this server (HTTP 404 without an error code)")
    raise HubUnreachableError(f"the Hub answered HTTP {status} for {what}")


def _raise_for_api(reply: http.Reply, repo_id: str, revision: str) -> None:
    """A repo API call's error, in the words translate() gives huggingface_hub's errors."""
    code = reply.headers.get("X-Error-Code")
    status = reply.status
    if code == "RevisionNotFound":
        raise RevisionNotFoundError(f"revision not found in {repo_id}@{revision}")
    if code == "RepoNotFound" or (status == 401 and code is None and
                                  reply.headers.get("X-Error-Message") != "Invalid credentials in Authorization header"):
        if status == 401:
            raise AccessDeniedError(f"access denied: {repo_id}@{revision} is private or does not exist; "
                                    f"give a token that can read it")
        raise RepoNotFoundError(f"repository not found: {repo_id}@{revision} (or private, and the token has no access)")
    if status == 404:
        raise HubUnreachableError(f"the Hub answered HTTP 404 for {repo_id}@{revision} (is this a Hub endpoint?)")
    raise_for(reply, f"{repo_id}@{revision}")


_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def content_tag(headers) -> str:
    tag = headers.get("X-Linked-Etag") or headers.get("ETag") or ""
    return tag.strip().removeprefix("W/").strip('"').lower()


def matches_tag(tag: str, data: bytes) -> bool:
    """False when the tag is a content hash (git blob sha1, or sha256) that ``data`` does not match."""
    if _HEX64.fullmatch(tag):
        return hashlib.sha256(data).hexdigest() == tag
    if _HEX40.fullmatch(tag):
        blob = hashlib.sha1(b"blob %d\0" % len(data))
        blob.update(data)  # not header + data: that copies a 1.3 MB index once more
        return blob.hexdigest() == tag
    return True  # no tag we can check: the index parser is the last line of defence
