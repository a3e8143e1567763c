"""A request's headers on a deadline: what keeps a slow client (slowloris) from holding a worker."""

from __future__ import annotations

import socket

HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers


class HeaderClock:
    """``rfile`` with a deadline on the request line and headers: the server's watch thread shuts
    the connection down at the deadline, so a client that sends a byte now and then (slowloris)
    is cut off then, not at each read's idle timeout."""

    def __init__(self, raw, sock: socket.socket, server):
        self.raw, self.sock, self.server = raw, sock, server
        self.running = False

    def start(self, seconds: float) -> None:
        self.running = True
        self.server.header_begin(self.sock, seconds)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.header_end(self.sock)

    def readline(self, *args):
        return self.raw.readline(*args)

    def read(self, *args):
        return self.raw.read(*args)

    def peek(self, *args):
        return self.raw.peek(*args)

    def close(self) -> None:
        self.raw.close()
