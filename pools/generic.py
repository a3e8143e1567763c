"""The reference API's plain parts: where a file is (:class:`DataLocation`), what the tree and a
preview say (:class:`ArchiveInfo`, :class:`Preview`), and :class:`DataPool`, whose generic
``batch_download_to_directory`` works for any pool that implements ``mock_resource``.
Re-exported by :mod:`pools.base`, where the reference has them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ContextManager, Iterator, Optional, Tuple

from pools.engine.report import DownloadReport
from pools.engine.write import metainfo_path, write_json_atomic
from pools.errors import ResourceNotFoundError
from pools.files import unlink_quiet


@dataclass
class DataLocation:
    """Represents the location of a file within a tar archive (a dataclass, as the reference's:
    ``dataclasses.asdict`` works, equal by fields, unhashable)."""

    resource_id: int
    tar_file: str
    filename: str


@dataclass(frozen=True)
class ArchiveInfo:
    """An archive as the repo's tree listing shows it."""

    path: str
    size: int | None
    lfs_sha256: str | None = None


@dataclass(frozen=True)
class Preview:
    """What queuing ``ids`` would touch, before any file is fetched."""

    n_ids: int
    archives: list[str]
    indexes_cached: int
    indexes_to_fetch: int


def _normalize_items(resource_ids) -> Iterator[tuple[Any, Any]]:
    for item in resource_ids:
        if isinstance(item, tuple):
            rid, info = item
        else:
            rid, info = item, None
        yield rid, info


class DataPool:
    """Abstract base class for data pool operations.

    Subclasses implement :meth:`mock_resource`; :meth:`batch_download_to_directory` then works for
    any pool. Hub-backed pools override it with the planned, resumable downloader.
    """

    @contextmanager
    def mock_resource(self, resource_id, resource_info, silent: bool = False) -> ContextManager[Tuple[str, Any]]:
        raise NotImplementedError  # pragma: no cover

    def batch_download_to_directory(self, resource_ids, dst_dir: str, max_workers: int = 12,
                                    save_metainfo: bool = True,
                                    metainfo_fmt: str = '{resource_id}_metainfo.json',
                                    max_downloads: Optional[int] = None, silent: bool = False) -> DownloadReport:
        """Download resources into ``dst_dir`` under their basenames, in parallel.

        Generic version for pools that only implement :meth:`mock_resource`. Each file is
        copied to a temporary name in ``dst_dir`` and renamed into place; metadata of items given
        as ``(id, info)`` is written to ``dst_dir/metainfo_fmt``.
        """
        os.makedirs(dst_dir, exist_ok=True)
        report = DownloadReport()
        lock = threading.Lock()
        stop = threading.Event()

        def one(resource_id, resource_info):
            if stop.is_set():
                return
            try:
                with self.mock_resource(resource_id, resource_info, silent=True) as (td, info):
                    names = []
                    for root, _, files in os.walk(td):
                        for name in files:
                            _atomic_copy(os.path.join(root, name), os.path.join(dst_dir, name))
                            names.append(name)
                    if save_metainfo and info is not None:
                        write_json_atomic(metainfo_path(dst_dir, metainfo_fmt, resource_id), info)
                with lock:
                    report.downloaded.append(resource_id)
                    report.files += len(names)
                    if max_downloads is not None and len(report.downloaded) >= max_downloads:
                        stop.set()
            except ResourceNotFoundError:
                with lock:
                    report.missing.append(int(resource_id))
            except Exception as err:  # noqa: BLE001 - reported per resource
                with lock:
                    report.failed[resource_id] = str(err) or err.__class__.__name__

        with ThreadPoolExecutor(max_workers=max_workers) as tp:
            for rid, rinfo in _normalize_items(resource_ids):
                tp.submit(one, rid, rinfo)
        return report


def _atomic_copy(src: str, dst: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".copy-", suffix=".part", dir=os.path.dirname(dst) or ".")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        unlink_quiet(tmp)
        raise
