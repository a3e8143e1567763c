"""Seeded fault injection for the loopback Hub.

A :class:`FaultConfig` says how often each kind of failure happens; a :class:`FaultDice` owns the
seeded ``random.Random`` and draws one :class:`Fault` per request, under a lock, so a run with the
same seed and the same request order fails the same way.

Kinds, in the order their probability bands are laid out on one uniform draw (so the rates are
exact per-request probabilities and must sum to at most 1):

- ``"429"``: ``429 Too Many Requests`` with ``Retry-After``;
- ``"error"``: one of ``error_codes`` (5xx), empty JSON error body;
- ``"drop"``: headers and about half of the body, then the connection is reset;
- ``"truncate"``: headers with the real ``Content-Length``, all but the tail of the body, then a
  clean close (the client sees fewer bytes than announced);
- ``"corrupt"``: the full body with one byte flipped.

``latency_ms`` is added before every request in scope, whatever the draw.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable, Pattern, Sequence, Union

__all__ = ["FaultConfig", "Fault", "FaultDice", "FAULT_KINDS"]

FAULT_KINDS = ("429", "error", "drop", "truncate", "corrupt")

PathFilter = Union[None, str, Pattern[str], Sequence[Union[str, Pattern[str]]]]


@dataclass(frozen=True)
class FaultConfig:
    """How a :class:`~app.hub.server.HubServer` misbehaves.

    ``paths`` restricts faults to some files: a glob (``"*.tar"``, matched against the path in
    the repo and against its basename), a string ``"re:<regex>"``, a compiled pattern (``search``
    on the path in the repo), or a sequence of those (any match). ``None`` means every file.

    Faults always apply to file GETs (``/resolve/``, ranged or not). ``on_head`` extends them to
    file HEADs (429/error only, ``drop`` closes without an answer), ``on_api`` to ``/api/`` calls
    (matched against the URL path).
    """

    latency_ms: float = 0
    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (500, 502, 503)
    rate_429: float = 0.0
    retry_after: int = 1
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    corrupt_rate: float = 0.0
    seed: int = 0
    paths: PathFilter = None
    on_head: bool = False
    on_api: bool = False

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.error_rate, self.drop_rate, self.truncate_rate, self.corrupt_rate)
        if any(r < 0 or r > 1 for r in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must add up to at most 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not self.error_codes:
            raise ValueError("error_codes must not be empty")
        object.__setattr__(self, "error_codes", tuple(int(c) for c in self.error_codes))

    def describe(self) -> str:
        """What a person reads: ``40 ms latency, 5% errors (500/502/503), 1% 429s on *.tar``."""
        parts = [f"{self.latency_ms:g} ms latency"] if self.latency_ms else []
        for rate, what in ((self.error_rate, f"errors ({'/'.join(map(str, self.error_codes))})"),
                           (self.rate_429, f"429s (Retry-After {self.retry_after} s)"),
                           (self.drop_rate, "dropped connections"), (self.truncate_rate, "cut bodies"),
                           (self.corrupt_rate, "corrupted bytes")):
            if rate:
                parts.append(f"{rate:.0%} {what}" if rate * 100 == int(rate * 100) else f"{rate:.2%} {what}")
        where = ("every file" if self.paths is None else
                 ", ".join(map(str, self.paths)) if isinstance(self.paths, (list, tuple)) else str(self.paths))
        scope = " and HEADs" * self.on_head + " and API calls" * self.on_api
        return f"{', '.join(parts)} on {where}{scope}" if parts else "none"

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.error_rate
            or self.rate_429
            or self.drop_rate
            or self.truncate_rate
            or self.corrupt_rate
        )


@dataclass(frozen=True)
class Fault:
    """What to do to one request. ``kind`` is ``None`` (serve normally) or one of FAULT_KINDS."""

    kind: str | None = None
    status: int = 0
    latency_s: float = 0.0
    # Where in the body things go wrong, as a fraction of its length (drop, corrupt).
    where: float = 0.5

    def __bool__(self) -> bool:
        return self.kind is not None or self.latency_s > 0


NO_FAULT = Fault()


def _compile_filter(paths: PathFilter) -> list[Pattern[str] | str] | None:
    if paths is None:
        return None
    items: Iterable[str | Pattern[str]]
    if isinstance(paths, (str, re.Pattern)):
        items = [paths]
    else:
        items = paths
    out: list[Pattern[str] | str] = []
    for item in items:
        if isinstance(item, re.Pattern):
            out.append(item)
        elif item.startswith("re:"):
            out.append(re.compile(item[3:]))
        else:
            out.append(item)
    return out


@dataclass
class FaultDice:
    """The seeded, thread-safe source of :class:`Fault` decisions for one :class:`FaultConfig`."""

    config: FaultConfig
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _filter: list[Pattern[str] | str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._filter = _compile_filter(self.config.paths)

    def in_scope(self, kind: str, path: str) -> bool:
        """``kind`` is ``"get"``, ``"head"`` or ``"api"``; ``path`` is the path in the repo (or URL)."""
        cfg = self.config
        if not cfg.active:
            return False
        if kind == "head" and not cfg.on_head:
            return False
        if kind == "api" and not cfg.on_api:
            return False
        if self._filter is None:
            return True
        base = path.rsplit("/", 1)[-1]
        for pat in self._filter:
            if isinstance(pat, str):
                if fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(base, pat):
                    return True
            elif pat.search(path):
                return True
        return False

    def draw(self, kind: str, path: str) -> Fault:
        if not self.in_scope(kind, path):
            return NO_FAULT
        cfg = self.config
        with self._lock:
            u = self._rng.random()
            where = self._rng.random()
            code = self._rng.choice(cfg.error_codes)
        latency = cfg.latency_ms / 1000.0
        edge = 0.0
        for name, rate in (
            ("429", cfg.rate_429),
            ("error", cfg.error_rate),
            ("drop", cfg.drop_rate),
            ("truncate", cfg.truncate_rate),
            ("corrupt", cfg.corrupt_rate),
        ):
            edge += rate
            if rate and u < edge:
                status = 429 if name == "429" else code if name == "error" else 0
                return Fault(kind=name, status=status, latency_s=latency, where=where)
        return Fault(kind=None, latency_s=latency, where=where) if latency else NO_FAULT
