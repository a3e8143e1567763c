"""The plan stage: ids grouped by archive, looked up in its index, cut into runs of ranged GETs.

A range over an ``id % modulus`` layout is walked residue by residue without ever listing its ids;
each archive's index is fetched once per pool. Files already present and verified are settled as
skipped here, before any fetch is queued.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Callable, Iterator

from pools.archive.index import IndexEntry
from pools.engine.fetch import Fetcher
from pools.engine.job import Job, Resource
from pools.engine.workers import WorkerStates
from pools.engine.write import verified
from pools.errors import IndexFormatError, InvalidResourceDataError, TransferError
from pools.ids import chunks
from pools.ranges import IdList, IdRanges


def _group_archives(ids: IdRanges, layers, residue: int, modulus: int) -> list[tuple[str, int, int]] | None:
    """Every archive an id ``% modulus == residue`` of ``ids`` may be in, as ``(archive, its
    modulus, its residue)`` in the order they are tried; None when a layer does not split the
    group into a few residues (its ids are then looked up one by one)."""
    out: list[tuple[str, int, int]] = []
    for mod_k, path_of in layers:
        if mod_k % modulus or mod_k // modulus > 1024:
            return None
        for j in range(mod_k // modulus):
            res_k = residue + j * modulus
            if mod_k == modulus or ids.count_with_residue(res_k, mod_k):
                out.append((path_of(res_k), mod_k, res_k))
    return out


def _complement(ids: IdRanges, residue: int, modulus: int, present: list[int]) -> IdList:
    """The ids ``% modulus == residue`` of ``ids`` that are not in the sorted ``present``, as runs."""
    out = IdList()
    i = 0
    for lo, hi in ids.ranges:
        first = lo + ((residue - lo) % modulus)
        while first <= hi:
            while i < len(present) and present[i] < first:
                i += 1
            stop = present[i] if i < len(present) and present[i] <= hi else hi + 1
            count = (stop - first + modulus - 1) // modulus
            if count > 0:
                out.append_run(first, modulus, count)
            first = stop + modulus
    return out


def _locates_itself(pool) -> bool:
    return bool(getattr(pool, "locates_itself", None) and pool.locates_itself())


STREAM_CHUNK = 1 << 16  # ids taken from a stream at a time: memory stays small, tasks few

# task priorities: fetching beats planning beats starting new archives, so memory stays bounded
FETCH, PLAN, FEED = 0, 1, 2


Push = Callable[[int, Job, Callable[[int], None]], None]


class Planner:
    """Plans a job's ids into fetches: ``start(job)`` is the job's first task; every later task
    (the next group, the next chunk of a group, each fetch) is queued with ``push(priority,
    job, task)``, a task being called with the id of the worker that runs it.

    ``merge_gap``: wanted files of one archive closer than this many bytes are fetched with one
    ranged GET; ``max_span`` caps the bytes of one such request; ``plan_chunk`` ids of a group
    are planned per task.
    """

    def __init__(self, push: Push, states: WorkerStates, fetcher: Fetcher, *, merge_gap: int,
                 max_span: int, plan_chunk: int):
        self.push = push
        self.states = states
        self.fetcher = fetcher
        self.merge_gap = merge_gap
        self.max_span = max_span
        self.plan_chunk = plan_chunk

    def start(self, job: Job) -> None:
        """Queue the job's first task."""
        groups = self._groups(job)
        self.push(FEED, job, lambda wid: self._first_feed(wid, job, groups))

    # -- planning
    def _groups(self, job: Job) -> Iterator[tuple]:
        """``(first candidate archive, ids, residue, modulus)`` for a layout by ``id % modulus``,
        else ``(first candidate archive, its ids, None, None)``, lazily; a stream of ids is
        consumed ``plan_chunk`` ids at a time."""
        if job.ids is not None:
            yield from self._groups_of(job, job.ids)
            return
        for ids in chunks(job.stream, STREAM_CHUNK):
            job.took_from_stream(len(ids))
            yield from self._groups_of(job, ids)
        job.stream_ended()

    def _groups_of(self, job: Job, ids: IdRanges) -> Iterator[tuple]:
        pool = job.pool
        if _locates_itself(pool):  # a subclass's _request_resource_by_id: asked id by id
            yield "", ids, None, None
            return
        layers = pool.archive_layers() if hasattr(pool, "archive_layers") else None
        if layers:
            modulus, path_of = layers[0]
            for residue in ids.residues(modulus):
                yield path_of(residue), ids, residue, modulus
            return
        by_archive: dict[str, list[int]] = {}
        nowhere: list[int] = []  # ids the pool maps to no archive at all
        for rid in ids:
            candidates = pool.archives_for(rid)
            if candidates:
                by_archive.setdefault(candidates[0], []).append(rid)
            else:
                nowhere.append(rid)
        if nowhere:
            job.missing(IdList(nowhere))
        for archive, rids in by_archive.items():
            yield archive, rids, None, None

    def _first_feed(self, wid: int, job: Job, groups: Iterator[tuple]) -> None:
        # The index revision before the next group can start on another worker: otherwise every
        # worker's first index lookup resolves it again, all at once. The data revision (needed
        # only by the first ranged GET) resolves on another worker meanwhile.
        pool = job.pool
        if hasattr(pool, "resolve_index_revision"):
            pool.resolve_index_revision(job.cancel_event)
        if hasattr(pool, "resolve_revision"):
            self.push(FETCH, job, lambda w: pool.resolve_revision(job.cancel_event))
        self._feed(wid, job, groups)

    def _feed(self, wid: int, job: Job, groups: Iterator[tuple]) -> None:
        group = next(groups, None)
        if group is None:
            return
        self.push(FEED, job, lambda w: self._feed(w, job, groups))
        archive, ids, residue, modulus = group
        if modulus is None:
            self._plan(wid, job, archive, iter(ids))
        else:
            self._plan_residue(wid, job, archive, ids, residue, modulus)

    def _index(self, wid: int, job: Job, archive: str):
        """The archive's index (None when the repo lacks it); a broken one is noted in ``job.broken``."""
        if archive in job.broken:
            return None
        self.states.state(wid, "index", job, archive, job.pool.index_path_of(archive))
        try:
            index = job.pool.get_index(archive, job.cancel_event, on_wait=self.states.on_wait(wid, job, archive),
                                       on_resolve=job.count_resolve)
        except (IndexFormatError, TransferError) as err:  # this archive's index: a redirect loop, too large...
            job.broken[archive] = str(err)
            return None
        if index is not None:
            job.archive_facts[archive] = (index.filesize, index.hash_lfs)
        if index is not None and index.name_problems and job.first_look_at(archive):
            for name, reason in index.name_problems:
                job.unrecognized(archive, name, reason)
        return index

    def _plan_residue(self, wid: int, job: Job, archive0: str, ids: IdRanges, residue: int,
                      modulus: int) -> None:
        """The ids ``id % modulus == residue`` of the job. A small group goes id by id; a big one
        (a long range) is planned from what its indexes hold: the rest is missing, appended as
        arithmetic runs, so a range of 10**8 ids costs its indexes, not its span."""
        count = ids.count_with_residue(residue, modulus)
        candidates = None
        if count > self.plan_chunk:
            candidates = _group_archives(ids, job.pool.archive_layers(), residue, modulus)
        if candidates is None:
            self._plan(wid, job, archive0, ids.with_residue(residue, modulus))
            return
        named: set[int] = set()
        for archive, mod_k, res_k in candidates:
            index = self._index(wid, job, archive)
            if archive in job.broken:  # which ids it held is unknown: each fails with the reason
                self._plan(wid, job, archive0, ids.with_residue(residue, modulus))
                return
            if index is not None:
                named.update(rid for rid in index.ids()
                             if rid % mod_k == res_k and rid % modulus == residue and rid in ids)
        present = sorted(named)
        job.missing(_complement(ids, residue, modulus, present))
        if present:
            self._plan(wid, job, archive0, iter(present))

    def _plan(self, wid: int, job: Job, archive0: str, rids: Iterator[int]) -> None:
        """Resolve up to ``plan_chunk`` ids of one group, queue their fetches, then continue later."""
        if job.cancel_event.is_set():
            return
        chunk = list(itertools.islice(rids, self.plan_chunk))
        if not chunk:
            return
        more = len(chunk) == self.plan_chunk
        broken = job.broken
        missing: list[int] = []
        wanted: dict[str, list[tuple[IndexEntry, Resource]]] = {}
        if _locates_itself(job.pool):
            self._plan_located(wid, job, chunk, wanted)
            self._queue_fetches(job, wanted)
            if more:
                self.push(PLAN, job, lambda w: self._plan(w, job, archive0, rids))
            return
        indexes: dict[str, Any] = {}  # this chunk's indexes: one lookup per archive, not per id
        layers = job.pool.archive_layers() if hasattr(job.pool, "archive_layers") else None
        if layers:
            # every id of the group lives in archive0 at the first level: with one level, what its
            # index lacks is missing, settled in one pass instead of id by id
            index0 = indexes[archive0] = self._index(wid, job, archive0)
            if len(layers) == 1 and archive0 not in broken:
                has = index0.has if index0 is not None else (lambda rid: False)
                missing = [rid for rid in chunk if not has(rid)]
                if missing:
                    chunk = [rid for rid in chunk if has(rid)]
        paths: dict[tuple[int, ...], list[str]] = {}
        for rid in chunk:
            found = None
            reason = None
            if layers:
                key = tuple(rid % modulus for modulus, _ in layers)
                candidates = paths.get(key)
                if candidates is None:
                    candidates = paths[key] = [path_of(r) for (_, path_of), r in zip(layers, key)]
            else:
                candidates = job.pool.archives_for(rid)
            for archive in candidates:
                if archive in indexes:
                    index = indexes[archive]
                else:
                    index = indexes[archive] = self._index(wid, job, archive)
                if archive in broken:
                    reason = reason or f"broken index: {broken[archive]}"
                if index is not None and index.has(rid):
                    entries = index.lookup(rid)
                    for name, why in index.problems_of(rid):
                        job.unrecognized(archive, name, why)
                    if entries:
                        found = (archive, entries)
                        break
            if found is None:
                if reason is not None:
                    job.resource_failed(rid, reason)
                else:
                    missing.append(rid)
                continue
            self._prepare(wid, job, rid, [found], wanted)
        if missing:
            job.missing(IdList(missing))
        self._queue_fetches(job, wanted)
        if more:
            self.push(PLAN, job, lambda w: self._plan(w, job, archive0, rids))

    def _queue_fetches(self, job: Job, wanted: dict[str, list[tuple[IndexEntry, Resource]]]) -> None:
        for archive, items in wanted.items():
            for run in self._runs(items):
                job.planned_bytes(sum(e.size for e, _ in run))
                self.push(FETCH, job, lambda w, a=archive, r=run: self.fetcher.fetch(w, job, a, r))

    def _plan_located(self, wid: int, job: Job, chunk: list[int],
                      wanted: dict[str, list[tuple[IndexEntry, Resource]]]) -> None:
        """Ids of a pool whose ``_request_resource_by_id`` is its own: each asked where it is."""
        missing: list[int] = []
        for rid in chunk:
            if job.cancel_event.is_set():
                return
            self.states.state(wid, "index", job, "", f"locating {rid}")
            try:
                found = job.pool.located(rid)
            except (InvalidResourceDataError, IndexFormatError, TransferError) as err:
                job.resource_failed(rid, str(err))
                continue
            if found:
                self._prepare(wid, job, rid, found, wanted)
            else:
                missing.append(rid)
        if missing:
            job.missing(IdList(missing))

    def _prepare(self, wid: int, job: Job, rid: int, found: list[tuple[str, list[IndexEntry]]],
                 wanted: dict[str, list[tuple[IndexEntry, Resource]]]) -> None:
        """Skip the files already present and verified; queue the rest of the resource.
        ``found``: its files, as ``(archive, entries)`` (more than one archive only when a
        subclass's ``_request_resource_by_id`` says so)."""
        todo: list[tuple[str, IndexEntry]] = []
        present: list[str] = []
        unverified = False
        for archive, entries in found:
            if hasattr(job.pool, "destination_entries"):
                try:
                    entries = job.pool.destination_entries(rid, archive, entries)
                except InvalidResourceDataError as err:  # a subclass's name for a file: not inside the destination
                    job.resource_failed(rid, str(err))
                    return
            for entry in entries:
                if job.sink is not None:  # read into memory: nothing on disk to skip
                    todo.append((archive, entry))
                    continue
                final = os.path.join(job.dst_dir, entry.basename)
                verdict = verified(final, entry, lambda: self.states.state(wid, "verify", job, archive, entry.basename))
                if verdict is None:
                    todo.append((archive, entry))
                else:
                    present.append(entry.basename)
                    unverified = unverified or verdict == "unverified"
        resource = Resource(rid, found[0][0], len(todo), job.infos.get(rid))
        resource.files = present
        if not todo:
            job.resource_complete(resource, "unverified" if unverified else "skipped")
            return
        for archive, entry in todo:
            wanted.setdefault(archive, []).append((entry, resource))

    def _runs(self, items: list[tuple[IndexEntry, Resource]]) -> Iterator[list[tuple[IndexEntry, Resource]]]:
        """Group an archive's wanted files into runs fetched by one ranged GET each."""
        items = sorted(items, key=lambda it: it[0].offset)
        run: list[tuple[IndexEntry, Resource]] = []
        start = end = 0
        for entry, res in items:
            e_end = entry.offset + entry.size
            if run and (entry.offset < end or entry.offset - end > self.merge_gap
                        or e_end - start > self.max_span):
                yield run
                run = []
            if not run:
                start = entry.offset
                end = e_end
            run.append((entry, res))
            end = max(end, e_end)
        if run:
            yield run
