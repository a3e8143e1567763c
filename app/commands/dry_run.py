"""What a download would do, worked out without fetching data (``download --dry-run``).

The plan comes from the layout (which archives the ids map to), the repo's tree listing (which
of them exist, and their sizes) and the indexes already in the huggingface_hub cache (exact files
and bytes for their archives). Nothing is fetched that the real run would not fetch anyway: no
index, no archive byte; the tree listing and the revisions are API calls, not resolves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from app.core.diagnose import describe_missing_layout, listed_archives
from app.core.format import fmt_bytes, plural
from pools.text import shown


@dataclass
class Plan:
    ids: int
    archives: int  # archives the ids map to that exist in the repo
    absent_archives: int  # archives the layout names that the repo does not have
    indexes_cached: int
    indexes_to_fetch: int
    files: int  # wanted files in the archives whose index is cached
    nbytes: int  # their bytes
    ids_found: int  # ids found in cached indexes
    archive_bytes: int  # the size of the existing archives (an upper bound of what is fetched)
    resolves: int  # at most: one per index to fetch and one per archive read
    layout_error: str | None = None
    archive_names: list[str] = field(default_factory=list)
    dataset_class: str | None = None  # the cheesechaser class whose layout the plan used

    @property
    def complete(self) -> bool:
        """Files and bytes are exact: every index the plan needs is cached."""
        return self.indexes_to_fetch == 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["archive_names"] = [shown(a) for a in self.archive_names]
        data["complete"] = self.complete
        return data

    def lines(self) -> list[str]:
        out = [f"plan: {plural(self.ids, 'id')} in {plural(self.archives, 'archive')} "
               f"({fmt_bytes(self.archive_bytes)} of archives)"]
        if self.dataset_class:
            out.append(f"  layout of {self.dataset_class} (cheesechaser's class for this repo)")
        if self.absent_archives:
            out.append(f"  {plural(self.absent_archives, 'archive')} the layout names "
                       f"{'is' if self.absent_archives == 1 else 'are'} not in the repo: "
                       f"their ids will be missing")
        out.append(f"  indexes: {self.indexes_cached:,} cached, {self.indexes_to_fetch:,} to fetch")
        if self.complete:
            out.append(f"  files: {plural(self.files, 'file')} of {plural(self.ids_found, 'id')}, "
                       f"{fmt_bytes(self.nbytes)} to check or fetch; "
                       f"{plural(self.ids - self.ids_found, 'id')} in no archive")
        else:
            known = self.indexes_cached
            out.append(f"  files: {plural(self.files, 'file')}, {fmt_bytes(self.nbytes)} in the "
                       f"{plural(known, 'cached index', 'cached indexes')}; the rest is known once "
                       f"{'its index is' if self.indexes_to_fetch == 1 else 'their indexes are'} fetched")
        out.append(f"  resolves: at most {self.resolves:,} ({self.indexes_to_fetch:,} index "
                   f"{'fetch' if self.indexes_to_fetch == 1 else 'fetches'} + {self.archives:,} "
                   f"archive {'URL' if self.archives == 1 else 'URLs'})")
        if self.layout_error:
            out.append(f"error: {self.layout_error}")
        return out


def make_plan(pool, ids) -> Plan:
    """The plan for ``ids`` (an IdRanges); raises the pool's errors (PoolError subclasses)."""

    preview = pool.preview(ids)
    needed = list(preview.archives)
    listed = listed_archives(pool)
    present = [a for a in needed if a in listed]
    layout_error = None
    if needed and not present:
        everything = set(listed_archives(pool, "")) | set(listed)
        layout_error = describe_missing_layout(pool, needed, everything)
    cached = [a for a in present if pool.is_index_cached(a)]
    files = nbytes = 0
    found: set[int] = set()
    for archive in cached:
        index = pool.get_index(archive)  # from the cache: no request
        if index is None:
            continue
        for rid, entries in index.by_id.items():
            if rid in ids and rid not in found:
                found.add(rid)
                files += len(entries)
                nbytes += sum(e.size for e in entries)
    to_fetch = len(present) - len(cached)
    return Plan(ids=len(ids), archives=len(present), absent_archives=len(needed) - len(present),
                indexes_cached=len(cached), indexes_to_fetch=to_fetch, files=files, nbytes=nbytes,
                ids_found=len(found), archive_bytes=sum(listed[a].size or 0 for a in present),
                resolves=to_fetch + len(present), layout_error=layout_error,
                archive_names=present[:1000])
