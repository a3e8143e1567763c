"""Talking to the Hub: revision resolution, cached index files and ranged GETs, with retries.

Everything goes through huggingface_hub (its shared HTTP session, auth headers, URL building,
cache and error classes); this module adds what the clients lack for a bulk downloader:
bounded retries with backoff and jitter on 5xx, 429 (honouring ``Retry-After``), dropped
connections and short bodies, and a clear split between "not in the dataset", "access denied"
and "the Hub could not be reached".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import threading
from dataclasses import dataclass
from urllib.parse import quote
from typing import Callable, TypeVar

import huggingface_hub
from huggingface_hub import constants, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError as HfRevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from .errors import (
    AccessDeniedError,
    HubUnreachableError,
    PoolError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransferError,
)
from .files import write_atomic

try:  # huggingface_hub >= 2 ships its HTTP client as `httpx2`
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx  # type: ignore[no-redef]

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REPO_TYPE = "dataset"


class Cancelled(Exception):
    """The job was cancelled while a request was under way or waiting to retry."""


class TransientError(Exception):
    """A failure worth another try: a 5xx, a 429, a dropped connection, a short or altered body."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, waiting ``backoff * 2**n`` (capped, with jitter) between."""

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

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
    """Map an exception from huggingface_hub / the HTTP client to this engine's vocabulary.

    Returns a PoolError (final), a TransientError (worth retrying), or ``err`` itself.
    ``what`` names the repo or file in the one-line message; it never holds a token.
    """
    for e in _walk(err):
        if isinstance(e, (PoolError, TransientError, Cancelled)):
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
            if status in RETRY_STATUS:
                return TransientError(f"HTTP {status} from the Hub for {what}", _retry_after(e) if status == 429 else None)
            if status == 404:
                return e
            return HubUnreachableError(f"the Hub answered HTTP {status} for {what}")
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


