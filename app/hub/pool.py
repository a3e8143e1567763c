"""The loopback Hub's listening socket and its bounded pool of worker threads.

``http.server.ThreadingHTTPServer`` starts a thread per connection, without a bound: 200 slow
connections are 200 threads. :class:`HubHTTPServer` hands accepted connections to a fixed pool of
``workers`` threads through a queue of at most ``backlog`` connections; past that, a connection is
answered ``503`` and closed at once. A connection holds its worker while it lives, so each one
has a deadline for a silent peer (``idle_timeout``: the time to send a request line and headers,
or to read an answer). ``close_connections`` cuts the open ones when the hub stops.

Stdlib only; no Textual.
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import threading
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from .handler import HubRequestHandler

if TYPE_CHECKING:
    from .server import HubServer

__all__ = ["HubHTTPServer", "WORKERS", "BACKLOG", "IDLE_TIMEOUT"]

logger = logging.getLogger("app.hub.server")  # one logger for the whole loopback hub

WORKERS = 128  # per port: the engine keeps a keep-alive connection per worker to each origin, jobs add up
BACKLOG = 256
IDLE_TIMEOUT = 30.0
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n"
         b"Retry-After: 1\r\nConnection: close\r\n\r\nToo many connections now")


class HubHTTPServer(HTTPServer):
    """Serves ``hub`` on ``addr`` with a bounded thread pool; ``role`` is "hub" or "cdn"."""

    request_queue_size = BACKLOG  # the listen backlog
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], hub: "HubServer", role: str = "hub", *,
                 workers: int = WORKERS, backlog: int = BACKLOG, idle_timeout: float = IDLE_TIMEOUT):
        self.hub = hub
        self.role = role
        self.idle_timeout = idle_timeout
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._pending: queue.Queue[tuple[Any, Any] | None] = queue.Queue(maxsize=backlog)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, HubRequestHandler)
        self._workers = [
            threading.Thread(target=self._work, name=f"loopback-{role}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._workers:
            t.start()

    @property
    def workers(self) -> int:
        return len(self._workers)

    def process_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.idle_timeout)
        try:
            self._pending.put_nowait((request, client_address))
        except queue.Full:
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._conns_lock:
            self._conns.add(request)

    def _work(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
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
        while True:  # connections still waiting for a worker are closed unanswered
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.shutdown_request(item[0])
        for _ in self._workers:
            self._pending.put(None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        logger.exception("loopback hub: unexpected error")
