"""A resolver budget shared by every worker of a Dask cluster, leased out in batches.

The Hub's resolver quota belongs to the token (or the IP), not to a process. The state of the
in-process :class:`pools.transport.budget.ResolverBudget` (resolves left in the window, when it resets,
the quota and window the Hub announced, resolves spent) is kept in the scheduler's metadata and
changed under a Dask ``Lock``; each change replays the in-process budget's own rules on that
state, so the pacing is the same as on one machine, only shared.

A round trip to the scheduler per resolve would serialise every worker on one lock, so a worker
process *leases* resolves in batches: the shared count of resolves left in the window drops by
the whole lease at once (the quota stays held cluster-wide: leased resolves are spent as far as
anyone else can tell), the process hands them to its threads without asking again, and gives
back what it did not use when its task ends (a lease expires with its window). Leases are a
small share of what is left, so a nearly spent window is shared out one resolve at a time.
What the Hub says of the window rides along with the next lease; a 429, or a window or policy
this process has not seen before, is told at once. A worker that dies loses only its lease until
the window resets.

Names carry a hash of the endpoint and token key, never the token.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import Callable, Mapping

from distributed import Lock, get_client

from pools.errors import Cancelled
from pools.transport.budget import ResolverBudget, parse_rate_limit, set_budget_factory, wait_a_step

_FIELDS = ("_remaining", "_reset_at", "_earliest", "_quota", "_window", "_spent")
MAX_LEASE = 64  # resolves one lease takes at most
LEASE_SHARE = 16  # a lease takes at most 1/16 of what is left in the window
UNKNOWN_LEASE = 64  # resolves leased while the Hub has announced no quota...
UNKNOWN_TTL = 2.0  # ...for this long (then ask again: another process may have learnt it)
REFILL_AT = 0.25  # a lease down to this share of itself is renewed ahead, in the background


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


def _plain(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: headers.get(k) for k in ("RateLimit", "RateLimit-Policy", "Retry-After")
            if headers.get(k) is not None}


def _aged(plain: dict[str, str], age: float) -> dict[str, str]:
    """``plain`` as if heard ``age`` seconds later: its seconds-to-reset shortened by ``age``."""
    name, limit = parse_rate_limit(plain.get("RateLimit"))
    if "r" not in limit or "t" not in limit:
        return plain
    out = dict(plain)
    out["RateLimit"] = f'"{name or "resolvers"}";r={int(limit["r"])};t={max(0.0, limit["t"] - age):.3f}'
    return out


class SharedBudget:
    """The :class:`~pools.transport.budget.ResolverBudget` interface over scheduler-held state ``name``."""

    def __init__(self, name: str, *, lock_timeout: float = 60.0, clock: Callable[[], float] = time.time):
        self.name = name
        self.lock_timeout = lock_timeout
        self._clock = clock  # wall time: the state is read by many processes
        self._cond = threading.Condition()
        self._tokens = 0  # resolves leased and not used yet...
        self._lease_until = 0.0  # ...usable until then (the window's reset, or UNKNOWN_TTL)
        self._lease_window = 0.0  # the shared window's reset time the lease was taken in
        self._unknown = False  # the lease was taken while no quota was known
        self._unsent = 0  # resolves used since the last report to the shared state
        self._heard: tuple[float, dict[str, str]] | None = None  # the Hub's latest word, not yet passed on
        self._seen_window = 0.0  # reset time of the last window told to the shared state
        self._leasing = False
        self._granted = 0  # the size of the last lease
        self._lock = None  # the Dask Lock, made once in this process
        self._replaying = threading.Lock()  # one round trip at a time from this process

    # -- the shared state
    def _replay(self, change: Callable[[ResolverBudget], object]):
        """Run ``change`` on a budget loaded from the shared state, under the shared lock, and store it."""
        with self._replaying:
            if self._lock is None:
                self._lock = Lock(f"{self.name}-lock")
            return self._replay_locked(self._lock, change)

    def _replay_locked(self, lock, change):
        if not lock.acquire(timeout=self.lock_timeout):
            raise TimeoutError("the cluster's resolver budget is locked")  # a dead holder's lease expires first
        try:
            client = _client()
            key = ["cheesechaser-budget", self.name]
            budget = ResolverBudget(clock=self._clock)
            state = client.get_metadata(key, None)  # None: the first use of this name
            if state:
                for name in _FIELDS:
                    setattr(budget, name, state.get(name.lstrip("_"), getattr(budget, name)))
            result = change(budget)
            client.set_metadata(key, {name.lstrip("_"): getattr(budget, name) for name in _FIELDS})
            return result
        finally:
            lock.release()

    def _take_unsent(self) -> tuple[int, tuple[float, dict[str, str]] | None]:
        with self._cond:
            unsent, heard = self._unsent, self._heard
            self._unsent, self._heard = 0, None
            return unsent, heard

    def _settle(self, budget: ResolverBudget, unsent: int, heard) -> None:
        """In a replay: count resolves used, and apply what the Hub said (aged to now)."""
        budget._spent += unsent
        if heard is not None:
            at, plain = heard
            budget.after_response(200, _aged(plain, max(0.0, self._clock() - at)))

    def spent(self) -> int:
        unsent, heard = self._take_unsent()

        def read(budget: ResolverBudget) -> int:
            self._settle(budget, unsent, heard)
            return budget.spent()
        return int(self._replay(read))

    def _lease(self) -> float | None:
        """One round trip: a lease of resolves for this process (None), or seconds to wait."""
        unsent, heard = self._take_unsent()

        def lease(budget: ResolverBudget):
            self._settle(budget, unsent, heard)
            now = self._clock()
            if budget._remaining is not None and now >= budget._earliest:
                budget._remaining = budget._quota  # a new window, as the in-process budget does
                if budget._remaining is not None:  # its end, until the Hub says (the next answer)
                    budget._reset_at = budget._earliest = now + (budget._window or UNKNOWN_TTL)
            if budget._remaining is None:  # no quota announced (yet): the in-process budget does not wait
                return UNKNOWN_LEASE, now + UNKNOWN_TTL, 0.0, True
            if budget._remaining <= 0:
                return 0, budget._earliest - now, budget._reset_at, False
            grant = int(max(1, min(MAX_LEASE, math.ceil(budget._remaining / LEASE_SHARE), budget._remaining)))
            budget._remaining -= grant
            return grant, budget._earliest, budget._reset_at, False

        grant, until, window, unknown = self._replay(lease)
        if grant == 0:
            return max(until, 0.0)
        with self._cond:
            if self._tokens > 0 and abs(self._lease_window - window) > 1.0:
                self._tokens = 0  # what is left of another window's lease is gone with it
            self._tokens += grant
            self._granted = grant
            self._lease_until, self._lease_window, self._unknown = until, window, unknown
        return None

    # -- the ResolverBudget interface
    def before_resolve(self, cancel: threading.Event | None = None,
                       on_wait: Callable[[float, str], None] | None = None) -> None:
        """Block while the cluster's window is spent; count one resolve. ``Cancelled`` on a cancel."""
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            with self._cond:
                if self._tokens > 0 and self._clock() < self._lease_until:
                    self._tokens -= 1
                    self._unsent += 1
                    if not self._leasing and self._tokens <= self._granted * REFILL_AT:
                        self._leasing = True  # renewed before it runs out: no thread waits for it
                        threading.Thread(target=self._refill, daemon=True, name="budget-refill").start()
                    return
                if self._leasing:  # another thread of this process is asking: its lease is ours too
                    self._cond.wait(0.05)
                    continue
                self._leasing = True
                self._tokens = 0  # an expired lease
            try:
                left = self._lease()
            finally:
                with self._cond:
                    self._leasing = False
                    self._cond.notify_all()
            if left is None:
                continue
            wait_a_step(left, cancel, on_wait, least=0.05)

    def _refill(self) -> None:
        try:
            self._lease()  # a spent window: the threads wait as they run out, then ask themselves
        except Exception:  # noqa: BLE001 - a lost scheduler: the next resolve asks and says so
            pass
        finally:
            with self._cond:
                self._leasing = False
                self._cond.notify_all()

    def after_response(self, status: int, headers: Mapping[str, str]) -> float | None:
        if status != 429 and headers.get("RateLimit") is None and headers.get("RateLimit-Policy") is None:
            return None  # nothing to learn
        plain = _plain(headers)
        now = self._clock()
        if status != 429:
            _, limit = parse_rate_limit(plain.get("RateLimit"))
            reset = now + limit["t"] if "t" in limit else None
            with self._cond:
                news = self._unknown or (reset is not None and reset > self._seen_window + 1.0)
                if not news:  # the window everyone knows: passed on with the next lease
                    self._heard = (now, plain)
                    return None
                self._seen_window = max(self._seen_window, reset or 0.0)
        unsent, heard = self._take_unsent()
        with self._cond:
            if status == 429:
                self._tokens = 0  # the Hub says the window is spent, whatever our lease said

        def tell(budget: ResolverBudget):
            self._settle(budget, unsent, heard)
            return budget.after_response(status, plain)
        wait = self._replay(tell)
        with self._cond:
            if self._unknown:
                self._tokens = 0  # leased before the quota was known: lease again, within it
                self._unknown = False
        return wait

    def give_back(self) -> None:
        """Return the unused resolves of this process's lease and report those used (a task's end)."""
        with self._cond:
            # a thread leasing now settles what was used before it asked, not what was used since:
            # wait for it (a task's end must leave no resolve unreported), then settle the rest
            self._cond.wait_for(lambda: not self._leasing, timeout=self.lock_timeout)
            if self._leasing:
                return  # a lease stuck past the lock's timeout: the next task end settles
            tokens, window, unknown = self._tokens, self._lease_window, self._unknown
            self._tokens = 0
        unsent, heard = self._take_unsent()
        if not unsent and heard is None and (not tokens or unknown):
            return

        def back(budget: ResolverBudget):
            self._settle(budget, unsent, heard)
            if tokens and not unknown and budget._remaining is not None and abs(budget._reset_at - window) < 1.0:
                budget._remaining = min(budget._remaining + tokens, budget._quota or budget._remaining + tokens)
        self._replay(back)


_MADE: dict[str, SharedBudget] = {}
_MADE_LOCK = threading.Lock()


def _shared(endpoint: str, token_key: str | None) -> SharedBudget:
    name = budget_name(endpoint, token_key)
    with _MADE_LOCK:
        budget = _MADE.get(name)
        if budget is None:
            budget = _MADE[name] = SharedBudget(name)
        return budget


def use_shared_budgets() -> None:
    """In this (worker) process, make every resolver budget a cluster-wide one."""
    set_budget_factory(_shared)


def give_back_all() -> None:
    """Settle every shared budget of this process with the cluster (called as a task ends)."""
    with _MADE_LOCK:
        made = list(_MADE.values())
    for budget in made:
        budget.give_back()
