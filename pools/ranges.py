"""Range expressions: ``"0-5, 1000-1003,7000"`` as a lazy, merged set of resource ids.

A range of a hundred million ids costs two integers: nothing is materialised until iterated, and
the downloader asks only for the ids of one archive at a time (:meth:`IdRanges.with_residue`).
"""

from __future__ import annotations

import bisect
import itertools
import re
from typing import Iterable, Iterator

from pools.errors import RangeError
from pools.idruns import intervals
from pools.text import shown

MAX_ID = 2**62  # a count of ids must fit len(); real datasets stop near 10**8


class IdRanges:
    """A sorted union of inclusive ``(lo, hi)`` id ranges, merged where they touch."""

    __slots__ = ("ranges", "_los", "_count")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()):
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted((int(a), int(b)) for a, b in ranges):
            if lo > hi:
                raise RangeError(f"range {lo}-{hi} is reversed")
            if lo < 0:
                raise RangeError(f"ids are never negative: {lo}")
            if hi > MAX_ID:
                raise RangeError(f"id {hi} is too large: ids go up to {MAX_ID}")
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        self.ranges: tuple[tuple[int, int], ...] = tuple(merged)
        self._los = [lo for lo, _ in merged]
        self._count = sum(hi - lo + 1 for lo, hi in merged)

    @classmethod
    def of(cls, ids: Iterable[int]) -> "IdRanges":
        """Ranges covering exactly the given ids (materialises them: for explicit lists)."""
        ordered = sorted(set(int(i) for i in ids))
        runs: list[tuple[int, int]] = []
        for i in ordered:
            if runs and i == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], i)
            else:
                runs.append((i, i))
        return cls(runs)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __contains__(self, resource_id: object) -> bool:
        if not isinstance(resource_id, int):
            return False
        pos = bisect.bisect_right(self._los, resource_id) - 1
        return pos >= 0 and resource_id <= self.ranges[pos][1]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdRanges) and other.ranges == self.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)

    def __str__(self) -> str:
        return ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    def __repr__(self) -> str:
        return f"IdRanges({str(self)!r})"

    @property
    def min(self) -> int | None:
        return self.ranges[0][0] if self.ranges else None

    @property
    def max(self) -> int | None:
        return self.ranges[-1][1] if self.ranges else None

    def residues(self, modulus: int) -> list[int]:
        """The sorted residues ``id % modulus`` that at least one id has (at most ``modulus``)."""
        seen: set[int] = set()
        for lo, hi in self.ranges:
            if hi - lo + 1 >= modulus:
                return list(range(modulus))
            a, b = lo % modulus, hi % modulus
            if a <= b:
                seen.update(range(a, b + 1))
            else:
                seen.update(range(a, modulus))
                seen.update(range(0, b + 1))
            if len(seen) == modulus:
                break
        return sorted(seen)

    def count_with_residue(self, residue: int, modulus: int) -> int:
        total = 0
        for lo, hi in self.ranges:
            first = lo + ((residue - lo) % modulus)
            if first <= hi:
                total += (hi - first) // modulus + 1
        return total

    def without(self, ids: Iterable[int]) -> "IdRanges":
        """These ranges less the given ids (ascending), in time proportional to the ranges and ids."""
        out: list[tuple[int, int]] = []
        it = iter(ids)
        cut = next(it, None)
        for lo, hi in self.ranges:
            while cut is not None and cut < lo:
                cut = next(it, None)
            while cut is not None and cut <= hi:
                if cut > lo:
                    out.append((lo, cut - 1))
                lo = cut + 1
                cut = next(it, None)
            if lo <= hi:
                out.append((lo, hi))
        return IdRanges(out)

    def minus(self, spans: Iterable[tuple[int, int]]) -> "IdRanges":
        """These ranges less the sorted, disjoint inclusive ``spans``, in one linear pass."""
        out: list[tuple[int, int]] = []
        it = iter(spans)
        cut = next(it, None)
        for lo, hi in self.ranges:
            while cut is not None and cut[1] < lo:
                cut = next(it, None)
            while cut is not None and cut[0] <= hi:
                if cut[0] > lo:
                    out.append((lo, cut[0] - 1))
                lo = max(lo, cut[1] + 1)
                if cut[1] > hi:
                    break
                cut = next(it, None)
            if lo <= hi:
                out.append((lo, hi))
        return IdRanges(out)

    def with_residue(self, residue: int, modulus: int) -> Iterator[int]:
        """Ascending ids with ``id % modulus == residue``, generated lazily."""
        for lo, hi in self.ranges:
            first = lo + ((residue - lo) % modulus)
            yield from range(first, hi + 1, modulus)