def with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy, cancel: threading.Event | None = None,
                 on_retry: Callable[[int, str], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, retrying transient failures as ``policy`` says.

    After the last attempt a transient failure becomes :class:`HubUnreachableError`.
    """
    last = ""
    for attempt in range(policy.attempts):
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
            last = str(mapped)
            if attempt + 1 >= policy.attempts:
                break
            if on_retry is not None:
                on_retry(attempt + 1, last)
            wait = policy.delay(attempt, mapped.retry_after)
            if cancel is not None:
                if cancel.wait(wait):
                    raise Cancelled() from None
            else:
                threading.Event().wait(wait)
    raise HubUnreachableError(f"gave up after {policy.attempts} attempts: {last}")


class HubClient:
    """One repo's worth of Hub access for a pool: endpoint, token, commit resolution, files."""

    def __init__(self, endpoint: str | None = None, token: str | None = None,
                 policy: RetryPolicy | None = None):
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._token = token
        self.policy = policy or RetryPolicy()

    @property
    def endpoint(self) -> str:
        return self._endpoint or constants.ENDPOINT

    def api(self) -> huggingface_hub.HfApi:
        return huggingface_hub.HfApi(endpoint=self.endpoint, token=self._token)

    def headers(self) -> dict[str, str]:
        return build_hf_headers(token=self._token)

    def resolve(self, repo_id: str, revision: str, cancel: threading.Event | None = None) -> str:
        """The commit sha ``revision`` points at (one request, retried).

        The request ``HfApi.dataset_info`` makes, asking only for the sha (a big repo's full info
        lists every file), and without importing ``huggingface_hub.hf_api``: that import costs
        ~0.2 s of CPU, on the path every job waits for.
        """
        url = f"{self.endpoint}/api/{REPO_TYPE}s/{repo_id}/revision/{quote(revision, safe='')}"

        def call() -> str:
            response = get_session().get(url, headers=self.headers(), params={"expand": ["sha"]},
                                         timeout=self.policy.timeout)
            hf_raise_for_status(response)
            info = response.json()
            sha = info.get("sha") if isinstance(info, dict) else None
            if not isinstance(sha, str) or not _HEX40.fullmatch(sha):
                # the sha names a cache folder: anything but 40 hex digits could lead outside it
                raise HubUnreachableError(f"the Hub gave no valid commit for {repo_id}@{revision}")
            return sha
        return with_retries(call, f"{repo_id}@{revision}", self.policy, cancel)

    def cached_path(self, repo_id: str, path: str, sha: str) -> str | None | object:
        """The cached copy of a file at a commit, ``NOT_FOUND`` when its absence is cached, else None."""
        found = try_to_load_from_cache(repo_id, path, revision=sha, repo_type=REPO_TYPE)
        if isinstance(found, str):
            return found
        return NOT_FOUND if found is not None else None

    def download(self, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None) -> str | None:
        """Local path of ``path`` at commit ``sha`` (from the cache when there), or None if the repo lacks it.

        One GET per file, stored in the huggingface_hub cache under ``snapshots/<sha>/`` (absence
        under ``.no_exist/<sha>/``), where ``try_to_load_from_cache`` and ``hf_hub_download``
        find it. Not ``hf_hub_download`` itself: that costs a HEAD before every GET, and retries
        a refused connection for about 23 s on its own before our policy gets a say.
        """
        what = f"{repo_id}/{path}"

        def call() -> str | None:
            cached = self.cached_path(repo_id, path, sha)
            if cached is NOT_FOUND:
                return None
            if cached is not None:
                return cached
            response = get_session().get(self.file_url(repo_id, path, sha), headers=self.headers(),
                                         timeout=self.policy.timeout)
            try:
                hf_raise_for_status(response)
            except EntryNotFoundError as err:
                if isinstance(err, LocalEntryNotFoundError):
                    raise
                _cache_write(repo_id, os.path.join(".no_exist", sha, path), b"")
                return None
            data = response.content
            if not _matches_etag(response, data):
                # altered in flight: retry, and never let the cache keep it for every later run
                raise TransientError(f"{what} arrived altered (its bytes do not match the Hub's ETag)")
            return _cache_write(repo_id, os.path.join("snapshots", sha, path), data)
        return with_retries(call, what, self.policy, cancel)

    def file_url(self, repo_id: str, path: str, sha: str) -> str:
        return hf_hub_url(repo_id, path, repo_type=REPO_TYPE, revision=sha, endpoint=self.endpoint)

    def stream_range(self, repo_id: str, path: str, sha: str, start: int, end: int,
                     on_chunk: Callable[[bytes], None], cancel: threading.Event | None = None,
                     chunk_size: int = 1 << 16, in_flight: set | None = None) -> None:
        """GET bytes ``start..end`` (inclusive) of a repo file, feeding them to ``on_chunk``.

        One attempt; raises TransientError for anything worth retrying (the caller decides how,
        since it knows which bytes it already has).
        """
        url = self.file_url(repo_id, path, sha)
        headers = self.headers()
        headers["Range"] = f"bytes={start}-{end}"
        want = end - start + 1
        what = f"{repo_id}/{path}"
        try:
            with get_session().stream("GET", url, headers=headers, timeout=self.policy.timeout) as response, \
                    _tracked(response, in_flight):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if response.status_code == 404:
                    hf_raise_for_status(response)
                if response.status_code == 416:  # the index points past the archive's end
                    raise TransferError(f"bytes {start}-{end} are past the archive's end ({what}, HTTP 416)")
                if response.status_code >= 400:
                    response.read()
                    hf_raise_for_status(response)
                if response.status_code == 206:
                    content_range = response.headers.get("Content-Range", "")
                    if not content_range.startswith(f"bytes {start}-"):
                        raise TransientError(f"unexpected Content-Range {content_range!r} for {what}")
                    skip = 0
                elif response.status_code == 200:
                    skip = start  # a server that ignores Range: skip to our bytes
                else:
                    raise TransientError(f"unexpected HTTP {response.status_code} for {what}")
                got = 0
                for chunk in response.iter_bytes(chunk_size):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
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
        except (Cancelled, TransientError, TransferError):
            raise
        except Exception as err:  # noqa: BLE001
            if cancel is not None and cancel.is_set():
                raise Cancelled() from None  # the cancel closed the response under our feet
            mapped = translate(err, what)
            if mapped is err:
                raise
            raise mapped from None


NOT_FOUND = object()


@contextlib.contextmanager
def _tracked(response, in_flight: set | None):
    """Keep ``response`` in ``in_flight`` while it is read, so a cancel can close it."""
    if in_flight is None:
        yield
        return
    in_flight.add(response)
    try:
        yield
    finally:
        in_flight.discard(response)
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _matches_etag(response, data: bytes) -> bool:
    """False when the Hub's ETag says ``data`` is not the file it sent: a git blob sha1 for a
    regular file, the sha256 (``X-Linked-Etag``, before any CDN redirect) for an LFS one."""
    first = response.history[0] if getattr(response, "history", None) else response
    tag = first.headers.get("X-Linked-Etag") or first.headers.get("ETag") or ""
    tag = tag.strip().removeprefix("W/").strip('"').lower()
    if _HEX64.fullmatch(tag):
        return hashlib.sha256(data).hexdigest() == tag
    if _HEX40.fullmatch(tag):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == tag
    return True  # no ETag we can check: the index parser is the last line of defence


def _cache_write(repo_id: str, rel: str, data: bytes) -> str:
    """Write ``data`` atomically at ``rel`` inside the cache folder of dataset ``repo_id``."""
    folder = os.path.realpath(os.path.join(constants.HF_HUB_CACHE,
                                           repo_folder_name(repo_id=repo_id, repo_type=REPO_TYPE)))
    path = os.path.join(folder, *rel.split("/"))
    if os.path.commonpath([os.path.realpath(path), folder]) != folder:
        raise HubUnreachableError(f"refusing to cache {rel!r}: it leads outside the cache folder")
    return write_atomic(path, data)
