"""Talking to the Hub: revisions, indexes, big files and ranged GETs, with retries and a budget.

Two paths:

* API calls (the revision's commit, the tree listing) go through huggingface_hub's shared session
  and error classes, as every Hub client does;
* file GETs (indexes, ranged GETs of archives, big files) go through :mod:`pools.http` on urllib3:
  our own redirects (the token stays on the endpoint's origin), deadlines and stall rule, the
  resolver budget (:mod:`pools.budget`), signed-URL reuse (:mod:`pools.resolve`), and the cache
  keyed by endpoint (:mod:`pools.cache`).

Failures come out in one vocabulary (:func:`translate`): a ``PoolError`` (missing, access denied,
unreachable: final), a :class:`TransientError` (worth another try; :class:`RateLimited` is waited
out without counting as an attempt), or :class:`Cancelled`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlsplit

import huggingface_hub
from huggingface_hub import constants, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError as HfRevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from . import cache, http
from .budget import ResolverBudget, budget_for, format_wait
from .errors import (
    AccessDeniedError,
    HubUnreachableError,
    IndexFormatError,
    PoolError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransferError,
)
from .files import unlink_quiet
from .http import Cancelled, RateLimited, RedirectError, TransientError, origin_of
from .resolve import SignedUrl, SignedUrls, StaleIndexError, check_linked, expiry_of, linked_of

try:  # huggingface_hub >= 2 ships its HTTP client as `httpx2`
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx  # type: ignore[no-redef]

__all__ = [
    "Cancelled", "TransientError", "RateLimited", "RetryPolicy", "HubClient", "translate", "with_retries",
    "NOT_FOUND", "FileMissing", "PlainNotFound", "RangeIgnoredError", "IndexTooLargeError",
    "RedirectError", "StaleIndexError", "MAX_INDEX_BYTES",
]

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REPO_TYPE = "dataset"
NOT_FOUND = cache.NOT_FOUND
MAX_INDEX_BYTES = 64 * 1024 * 1024  # after decoding; a real index of a 15 GB archive is a few MB
RANGE_SKIP_LIMIT = 1024 * 1024  # a server that ignores Range: skip at most this much to reach our bytes
MAX_TREE_PAGES = 10_000
log = logging.getLogger("pools.transport")


class FileMissing(EntryNotFoundError):
    """The Hub says the file is not in the repo at that commit (``X-Error-Code: EntryNotFound``)."""


class PlainNotFound(TransferError):
    """A 404 without ``X-Error-Code`` (a mirror, a static file server): missing here, not an I/O error."""


class RangeIgnoredError(TransferError):
    """The server answered a ranged GET at a large offset with the whole file."""


class IndexTooLargeError(IndexFormatError):
    """An index past the size cap (after decoding): that archive fails, nothing is cached."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try and how long to wait.

    ``attempts`` in all, waiting ``backoff * 2**n`` (capped, with jitter) between; a 429 is waited
    out (up to ``max_retry_after``) without counting as an attempt. Deadlines per request: connect
    within ``connect_timeout``, the answer's headers within ``first_byte_timeout``, then at least
    ``stall_bytes`` of body every ``stall_seconds`` (else the attempt fails "stalled");
    ``read_timeout`` is the socket's own backstop. ``max_redirects`` hops at most.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 3600.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    first_byte_timeout: float = 60.0
    stall_bytes: int = 1024
    stall_seconds: float = 60.0
    max_redirects: int = 5

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        base = min(self.backoff * (2 ** attempt), self.max_backoff)
        return base * (1.0 + self.jitter * random.random())

    @property
    def timeout(self) -> "httpx.Timeout":
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


