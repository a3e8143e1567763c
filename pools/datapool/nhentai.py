"""cheesechaser 0.2.2's ``NHentaiMangaDataPool``: a manga id stands for its pages, whose image ids
``posts.csv`` of ``deepghs/nhentai_full`` lists (``image_ids``, a JSON list); a manga is saved as
``<manga>_p1.<ext>``, ``<manga>_p2.<ext>``... in page order, pages no archive holds left out."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, ContextManager, Optional, Tuple

from pools.base import DataPool, ResourceNotFoundError
from pools.datapool.named import NHentaiImagesDataPool
from pools.errors import FileMissing, IndexFormatError
from pools.transport.retry import RetryPolicy

MAX_POSTS_BYTES = 512 << 20


class NHentaiMangaDataPool(DataPool):
    """Mangas of nhentai_full, each downloaded as its pages (through :class:`NHentaiImagesDataPool`)."""

    def __init__(self, revision: str = 'main', hf_token: Optional[str] = None, *,
                 endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        self.revision = revision
        self.images_pool = NHentaiImagesDataPool(revision=revision, hf_token=hf_token, endpoint=endpoint, retry=retry)
        self._map: dict[int, list[int]] | None = None
        self._lock = threading.Lock()

    def manga_posts_table(self):
        """``posts.csv`` as a pyarrow table (fetched once, cached by commit like an index)."""
        import pyarrow  # lazy: only this pool reads the posts table
        import pyarrow.csv  # lazy: as above

        def parse(raw: bytes):
            try:
                return pyarrow.csv.read_csv(io.BytesIO(raw))
            except (pyarrow.ArrowException, ValueError) as err:
                raise IndexFormatError(f"posts.csv of {pool.data_repo_id} is not readable ({err.__class__.__name__})")

        pool = self.images_pool
        table = pool.client.fetch_index(pool.data_repo_id, "posts.csv", pool.resolve_revision(), parse,
                                        max_bytes=MAX_POSTS_BYTES)
        if table is None:
            raise FileMissing(f"posts.csv is not in {pool.data_repo_id}")
        return table

    def manga_id_map(self) -> dict[int, list[int]]:
        """``{manga id: [image ids, in page order]}``."""
        with self._lock:
            if self._map is None:
                self._map = {int(row["id"]): [int(i) for i in json.loads(row["image_ids"])]
                             for row in self.manga_posts_table().to_pylist()}
            return self._map

    @contextmanager
    def mock_resource(self, resource_id, resource_info, silent: bool = False) -> ContextManager[Tuple[str, Any]]:
        image_ids = self.manga_id_map().get(int(resource_id))
        if image_ids is None:
            raise ResourceNotFoundError(f"Manga {resource_id!r} not found.")
        with tempfile.TemporaryDirectory(prefix="cheesechaser-manga-") as td:
            origin, pages = os.path.join(td, "origin"), os.path.join(td, "dst")
            os.makedirs(pages)
            self.images_pool.batch_download_to_directory(image_ids, origin, save_metainfo=False, silent=True)
            by_id = {}
            for name in os.listdir(origin):
                stem, ext = os.path.splitext(name)
                if stem.isdigit():
                    by_id[int(stem)] = (name, ext)
            for page, image_id in enumerate(image_ids, start=1):
                if image_id in by_id:
                    name, ext = by_id[image_id]
                    shutil.move(os.path.join(origin, name), os.path.join(pages, f"{resource_id}_p{page}{ext}"))
            yield pages, resource_info