MAX_DIGITS = 19  # 2**63 has 19 digits: a longer id is refused before int() ever sees it
_NUMBER = r"[0-9](?:_?[0-9])*"  # digits, ``_`` allowed between two of them (7_000_000)
_PART_IDS = re.compile(rf"^({_NUMBER})(?:\s*-\s*({_NUMBER}))?$")
_THOUSANDS = re.compile(r"(?<![0-9_])[0-9]{1,3}(?:,\s*[0-9]{3})+(?![0-9_])")


def _quoted(part: str) -> str:

    return f"'{shown(part, 40)}'"


def _number(digits: str, part: str) -> int:
    digits = digits.replace("_", "")
    if len(digits) > MAX_DIGITS:
        raise RangeError(f"{_quoted(part)} is too large: ids have at most {MAX_DIGITS} digits "
                         f"and go up to {MAX_ID}")
    value = int(digits)
    if value > MAX_ID:
        raise RangeError(f"{_quoted(part)} is too large: ids go up to {MAX_ID}")
    return value


def _thousands_hint(text: str) -> str:
    """``7,000,000`` as the user most likely meant it: ``write 7000000 or 7_000_000``."""

    plain = _THOUSANDS.sub(lambda m: re.sub(r",\s*", "", m.group(0)), text.strip())
    grouped = _THOUSANDS.sub(lambda m: re.sub(r",\s*", "_", m.group(0)), text.strip())
    if plain == text.strip():
        return "ids are written without leading zeros"
    return f"write {shown(plain, 60)} or {shown(grouped, 60)}"


def parse_ids(text: str) -> IdRanges:
    """Parse ``"0-5, 1000-1003,7000"``: ids and inclusive ``A-B`` ranges, comma-separated.

    ``_`` may separate digits (``7_000_000``). Errors are one bounded line naming the
    offending part: reversed (``5-1``), non-numeric (``abc``), malformed (``1-2-3``, ``-4``),
    too large (over 19 digits, or past the largest id), a part after a comma with a leading
    zero (``7,000,000`` is not ids 7, 0, 0: the message says to write ``7000000``), or empty.
    """
    if text is None or not isinstance(text, str) or not text.strip():
        if text is not None and not isinstance(text, str):
            raise RangeError(f"a range expression is text, not {type(text).__name__}")
        raise RangeError("empty range: give ids like '0-5, 1000-1003, 7000'")
    ranges = []
    for position, raw in enumerate(text.split(",")):
        part = raw.strip()
        if not part:
            raise RangeError(f"empty part in {_quoted(text.strip())}: remove the extra comma")
        m = _PART_IDS.match(part)
        if not m:
            if part.startswith("-"):
                raise RangeError(f"{_quoted(part)} is malformed: a range needs a start, like '0-4'")
            if part.count("-") > 1:
                raise RangeError(f"{_quoted(part)} is malformed: use one '-' per range, like '1-3'")
            if "_" in part and _PART_IDS.match(part.replace("_", "")):
                raise RangeError(f"{_quoted(part)} is malformed: '_' goes between two digits, "
                                 "like 7_000_000")
            raise RangeError(f"{_quoted(part)} is not a number or a range like '10-20'")
        if position > 0 and len(m.group(1)) > 1 and m.group(1)[0] == "0":
            raise RangeError(f"{_quoted(part)} has a leading zero after a comma: "
                             f"{_thousands_hint(text)}")
        lo = _number(m.group(1), part)
        hi = _number(m.group(2), part) if m.group(2) is not None else lo
        if hi < lo:
            raise RangeError(f"{_quoted(part)} is reversed: write {hi}-{lo}")
        ranges.append((lo, hi))
    return IdRanges(ranges)


