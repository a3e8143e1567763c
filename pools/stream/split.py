"""Ids grouped by the archive they are read from, and one reader's place in its share of them.

The unit of splitting is the archive (an id's first candidate archive), so that every index and
every merged ranged GET serves one reader only, and each id belongs to exactly one group: a
share is ``groups[slot::slots]`` of the (seeded, shuffled) group list.
"""

from __future__ import annotations

import random
from array import array
from typing import Iterable, Iterator

from pools.ranges import IdRanges, parse_ids


class ArchiveGroups:
    """``ids`` of ``pool`` by archive: ``keys()``, ``count(key)``, ``ids(key)``. A range over a
    pool laid out by ``id % modulus`` is never enumerated; other ids are read once and kept as
    compact arrays (8 bytes an id)."""

    def __init__(self, pool, ids: IdRanges | str | Iterable[int]):
        if isinstance(ids, str):
            ids = parse_ids(ids)
        locates = getattr(pool, "locates_itself", None)
        layers = pool.archive_layers() if hasattr(pool, "archive_layers") and not (locates and locates()) else None
        self.pool = pool
        self._layer = layers[0] if layers else None
        self._ranges: IdRanges | None = None
        self._residue: dict[str, int] = {}
        self._arrays: dict[str, array] = {}
        if isinstance(ids, IdRanges) and self._layer is not None:
            modulus, path_of = self._layer
            self._ranges = ids
            self._residue = {path_of(r): r for r in ids.residues(modulus)}
        else:
            for rid in ids:
                key = self.key_of(int(rid))
                bucket = self._arrays.get(key)
                if bucket is None:
                    bucket = self._arrays[key] = array("q")
                bucket.append(int(rid))

    def key_of(self, rid: int) -> str:
        if self._layer is not None:
            modulus, path_of = self._layer
            return path_of(rid % modulus)
        try:
            candidates = self.pool.archives_for(rid)
        except NotImplementedError:  # a pool that only says where each id is: spread by id
            candidates = []
        return candidates[0] if candidates else f"#{rid % 1024}"

    def keys(self) -> list[str]:
        return sorted(self._residue) if self._ranges is not None else sorted(self._arrays)

    def count(self, key: str) -> int:
        if self._ranges is not None:
            return self._ranges.count_with_residue(self._residue[key], self._layer[0])
        return len(self._arrays[key])

    def ids(self, key: str) -> Iterator[int]:
        if self._ranges is not None:
            return self._ranges.with_residue(self._residue[key], self._layer[0])
        return iter(self._arrays[key])

    def __len__(self) -> int:
        return sum(self.count(k) for k in self.keys())


def share(keys: list[str], slot: int, slots: int, shuffle: bool, seed: int, epoch: int) -> list[str]:
    """The groups of reader ``slot`` of ``slots``: the same list for every reader of an epoch
    (shuffled by ``seed`` and ``epoch``), dealt round-robin."""
    order = list(keys)
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order[slot::slots]


class Progress:
    """Where one reader is in its share: groups done, and the ids settled (yielded, missing or
    failed) of the groups under way. ``as_dict()`` is what ``state_dict()`` saves (plain JSON)."""

    def __init__(self, epoch: int, slot: int, slots: int, done=(), partial=None):
        self.epoch, self.slot, self.slots = epoch, slot, slots
        self.done: set[str] = set(done)
        self.partial: dict[str, set[int]] = {k: set(v) for k, v in (partial or {}).items()}

    @classmethod
    def of(cls, state: dict | None, epoch: int, slot: int, slots: int) -> "Progress":
        """A saved place, when it is this reader's (same epoch, slot and number of slots); else a
        fresh start. ValueError for a state saved with another number of readers."""
        if not state:
            return cls(epoch, slot, slots)
        if int(state.get("slots", slots)) != slots:
            raise ValueError(f"this state was saved by {state.get('slots')} readers (ranks x workers); "
                             f"now there are {slots}: the split by archive would differ")
        if int(state.get("epoch", epoch)) != epoch or int(state.get("slot", slot)) != slot:
            return cls(epoch, slot, slots)
        return cls(epoch, slot, slots, state.get("done", ()), state.get("partial"))

    def settle(self, key: str, rid: int, total: int) -> None:
        got = self.partial.setdefault(key, set())
        got.add(rid)
        if len(got) >= total:
            self.done.add(key)
            del self.partial[key]

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "slot": self.slot, "slots": self.slots, "done": sorted(self.done),
                "partial": {k: sorted(v) for k, v in sorted(self.partial.items())}}
