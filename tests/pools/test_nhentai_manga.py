"""NHentaiMangaDataPool: a manga id downloads its pages, named ``<manga>_p<page>.<ext>`` in the
order ``posts.csv`` gives, from ``deepghs/nhentai_full`` served by the loopback Hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo
from tests.support.peer import files_both_leave, needs_peer

IMAGES = {30001: "png", 30002: "jpg", 30003: "png", 40001: "webp"}
POSTS = b'id,image_ids\n7,"[30002, 30001, 30003]"\n8,"[40001, 99999]"\n'


def _blob(rid: int) -> bytes:
    return f"page {rid}".encode() * 40


def _repo(hub_root):
    build_repo(hub_root, "deepghs/nhentai_full", {rid: {f"{rid}.{ext}": _blob(rid)} for rid, ext in IMAGES.items()},
               base_level=4, repo_files={"posts.csv": POSTS})


def test_a_manga_is_its_pages_in_order(hub, hub_root, tmp_path):
    _repo(hub_root)
    pool = datapool.NHentaiMangaDataPool(endpoint=hub.url)
    with pool.mock_resource(7, None) as (td, _):
        pages = {name: Path(td, name).read_bytes() for name in os.listdir(td)}
    assert pages == {"7_p1.jpg": _blob(30002), "7_p2.png": _blob(30001), "7_p3.png": _blob(30003)}
    report = pool.batch_download_to_directory([7, 8, 9], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == [7, 8] and list(report.missing) == [9]
    assert sorted(os.listdir(tmp_path / "o")) == ["7_p1.jpg", "7_p2.png", "7_p3.png", "8_p1.webp"]


@pytest.mark.peer
@needs_peer
def test_the_manga_pool_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    _repo(hub_root)
    script = ("from {module}.datapool import NHentaiMangaDataPool\n"
              "NHentaiMangaDataPool().batch_download_to_directory([7, 8], {dst!r}, max_workers=2, silent=True)\n")
    theirs, ours = files_both_leave(script, hub, tmp_path)
    assert theirs and ours == theirs
