"""The resolver budget: one per endpoint and token in a process, shared by every worker and job.

The Hub counts every ``/resolve/`` URL against a quota (about 3,000 per 5 minutes anonymous) and
says where a client stands on every answer::

    RateLimit: "resolvers";r=<remaining>;t=<seconds to reset>
    RateLimit-Policy: "fixed window";"resolvers";q=<quota>;w=<window>

Past the quota it answers ``429``, often without ``Retry-After``. The budget reads these headers
on every answer, and before each resolve waits (cancellably, visibly) when the window is spent,
so a big job paces itself instead of hammering into 429s; a 429 that comes anyway holds every
worker until the window resets.

``set_budget_factory`` lets another runner (the Dask cluster) plug in a budget shared across
processes; anything with ``before_resolve``, ``after_response`` and ``spent`` will do.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Callable, Mapping

from pools.errors import Cancelled

_PARAM = re.compile(r"""(?:^|;)\s*([a-z]+)\s*=\s*"?([0-9]+(?:\.[0-9]+)?)"?""", re.IGNORECASE)


def parse_rate_limit(value: str | None) -> tuple[str | None, dict[str, float]]:
    """``'"resolvers";r=0;t=120'`` -> ``("resolvers", {"r": 0.0, "t": 120.0})``.

    For ``RateLimit-Policy`` the policy kind (``"fixed window"``) comes first: the name is the first
    item that is followed by parameters. Remote text: anything malformed reads as nothing.
    """
    if not value or len(value) > 500:
        return None, {}
    items = [part.strip() for part in value.split(",")][0]  # the first policy is the one in force
    name = None
    params: dict[str, float] = {}
    for part in items.split(";"):
        part = part.strip()
        if "=" in part:
            match = _PARAM.match(part)
            if match:
                params[match.group(1).lower()] = float(match.group(2))
        elif part:
            name = part.strip('"')  # the last bare token before the parameters is the name
    return name, params


def format_wait(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.999))
    return f"{seconds // 60}:{seconds % 60:02d}"


def wait_a_step(left: float, cancel: threading.Event | None,
                on_wait: Callable[[float, str], None] | None, least: float = 0.0) -> None:
    """Say the quota is spent for ``left`` seconds, then sleep at most a second of it (at least
    ``least``): the wait stays visible, a cancel bites at once (``Cancelled``)."""
    if on_wait is not None:
        on_wait(left, f"rate-limited: resolver quota spent, resumes in {format_wait(left)}")
    step = min(max(left, least), 1.0)
    if cancel is None:
        time.sleep(step)
    elif cancel.wait(step):
        raise Cancelled()


class ResolverBudget:
    """Paces resolves against the quota the endpoint announces; see the module docstring."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_wait: float = 3600.0):
        self._clock = clock
        self._cond = threading.Condition()
        self._remaining: float | None = None  # resolves left in this window, as far as we know
        self._reset_at = 0.0  # clock time the window resets, by the latest answer (tells windows apart)
        self._earliest = 0.0  # ... by the tightest answer of this window: when to resume
        self._quota: float | None = None
        self._window: float | None = None
        self._spent = 0
        self.max_wait = max_wait  # a hostile "come back in a year" is capped

    def spent(self) -> int:
        with self._cond:
            return self._spent

    def before_resolve(self, cancel: threading.Event | None = None,
                       on_wait: Callable[[float, str], None] | None = None) -> None:
        """Block while the window is spent; count one resolve. ``Cancelled`` at once on a cancel."""
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            with self._cond:
                now = self._clock()
                if self._remaining is not None and now >= self._earliest:
                    self._remaining = self._quota  # a new window (unknown when the policy was never said)
                if self._remaining is None or self._remaining > 0:
                    if self._remaining is not None:
                        self._remaining -= 1
                    self._spent += 1
                    return
                left = self._earliest - now
            wait_a_step(left, cancel, on_wait)

    def after_response(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Read the rate-limit headers of any answer; on a 429, the seconds to wait (else None)."""
        name, limit = parse_rate_limit(headers.get("RateLimit"))
        _, policy = parse_rate_limit(headers.get("RateLimit-Policy"))
        resolvers = name in (None, "resolvers")
        retry_after = _seconds(headers.get("Retry-After"))
        with self._cond:
            now = self._clock()
            if resolvers and "q" in policy:
                self._quota = policy["q"]
            if resolvers and "w" in policy:
                self._window = policy["w"]
            if resolvers and "r" in limit and "t" in limit:
                reset_at = now + min(limit["t"], self.max_wait)
                if self._remaining is None or reset_at > self._reset_at + 1.0:
                    self._remaining = limit["r"]  # a new window: the server's count stands
                    self._earliest = reset_at
                else:  # the same window: answers to requests still in flight may lag behind ours
                    self._remaining = min(self._remaining, limit["r"])
                    # t is whole seconds, rounded up: every answer bounds the reset from above, and
                    # the tightest bound saves up to a second of waiting per window
                    self._earliest = min(self._earliest, reset_at)
                self._reset_at = reset_at
            if status != 429:
                return None
            wait = limit.get("t") if "t" in limit else retry_after
            if wait is None:
                wait = self._window if self._window is not None else 1.0
            wait = min(max(wait, 0.0), self.max_wait)
            if resolvers:
                self._remaining = 0
                self._reset_at = max(self._reset_at, now + wait)
                self._earliest = max(self._earliest, now + wait)
            self._cond.notify_all()
            return wait


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None and len(value) < 40 else None
    except ValueError:
        return None


_BUDGETS: dict[tuple[str, str | None], ResolverBudget] = {}
_LOCK = threading.Lock()
_FACTORY: Callable[[str, str | None], ResolverBudget] | None = None


def budget_for(endpoint: str, token: str | None) -> ResolverBudget:
    """The process-wide budget of ``endpoint`` for ``token`` (anonymous when None)."""
    key = (endpoint.rstrip("/"), token)
    with _LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = (_FACTORY or (lambda e, t: ResolverBudget()))(key[0], token)
            _BUDGETS[key] = budget
        return budget


def set_budget_factory(factory: Callable[[str, str | None], ResolverBudget] | None) -> None:
    """Make later budgets with ``factory`` (None: the in-process one); forgets the budgets made so far."""
    global _FACTORY
    with _LOCK:
        _FACTORY = factory
        _BUDGETS.clear()
