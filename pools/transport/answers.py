"""What a file GET's answer means: the engine's error for a status, and whether an ETag checks out.

Only headers are read (bodies are untrusted and HEAD has none): ``X-Error-Code`` as huggingface_hub
reads it, then the status. A plain 404 (no ``X-Error-Code``: a mirror, a static file server) is
told apart from the Hub's "not in the repository".
"""

from __future__ import annotations

import hashlib
import re

from pools.errors import (
    HubUnreachableError,
    PlainNotFound,
    error_for_status,
)
from pools.transport import http


def raise_for(reply: http.Reply, what: str) -> None:
    """Raise the engine's error for a non-2xx answer of a file GET (headers only: bodies are untrusted)."""
    code = reply.headers.get("X-Error-Code") or reply.first_headers.get("X-Error-Code")
    err = error_for_status(reply.status, what, code)
    if err is not None:
        raise err
    if reply.status == 404:
        raise PlainNotFound(f"{what}: not found on this server (HTTP 404 without an error code)")


def _raise_for_api(reply: http.Reply, repo_id: str, revision: str) -> None:
    """A repo API call's error: as a file GET's, but a 401 without a code means the repo is private
    or missing, and a plain 404 means the endpoint is no Hub."""
    code = reply.headers.get("X-Error-Code")
    what = f"{repo_id}@{revision}"
    if code is None and reply.status == 401 and \
            reply.headers.get("X-Error-Message") != "Invalid credentials in Authorization header":
        code = "RepoNotFound"
    if code is None and reply.status == 404:
        raise HubUnreachableError(f"the Hub answered HTTP 404 for {what} (is this a Hub endpoint?)")
    err = error_for_status(reply.status, what, code)
    if err is not None:
        raise err


HEX40 = re.compile(r"[0-9a-f]{40}")  # a commit, or a git blob's sha1
HEX64 = re.compile(r"[0-9a-f]{64}")  # a sha256


def is_commit(sha) -> bool:
    return isinstance(sha, str) and HEX40.fullmatch(sha) is not None


_LENGTH = re.compile(r"[0-9]{1,19}")


def content_length(headers) -> int | None:
    """A reply's Content-Length when it is a plain number a file can have; None otherwise (a
    server's header: "²" passes str.isdigit, 5,000 digits pass it and int() refuses them)."""
    text = (headers.get("Content-Length") or "").strip()
    return int(text) if _LENGTH.fullmatch(text) else None


def content_tag(headers) -> str:
    tag = headers.get("X-Linked-Etag") or headers.get("ETag") or ""
    return tag.strip().removeprefix("W/").strip('"').lower()


def matches_tag(tag: str, data: bytes) -> bool:
    """False when the tag is a content hash (git blob sha1, or sha256) that ``data`` does not match."""
    if HEX64.fullmatch(tag):
        return hashlib.sha256(data).hexdigest() == tag
    if HEX40.fullmatch(tag):
        blob = hashlib.sha1(b"blob %d\0" % len(data))
        blob.update(data)  # not header + data: that copies a 1.3 MB index once more
        return blob.hexdigest() == tag
    return True  # no tag we can check: the index parser is the last line of defence
