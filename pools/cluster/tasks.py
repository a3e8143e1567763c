"""A job's ids cut into tasks of whole archives, contiguous ids together.

For a layout by ``id % modulus`` the residues the ids have (one per archive of the first layer)
are grouped into runs of neighbouring residues, about ``files_per_task`` ids each, without ever
walking a range id by id: a task's ids are the ranges' pieces whose residue falls in its run.
Other pools are grouped by their first candidate archive.
"""

from __future__ import annotations

from dataclasses import dataclass

from pools.ranges import IdRanges

FILES_PER_TASK = 4000


@dataclass
class ClusterTask:
    """One unit of work for a Dask worker: ``ids`` all live in the archives ``archives``."""

    key: int
    ids: IdRanges
    archives: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


class ResidueSlice(IdRanges):
    """The ids of ``ranges`` whose ``id % modulus`` is in ``residues``, kept as the ranges plus
    the residues: a task of a huge range is as small as the range (the engine plans by residue,
    :meth:`residues` and ``len`` answer for the slice only)."""

    __slots__ = ("modulus", "kept")

    def __init__(self, ranges, modulus: int = 1, kept: tuple[int, ...] = (0,)):
        IdRanges.__init__(self, ranges)
        self.modulus = modulus
        self.kept = tuple(kept)
        self._count = sum(IdRanges.count_with_residue(self, r, modulus) for r in self.kept)

    def __reduce__(self):
        return (ResidueSlice, (self.ranges, self.modulus, self.kept))

    def residues(self, modulus: int) -> list[int]:
        kept = set(self.kept)
        if modulus % self.modulus:
            raise ValueError("a task's ids are planned by its own layout's modulus")
        return [r for r in IdRanges.residues(self, modulus) if r % self.modulus in kept]

    def __contains__(self, resource_id: object) -> bool:
        return IdRanges.__contains__(self, resource_id) and int(resource_id) % self.modulus in self.kept

    def __iter__(self):
        for lo, hi in self.ranges:
            for rid in range(lo, hi + 1):
                if rid % self.modulus in self.kept:
                    yield rid

    def __str__(self) -> str:
        return f"{IdRanges.__str__(self)} (archives {self.kept[0]}-{self.kept[-1]} of {self.modulus})"

    __repr__ = __str__


def _pieces(ids: IdRanges, lo_res: int, hi_res: int, modulus: int) -> IdRanges:
    """The ids whose ``id % modulus`` lies in ``[lo_res, hi_res]``."""
    if lo_res == 0 and hi_res == modulus - 1:
        return ids
    return ResidueSlice(ids.ranges, modulus, tuple(range(lo_res, hi_res + 1)))


def plan_tasks(pool, ids: IdRanges, files_per_task: int = FILES_PER_TASK) -> list[ClusterTask]:
    """``ids`` of ``pool`` as tasks of whole archives (never an archive split across two tasks)."""
    files_per_task = max(1, int(files_per_task))
    layers = pool.archive_layers() if hasattr(pool, "archive_layers") else None
    tasks: list[ClusterTask] = []
    if layers:
        modulus, path_of = layers[0]
        run: list[int] = []
        count = 0

        def close() -> None:
            nonlocal run, count
            if run:
                tasks.append(ClusterTask(len(tasks), _pieces(ids, run[0], run[-1], modulus),
                                         tuple(path_of(r) for r in run)))
            run, count = [], 0

        for residue in ids.residues(modulus):
            if run and residue != run[-1] + 1:
                close()  # a gap in residues: keep each task's ids contiguous
            run.append(residue)
            count += ids.count_with_residue(residue, modulus)
            if count >= files_per_task:
                close()
        close()
        return tasks
    if getattr(pool, "locates_itself", None) and pool.locates_itself():
        # a subclass's _request_resource_by_id says where each id is: asked by the workers, in
        # tasks of files_per_task ids
        batch = []
        for rid in ids:
            batch.append(rid)
            if len(batch) >= files_per_task:
                tasks.append(ClusterTask(len(tasks), IdRanges.of(batch), ()))
                batch = []
        if batch:
            tasks.append(ClusterTask(len(tasks), IdRanges.of(batch), ()))
        return tasks
    by_archive: dict[str, list[int]] = {}
    nowhere: list[int] = []
    for rid in ids:
        candidates = pool.archives_for(rid)
        (by_archive.setdefault(candidates[0], []) if candidates else nowhere).append(rid)
    batch: list[int] = []
    names: list[str] = []
    for archive, rids in sorted(by_archive.items()):
        batch.extend(rids)
        names.append(archive)
        if len(batch) >= files_per_task:
            tasks.append(ClusterTask(len(tasks), IdRanges.of(batch), tuple(names)))
            batch, names = [], []
    if nowhere:  # the engine reports them missing; one task is enough
        batch.extend(nowhere)
    if batch:
        tasks.append(ClusterTask(len(tasks), IdRanges.of(batch), tuple(names)))
    return tasks
