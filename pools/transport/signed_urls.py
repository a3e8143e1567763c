"""Resolve an archive once: keep the signed CDN URL its ``/resolve/`` answer redirected to.

The Hub answers ``GET /datasets/{repo}/resolve/{commit}/{archive}`` with a ``302`` to a signed,
expiring CDN URL (``X-Amz-Expires=3600``, ``Expires=<epoch>``...), and counts the resolve against
the caller's quota. Every later ranged GET of that archive goes straight to the signed URL until
it nears its expiry or the CDN refuses it (403), then the archive is resolved again.

The redirect also says what the Hub holds (``X-Linked-Size``, ``X-Linked-Etag``: the sha256);
:func:`check_linked` compares that with what the index says the archive is, so a stale index is
one clear error for its archive, not a row of sha256 mismatches.
"""

from __future__ import annotations

import calendar
import threading
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qsl, urlsplit

from pools.errors import Cancelled, TransferError

UNKNOWN_LIFETIME = 3600.0  # a redirect target that says nothing of its expiry: reused this long at most


class StaleIndexError(TransferError):
    """The index describes another version of the archive than the one the Hub serves."""


@dataclass(frozen=True)
class SignedUrl:
    url: str | None  # None: this server answers resolves directly, there is nothing to keep
    expires_at: float  # time.monotonic() after which it is no longer used
    linked_size: int | None
    linked_etag: str | None


def expiry_of(url: str, now_wall: float | None = None, now: float | None = None) -> float:
    """When (on ``time.monotonic()``'s clock) a signed URL should no longer be used: a margin of
    a tenth of its lifetime (at most 60 s) before it expires."""
    now_wall = time.time() if now_wall is None else now_wall
    now = time.monotonic() if now is None else now
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    lifetime = None
    try:
        if "x-amz-expires" in query:
            lifetime = float(query["x-amz-expires"])
            signed_at = _amz_date(query.get("x-amz-date", ""))
            if signed_at is not None:
                lifetime -= max(0.0, now_wall - signed_at)
        elif "expires" in query:
            lifetime = float(query["expires"]) - now_wall
    except ValueError:
        lifetime = None
    if lifetime is None:
        lifetime = UNKNOWN_LIFETIME
    lifetime = min(lifetime, UNKNOWN_LIFETIME * 24)
    return now + lifetime - min(60.0, max(lifetime, 0.0) / 10)


def _amz_date(value: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def linked_of(headers: Mapping[str, str]) -> tuple[int | None, str | None]:
    size = headers.get("X-Linked-Size")
    etag = (headers.get("X-Linked-Etag") or "").strip().removeprefix("W/").strip('"').lower()
    try:
        n = int(size) if size is not None and len(size) < 20 else None
    except ValueError:
        n = None
    return n, (etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None)


def check_linked(what: str, linked_size: int | None, linked_etag: str | None,
                 expect_size: int | None, expect_sha256: str | None) -> None:
    """Raise :class:`StaleIndexError` when the Hub's size or sha256 of the archive is not the index's."""
    if linked_size is not None and expect_size is not None and linked_size != expect_size:
        raise StaleIndexError(f"stale index for {what}: the archive is {linked_size} bytes on the Hub, "
                              f"the index says {expect_size}")
    if linked_etag and expect_sha256 and linked_etag != expect_sha256.lower():
        raise StaleIndexError(f"stale index for {what}: the archive's sha256 on the Hub is not the "
                              f"one in the index")


class SignedUrls:
    """A small thread-safe cache: (repo, path, commit) -> the signed URL to use for it.

    One resolve per archive at a time: while a worker resolves an archive, the others asking for
    it wait for that answer (:meth:`claim`) rather than each spend a resolve of their own. A
    server that answers resolves directly (no redirect) is remembered too (``url`` None), so
    its ranged GETs are not serialised.
    """

    def __init__(self, limit: int = 4096):
        self._lock = threading.Lock()
        self._urls: dict[tuple[str, str, str], SignedUrl] = {}
        self._resolving: dict[tuple[str, str, str], threading.Event] = {}
        self._limit = limit

    def get(self, key: tuple[str, str, str]) -> SignedUrl | None:
        with self._lock:
            return self._valid(key)

    def _valid(self, key) -> SignedUrl | None:
        signed = self._urls.get(key)
        if signed is not None and time.monotonic() >= signed.expires_at:
            del self._urls[key]
            return None
        return signed

    def claim(self, key: tuple[str, str, str], cancel: threading.Event | None = None,
              patience: float = 30.0) -> SignedUrl | None:
        """The URL to use, or None: then the caller resolves, and must :meth:`put` or :meth:`release`."""
        deadline = time.monotonic() + patience
        while True:
            with self._lock:
                signed = self._valid(key)
                if signed is not None:
                    return signed
                pending = self._resolving.get(key)
                if pending is None or time.monotonic() > deadline:
                    self._resolving.setdefault(key, threading.Event())
                    return None
            pending.wait(0.2)
            if cancel is not None and cancel.is_set():
                raise Cancelled()

    def release(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            pending = self._resolving.pop(key, None)
        if pending is not None:
            pending.set()

    def put(self, key: tuple[str, str, str], signed: SignedUrl) -> None:
        with self._lock:
            if len(self._urls) >= self._limit:
                self._urls.pop(next(iter(self._urls)))
            self._urls[key] = signed
        self.release(key)

    def drop(self, key: tuple[str, str, str], url: str | None) -> None:
        """Forget ``url`` (refused by the CDN); a newer one another worker put there stays."""
        with self._lock:
            signed = self._urls.get(key)
            if signed is not None and signed.url == url:
                del self._urls[key]

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for s in self._urls.values() if s.url is not None)
