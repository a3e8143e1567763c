"""cheesechaser 0.2.2's pools whose archive folders are found by listing the repo: Sankaku (an id's
archive ``0XYZ.tar`` may be in any folder under ``images/``) and HentaiCosplay (the id's archive
path repeated in every folder that holds archives). The listing is read once per pool."""

from __future__ import annotations

import os
import re
import threading
from typing import List, Optional

from pools.archive.layout import id_modulo_cut
from pools.base import HfBasedDataPool, IncrementIDDataPool
from pools.transport.retry import RetryPolicy


def natural(text: str) -> list:
    """A sort key that puts ``dir2`` before ``dir10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class _Listing:
    """The ``.tar`` paths of a pool's data repo under ``path``, listed once (thread-safe)."""

    def __init__(self, pool: HfBasedDataPool, path: str | None):
        self.pool, self.path = pool, path
        self._paths: list[str] | None = None
        self._lock = threading.Lock()

    def paths(self) -> list[str]:
        with self._lock:
            if self._paths is None:
                found = HfBasedDataPool.list_archives(self.pool, self.path)
                self._paths = sorted((a.path for a in found), key=natural)
            return self._paths


class SankakuDataPool(IncrementIDDataPool):
    """sankaku_full (``deepghs/sankaku_full``): the archive of an id, ``0XYZ.tar`` (XYZ = id % 1000),
    in every folder under ``images/`` that has one, in natural order."""

    def __init__(self, revision: str = 'main', hf_token: Optional[str] = None, *,
                 endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        IncrementIDDataPool.__init__(self, "deepghs/sankaku_full", data_revision=revision,
                                     idx_repo_id="deepghs/sankaku_full", idx_revision=revision, base_level=[3, 4],
                                     hf_token=hf_token, endpoint=endpoint, retry=retry)
        self._listing = _Listing(self, "images")
        self._by_name: dict[str, list[str]] | None = None

    def _request_possible_archives(self, resource_id) -> List[str]:
        if self._by_name is None:
            by_name: dict[str, list[str]] = {}
            for path in self._listing.paths():
                by_name.setdefault(os.path.basename(path), []).append(path)
            self._by_name = by_name
        return list(self._by_name.get(f"0{int(resource_id) % 1000:03d}.tar", ()))


class HentaiCosplayDataPool(IncrementIDDataPool):
    """hentai_cosplay_trans (``deepghs/hentai_cosplay_trans`` by default): the id's archive path
    (``XYZ.tar`` at level 3, ``X/YZW.tar`` at level 4...) in each folder of the repo that holds
    archives, in natural order."""

    def __init__(self, repo_id: str = 'deepghs/hentai_cosplay_trans', revision: str = 'main', base_level: int = 3,
                 hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        IncrementIDDataPool.__init__(self, repo_id, data_revision=revision, idx_repo_id=repo_id,
                                     idx_revision=revision, base_level=base_level, hf_token=hf_token,
                                     endpoint=endpoint, retry=retry)
        self._listing = _Listing(self, None)

    def _request_possible_archives(self, resource_id) -> List[str]:
        level = self.base_level if isinstance(self.base_level, int) else self.base_level[0]
        name = "/".join(id_modulo_cut(f"{int(resource_id) % 10 ** level:0{level}d}")) + ".tar"
        folders = sorted({os.path.dirname(p) for p in self._listing.paths()}, key=natural)
        return [f"{folder}/{name}" if folder else name for folder in folders]
