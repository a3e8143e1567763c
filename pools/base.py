"""The reference pool API (cheesechaser.datapool.base), kept name for name and default for default.

Extensions beyond the reference are keyword-only or new methods: ``endpoint=`` and ``retry=`` on the
pools, ``resolve_revision()``, ``get_index()``, ``list_archives()``, ``archives_for()``,
``preview()``, ``read_file()``; ``batch_download_to_directory`` returns a :class:`DownloadReport`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterable, Iterator, List, Optional, Tuple, Union

from pools.archive.index import ArchiveIndex, IndexEntry
from pools.archive.layout import (
    archive_path,
    archive_template_problem,
    id_modulo_cut,
    index_path,
    resource_id_of,
)
from pools.engine.downloader import PARTIAL_DIR, Downloader
from pools.engine.report import DownloadReport
from pools.errors import (
    FileUnrecognizableError,
    IndexFormatError,
    InvalidResourceDataError,
    ResourceNotFoundError,
    TransientError,
    job_error,
)
from pools.files import OutsideError, path_inside, relative_name_problem
from pools.generic import ArchiveInfo, DataLocation, DataPool, Preview  # noqa: F401 - the reference has them here
from pools.ids import expected_count
from pools.progress import StopAfter, TerminalBar
from pools.ranges import IdRanges
from pools.text import shown
from pools.transport import HubClient
from pools.transport.retry import RetryPolicy, with_retries

__all__ = [
    "DataLocation", "DataPool", "HfBasedDataPool", "IncrementIDDataPool",
    "InvalidResourceDataError", "FileUnrecognizableError", "ResourceNotFoundError",
    "ArchiveInfo", "Preview", "ArchiveTemplateDataPool", "id_modulo_cut",
]


class HfBasedDataPool(DataPool):
    """A pool of resources stored in indexed tar archives of a Hugging Face dataset repo.

    ``hf_token`` reaches private and gated repos; without it the huggingface_hub default token
    (``HF_TOKEN`` or the stored login) is used. ``endpoint`` (an extension) points the pool at
    another Hub, such as the loopback one; by default ``HF_ENDPOINT`` decides, as for huggingface_hub.
    """

    index_cache_bytes = 24 * 2**20  # about five parsed indexes of 10,000 files; the disk cache holds the rest

    def __init__(self, data_repo_id: str, data_revision: str = 'main',
                 idx_repo_id: Optional[str] = None, idx_revision: str = 'main',
                 hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        self.data_repo_id = data_repo_id
        self.data_revision = data_revision
        self.idx_repo_id = idx_repo_id or data_repo_id
        self.idx_revision = idx_revision
        self.client = HubClient(endpoint=endpoint, token=hf_token, policy=retry)
        self._lock = threading.Lock()
        self._shas: dict[tuple[str, str], str] = {}
        self._sha_locks: dict[tuple[str, str], threading.Lock] = {}
        self._indexes: "OrderedDict[str, ArchiveIndex | None]" = OrderedDict()
        self._index_locks: dict[str, threading.Lock] = {}
        self._index_bytes = 0

    def __repr__(self):
        return f"{self.__class__.__name__}({self.data_repo_id!r}, data_revision={self.data_revision!r})"

    # -- the pool's shape: subclasses say which archives an id may be in, and what a name's id is
    def _file_to_resource_id(self, tar_file: str, body: str):
        rid = resource_id_of(body)
        if rid is None:
            raise FileUnrecognizableError(body)
        return rid

    def _request_possible_archives(self, resource_id) -> List[str]:
        raise NotImplementedError  # pragma: no cover

    def archives_for(self, resource_id: int) -> list[str]:
        """Candidate archives of ``resource_id``, in the order they are tried."""
        return list(self._request_possible_archives(resource_id))

    def archive_layers(self) -> list[tuple[int, Any]] | None:
        """``[(modulus, residue -> archive path), ...]`` when archives follow ``id % modulus``; else None."""
        return None

    def _own(self, name: str, cls: type) -> bool:
        """Whether this pool's ``name`` is ``cls``'s own method, not a subclass's override: a fast
        path that stands for that method (archive layers instead of ``_request_possible_archives``)
        is taken only then, so an override written for cheesechaser is always the one called."""
        return getattr(type(self), name) is getattr(cls, name)

    def index_path_of(self, archive: str) -> str:
        return index_path(archive)

    # -- Hub access
    def _sha(self, repo_id: str, revision: str, cancel=None, on_wait=None) -> str:
        """The commit of ``revision``, resolved once per pool even when many threads ask at once."""
        key = (repo_id, revision)
        with self._lock:
            sha = self._shas.get(key)
            lock = self._sha_locks.setdefault(key, threading.Lock())
        if sha is not None:
            return sha
        with lock:
            with self._lock:
                sha = self._shas.get(key)
            if sha is None:
                sha = self.client.resolve(repo_id, revision, cancel, on_wait=on_wait)
                with self._lock:
                    self._shas[key] = sha
        return sha

    def pin_commits(self, commits: dict[tuple[str, str], str]) -> None:
        """``{(repo, revision): commit}`` resolved elsewhere (a cluster's client): not asked again."""
        with self._lock:
            self._shas.update(commits)

    def resolve_revision(self, cancel=None, on_wait=None) -> str:
        """The commit sha of ``data_revision``, resolved once per pool.

        ``on_wait(seconds, reason)`` hears of each wait between attempts (for a UI to show).
        """
        return self._sha(self.data_repo_id, self.data_revision, cancel, on_wait)

    def resolve_index_revision(self, cancel=None) -> str:
        return self._sha(self.idx_repo_id, self.idx_revision, cancel)

    def _id_of_name(self, archive: str):
        def id_of(name: str):
            try:
                return self._file_to_resource_id(archive, name)
            except FileUnrecognizableError:
                return None
        return id_of

    def _index_names_rule(self, archive: str) -> Callable[[str], int | None]:
        """How names of ``archive`` map to ids: the default rule (with the index's fast path)
        unless a subclass overrides ``_file_to_resource_id``."""
        rule = type(self)._file_to_resource_id
        if rule in (HfBasedDataPool._file_to_resource_id, IncrementIDDataPool._file_to_resource_id):
            return resource_id_of
        return self._id_of_name(archive)

    def get_index(self, archive: str, cancel=None, *, on_wait=None, on_resolve=None) -> ArchiveIndex | None:
        """The parsed index of ``archive``, or None when the archive has no index.

        Each index is fetched once per pool even when many workers ask at the same time; it is
        read from the huggingface_hub cache when there (keyed by commit, so no request at all).
        An index that does not parse is never cached. Parsed indexes are kept up to
        ``index_cache_bytes`` of (estimated) memory, least recently used first out.
        Raises IndexFormatError for a broken index and PoolError subclasses for access problems.
        """
        with self._lock:
            if archive in self._indexes:
                self._indexes.move_to_end(archive)
                return self._indexes[archive]
            lock = self._index_locks.setdefault(archive, threading.Lock())
        with lock:
            with self._lock:
                if archive in self._indexes:
                    return self._indexes[archive]
            sha = self.resolve_index_revision(cancel)
            # from the cache when there (no request), else one GET (size-capped) whose bytes are
            # cached only once they parsed; ``on_wait``/``on_resolve``: see HubClient.fetch_index
            rule = self._index_names_rule(archive)

            def parse(raw: bytes) -> ArchiveIndex:
                return ArchiveIndex.from_bytes(archive, raw, rule)

            index = self.client.fetch_index(self.idx_repo_id, self.index_path_of(archive), sha, parse,
                                            cancel, on_wait, on_resolve=on_resolve)
            with self._lock:
                self._indexes[archive] = index
                self._index_bytes += index.approx_bytes if index is not None else 0
                while self._index_bytes > self.index_cache_bytes and len(self._indexes) > 1:
                    _, old = self._indexes.popitem(last=False)
                    self._index_bytes -= old.approx_bytes if old is not None else 0
                self._index_locks.pop(archive, None)
            return index

    def is_index_cached(self, archive: str) -> bool:
        with self._lock:
            if archive in self._indexes:
                return True
        sha = self.resolve_index_revision()
        return self.client.cached_path(self.idx_repo_id, self.index_path_of(archive), sha) is not None

    def list_archives(self, path: str | None = None) -> Iterator[ArchiveInfo]:
        """The ``.tar`` archives of the data repo (under ``path``), from the paginated tree listing."""
        sha = self.resolve_revision()

        # pages followed on the endpoint's own origin only: the token never goes elsewhere
        for entry in self.client.list_tree(self.data_repo_id, sha, path):
            p = getattr(entry, "path", "")
            if p.endswith(".tar") and getattr(entry, "size", None) is not None:
                lfs = getattr(entry, "lfs", None)
                yield ArchiveInfo(path=p, size=entry.size, lfs_sha256=getattr(lfs, "sha256", None) if lfs else None)

    def locate(self, resource_id: int, cancel=None) -> tuple[str, list[IndexEntry]] | None:
        """The archive and index entries of ``resource_id``, or None when it is in no archive."""
        for archive in self.archives_for(resource_id):
            index = self.get_index(archive, cancel)
            entries = index.lookup(resource_id) if index is not None else None
            if entries:
                return archive, entries
        return None

    def preview(self, ids: IdRanges | Iterable[int]) -> Preview:
        """How many ids, which archives they touch, how many indexes are cached or still to fetch."""
        if not isinstance(ids, IdRanges):
            ids = IdRanges.of(ids)
        archives: list[str] = []
        seen: set[str] = set()
        layers = self.archive_layers()
        if layers:
            for modulus, path_of in layers:
                for residue in ids.residues(modulus):
                    a = path_of(residue)
                    if a not in seen:
                        seen.add(a)
                        archives.append(a)
        else:
            for rid in ids:
                for a in self.archives_for(rid):
                    if a not in seen:
                        seen.add(a)
                        archives.append(a)
        cached = sum(1 for a in archives if self.is_index_cached(a))
        return Preview(n_ids=len(ids), archives=archives, indexes_cached=cached,
                       indexes_to_fetch=len(archives) - cached)

    def read_file(self, archive: str, entry: IndexEntry, cancel=None) -> bytes:
        """The bytes of one file of an archive (one ranged GET), verified against the index."""
        sha = self.resolve_revision(cancel)
        if entry.size == 0:
            data = b""
        else:
            def call() -> bytes:
                parts: list[bytes] = []
                self.client.stream_range(self.data_repo_id, archive, sha, entry.offset,
                                         entry.offset + entry.size - 1, parts.append, cancel)
                got = b"".join(parts)
                if entry.sha256 and hashlib.sha256(got).hexdigest() != entry.sha256:
                    raise TransientError(f"sha256 mismatch for {entry.name}")
                return got
            data = with_retries(call, f"{self.data_repo_id}/{archive}", self.client.policy, cancel)
        return data

    def _request_resource_by_id(self, resource_id) -> List[DataLocation]:
        """Where the files of ``resource_id`` are: its first candidate archive that holds it.
        Raises ResourceNotFoundError when no archive does (or its index is broken)."""
        try:
            found = self.locate(int(resource_id))
        except IndexFormatError as err:
            raise ResourceNotFoundError(f"resource {resource_id!r}: {err}") from None
        if found is None:
            raise ResourceNotFoundError(f"Resource {resource_id!r} not found.")
        archive, entries = found
        return [DataLocation(resource_id=int(resource_id), tar_file=archive, filename=e.name) for e in entries]

    def _get_dst_filename(self, location: DataLocation) -> str:
        """The name a file is saved under, relative to the destination: its basename."""
        return os.path.basename(location.filename)

    def destination_entries(self, resource_id: int, archive: str, entries: list[IndexEntry]) -> list[IndexEntry]:
        """``entries`` with the names they are saved under (``basename``): a subclass's
        ``_get_dst_filename`` decides when it has one. InvalidResourceDataError for a name that
        would not stay inside the destination."""
        if self._own("_get_dst_filename", HfBasedDataPool):
            return entries
        out = []
        for entry in entries:
            name = self._get_dst_filename(DataLocation(int(resource_id), archive, entry.name))
            problem = relative_name_problem(name) or (
                f"{str(name)[:200]!r} is the partial folder" if str(name).split("/")[0] == PARTIAL_DIR else None)
            if problem:
                raise InvalidResourceDataError(problem)
            out.append(dataclasses.replace(entry, basename=name))
        return out

    def locates_itself(self) -> bool:
        """Whether a subclass overrides ``_request_resource_by_id``: the downloader then asks it
        id by id (:meth:`located`) instead of planning from the archive layout."""
        return not self._own("_request_resource_by_id", HfBasedDataPool)

    def located(self, resource_id: int) -> list[tuple[str, list[IndexEntry]]]:
        """The files a subclass's ``_request_resource_by_id`` names, as ``(archive, entries)``;
        [] when it raises ResourceNotFoundError. InvalidResourceDataError when it names a file
        that no index holds."""
        try:
            locations = self._request_resource_by_id(resource_id)
        except ResourceNotFoundError:
            return []
        by_archive: dict[str, list[IndexEntry]] = {}
        for location in locations:
            by_archive.setdefault(location.tar_file, []).append(self._entry_at(location))
        return list(by_archive.items())

    def _entry_at(self, location: DataLocation) -> IndexEntry:
        """The index entry of a location (a subclass's ``_request_resource_by_id`` may name any file)."""
        index = self.get_index(location.tar_file)
        if index is not None:
            for entry in index.lookup(int(location.resource_id)):
                if entry.name == location.filename:
                    return entry
            for entry in index.entries:  # a file the naming rule gives another id (or none)
                if entry.name == location.filename:
                    return entry
        raise InvalidResourceDataError(f"{shown(location.filename, 200)!r} is not in the index of "
                                       f"{shown(location.tar_file, 200)}")

    @contextmanager
    def mock_resource(self, resource_id, resource_info, silent: bool = False) -> ContextManager[Tuple[str, Any]]:
        """Download every file of ``resource_id`` into a temporary folder, each under the name
        ``_get_dst_filename`` gives it (a subclass's overrides of it and of
        ``_request_resource_by_id`` are honoured, as in cheesechaser)."""
        locations = self._request_resource_by_id(resource_id)
        with tempfile.TemporaryDirectory(prefix="cheesechaser-") as td:
            for location in locations:
                data = self.read_file(location.tar_file, self._entry_at(location))
                try:
                    path = path_inside(td, self._get_dst_filename(location))
                except (ValueError, OutsideError) as err:
                    raise InvalidResourceDataError(str(err)) from None
                with open(path, "wb") as f:
                    f.write(data)
            yield td, resource_info

    def batch_download_to_directory(self, resource_ids, dst_dir: str, max_workers: int = 12,
                                    save_metainfo: bool = True,
                                    metainfo_fmt: str = '{resource_id}_metainfo.json',
                                    max_downloads: Optional[int] = None, silent: bool = False,
                                    on_event=None) -> DownloadReport:
        """Download resources into ``dst_dir`` with the planned, resumable downloader.

        ``max_downloads``: stop once that many resources are in ``dst_dir`` (downloaded or already
        there; ids missing or failed do not count, as in cheesechaser); the report then says
        ``cancelled`` with the rest not reached. A bar of ids settled is drawn on a terminal
        unless ``silent``.

        Ids or ``(id, info)`` tuples (a generator is consumed lazily); missing ids do not stop the
        batch; every file is verified against the index's sha256 and written atomically; files
        already present and verified are not fetched again. Returns the :class:`DownloadReport`.

        Raises a :class:`~pools.errors.PoolError` (``HubUnreachableError``, ``AccessDeniedError``,
        ``RepoNotFoundError``, ``DestinationError``...) when the job as a whole could not complete,
        after keeping every file it wrote; the report is on the exception's ``report``. Ids that
        are not ints (or ``(int, info)`` pairs) raise ``TypeError`` naming the value.
        """
        bar = TerminalBar(expected_count(resource_ids), silent=silent)
        with Downloader(max_workers=max_workers, on_event=on_event) as dl:
            dl.add_listener(bar)
            started: list = []
            if max_downloads is not None:
                dl.add_listener(StopAfter(max_downloads, lambda: started[0].cancel()))
            job = dl.submit(self, resource_ids, dst_dir, save_metainfo=save_metainfo, metainfo_fmt=metainfo_fmt)
            started.append(job)
            report = job.wait()
        bar.close()
        if report.state == "failed":
            raise job_error(job, report)
        return report


class IncrementIDDataPool(HfBasedDataPool):
    """A pool whose archives hold ids by ``id % 10**base_level`` (see layout.archive_path).

    ``base_level`` may be a list of levels, tried in order.
    """

    def __init__(self, data_repo_id: str, data_revision: str = 'main',
                 idx_repo_id: Optional[str] = None, idx_revision: str = 'main',
                 base_level: Union[int, List[int]] = 3, base_dir: str = 'images',
                 hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        HfBasedDataPool.__init__(self, data_repo_id=data_repo_id, data_revision=data_revision,
                                 idx_repo_id=idx_repo_id, idx_revision=idx_revision, hf_token=hf_token,
                                 endpoint=endpoint, retry=retry)
        levels = [base_level] if isinstance(base_level, int) else list(base_level)
        if not levels or any(not isinstance(x, int) or isinstance(x, bool) or x < 1 for x in levels):
            raise ValueError(f"base_level must be a positive int or a list of them, got {base_level!r}")
        self.base_level = base_level
        self.base_dir = base_dir
        self._levels = levels

    def _file_to_resource_id(self, tar_file: str, filename: str):
        return HfBasedDataPool._file_to_resource_id(self, tar_file, filename)

    def _request_possible_archives(self, resource_id) -> List[str]:
        return [archive_path(int(resource_id), level, self.base_dir) for level in self._levels]

    def archive_layers(self):
        if not self._own("_request_possible_archives", IncrementIDDataPool):
            return None  # a subclass names the archives itself: asked id by id
        return [(10 ** level, (lambda residue, level=level: archive_path(residue, level, self.base_dir)))
                for level in self._levels]

    def list_archives(self, path: str | None = None) -> Iterator[ArchiveInfo]:
        return HfBasedDataPool.list_archives(self, self.base_dir.strip("/") or None if path is None else path)


class ArchiveTemplateDataPool(HfBasedDataPool):
    """A pool whose archives are named from ``id % modulus`` by templates, tried in order.

    danbooru2023 keeps ids in ``original/data-0XYZ.tar`` and then ``recent/data-1XYZ.tar``
    (XYZ = id % 1000): ``archive_templates=("original/data-0{residue:03d}.tar",
    "recent/data-1{residue:03d}.tar")``. An extension; the reference has no such class.
    """

    def __init__(self, data_repo_id: str, data_revision: str = 'main',
                 idx_repo_id: Optional[str] = None, idx_revision: str = 'main',
                 archive_templates: Iterable[str] = ("original/data-0{residue:03d}.tar",),
                 modulus: int = 1000, hf_token: Optional[str] = None, *,
                 endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        HfBasedDataPool.__init__(self, data_repo_id=data_repo_id, data_revision=data_revision,
                                 idx_repo_id=idx_repo_id, idx_revision=idx_revision, hf_token=hf_token,
                                 endpoint=endpoint, retry=retry)
        templates = tuple(archive_templates)
        if not templates or modulus < 1:
            raise ValueError("give at least one archive template and a positive modulus")
        for template in templates:
            problem = archive_template_problem(template)
            if problem:
                raise ValueError(f"archive template {template!r} {problem}")
        self.archive_templates = templates
        self.modulus = modulus

    def _request_possible_archives(self, resource_id) -> List[str]:
        residue = int(resource_id) % self.modulus
        return [template.format(residue=residue) for template in self.archive_templates]

    def archive_layers(self):
        if not self._own("_request_possible_archives", ArchiveTemplateDataPool):
            return None
        return [(self.modulus, (lambda residue, t=template: t.format(residue=residue)))
                for template in self.archive_templates]
