"""What ``batch_download_to_directory`` shows and stops on, from the engine's events.

:class:`TerminalBar` is a tqdm bar of ids settled, drawn only on a terminal (as cheesechaser's
bars are, unless ``silent=True``). :class:`StopAfter` cancels a job once it has brought ``n``
resources: cheesechaser's ``max_downloads`` counts downloads, not the ids it tried.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

from pools import events as ev


class TerminalBar:
    """A listener drawing ``Batch Downloading`` with tqdm on stderr when it is a terminal."""

    def __init__(self, total: int | None, silent: bool = False, stream=None):
        stream = stream if stream is not None else sys.stderr
        self._bar = None
        if not silent and getattr(stream, "isatty", lambda: False)():
            from tqdm import tqdm  # lazy: only a terminal draws it

            self._bar = tqdm(total=total, desc="Batch Downloading", unit="id", file=stream)
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        if self._bar is None:
            return
        if isinstance(event, ev.ResourceDone | ev.ResourceFailed):
            n = 1
        elif isinstance(event, ev.ResourcesMissing):
            n = len(event.ids)
        else:
            return
        with self._lock:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class StopAfter:
    """A listener that calls ``stop()`` once ``n`` resources are in the destination (downloaded
    or already there); a few more may land meanwhile, as with cheesechaser."""

    def __init__(self, n: int, stop: Callable[[], None]):
        self.left = n
        self.stop = stop
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        if not isinstance(event, ev.ResourceDone):
            return
        with self._lock:
            self.left -= 1
            reached = self.left == 0
        if reached:
            self.stop()