class IdList:
    """An append-only list of ids stored as arithmetic runs ``(start, step, count)``.

    Ids that a range leaves missing arrive archive by archive, ``modulus`` apart: a million of
    them take a few thousand runs instead of a million integers. Behaves as a sequence of ints
    in the order appended.
    """

    __slots__ = ("_starts", "_steps", "_counts", "_len")

    def __init__(self, ids: Iterable[int] = ()):
        from array import array

        self._starts = array("q")
        self._steps = array("q")
        self._counts = array("q")
        self._len = 0
        self.extend(ids)

    def append(self, resource_id: int) -> None:
        resource_id = int(resource_id)
        self._len += 1
        if self._counts:
            start, step, count = self._starts[-1], self._steps[-1], self._counts[-1]
            if count == 1 and resource_id > start:
                self._steps[-1] = resource_id - start
                self._counts[-1] = 2
                return
            if count > 1 and resource_id == start + step * count:
                self._counts[-1] = count + 1
                return
        self._starts.append(resource_id)
        self._steps.append(0)
        self._counts.append(1)

    def append_run(self, start: int, step: int, count: int) -> None:
        """Append ``start, start + step, ...`` (``count`` ids, ``step`` > 0) in O(1)."""
        if count <= 0:
            return
        if count == 1:
            self.append(start)
            return
        if step <= 0:
            raise ValueError("a run's step must be positive")
        start, step, count = int(start), int(step), int(count)
        if self._counts:
            s0, st0, c0 = self._starts[-1], self._steps[-1], self._counts[-1]
            if (c0 == 1 and start - s0 == step) or (c0 > 1 and st0 == step and start == s0 + st0 * c0):
                self._steps[-1] = step
                self._counts[-1] = c0 + count
                self._len += count
                return
        self._starts.append(start)
        self._steps.append(step)
        self._counts.append(count)
        self._len += count

    def extend(self, ids: Iterable[int]) -> None:
        if isinstance(ids, IdList):
            for start, step, count in zip(ids._starts, ids._steps, ids._counts):
                self.append_run(start, step, count)
            return
        for resource_id in ids:
            self.append(resource_id)

    def to_ranges(self) -> IdRanges:
        """The ids as merged ranges: runs merged in order with O(runs) memory, whatever their length.

        The runs are swept (:func:`pools.idruns.intervals`), never walked id by id: time follows
        the runs and the ranges produced, not the count of ids.
        """
        return IdRanges(list(intervals(self)))

    def __getitem__(self, item):
        """An id by position, or a slice of them as a list (walks the runs, not the ids)."""
        if isinstance(item, slice):
            start, stop, step = item.indices(self._len)
            if step != 1:
                return list(itertools.islice(iter(self), start, stop, step))
            return list(itertools.islice(iter(self), start, stop))
        i = item + self._len if item < 0 else item
        if not 0 <= i < self._len:
            raise IndexError("IdList index out of range")
        for start, step, count in zip(self._starts, self._steps, self._counts):
            if i < count:
                return start + step * i
            i -= count
        raise IndexError("IdList index out of range")  # pragma: no cover

    @property
    def runs(self) -> int:
        return len(self._counts)

    def arithmetic_runs(self) -> Iterator[tuple[int, int, int]]:
        """The stored runs ``(start, step, count)`` in the order appended (``step`` 0 when
        ``count`` is 1): what :func:`pools.idruns.intervals` turns into ranges without listing ids."""
        return zip(self._starts, self._steps, self._counts)

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[int]:
        for start, step, count in zip(self._starts, self._steps, self._counts):
            if count == 1:
                yield start
            else:
                yield from range(start, start + step * count, step)

    def __contains__(self, resource_id: object) -> bool:
        if not isinstance(resource_id, int):
            return False
        for start, step, count in zip(self._starts, self._steps, self._counts):
            if count == 1:
                if resource_id == start:
                    return True
            elif start <= resource_id < start + step * count and (resource_id - start) % step == 0:
                return True
        return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (IdList, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        head = list(itertools.islice(iter(self), 8))
        more = ", …" if self._len > 8 else ""
        return f"IdList([{', '.join(map(str, head))}{more}], n={self._len})"
