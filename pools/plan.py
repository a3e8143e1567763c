"""The plan stage: ids grouped by archive, looked up in its index, cut into runs of ranged GETs.

A range over an ``id % modulus`` layout is walked residue by residue without ever listing its ids;
each archive's index is fetched once per pool. Files already present and verified are settled as
skipped here, before any fetch is queued.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterable, Iterator

from . import events as ev
from .errors import IndexFormatError
from .index import IndexEntry
from .jobs import Job, Resource
from .write import verified

# task priorities: fetching beats planning beats starting new archives, so memory stays bounded
FETCH, PLAN, FEED = 0, 1, 2


class PlanStage:
    """The planning half of :class:`~pools.downloader.Downloader` (a mixin: it queues tasks with
    ``self._push`` and reports worker states with ``self._worker``)."""

    # -- planning
    def _groups(self, job: Job) -> Iterator[tuple[str, Iterable[int]]]:
        """(first candidate archive, its ids) pairs, lazily."""
        pool = job.pool
        layers = pool.archive_layers() if hasattr(pool, "archive_layers") else None
        if layers:
            modulus, path_of = layers[0]
            for residue in job.ids.residues(modulus):
                yield path_of(residue), job.ids.with_residue(residue, modulus)
            return
        by_archive: dict[str, list[int]] = {}
        nowhere: list[int] = []  # ids the pool maps to no archive at all
        for rid in job.ids:
            candidates = pool.archives_for(rid)
            if candidates:
                by_archive.setdefault(candidates[0], []).append(rid)
            else:
                nowhere.append(rid)
        if nowhere:
            with job._lock:
                job.report.missing.extend(nowhere)
            job._emit(ev.ResourcesMissing(job.id, tuple(nowhere)))
            job._settled(len(nowhere))
        for archive, rids in by_archive.items():
            yield archive, rids

    def _first_feed(self, wid: int, job: Job, groups: Iterator[tuple[str, Iterable[int]]]) -> None:
        # Resolve the revisions before the next group can start on another worker: otherwise
        # every worker's first index lookup resolves them again, all at once.
        for resolve in ("resolve_revision", "resolve_index_revision"):
            if hasattr(job.pool, resolve):
                getattr(job.pool, resolve)(job.cancel_event)
        self._feed(wid, job, groups)

    def _feed(self, wid: int, job: Job, groups: Iterator[tuple[str, Iterable[int]]]) -> None:
        group = next(groups, None)
        if group is None:
            return
        self._push(FEED, job, lambda w: self._feed(w, job, groups))
        archive, rids = group
        self._plan(wid, job, archive, iter(rids))

    def _index(self, wid: int, job: Job, archive: str, broken: dict[str, str]):
        if archive in broken:
            return None
        self._worker(wid, "index", job, archive, job.pool.index_path_of(archive))
        try:
            index = job.pool.get_index(archive, job.cancel_event)
        except IndexFormatError as err:
            broken[archive] = str(err)
            return None
        if index is not None and index.unrecognized:
            with job._lock:
                first = archive not in job._seen_unrecognized
                job._seen_unrecognized.add(archive)
            if not first:
                return index
            for name, reason in index.unrecognized:
                job.report.unrecognized.append((archive, name, reason))
                job._emit(ev.FileUnrecognized(job.id, archive, name, reason))
        return index

    def _plan(self, wid: int, job: Job, archive0: str, rids: Iterator[int]) -> None:
        """Resolve up to ``plan_chunk`` ids of one group, queue their fetches, then continue later."""
        if job.cancel_event.is_set():
            return
        chunk = list(itertools.islice(rids, self.plan_chunk))
        if not chunk:
            return
        more = len(chunk) == self.plan_chunk
        broken: dict[str, str] = {}
        missing: list[int] = []
        wanted: dict[str, list[tuple[IndexEntry, Resource]]] = {}
        indexes: dict[str, Any] = {}  # this chunk's indexes: one lookup per archive, not per id
        layers = job.pool.archive_layers() if hasattr(job.pool, "archive_layers") else None
        if layers:
            # every id of the group lives in archive0 at the first level: with one level, what its
            # index lacks is missing, settled in one pass instead of id by id
            index0 = indexes[archive0] = self._index(wid, job, archive0, broken)
            if len(layers) == 1 and archive0 not in broken:
                by_id = index0.by_id if index0 is not None else {}
                missing = [rid for rid in chunk if rid not in by_id]
                if missing:
                    chunk = [rid for rid in chunk if rid in by_id]
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
                    index = indexes[archive] = self._index(wid, job, archive, broken)
                if archive in broken:
                    reason = reason or f"broken index: {broken[archive]}"
                if index is not None and rid in index.by_id:
                    found = (archive, index.by_id[rid])
                    break
            if found is None:
                if reason is not None:
                    job._resource_failed(rid, reason)
                else:
                    missing.append(rid)
                continue
            archive, entries = found
            self._prepare(wid, job, rid, archive, entries, wanted)
        if missing:
            with job._lock:  # IdList appends read then write its last run: one writer at a time
                job.report.missing.extend(missing)
            job._emit(ev.ResourcesMissing(job.id, tuple(missing)))
            job._settled(len(missing))
        for archive, items in wanted.items():
            for run in self._runs(items):
                with job._lock:
                    job._bytes_planned += sum(e.size for e, _ in run)
                self._push(FETCH, job, lambda w, a=archive, r=run: self._fetch(w, job, a, r))
        if more:
            self._push(PLAN, job, lambda w: self._plan(w, job, archive0, rids))

    def _prepare(self, wid: int, job: Job, rid: int, archive: str, entries: list[IndexEntry],
                 wanted: dict[str, list[tuple[IndexEntry, Resource]]]) -> None:
        """Skip the files already present and verified; queue the rest of the resource."""
        todo = []
        present: list[str] = []
        for entry in entries:
            final = os.path.join(job.dst_dir, entry.basename)
            if verified(final, entry, lambda: self._worker(wid, "verify", job, archive, entry.basename)):
                present.append(entry.basename)
            else:
                todo.append(entry)
        resource = Resource(rid, archive, len(todo), job.infos.get(rid))
        resource.files = present
        if not todo:
            job._resource_complete(resource, "skipped")
            return
        bucket = wanted.setdefault(archive, [])
        for entry in todo:
            bucket.append((entry, resource))

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
