"""cheesechaser 0.2.2's Danbooru and E621 series: archives named from ``id % 1000``, later posts in
``updates/`` folders found by listing the repo, the Stable pools pinned to fixed revisions, and the
Newest pools that try the stable repo, then the newest one.

The original Danbooru series (``nyanko7/danbooru2023``) is no longer public: only DeepGHS members
can read it, as cheesechaser's own docs say; use the Danbooru2024 pools instead (the same holds
for the pinned Stable view of it).
"""

from __future__ import annotations

import re
import threading
from typing import Any, ContextManager, Optional, Tuple

from pools.base import DataPool, IncrementIDDataPool, ResourceNotFoundError
from pools.combined import CombinedLayoutDataPool
from pools.datapool.listed import natural
from pools.engine.report import DownloadReport
from pools.ranges import IdList
from pools.transport.retry import RetryPolicy

_UPDATE = re.compile(r"^(?P<prefix>.+)-(?P<residue>\d)\.tar$")


class ListedUpdatesDataPool(CombinedLayoutDataPool):
    """Fixed ``(modulus, template)`` layers, then one ``id % 10`` layer per ``*-N.tar`` series found
    under ``updates/`` in the data repo (listed once, on first use; natural order)."""

    updates_dir = "updates"

    def __init__(self, data_repo_id: str, data_revision: str, idx_repo_id: str, idx_revision: str,
                 layers, hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        CombinedLayoutDataPool.__init__(self, data_repo_id, data_revision, idx_repo_id, idx_revision, layers,
                                        hf_token, endpoint=endpoint, retry=retry)
        self._updates: tuple[tuple[int, str], ...] | None = None
        self._updates_lock = threading.Lock()

    def update_layers(self) -> tuple[tuple[int, str], ...]:
        with self._updates_lock:
            if self._updates is None:
                series = set()
                for info in self.list_archives(self.updates_dir):
                    folder, _, name = info.path.rpartition("/")
                    found = _UPDATE.match(name)
                    if found:
                        series.add(f"{folder}/{found['prefix']}-{{residue}}.tar" if folder else
                                   f"{found['prefix']}-{{residue}}.tar")
                self._updates = tuple((10, t) for t in sorted(series, key=natural))
            return self._updates

    def all_layers(self) -> tuple[tuple[int, str], ...]:
        return self.layers + self.update_layers()


_DANBOORU = ((1000, "original/data-0{residue:03d}.tar"), (1000, "recent/data-1{residue:03d}.tar"))
_DANBOORU_WEBP = ((1000, "images/data-0{residue:03d}.tar"), (1000, "images/data-1{residue:03d}.tar"))
_E621 = ((1000, "original/data-0{residue:03d}.tar"),)


class DanbooruDataPool(ListedUpdatesDataPool):
    """danbooru2023 (``nyanko7/danbooru2023``, indexes in ``deepghs/danbooru2023_index``): no longer
    public; DeepGHS members only."""

    def __init__(self, data_revision: str = 'main', idx_revision: str = 'main', hf_token: Optional[str] = None,
                 *, endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        ListedUpdatesDataPool.__init__(self, "nyanko7/danbooru2023", data_revision, "deepghs/danbooru2023_index",
                                       idx_revision, _DANBOORU, hf_token, endpoint=endpoint, retry=retry)


class DanbooruStableDataPool(DanbooruDataPool):
    """danbooru2023 at the revisions cheesechaser pins (data ``81652ca…``, indexes ``20240319``)."""

    def __init__(self, hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        DanbooruDataPool.__init__(self, "81652caef9403712b4112a3fcb5d9b4997424ac3", "20240319", hf_token,
                                  endpoint=endpoint, retry=retry)


class DanbooruWebpDataPool(ListedUpdatesDataPool):
    """danbooru2023 in WebP of at most 4 Mpixel (``KBlueLeaf/danbooru2023-webp-4Mpixel``)."""

    def __init__(self, data_revision: str = 'main', idx_revision: str = 'main', hf_token: Optional[str] = None,
                 *, endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        ListedUpdatesDataPool.__init__(self, "KBlueLeaf/danbooru2023-webp-4Mpixel", data_revision,
                                       "deepghs/danbooru2023-webp-4Mpixel_index", idx_revision, _DANBOORU_WEBP,
                                       hf_token, endpoint=endpoint, retry=retry)


class E621DataPool(CombinedLayoutDataPool):
    """e621-2024 (``boxingscorpionbagel/e621-2024``, indexes in ``deepghs/e621-2024_index``)."""

    def __init__(self, data_revision: str = 'main', idx_revision: str = 'main', hf_token: Optional[str] = None,
                 *, endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        CombinedLayoutDataPool.__init__(self, "boxingscorpionbagel/e621-2024", data_revision,
                                        "deepghs/e621-2024_index", idx_revision, _E621, hf_token,
                                        endpoint=endpoint, retry=retry)


class E621StableDataPool(E621DataPool):
    """e621-2024 at the data revision cheesechaser pins (``9ee7b0a…``)."""

    def __init__(self, hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        E621DataPool.__init__(self, "9ee7b0ace34c8e06491e77bde071cb82f17a6886", "main", hf_token,
                              endpoint=endpoint, retry=retry)


class E621WebpDataPool(CombinedLayoutDataPool):
    """e621-2024 in WebP of at most 4 Mpixel (``NebulaeWis/e621-2024-webp-4Mpixel``)."""

    def __init__(self, data_revision: str = 'main', idx_revision: str = 'main', hf_token: Optional[str] = None,
                 *, endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        CombinedLayoutDataPool.__init__(self, "NebulaeWis/e621-2024-webp-4Mpixel", data_revision,
                                        "deepghs/e621-2024-webp-4Mpixel_index", idx_revision, _E621, hf_token,
                                        endpoint=endpoint, retry=retry)


class FallbackDataPool(DataPool):
    """Pools tried in order: an id the first one lacks is looked for in the next."""

    def __init__(self, *pools):
        self.pools = pools

    def mock_resource(self, resource_id, resource_info, silent: bool = False) -> ContextManager[Tuple[str, Any]]:
        for pool in self.pools:
            try:
                pool._request_resource_by_id(resource_id)
            except ResourceNotFoundError:
                continue
            return pool.mock_resource(resource_id, resource_info, silent=silent)
        raise ResourceNotFoundError(f"Resource {resource_id!r} not found.")

    def batch_download_to_directory(self, resource_ids, dst_dir: str, max_workers: int = 12,
                                    save_metainfo: bool = True, metainfo_fmt: str = '{resource_id}_metainfo.json',
                                    max_downloads: Optional[int] = None, silent: bool = False,
                                    on_event=None) -> DownloadReport:
        """Each pool's planned batch in turn, over the ids the pools before it lacked; one report."""
        items = list(resource_ids)
        infos = {i[0]: i[1] for i in items if isinstance(i, tuple)}
        merged: DownloadReport | None = None
        for pool in self.pools:
            report = pool.batch_download_to_directory(
                items, dst_dir, max_workers=max_workers, save_metainfo=save_metainfo, metainfo_fmt=metainfo_fmt,
                max_downloads=max_downloads, silent=silent, on_event=on_event)
            merged = report if merged is None else _merged(merged, report)
            items = [(rid, infos[rid]) if rid in infos else rid for rid in report.missing]
            if not items or report.state != "done":
                break
        return merged


def _merged(first: DownloadReport, second: DownloadReport) -> DownloadReport:
    """``first`` with what ``second`` (run on ``first``'s missing ids) found of them."""
    first.downloaded.extend(second.downloaded)
    first.skipped.extend(second.skipped)
    first.unverified.extend(second.unverified)
    first.failed.update(second.failed)
    first.unrecognized.extend(second.unrecognized)
    first.missing = IdList(list(second.missing))
    first.files += second.files
    first.nbytes += second.nbytes
    first.elapsed += second.elapsed
    first.state, first.error = second.state, second.error
    return first


def _newest(name: str, stable, newest_repo: str, doc: str):
    class Newest(FallbackDataPool):
        __doc__ = doc

        def __init__(self, hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                     retry: Optional[RetryPolicy] = None):
            FallbackDataPool.__init__(
                self, stable(hf_token=hf_token, endpoint=endpoint, retry=retry),
                IncrementIDDataPool(newest_repo, hf_token=hf_token, endpoint=endpoint, retry=retry))
    Newest.__name__ = Newest.__qualname__ = name
    return Newest


DanbooruNewestDataPool = _newest("DanbooruNewestDataPool", DanbooruStableDataPool, "deepghs/danbooru_newest",
                                 "danbooru2023's stable view, then the newest posts (``deepghs/danbooru_newest``).")
DanbooruNewestWebpDataPool = _newest("DanbooruNewestWebpDataPool", DanbooruWebpDataPool,
                                     "deepghs/danbooru_newest-webp-4Mpixel",
                                     "danbooru2023 in WebP, then the newest posts in WebP.")
E621NewestDataPool = _newest("E621NewestDataPool", E621StableDataPool, "deepghs/e621_newest",
                             "e621-2024's stable view, then the newest posts (``deepghs/e621_newest``).")
E621NewestWebpDataPool = _newest("E621NewestWebpDataPool", E621WebpDataPool, "deepghs/e621_newest-webp-4Mpixel",
                                 "e621-2024 in WebP, then the newest posts in WebP.")
