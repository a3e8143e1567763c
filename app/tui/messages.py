"""Messages between the app's parts, and the pump that turns engine events into messages.

Engine callbacks run on download worker threads and can fire thousands of times a second. The
:class:`EventPump` only appends to a lock-protected buffer and posts one small, replaceable
:class:`EngineEventsReady` when the buffer goes from empty to non-empty; the app drains the whole
buffer at most ~10 times a second. So the UI sees one message per flush, never one per event.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from textual.message import Message


class EngineEventsReady(Message):
    """Engine events wait in the pump's buffer (posted from worker threads)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineEventsReady)


class DownloadsChanged(Message):
    """The downloads model changed; screens that show it refresh (posted on the UI thread)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadsChanged)


class DemoReady(Message):
    """The demo dataset is on disk and the loopback Hub serves it at ``endpoint``."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint


class DemoFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


@dataclass(frozen=True)
class ArchiveSummary:
    """What the archives table shows about one archive's index (the index itself is not kept)."""

    archive: str
    filesize: int | None
    n_files: int
    n_ids: int
    id_min: int | None
    id_max: int | None
    hash: str | None
    hash_lfs: str | None
    n_unrecognized: int
    has_index: bool = True
    error: str | None = None


class IndexLoaded(Message):
    """One archive's index summary arrived from a background worker."""

    def __init__(self, summary: ArchiveSummary) -> None:
        super().__init__()
        self.summary = summary


class EventPump:
    """The engine's ``on_event`` callback: buffer events, signal the UI once per batch."""

    def __init__(self, signal: Callable[[], Any]) -> None:
        self._signal = signal
        self._lock = threading.Lock()
        self._buffer: list[Any] = []
        self._signalled = False

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._buffer.append(event)
            if self._signalled:
                return
            self._signalled = True
        self._signal()

    def drain(self) -> list[Any]:
        with self._lock:
            events, self._buffer = self._buffer, []
            self._signalled = False
        return events

    @property
    def pending(self) -> int:
        # not __len__: an empty pump must stay truthy for ``if on_event:`` checks
        with self._lock:
            return len(self._buffer)
