"""The resolver rate limit of the loopback Hub: a fixed window per token (or per client address).

The real Hub counts every ``/resolve/`` URL (about 3,000 per 5 minutes anonymous); past its quota
it answers ``429`` with ``RateLimit: "resolvers";r=0;t=<seconds to reset>`` and
``RateLimit-Policy: "fixed window";"resolvers";q=<quota>;w=<window>``, without ``Retry-After``.
The ``RateLimit`` header comes on every resolve answer, so a client can pace itself before ``r``
reaches 0. A window starts at a key's first resolve and lasts ``window`` seconds.

Stdlib only; no Textual.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

__all__ = ["ResolverQuota"]


class ResolverQuota:
    """``quota`` resolves per ``window`` seconds and per key; thread-safe."""

    def __init__(self, quota: int, window: float = 300.0, clock: Callable[[], float] = time.monotonic):
        if quota < 1:
            raise ValueError("the resolver quota must be at least 1")
        if not window > 0:
            raise ValueError("the rate-limit window must be more than 0 seconds")
        self.quota = int(quota)
        self.window = float(window)
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, resolves counted)
        self.refused = 0

    def reset(self) -> None:
        """Forget every window: the next resolve of each key opens a fresh one (benchmarks use it
        to give every run the same quota on the same endpoint)."""
        with self._lock:
            self._windows.clear()

    def policy(self) -> str:
        return f'"fixed window";"resolvers";q={self.quota};w={math.ceil(self.window)}'

    def take(self, key: str) -> tuple[bool, list[tuple[str, str]]]:
        """Count one resolve for ``key``: (allowed, the headers the answer carries)."""
        now = self.clock()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            allowed = used < self.quota
            if allowed:
                used += 1
            else:
                self.refused += 1
            self._windows[key] = (start, used)
            if len(self._windows) > 10_000:  # bounded: forget windows that are over
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        reset = max(1, math.ceil(start + self.window - now))
        headers = [
            ("RateLimit", f'"resolvers";r={self.quota - used};t={reset}'),
            ("RateLimit-Policy", self.policy()),
        ]
        return allowed, headers
