"""Talking to the Hub: revisions, indexes, big files and ranged GETs, with retries and a budget.

:class:`HubClient` is one endpoint + token's worth of Hub access. Every request goes through
:mod:`pools.transport.http` on urllib3: our own redirects (the token stays on the endpoint's origin),
deadlines and stall rule, the resolver budget (:mod:`pools.transport.budget`), signed-URL reuse
(:mod:`pools.transport.signed_urls`), the cache keyed by endpoint (:mod:`pools.transport.cache`); huggingface_hub gives
the URLs, the auth headers and the error classes. Failures come out in one vocabulary
(:mod:`pools.transport.retry`, :mod:`pools.transport.answers`): a ``PoolError`` (final), a :class:`TransientError`
(worth another try; :class:`RateLimited` is waited out, never counted as an attempt), or
:class:`Cancelled` (all in :mod:`pools.errors`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from typing import Callable, TypeVar
from urllib.parse import quote, urlsplit

import huggingface_hub
from huggingface_hub import constants, hf_hub_url
from huggingface_hub.utils import build_hf_headers

from pools.errors import (
    Cancelled,
    FileMissing,
    HubUnreachableError,
    IndexTooLargeError,
    PlainNotFound,
    RangeIgnoredError,
    TransferError,
    TransientError,
)
from pools.transport import cache, http
from pools.transport.answers import (
    _raise_for_api,
    content_length,
    content_tag,
    is_commit,
    matches_tag,
    raise_for,
)
from pools.transport.budget import ResolverBudget, budget_for
from pools.transport.http import origin_of
from pools.transport.retry import RetryPolicy, with_retries
from pools.transport.signed_urls import SignedUrl, SignedUrls, check_linked, expiry_of, linked_of
from pools.transport.whole_file import download_whole

__all__ = ["HubClient", "NOT_FOUND", "MAX_INDEX_BYTES"]

T = TypeVar("T")
REPO_TYPE = "dataset"
NOT_FOUND = cache.NOT_FOUND
MAX_INDEX_BYTES = 64 * 1024 * 1024  # after decoding; a real index of a 15 GB archive is a few MB
RANGE_SKIP_LIMIT = 1024 * 1024  # a server that ignores Range: skip at most this much to reach our bytes
MAX_TREE_ENTRIES = 1_000_000  # a repo's tree listing held in memory at most (real ones: thousands)
MAX_TREE_PAGE = 32 * 1024 * 1024  # one page of 1,000 entries is a few hundred KB
_NEXT = re.compile(r'<([^>]{1,4000})>\s*;\s*rel="?next"?', re.IGNORECASE)
log = logging.getLogger("pools.transport")


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
    def given_endpoint(self) -> str | None:
        """The endpoint this client was given; None when it follows ``HF_ENDPOINT`` / the Hub."""
        return self._endpoint

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
            if not is_commit(sha):
                # the sha names a cache folder: anything but 40 hex digits could lead outside it
                raise HubUnreachableError(f"the Hub gave no valid commit for {repo_id}@{revision}")
            return sha
        return with_retries(call, what, self.policy, cancel, on_wait=on_wait)

    def list_tree(self, repo_id: str, sha: str, path: str | None = None, recursive: bool = True,
                  cancel: threading.Event | None = None) -> list:
        """The repo's tree at ``sha`` (``RepoFile``/``RepoFolder``), page after page.

        A next page (``Link: <...>; rel="next"``) is followed only on the endpoint's own origin:
        the token never goes elsewhere. Pages and the whole listing are bounded in size. A folder
        that does not exist lists nothing.
        """
        from huggingface_hub.hf_api import RepoFile, RepoFolder

        url = f"{self.endpoint}/api/{REPO_TYPE}s/{repo_id}/tree/{quote(sha, safe='')}"
        if path:
            url += "/" + quote(path.strip("/"))
        url += f"?recursive={'true' if recursive else 'false'}&expand=false"
        home = origin_of(self.endpoint)
        what = f"{repo_id} tree"
        out: list = []
        while True:
            def page(url=url):
                with http.request("GET", url, endpoint=self.endpoint, headers=self.headers(),
                                  policy=self.policy, what=what, cancel=cancel, decode=True) as reply:
                    if reply.status >= 400:
                        if reply.headers.get("X-Error-Code") == "EntryNotFound":
                            raise FileMissing(f"{path} is not in {repo_id}")
                        _raise_for_api(reply, repo_id, sha)
                    if reply.status != 200:
                        raise TransientError(f"unexpected HTTP {reply.status} for {what}")
                    body = reply.read_all(MAX_TREE_PAGE)
                    link = reply.headers.get("Link", "")
                try:
                    entries = json.loads(body)
                except (ValueError, RecursionError):
                    raise TransientError(f"the Hub's answer for {what} is not valid JSON") from None
                found = _NEXT.search(link) if len(link) < 8000 else None
                return entries, (found.group(1) if found else None)
            try:
                entries, next_url = with_retries(page, what, self.policy, cancel)
            except FileMissing:
                return out  # no such folder at that commit: nothing listed under it
            if not isinstance(entries, list):
                raise HubUnreachableError(f"the Hub's tree listing of {repo_id} is not a list")
            for info in entries:
                if isinstance(info, dict) and isinstance(info.get("path"), str) and "oid" in info:
                    try:
                        out.append(RepoFile(**info) if info.get("type") == "file" else RepoFolder(**info))
                    except (TypeError, KeyError, ValueError):
                        continue  # an entry we cannot read is not an archive we can fetch
            if len(out) > MAX_TREE_ENTRIES:
                raise HubUnreachableError(f"the tree listing of {repo_id} has more than {MAX_TREE_ENTRIES:,} entries")
            if not next_url:
                return out
            if origin_of(next_url) != home:
                raise HubUnreachableError(f"the tree listing of {repo_id} points its next page at another "
                                          f"server; not followed (the token stays with the endpoint)")
            url = next_url

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
                length = content_length(reply.headers)
                if not reply.headers.get("Content-Encoding") and length is not None and length > cap:
                    raise IndexTooLargeError(f"index too large: {what} is {length} bytes, over the "
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
                self._check_content(what, False, hashlib.sha256(data).hexdigest(), seen)
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
            if is_commit(sha):
                cache.write_later(self.endpoint, repo_id, path, sha, b"", absent=True)
            return None
        except PlainNotFound:
            return None  # a plain 404 may be a mirror's hiccup: missing now, never cached as absent
        result = parse(raw)
        if is_commit(sha):
            if cache_later:
                cache.write_later(self.endpoint, repo_id, path, sha, raw)
            else:
                cache.write(self.endpoint, repo_id, path, sha, raw)
        return result

    # -- big files: into the cache, streamed
    def download_file(self, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None,
                      on_progress: Callable[[int, int | None], None] | None = None,
                      max_bytes: int | None = None) -> str:
        """Stream a (big) repo file into the cache and return its local path; verified against the
        Hub's sha256 (or git blob sha1) when it gives one, renamed into place only when complete,
        resumed where an attempt or an earlier run stopped (:mod:`pools.transport.whole_file`).
        Raises :class:`FileMissing` when the repo lacks it."""
        if not is_commit(sha):
            raise ValueError(f"download_file needs a commit sha, not {sha!r}")
        found = self.cached_path(repo_id, path, sha)
        if isinstance(found, str):
            cache.flush()
            return found
        return download_whole(self, repo_id, path, sha, cancel, on_progress, max_bytes)

    def _check_content(self, what: str, ok: bool, digest: str, seen: dict) -> None:
        """A body that does not match its ETag is fetched again; the same bytes twice mean this
        server's ETags are not content hashes (a mirror or proxy): said once, and from then on the
        parse and every file's sha256 are the checks."""
        if ok:
            return
        if not (self._opaque_etags or seen["digest"] == digest):
            seen["digest"] = digest
            raise TransientError(f"{what} arrived altered (its bytes do not match the Hub's ETag)")
        self._opaque_etags = True
        self._note(f"{self.endpoint} sends ETags that are not content hashes (a mirror or "
                   f"proxy?); files are checked against the index's sha256 only")

    # -- ranged GETs of archives
    def stream_range(self, repo_id: str, path: str, sha: str, start: int, end: int,
                     on_chunk: Callable[[bytes], None], cancel: threading.Event | None = None,
                     chunk_size: int = 1 << 20, in_flight: set | None = None, *,
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