def _walk(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate(err: BaseException, what: str) -> BaseException:
    """Map an exception from huggingface_hub / the HTTP clients to this engine's vocabulary.

    Returns a PoolError (final), a TransientError (worth retrying), or ``err`` itself.
    ``what`` names the repo or file in the one-line message; it never holds a token.
    """
    for e in _walk(err):
        if isinstance(e, (PoolError, TransientError, Cancelled, FileMissing)):
            return e
        if isinstance(e, GatedRepoError):
            return AccessDeniedError(f"access denied: {what} is gated; accept its terms and use a token of that account")
        if isinstance(e, RepositoryNotFoundError):
            if _status(e) == 401:
                return AccessDeniedError(f"access denied: {what} is private or does not exist; give a token that can read it")
            return RepoNotFoundError(f"repository not found: {what} (or private, and the token has no access)")
        if isinstance(e, HfRevisionNotFoundError):
            return RevisionNotFoundError(f"revision not found in {what}")
        if isinstance(e, RemoteEntryNotFoundError):
            return e
        if isinstance(e, HfHubHTTPError):
            status = _status(e)
            if status in (401, 403):
                return AccessDeniedError(f"access denied to {what}: the token is invalid or lacks permission (HTTP {status})")
            if status == 429:
                return RateLimited(f"HTTP 429 (rate limited) for {what}", _retry_after(e))
            if status in RETRY_STATUS:
                return TransientError(f"HTTP {status} from the Hub for {what}")
            if status == 404:
                return e
            return HubUnreachableError(f"the Hub answered HTTP {status} for {what}")
        if isinstance(e, httpx.TooManyRedirects):
            return HubUnreachableError(f"the Hub's redirects for {what} loop or go on too long")
        if isinstance(e, httpx.UnsupportedProtocol):
            return HubUnreachableError(f"the Hub redirects {what} to a target that is not http(s)")
        if isinstance(e, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
                          ConnectionError, TimeoutError)):
            return TransientError(f"network error for {what}: {e.__class__.__name__}")
        if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):  # an API answer garbled in flight
            return TransientError(f"the Hub's answer for {what} is not valid JSON")
        if isinstance(e, httpx.DecodingError):  # a gzip body (the Hub gzips text) garbled in flight
            return TransientError(f"the Hub's compressed answer for {what} arrived damaged")
    if isinstance(err, LocalEntryNotFoundError):
        return TransientError(f"the Hub could not be reached for {what}")
    return err


def wait_visibly(seconds: float, cancel: threading.Event | None,
                 on_wait: Callable[[float, str], None] | None, reason: Callable[[float], str]) -> None:
    """Wait ``seconds`` (a cancel ends it at once), telling ``on_wait`` what is left every second."""
    clock = threading.Event() if cancel is None else cancel
    left = seconds
    end = time.monotonic() + seconds
    while left > 0:
        if on_wait is not None:
            on_wait(left, reason(left))
        if clock.wait(min(left, 1.0)) and cancel is not None:
            raise Cancelled()
        left = end - time.monotonic()


