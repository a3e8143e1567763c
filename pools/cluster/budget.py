"""A resolver budget shared by every worker of a Dask cluster.

The Hub's resolver quota belongs to the token (or the IP), not to a process. The state of the
in-process :class:`pools.budget.ResolverBudget` (resolves left in the window, when it resets,
the quota and window the Hub announced, resolves spent) is kept in the scheduler's metadata and changed under a Dask ``Lock``; each change replays the in-process budget's own
rules on that state, so the pacing is the same as on one machine, only shared. Nothing is held
in a worker: a worker that dies loses nothing, and any number of instances of one name agree.

Names carry a hash of the endpoint and token key, never the token.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable, Mapping

from distributed import Lock, get_client

from ..budget import ResolverBudget, format_wait, set_budget_factory
from ..http import Cancelled

_FIELDS = ("_remaining", "_reset_at", "_earliest", "_quota", "_window", "_spent")


def budget_name(endpoint: str, token_key: str | None) -> str:
    digest = hashlib.sha256(f"{endpoint.rstrip('/')}|{token_key or ''}".encode()).hexdigest()[:24]
    return f"cheesechaser-budget-{digest}"


def _client():
    return get_client()  # the worker's client on a worker, the default one elsewhere


class _Wait(Exception):
    def __init__(self, left: float):
        self.left = left


def _raise_wait(left: float, reason: str) -> None:
    raise _Wait(left)


class SharedBudget:
    """The :class:`~pools.budget.ResolverBudget` interface over scheduler-held state ``name``."""

    def __init__(self, name: str, *, lock_timeout: float = 60.0):
        self.name = name
        self.lock_timeout = lock_timeout

    def _replay(self, change: Callable[[ResolverBudget], object]):
        """Run ``change`` on a budget loaded from the shared state, under the shared lock, and store it."""
        lock = Lock(f"{self.name}-lock")
        if not lock.acquire(timeout=self.lock_timeout):
            raise TimeoutError("the cluster's resolver budget is locked")  # a dead holder's lease expires first
        try:
            client = _client()
            key = ["cheesechaser-budget", self.name]
            budget = ResolverBudget(clock=time.time)  # wall time: the state is read by many processes
            state = client.get_metadata(key, None)  # None: the first use of this name
            if state:
                for name in _FIELDS:
                    setattr(budget, name, state.get(name.lstrip("_"), getattr(budget, name)))
            result = change(budget)
            client.set_metadata(key, {name.lstrip("_"): getattr(budget, name) for name in _FIELDS})
            return result
        finally:
            lock.release()

    def spent(self) -> int:
        return int(self._replay(lambda b: b.spent()))

    def before_resolve(self, cancel: threading.Event | None = None,
                       on_wait: Callable[[float, str], None] | None = None) -> None:
        """Block while the cluster's window is spent; count one resolve. ``Cancelled`` on a cancel."""
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()

            def take(budget: ResolverBudget):
                try:
                    budget.before_resolve(on_wait=_raise_wait)  # returns at once, or asks to wait
                except _Wait as wait:
                    return wait.left
                return None

            left = self._replay(take)
            if left is None:
                return
            if on_wait is not None:
                on_wait(left, f"rate-limited: resolver quota spent, resumes in {format_wait(left)}")
            step = min(max(left, 0.05), 1.0)
            if cancel is not None:
                if cancel.wait(step):
                    raise Cancelled()
            else:
                threading.Event().wait(step)

    def after_response(self, status: int, headers: Mapping[str, str]) -> float | None:
        if status != 429 and headers.get("RateLimit") is None and headers.get("RateLimit-Policy") is None:
            return None  # nothing to learn: no round trip to the scheduler
        plain = {k: headers.get(k) for k in ("RateLimit", "RateLimit-Policy", "Retry-After")
                 if headers.get(k) is not None}
        return self._replay(lambda b: b.after_response(status, plain))


def use_shared_budgets() -> None:
    """In this (worker) process, make every resolver budget a cluster-wide one."""
    set_budget_factory(lambda endpoint, token_key: SharedBudget(budget_name(endpoint, token_key)))
