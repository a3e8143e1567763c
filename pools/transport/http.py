"""The lean data path: index and ranged GETs on urllib3, with our own redirects and deadlines.

One ``PoolManager`` per endpoint per process (keep-alive connections to the endpoint and to the
CDN hosts it redirects to). Redirects are followed here, not by urllib3, so that:

* the ``Authorization`` header only ever goes to the endpoint's origin (a CDN refuses a request
  that carries it next to a signed query, and a token must never leave the origin it is for);
* a loop, too many hops or a target that is not ``http(s)`` is a clear, final error
  (:class:`RedirectError`) for the files concerned;
* every request to ``/resolve/`` on the endpoint goes through the resolver budget
  (:mod:`pools.transport.budget`) and every answer of the endpoint feeds it.

Deadlines: a connect timeout (urllib3), and a process-wide watchdog thread that looks at every
request in flight a few times a second: a request with no answer within ``first_byte_timeout``,
or whose body makes less than ``stall_bytes`` of progress in ``stall_seconds``, or whose cancel
event is set, has its socket shut down, which ends the blocked read at once in the worker.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, Iterator, Mapping
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

from pools.errors import Cancelled, RateLimited, RedirectError, TransientError, network_words

REDIRECTS = frozenset({301, 302, 303, 307, 308})
TICK = 0.2  # how often the watchdog looks at requests in flight; a cancel bites within this


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: two URLs share an origin when equal."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


# -- the watchdog -------------------------------------------------------------------------------

_local = threading.local()


class Watch:
    """One request in flight: its connection, its progress, and why it was stopped (if it was)."""

    __slots__ = ("cancel", "first_byte", "stall_bytes", "stall_seconds", "conn", "started",
                 "answered", "progress", "_win_start", "_win_bytes", "reason", "_lock", "_finished", "idle")

    def __init__(self, cancel: threading.Event | None, policy):
        self.cancel = cancel
        self.first_byte = policy.first_byte_timeout
        self.stall_bytes = policy.stall_bytes
        self.stall_seconds = policy.stall_seconds
        self.conn = None
        self.started = time.monotonic()
        self.answered = False
        self.progress = 0
        self._win_start = self.started
        self._win_bytes = 0
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._finished = False
        self.idle = False  # waiting on the resolver budget, not on the server: no deadline runs

    def finish(self) -> None:
        """The request is over: from now on a kill must not touch the connection (back in the pool)."""
        with self._lock:
            self._finished = True
            self.conn = None
        WATCHDOG.discard(self)

    def hop(self) -> None:
        self.started = time.monotonic()
        self.answered = False

    def answer(self) -> None:
        self.answered = True
        self._win_start = time.monotonic()
        self._win_bytes = self.progress

    def kill(self, reason: str) -> None:
        with self._lock:
            if self._finished:
                return
            if self.reason is None:
                self.reason = reason
            sock = getattr(self.conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the worker blocked in recv()
                except OSError:
                    pass

    def close(self) -> None:
        """What a cancel calls on everything in a job's ``in_flight`` set."""
        self.kill("cancelled")

    @property
    def cancelled(self) -> bool:
        return self.reason == "cancelled" or (self.cancel is not None and self.cancel.is_set())

    def check(self, now: float) -> None:
        if self.idle:
            return
        if self.reason is not None:
            self.kill(self.reason)  # the socket may have appeared since (a kill during connect)
        elif self.cancel is not None and self.cancel.is_set():
            self.kill("cancelled")
        elif not self.answered:
            if now - self.started > self.first_byte:
                self.kill(f"no answer within {self.first_byte:g} s")
        elif now - self._win_start >= self.stall_seconds:
            if self.progress - self._win_bytes < self.stall_bytes:
                self.kill(f"stalled: less than {self.stall_bytes} bytes in {self.stall_seconds:g} s")
            else:
                self._win_start, self._win_bytes = now, self.progress


class _Watchdog:
    def __init__(self):
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cheesechaser-http-watchdog",
                                                daemon=True)
                self._thread.start()
            elif len(self._watches) == 1:
                self._cond.notify()

    def discard(self, watch: Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watches:
                    self._cond.wait()
                watches = list(self._watches)
            now = time.monotonic()
            for watch in watches:
                watch.check(now)
            with self._cond:
                self._cond.wait(TICK)


WATCHDOG = _Watchdog()


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args, **kwargs):  # runs on the worker's thread: attach to its request
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.conn = self
        return super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args, **kwargs):
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.conn = self
        return super().request(*args, **kwargs)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_MANAGERS: dict[str, urllib3.PoolManager] = {}
_MANAGERS_LOCK = threading.Lock()


def manager_for(endpoint: str) -> urllib3.PoolManager:
    """The process-wide connection pools for ``endpoint`` (and the hosts it redirects to)."""
    with _MANAGERS_LOCK:
        pm = _MANAGERS.get(endpoint)
        if pm is None:
            pm = urllib3.PoolManager(num_pools=16, maxsize=32, block=False, retries=False)
            pm.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
            _MANAGERS[endpoint] = pm
        return pm


# -- requests -----------------------------------------------------------------------------------

