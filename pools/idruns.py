"""Ids as inclusive ranges, computed from how they are stored, never by listing them.

A job over ``0-100000000`` in a repo of a few thousand ids leaves ~10**8 ids missing; they are
kept as arithmetic runs (:class:`pools.ranges.IdList`, one run per archive, ``modulus`` apart).
:func:`intervals` turns such runs into the sorted, merged ranges a user reads
(``0-99, 101-4799, …``) in time and memory proportional to the runs and to the ranges produced,
whatever the number of ids. The report and the CLI summary use it.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pools.ranges import IdList, IdRanges


def intervals(ids: IdList | IdRanges | Iterable[int]) -> Iterator[tuple[int, int]]:
    """Sorted, disjoint, non-touching inclusive ``(lo, hi)`` ranges covering exactly ``ids``.

    ``IdRanges`` are already that; an ``IdList`` is swept run by run (lazily: stop early and
    the rest is never computed); any other iterable of ints is sorted first (for short lists).
    """
    ranges = getattr(ids, "ranges", None)  # an IdRanges (this module is below pools.ranges)
    if ranges is not None:
        return iter(ranges)
    runs = getattr(ids, "arithmetic_runs", None)  # an IdList
    if runs is not None:
        return _merge(_from_runs(runs()))
    return _merge((i, i) for i in sorted(set(ids)))


def range_texts(ids, limit: int | None = None) -> tuple[list[str], bool]:
    """``["0-99", "101", …]`` for ``ids``, at most ``limit`` of them; True when cut."""
    out: list[str] = []
    for lo, hi in intervals(ids):
        if limit is not None and len(out) >= limit:
            return out, True
        out.append(str(lo) if lo == hi else f"{lo}-{hi}")
    return out, False


def _merge(sorted_spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Join spans (sorted by ``lo``) that overlap or touch."""
    current: tuple[int, int] | None = None
    for lo, hi in sorted_spans:
        if current is not None and lo <= current[1] + 1:
            if hi > current[1]:
                current = (current[0], hi)
            continue
        if current is not None:
            yield current
        current = (lo, hi)
    if current is not None:
        yield current


SHORT_RUN = 8


def _from_runs(runs: Iterable[tuple[int, int, int]]) -> Iterator[tuple[int, int]]:
    """Spans sorted by ``lo`` (possibly overlapping) for arithmetic runs of any steps."""
    plain: list[tuple[int, int]] = []
    by_step: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for start, step, count in runs:
        if count <= 0:
            continue
        if count == 1 or step == 1:
            plain.append((start, start + max(step, 1) * (count - 1)))
        elif count <= SHORT_RUN:  # a few ids apart (scattered ids pair up): points, not a sweep per step
            plain.extend((start + step * i, start + step * i) for i in range(count))
        else:
            by_step[step].append((start, count))
    plain.sort()
    streams = [iter(plain)] + [_sweep(step, group) for step, group in sorted(by_step.items())]
    return heapq.merge(*streams)


def _sweep(step: int, runs: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Spans covering runs that all share ``step``, in order.

    Id ``x`` sits at row ``x // step``, column ``x % step``; a run is a column segment over a
    span of rows. Between two rows where a run starts or ends, every row is covered the same
    way, so a block of rows costs one span when every column is covered, else one span per
    covered stretch of columns per row (what the result has to say anyway).
    """
    events: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for start, count in runs:
        row, column = divmod(start, step)
        events[row].append((column, 1))
        events[row + count].append((column, -1))
    depth: dict[int, int] = defaultdict(int)
    covered: list[int] = []  # sorted columns with depth > 0
    rows = sorted(events)
    for here, there in zip(rows, rows[1:] + [None]):
        for column, delta in events[here]:
            before = depth[column]
            depth[column] = before + delta
            if before == 0 and delta > 0:
                bisect.insort(covered, column)
            elif before + delta == 0 and before > 0:
                covered.pop(bisect.bisect_left(covered, column))
        if there is None or not covered:
            continue
        stretches = _stretches(covered)
        if stretches == [(0, step - 1)]:
            yield here * step, there * step - 1
            continue
        for row in range(here, there):
            base = row * step
            for a, b in stretches:
                yield base + a, base + b


def _stretches(columns: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in columns:
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out
