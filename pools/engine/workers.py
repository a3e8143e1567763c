"""What the workers are doing, told to the downloader's listeners as :class:`pools.events.WorkerState`.

One :class:`WorkerStates` per downloader; every stage reports through it, so the Downloads screen
shows one row per worker whatever stage it is in.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from pools import events as ev

THROTTLE = 0.1  # seconds: a worker's byte counts are told at most this often


class WorkerStates:
    """``state(wid, ...)`` emits a worker's state; ``on_wait`` makes the transport's wait callback."""

    def __init__(self, emit: Callable[[Any], None]):
        self.emit = emit
        self._last: dict[int, float] = {}

    def state(self, wid: int, state: str, job=None, archive: str = "", filename: str = "",
              done: int = 0, total: int = 0, throttle: bool = False) -> None:
        if throttle:
            now = time.monotonic()
            if now - self._last.get(wid, 0.0) < THROTTLE:
                return
            self._last[wid] = now
        self.emit(ev.WorkerState(wid, state, job.id if job else -1, archive, filename, done, total))

    def on_wait(self, wid: int, job, archive: str) -> Callable[[float, str], None]:
        """What the transport calls while this worker waits: a visible ``rate-limited``/``retrying`` state."""
        def on_wait(seconds: float, reason: str) -> None:
            self.emit(ev.WorkerState(wid, ev.wait_state(reason), job.id, archive, wait=seconds, reason=reason))
        return on_wait