class Reply:
    """An answer after redirects: its status and headers, the redirects that led to it, its body."""

    def __init__(self, response, url: str, hops: list[tuple[int, str, Mapping[str, str]]],
                 watch: Watch, in_flight: set | None, what: str):
        self.response = response
        self.status: int = response.status
        self.headers = response.headers
        self.url = url
        self.hops = hops
        self.watch = watch
        self._in_flight = in_flight
        self._what = what
        self._complete = False

    @property
    def first_headers(self) -> Mapping[str, str]:
        """The endpoint's own answer (the redirect, when there was one): X-Repo-Commit, X-Linked-*."""
        return self.hops[0][2] if self.hops else self.headers

    def chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        """The body as it arrives (decoded when asked), a few KiB at a time however slow it is."""
        watch = self.watch
        while True:
            if watch.cancelled:
                raise Cancelled()
            try:
                data = self.response.read1(size)
            except (Urllib3Error, OSError) as err:
                raise _failure(err, watch, self._what) from None
            if not data:
                self._complete = True
                return
            watch.progress += len(data)
            yield data

    def read_all(self, limit: int) -> bytes:
        parts, got = [], 0
        for chunk in self.chunks():
            got += len(chunk)
            if got > limit:
                raise TransientError(f"the answer for {self._what} is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.watch.finish()
        if self._in_flight is not None:
            self._in_flight.discard(self.watch)
        try:
            if not (self._complete or self.response.length_remaining == 0):
                self.response.close()  # never drain a body we do not want: drop the connection
            self.response.release_conn()
        except Exception:  # noqa: BLE001 - already closed by a cancel
            pass

    def __enter__(self) -> "Reply":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _failure(err: BaseException, watch: Watch, what: str) -> BaseException:
    if watch.cancelled:
        return Cancelled()
    if watch.reason is not None:
        return TransientError(f"{watch.reason} for {what}")
    name = err.__class__.__name__
    reason = getattr(err, "reason", None)  # urllib3 wraps the socket error that says what happened
    if reason is not None and not isinstance(reason, str):
        name = reason.__class__.__name__
    if "IncompleteRead" in repr(err):
        return TransientError(f"short body for {what}: the connection closed early")
    return TransientError(f"network error for {what}: {network_words(name)}")


def request(method: str, url: str, *, endpoint: str, headers: Mapping[str, str], policy,
            what: str, cancel: threading.Event | None = None, in_flight: set | None = None,
            decode: bool = False, budget=None, on_wait: Callable[[float, str], None] | None = None,
            on_resolve: Callable[[], None] | None = None) -> Reply:
    """Send ``method url``, following redirects ourselves; the caller closes the :class:`Reply`.

    ``headers`` may hold ``Authorization``: it is sent to ``endpoint``'s origin only. Raises
    :class:`Cancelled`, :class:`TransientError` (:class:`RateLimited` on a 429) or
    :class:`RedirectError`; any other status is the caller's to judge.
    """
    pm = manager_for(endpoint)
    home = origin_of(endpoint)
    watch = Watch(cancel, policy)
    WATCHDOG.add(watch)
    if in_flight is not None:
        in_flight.add(watch)
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    hops: list[tuple[int, str, Mapping[str, str]]] = []
    seen = {url}
    current = url
    try:
        while True:
            if watch.cancelled:
                raise Cancelled()
            own = origin_of(current) == home
            resolving = own and "/resolve/" in urlsplit(current).path
            if own:
                send = dict(headers)
                if budget is not None and resolving:
                    watch.idle = True
                    try:
                        budget.before_resolve(cancel, on_wait)
                    finally:
                        watch.idle = False
                    if on_resolve is not None:
                        on_resolve()
            else:
                send = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            watch.hop()
            _local.watch = watch
            try:
                response = pm.urlopen(method, current, headers=send, redirect=False, retries=False,
                                      preload_content=False, decode_content=decode, timeout=timeout,
                                      assert_same_host=False)
            except (Urllib3Error, OSError) as err:
                raise _failure(err, watch, what) from None
            finally:
                _local.watch = None
            watch.answer()
            # the budget is the resolvers' quota: API answers (another bucket) do not move it
            wait = budget.after_response(response.status, response.headers) if resolving and budget else None
            if response.status in REDIRECTS and response.headers.get("Location"):
                location = response.headers["Location"]
                with watch._lock:
                    watch.conn = None  # back in the pool once discarded: no longer ours to kill
                _discard(response)
                hops.append((response.status, current, response.headers))
                target = urljoin(current, location)
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise RedirectError(f"{what}: the server redirects to a target that is not "
                                        f"http(s) ({urlsplit(target).scheme or 'no scheme'}:)")
                if target in seen:
                    raise RedirectError(f"{what}: the server's redirects loop")
                if len(hops) > policy.max_redirects:
                    raise RedirectError(f"{what}: more than {policy.max_redirects} redirects")
                seen.add(target)
                current = target
                continue
            if response.status == 429:
                watch.finish()
                _discard(response)
                if wait is None:
                    wait = _rate_limit_reset(response.headers)
                raise RateLimited(f"HTTP 429 (rate limited) for {what}", wait)
            return Reply(response, current, hops, watch, in_flight, what)
    except BaseException:
        watch.finish()
        if in_flight is not None:
            in_flight.discard(watch)
        raise


def _discard(response) -> None:
    """Done with an answer we do not read: keep the connection when its body is small."""
    try:
        length = int(response.headers.get("Content-Length", "-1"))
    except ValueError:
        length = -1
    try:
        if 0 <= length <= 65536:
            response.drain_conn()
            response.release_conn()
        else:
            response.close()
            response.release_conn()
    except Exception:  # noqa: BLE001 - the connection is dropped either way
        pass


def _rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 asks for: ``RateLimit``'s ``t=``, else ``Retry-After``."""
    value = headers.get("RateLimit") or ""
    for part in value.split(";")[:8]:
        name, _, number = part.strip().partition("=")
        if name == "t" and number.isdigit() and len(number) < 9:
            return float(number)
    return _retry_after(headers)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
