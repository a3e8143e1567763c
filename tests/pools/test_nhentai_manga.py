"""NHentaiMangaDataPool: a manga id downloads its pages, named ``<manga>_p<page>.<ext>`` in the
order ``posts.csv`` gives, from ``deepghs/nhentai_full`` served by the loopback Hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = Path(os.environ.get("CHEESECHASER_PEER_PYTHON") or "/work/peer/bin/python")
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
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason=f"peer venv with cheesechaser 0.2.2 not found at {PEER_PYTHON}")
def test_the_manga_pool_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    _repo(hub_root)
    trees = {}
    for m, python in (("cheesechaser", str(PEER_PYTHON)), ("pools", sys.executable)):
        dst = tmp_path / m
        script = (f"from {m}.datapool import NHentaiMangaDataPool\n"
                  f"NHentaiMangaDataPool().batch_download_to_directory([7, 8], {str(dst)!r}, max_workers=2, silent=True)\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / f"home-{m}"), PYTHONPATH=str(ROOT),
                   HF_HUB_DISABLE_TELEMETRY="1")
        proc = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=180,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        trees[m] = {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()}
    assert trees["cheesechaser"] and trees["pools"] == trees["cheesechaser"]
