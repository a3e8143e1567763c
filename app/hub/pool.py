"""The loopback Hub's listening socket and its bounded pool of worker threads.

``http.server.ThreadingHTTPServer`` starts a thread per connection, without a bound: 200 slow
connections are 200 threads. :class:`HubHTTPServer` instead keeps connections that have nothing
to say *parked* on one selector thread, and hands a connection to one of a fixed pool of
``workers`` threads only when it has bytes to read; after each answer a keep-alive connection goes
back to the selector. A silent connection therefore costs a file descriptor, not a thread, and
cannot keep a real request from being answered. A parked connection is closed after
``idle_timeout`` seconds of silence, and that is also the deadline for each read and write once a
worker serves it. Past ``max_parked`` parked connections (or a full queue of readable ones), a new
one is answered ``503`` and closed. ``close_connections`` cuts the open ones when the hub stops.

Stdlib only; no Textual.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import sys
import threading
import time
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from app.hub.handler import HubRequestHandler

if TYPE_CHECKING:
    from app.hub.server import HubServer

__all__ = ["HubHTTPServer", "WORKERS", "BACKLOG", "IDLE_TIMEOUT", "MAX_PARKED", "MAX_PER_ADDRESS"]

logger = logging.getLogger("app.hub.server")  # one logger for the whole loopback hub

WORKERS = 32  # per port: threads busy reading or writing at once (idle connections need none)
BACKLOG = 256  # readable connections waiting for a worker
MAX_PARKED = 2048  # idle (keep-alive or silent) connections per port
MAX_PER_ADDRESS = 512  # connections one client address may hold open (per port)
IDLE_TIMEOUT = 30.0
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n"
         b"Retry-After: 1\r\nConnection: close\r\n\r\nToo many connections now")


class HubHTTPServer(HTTPServer):
    """Serves ``hub`` on ``addr`` with a bounded thread pool; ``role`` is "hub" or "cdn"."""

    request_queue_size = BACKLOG  # the listen backlog
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], hub: "HubServer", role: str = "hub", *,
                 workers: int = WORKERS, backlog: int = BACKLOG, idle_timeout: float = IDLE_TIMEOUT,
                 max_parked: int = MAX_PARKED, max_per_address: int = MAX_PER_ADDRESS):
        self.hub = hub
        self.role = role
        self.idle_timeout = idle_timeout
        self.max_parked = max_parked
        self._conns: dict[socket.socket, str] = {}  # open connection -> its client's address
        self._by_host: dict[str, int] = {}
        self.max_per_address = max_per_address
        self._conns_lock = threading.Lock()
        self._pending: queue.Queue[tuple[Any, Any] | None] = queue.Queue(maxsize=backlog)
        self._selector = selectors.DefaultSelector()
        self._parked: dict[socket.socket, float] = {}  # socket -> when it is closed if still silent
        self._header_deadlines: dict[socket.socket, float] = {}  # socket -> when its headers must be in
        self._park_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closing = False
        self._threads: list[threading.Thread] = []  # before the bind: a failed bind closes the server
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, HubRequestHandler)
        self._threads = [threading.Thread(target=self._watch, name=f"loopback-{role}-parked", daemon=True)]
        self._threads += [
            threading.Thread(target=self._work, name=f"loopback-{role}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    @property
    def workers(self) -> int:
        return max(0, len(self._threads) - 1)

    @property
    def open_connections(self) -> int:
        """Client connections not closed yet (a request being served keeps its connection open)."""
        with self._conns_lock:
            return len(self._conns)

    # ---- connections: parked until readable, then served by a worker ---------------------

    def header_begin(self, sock: socket.socket, seconds: float) -> None:
        """A worker starts reading a request's headers: past ``seconds``, the watch thread shuts
        the connection down (the worker's read then ends)."""
        with self._park_lock:
            self._header_deadlines[sock] = time.monotonic() + seconds

    def header_end(self, sock: socket.socket) -> None:
        with self._park_lock:
            self._header_deadlines.pop(sock, None)

    def process_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.idle_timeout)
        host = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        with self._conns_lock:
            over = self._by_host.get(host, 0) >= self.max_per_address
            if not over:
                self._conns[request] = host
                self._by_host[host] = self._by_host.get(host, 0) + 1
        if over:  # one address may not hold every connection the server has
            self._refuse(request)
            super().shutdown_request(request)
            return
        self._park(request, client_address)

    def _refuse(self, request: Any) -> None:
        try:
            request.sendall(_BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def _park(self, request: Any, client_address: Any) -> None:
        with self._park_lock:
            if self._closing or len(self._parked) >= self.max_parked:
                refuse = True
            else:
                refuse = False
                self._parked[request] = time.monotonic() + self.idle_timeout
                self._selector.register(request, selectors.EVENT_READ, client_address)
        if refuse:
            self._refuse(request)
            return
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _watch(self) -> None:
        """The selector thread: readable connections go to the workers, silent ones expire."""
        while not self._closing:
            try:
                events = self._selector.select(0.5)
            except (OSError, ValueError):
                return  # closed under us: the server is stopping
            ready = []
            with self._park_lock:
                for key, _ in events:
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                        continue
                    if self._parked.pop(key.fileobj, None) is None:
                        continue  # unparked since select() returned (the server is closing)
                    self._selector.unregister(key.fileobj)
                    ready.append((key.fileobj, key.data))
                now = time.monotonic()
                late = [s for s, deadline in self._header_deadlines.items() if deadline <= now]
                for s in late:
                    del self._header_deadlines[s]
                expired = [s for s, deadline in self._parked.items() if deadline <= now]
                for s in expired:
                    self._selector.unregister(s)
                    del self._parked[s]
            for item in ready:
                try:
                    self._pending.put_nowait(item)
                except queue.Full:
                    self._refuse(item[0])
            for s in expired:
                self.shutdown_request(s)
            for s in late:  # headers too slow: the worker reading them gets an end of file now
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _work(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            request, client_address = item
            keep = False
            try:
                handler = self.RequestHandlerClass(request, client_address, self)
                keep = getattr(handler, "keep_alive", False)
            except Exception:  # noqa: BLE001
                self.handle_error(request, client_address)
            if keep and not self._closing:
                self._park(request, client_address)
            else:
                self.shutdown_request(request)

    # ---- stopping ------------------------------------------------------------------------

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            host = self._conns.pop(request, None)
            if host is not None:
                left = self._by_host.get(host, 1) - 1
                if left > 0:
                    self._by_host[host] = left
                else:
                    self._by_host.pop(host, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def server_close(self) -> None:
        super().server_close()
        with self._park_lock:
            self._closing = True
            parked = list(self._parked)
            self._parked.clear()
            for s in parked:
                self._selector.unregister(s)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        for s in parked:
            self.shutdown_request(s)
        while True:  # connections still waiting for a worker are closed unanswered
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.shutdown_request(item[0])
        for _ in range(self.workers):
            self._pending.put(None)
        if self._threads:
            self._threads[0].join(timeout=2)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        logger.exception("loopback hub: unexpected error")