def with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy, cancel: threading.Event | None = None,
                 on_retry: Callable[[int, str], None] | None = None,
                 on_wait: Callable[[float, str], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, retrying transient failures as ``policy`` says.

    A 429 (:class:`RateLimited`) is waited out and asked again, not counted as an attempt.
    After the last attempt a transient failure becomes :class:`HubUnreachableError`.
    ``on_wait(seconds, reason)`` hears of every wait: reasons start with "rate-limited" or "retrying".
    """
    last = ""
    attempt = 0
    limited = 0
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            return fn()
        except Cancelled:
            raise
        except Exception as err:  # noqa: BLE001 - translated below, re-raised if unknown
            mapped = translate(err, what)
            if not isinstance(mapped, TransientError):
                if mapped is err:
                    raise
                raise mapped from None
            if isinstance(mapped, RateLimited):
                wait = policy.delay(limited, mapped.retry_after)
                limited += 1
                wait_visibly(wait, cancel, on_wait,
                             lambda left: f"rate-limited: {what}, resumes in {format_wait(left)}")
                continue
            last = str(mapped)
            attempt += 1
            if attempt >= policy.attempts:
                break
            if on_retry is not None:
                on_retry(attempt, last)
            wait = policy.delay(attempt - 1, mapped.retry_after)
            wait_visibly(wait, cancel, on_wait,
                         lambda left: f"retrying (attempt {attempt + 1} of {policy.attempts}): {last}")
    raise HubUnreachableError(f"gave up after {policy.attempts} attempts: {last}")


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
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == tag
    return True  # no tag we can check: the index parser is the last line of defence


class HubClient:
    """One endpoint + token's worth of Hub access for a pool: commits, indexes, files, ranges."""

    def __init__(self, endpoint: str | None = None, token: str | None = None,
                 policy: RetryPolicy | None = None, *, max_index_bytes: int = MAX_INDEX_BYTES):
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._token = token
        self.policy = policy or RetryPolicy()
        self.max_index_bytes = max_index_bytes
        self.urls = SignedUrls()
        self.notes: list[str] = []  # things worth saying once (an endpoint with opaque ETags)
        self._opaque_etags = False
        self._budget: ResolverBudget | None = None

    @property
    def endpoint(self) -> str:
        return self._endpoint or constants.ENDPOINT.rstrip("/")

    @property
    def budget(self) -> ResolverBudget:
        if self._budget is None:
            auth = self.headers().get("authorization") or self.headers().get("Authorization")
            key = hashlib.sha256(auth.encode()).hexdigest() if auth else None  # never the token itself
            self._budget = budget_for(self.endpoint, key)
        return self._budget

    def api(self) -> huggingface_hub.HfApi:
        return huggingface_hub.HfApi(endpoint=self.endpoint, token=self._token)

    def headers(self) -> dict[str, str]:
        return build_hf_headers(token=self._token)

    def file_url(self, repo_id: str, path: str, sha: str) -> str:
        return hf_hub_url(repo_id, path, repo_type=REPO_TYPE, revision=sha, endpoint=self.endpoint)

    def _is_resolve(self, url: str) -> bool:
        """A ``/resolve/`` URL of the endpoint: what the resolver quota counts."""
        return origin_of(url) == origin_of(self.endpoint) and "/resolve/" in urlsplit(url).path

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.warning("%s", text)

    # -- API calls
    def resolve(self, repo_id: str, revision: str, cancel: threading.Event | None = None, *,
                on_wait: Callable[[float, str], None] | None = None) -> str:
        """The commit sha ``revision`` points at (one request, retried).

        The request ``HfApi.dataset_info`` makes, asking only for the sha (a big repo's full info
        lists every file), on the lean path: a cancel ends it at once (it is what every job waits
        for first), and without importing ``huggingface_hub.hf_api`` (~0.2 s of CPU).
        """
        url = f"{self.endpoint}/api/{REPO_TYPE}s/{repo_id}/revision/{quote(revision, safe='')}?expand=sha"
        what = f"{repo_id}@{revision}"

        def call() -> str:
            with http.request("GET", url, endpoint=self.endpoint, headers=self.headers(), policy=self.policy,
                              what=what, cancel=cancel, decode=True) as reply:
                if reply.status >= 400:
                    _raise_for_api(reply, repo_id, revision)
                if reply.status != 200:
                    raise TransientError(f"unexpected HTTP {reply.status} for {what}")
                body = reply.read_all(1 << 20)  # asked for the sha only: a few hundred bytes
            info = json.loads(body)
            sha = info.get("sha") if isinstance(info, dict) else None
            if not isinstance(sha, str) or not _HEX40.fullmatch(sha):
                # the sha names a cache folder: anything but 40 hex digits could lead outside it
                raise HubUnreachableError(f"the Hub gave no valid commit for {repo_id}@{revision}")
            return sha
        return with_retries(call, what, self.policy, cancel, on_wait=on_wait)

    def list_tree(self, repo_id: str, sha: str, path: str | None = None, recursive: bool = True) -> list:
        """The repo's tree at ``sha`` (``RepoFile``/``RepoFolder``), page after page.

        A next page is followed only on the endpoint's own origin: the token never goes elsewhere.
        """
        from huggingface_hub.hf_api import RepoFile, RepoFolder

        url = f"{self.endpoint}/api/{REPO_TYPE}s/{repo_id}/tree/{quote(sha, safe='')}"
        if path:
            url += "/" + quote(path.strip("/"))
        params: dict[str, Any] | None = {"recursive": "true" if recursive else "false", "expand": "false"}
        home = origin_of(self.endpoint)
        what = f"{repo_id} tree"
        out: list = []
        for _ in range(MAX_TREE_PAGES):
            def page(url=url, params=params):
                response = get_session().get(url, headers=self.headers(), params=params,
                                             timeout=self.policy.timeout)
                hf_raise_for_status(response)
                return response.json(), response.links.get("next", {}).get("url")
            entries, next_url = with_retries(page, what, self.policy)
            if not isinstance(entries, list):
                raise HubUnreachableError(f"the Hub's tree listing of {repo_id} is not a list")
            for info in entries:
                if isinstance(info, dict) and isinstance(info.get("path"), str) and "oid" in info:
                    try:
                        out.append(RepoFile(**info) if info.get("type") == "file" else RepoFolder(**info))
                    except (TypeError, KeyError, ValueError):
                        continue  # an entry we cannot read is not an archive we can fetch
            if not next_url:
                return out
            if origin_of(next_url) != home:
                raise HubUnreachableError(f"the tree listing of {repo_id} points its next page at another "
                                          f"server; not followed (the token stays with the endpoint)")
            url, params = next_url, None
        raise HubUnreachableError(f"the tree listing of {repo_id} has more than {MAX_TREE_PAGES} pages")

    # -- the cache
    def cached_path(self, repo_id: str, path: str, sha: str) -> str | None | object:
        """The cached copy of a file at a commit, ``NOT_FOUND`` when its absence is cached, else None."""
        return cache.lookup(self.endpoint, repo_id, path, sha)

    # -- small files: indexes
    def _get_small(self, repo_id: str, path: str, sha: str, cap: int, cancel, on_wait, on_resolve):
        """The bytes of a small file (decoded, at most ``cap``), FileMissing/PlainNotFound if absent."""
        what = f"{repo_id}/{path}"
        url = self.file_url(repo_id, path, sha)
        seen: dict[str, str | None] = {"digest": None}

        def call() -> bytes:
            headers = self.headers()
            headers["Accept-Encoding"] = "gzip"
            with http.request("GET", url, endpoint=self.endpoint, headers=headers, policy=self.policy,
                              what=what, cancel=cancel, decode=True, budget=self.budget,
                              on_wait=on_wait, on_resolve=on_resolve) as reply:
                raise_for(reply, what)
                if reply.status != 200:
                    raise TransientError(f"unexpected HTTP {reply.status} for {what}")
                length = reply.headers.get("Content-Length", "")
                if not reply.headers.get("Content-Encoding") and length.isdigit() and int(length) > cap:
                    raise IndexTooLargeError(f"index too large: {what} is {int(length)} bytes, over the "
                                             f"{cap}-byte cap")
                parts, got = [], 0
                for chunk in reply.chunks():
                    got += len(chunk)
                    if got > cap:
                        raise IndexTooLargeError(f"index too large: {what} is over the {cap}-byte cap")
                    parts.append(chunk)
                data = b"".join(parts)
                tag = content_tag(reply.first_headers)
            if not matches_tag(tag, data):
                digest = hashlib.sha256(data).hexdigest()
                if self._opaque_etags or seen["digest"] == digest:
                    # the same bytes twice: this server's ETags are not content hashes (a mirror);
                    # the parse and every file's sha256 are the real checks
                    self._opaque_etags = True
                    self._note(f"{self.endpoint} sends ETags that are not content hashes (a mirror or "
                               f"proxy?); files are checked against the index's sha256 only")
                    return data
                seen["digest"] = digest
                raise TransientError(f"{what} arrived altered (its bytes do not match the Hub's ETag)")
            return data
        return with_retries(call, what, self.policy, cancel, on_wait=on_wait)

    def fetch_index(self, repo_id: str, path: str, sha: str, parse: Callable[[bytes], T],
                    cancel: threading.Event | None = None,
                    on_wait: Callable[[float, str], None] | None = None, *,
                    on_resolve: Callable[[], None] | None = None, max_bytes: int | None = None,
                    cache_later: bool = True) -> T | None:
        """``parse(raw)`` of a repo file (from the cache when there), or None when the repo lacks it.

        Streamed with a cap after decoding (``max_bytes``, default ``max_index_bytes``): past it,
        :class:`IndexTooLargeError`. Written to the cache only after ``parse`` accepted it.
        """
        cap = max_bytes or self.max_index_bytes
        hit = cache.read(self.endpoint, repo_id, path, sha)
        if hit is NOT_FOUND:
            return None
        if isinstance(hit, bytes):
            return parse(hit)
        try:
            raw = self._get_small(repo_id, path, sha, cap, cancel, on_wait, on_resolve)
        except FileMissing:
            if cache.is_commit(sha):
                cache.write_later(self.endpoint, repo_id, path, sha, b"", absent=True)
            return None
        except PlainNotFound:
            return None  # a plain 404 may be a mirror's hiccup: missing now, never cached as absent
        result = parse(raw)
        if cache.is_commit(sha):
            if cache_later:
                cache.write_later(self.endpoint, repo_id, path, sha, raw)
            else:
                cache.write(self.endpoint, repo_id, path, sha, raw)
        return result

    def download(self, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None) -> str | None:
        """Local path of a small file at commit ``sha`` (cached), or None if the repo lacks it.

        Kept for callers that read the file themselves; prefer :meth:`fetch_index`, which caches
        only what the parser accepted.
        """
        found = self.cached_path(repo_id, path, sha)
        if found is NOT_FOUND:
            return None
        if isinstance(found, str):
            cache.flush()
            return found
        if self.fetch_index(repo_id, path, sha, lambda raw: raw, cancel, cache_later=False) is None:
            return None
        found = self.cached_path(repo_id, path, sha)
        return found if isinstance(found, str) else None

    # -- big files: into the cache, streamed
    def download_file(self, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None,
                      on_progress: Callable[[int, int | None], None] | None = None) -> str:
        """Stream a (big) repo file into the cache and return its local path; verified against the
        Hub's sha256 (or git blob sha1) when it gives one, renamed into place only when complete.
        Raises :class:`FileMissing` when the repo lacks it."""
        if not cache.is_commit(sha):
            raise ValueError(f"download_file needs a commit sha, not {sha!r}")
        found = self.cached_path(repo_id, path, sha)
        if isinstance(found, str):
            cache.flush()
            return found
        what = f"{repo_id}/{path}"
        url = self.file_url(repo_id, path, sha)
        target = cache._target(self.endpoint, repo_id, path, sha, absent=False)
        seen: dict[str, str | None] = {"digest": None}

        def call() -> str:
            headers = self.headers()
            headers["Accept-Encoding"] = "identity"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=os.path.dirname(target))
            try:
                with os.fdopen(fd, "wb") as f, http.request(
                        "GET", url, endpoint=self.endpoint, headers=headers, policy=self.policy, what=what,
                        cancel=cancel, budget=self.budget) as reply:
                    raise_for(reply, what)
                    if reply.status != 200:
                        raise TransientError(f"unexpected HTTP {reply.status} for {what}")
                    length = reply.headers.get("Content-Length", "")
                    total = int(length) if length.isdigit() else None
                    tag = content_tag(reply.first_headers)
                    sha256 = hashlib.sha256()
                    sha1 = hashlib.sha1(b"blob %d\0" % total) if total is not None else None
                    done = 0
                    for chunk in reply.chunks(1 << 20):
                        f.write(chunk)
                        sha256.update(chunk)
                        if sha1 is not None:
                            sha1.update(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
                    if total is not None and done != total:
                        raise TransientError(f"short body for {what}: {done} of {total} bytes")
                digest = sha256.hexdigest()
                ok = (digest == tag if _HEX64.fullmatch(tag) else
                      sha1 is not None and sha1.hexdigest() == tag if _HEX40.fullmatch(tag) else True)
                if not ok:
                    if not (self._opaque_etags or seen["digest"] == digest):
                        seen["digest"] = digest
                        raise TransientError(f"{what} arrived altered (its bytes do not match the Hub's ETag)")
                    self._opaque_etags = True
                    self._note(f"{self.endpoint} sends ETags that are not content hashes (a mirror or "
                               f"proxy?); files are checked against the index's sha256 only")
                os.replace(tmp, target)
                return target
            except BaseException:
                unlink_quiet(tmp)
                raise
        return with_retries(call, what, self.policy, cancel)

    # -- ranged GETs of archives
    def stream_range(self, repo_id: str, path: str, sha: str, start: int, end: int,
                     on_chunk: Callable[[bytes], None], cancel: threading.Event | None = None,
                     chunk_size: int = 1 << 16, in_flight: set | None = None, *,
                     on_wait: Callable[[float, str], None] | None = None,
                     on_resolve: Callable[[], None] | None = None,
                     expect_size: int | None = None, expect_sha256: str | None = None) -> None:
        """GET bytes ``start..end`` (inclusive) of a repo file, feeding them to ``on_chunk``.

        The archive is resolved once: its signed CDN URL is reused for later ranges until near its
        expiry or refused. ``expect_size``/``expect_sha256`` (the index's ``filesize``/``hash_lfs``)
        are checked against the Hub's ``X-Linked-Size``/``X-Linked-Etag``. One attempt; raises
        TransientError (RateLimited on a 429) for anything worth retrying (the caller decides how,
        since it knows which bytes it already has), TransferError for what no retry can fix.
        """
        what = f"{repo_id}/{path}"
        key = (repo_id, path, sha)
        for _ in range(3):  # a refused signed URL is resolved again (a fresh one is not refused twice)
            signed = self.urls.claim(key, cancel)
            if signed is not None:
                check_linked(what, signed.linked_size, signed.linked_etag, expect_size, expect_sha256)
            url = signed.url if signed is not None and signed.url else self.file_url(repo_id, path, sha)
            headers = self.headers()
            headers["Range"] = f"bytes={start}-{end}"
            headers["Accept-Encoding"] = "identity"
            try:
                reply = http.request("GET", url, endpoint=self.endpoint, headers=headers, policy=self.policy,
                                     what=what, cancel=cancel, in_flight=in_flight, budget=self.budget,
                                     on_wait=on_wait, on_resolve=on_resolve)
            except BaseException:
                if signed is None:
                    self.urls.release(key)
                raise
            with reply:
                if signed is not None and signed.url and reply.status in (400, 401, 403):
                    self.urls.drop(key, signed.url)  # expired or revoked: resolve again
                    continue
                if signed is None:
                    linked = linked_of(reply.first_headers)
                    if reply.status in (200, 206):
                        keep = reply.url if reply.hops and not self._is_resolve(reply.url) else None
                        self.urls.put(key, SignedUrl(keep, expiry_of(keep or ""), *linked))
                    else:
                        self.urls.release(key)
                    check_linked(what, *linked, expect_size, expect_sha256)
                self._read_range(reply, start, end, on_chunk, cancel, chunk_size, what)
                return
        raise TransientError(f"the CDN keeps refusing the signed URLs of {what}")

    @staticmethod
    def _read_range(reply: http.Reply, start: int, end: int, on_chunk, cancel, chunk_size: int,
                    what: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if reply.status == 416:  # the index points past the archive's end
            raise TransferError(f"bytes {start}-{end} are past the archive's end ({what}, HTTP 416)")
        raise_for(reply, what)
        if reply.status == 206:
            content_range = reply.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {start}-"):
                raise TransientError(f"unexpected Content-Range for {what}")
            skip = 0
        elif reply.status == 200:
            if start > RANGE_SKIP_LIMIT:
                raise RangeIgnoredError(f"the server ignores Range for {what} (HTTP 200, the whole file): "
                                        f"not reading {start} bytes to reach ours")
            skip = start  # a small offset: skip to our bytes
        else:
            raise TransientError(f"unexpected HTTP {reply.status} for {what}")
        want = end - start + 1
        got = 0
        for chunk in reply.chunks(chunk_size):
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            if got + len(chunk) > want:
                chunk = chunk[: want - got]
            if chunk:
                on_chunk(chunk)
                got += len(chunk)
            if got >= want:
                break
        if got < want:
            raise TransientError(f"short body for {what}: {got} of {want} bytes")
