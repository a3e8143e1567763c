"""Retries, waits and the one vocabulary of failures for every request the engine makes.

``translate`` maps what huggingface_hub and the HTTP clients raise to a ``PoolError`` (final), a
:class:`TransientError` (worth another try) or :class:`Cancelled`; ``with_retries`` retries as a
:class:`RetryPolicy` says, waits out a 429 (:class:`RateLimited`) without counting it as an
attempt, and reports every wait through ``on_wait(seconds, reason)``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.errors import (
    RevisionNotFoundError as HfRevisionNotFoundError,
)

from pools.errors import (
    Cancelled,
    FileMissing,
    HubUnreachableError,
    PoolError,
    RateLimited,
    TransientError,
    error_for_status,
    network_words,
)
from pools.transport.budget import format_wait

try:  # huggingface_hub >= 2 ships its HTTP client as `httpx2`
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx  # type: ignore[no-redef]

T = TypeVar("T")


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
        if isinstance(e, RemoteEntryNotFoundError):
            return e
        if isinstance(e, HfHubHTTPError):
            code = ("RevisionNotFound" if isinstance(e, HfRevisionNotFoundError) else
                    "GatedRepo" if isinstance(e, GatedRepoError) else  # a RepositoryNotFoundError too
                    "RepoNotFound" if isinstance(e, RepositoryNotFoundError) else None)
            status = _status(e)
            if status is None and code is None:
                return HubUnreachableError(f"the Hub failed for {what}: {network_words(e.__class__.__name__)}")
            return error_for_status(status or 400, what, code, _retry_after(e)) or e
        if isinstance(e, httpx.TooManyRedirects):
            return HubUnreachableError(f"the Hub's redirects for {what} loop or go on too long")
        if isinstance(e, httpx.UnsupportedProtocol):
            return HubUnreachableError(f"the Hub redirects {what} to a target that is not http(s)")
        if isinstance(e, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
                          ConnectionError, TimeoutError)):
            return TransientError(f"network error for {what}: {network_words(e.__class__.__name__)}")
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
