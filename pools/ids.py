"""What a caller may pass as ids: a range expression, an :class:`IdRanges`, or ints and
``(int, info)`` pairs, checked one by one. A list, tuple, set or range is taken whole; a generator
or any other iterable (a metadata query's lazy ids) is consumed a chunk at a time, so 2M ids are
never all in memory."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sized
from typing import Any, Iterable, Iterator

from pools.errors import IdTypeError
from pools.ranges import IdRanges, parse_ids
from pools.text import shown


def id_of(item: Any, infos: dict[int, Any]) -> int:
    """The id of one item (its info stored in ``infos``); IdTypeError naming anything else."""
    if isinstance(item, tuple) and len(item) == 2:
        rid, info = item
        rid = _plain_int(rid, item)
        infos[rid] = info
        return rid
    return _plain_int(item, item)


def _plain_int(value: Any, item: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise IdTypeError(f"resource ids must be ints or (int, info) pairs, not {shown(repr(item), 80)}")
    return int(value)


def take(ids: Any, infos: dict[int, Any]) -> IdRanges | Iterator[int]:
    """``ids`` as IdRanges (sized input, checked now) or as a lazy iterator of checked ids."""
    if isinstance(ids, str):
        return parse_ids(ids)
    if isinstance(ids, IdRanges):
        return ids
    if isinstance(ids, (bytes, bytearray, memoryview)) or not isinstance(ids, Iterable):
        raise IdTypeError(f"ids must be a range expression or an iterable of ints, not {shown(repr(ids), 80)}")
    if isinstance(ids, range) and ids.step == 1:
        return IdRanges([(ids.start, ids.stop - 1)] if ids.stop > ids.start else [])
    if isinstance(ids, (list, tuple, set, frozenset, dict, range)):
        return IdRanges.of([id_of(item, infos) for item in ids])
    # anything else (a generator, a query's lazy ids, a file's lines) is read a chunk at a time
    return (id_of(item, infos) for item in ids)


def expected_count(ids: Any) -> int | None:
    """How many ids a lazy source says it holds (``len()``), for progress; None when it cannot say."""
    if isinstance(ids, Sized) and not isinstance(ids, (str, bytes)):
        try:
            return int(len(ids))
        except Exception:  # noqa: BLE001 - a count that fails is only a missing progress total
            return None
    return None


def chunks(stream: Iterator[int], size: int) -> Iterator[IdRanges]:
    """A lazy id stream cut into IdRanges of up to ``size`` ids each (duplicates merged per chunk)."""
    while True:
        chunk = list(itertools.islice(stream, size))
        if not chunk:
            return
        yield IdRanges.of(chunk)
