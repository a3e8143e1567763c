"""Sankaku and HentaiCosplay: archive folders found by listing the repo, as cheesechaser 0.2.2
finds them, served by the loopback Hub under the real repo names."""

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


def _blob(rid: int) -> bytes:
    return f"{rid}:".encode() * (40 + rid % 13)


SANKAKU = {1001: "images/part1", 2001: "images/part2", 3002: "images/part10", 4003: "images/part2"}
COSPLAY = {101: "2023", 201: "2024", 345: "2024", 1045: "archive/old"}


def _sankaku(hub_root):
    build_repo(hub_root, "deepghs/sankaku_full", {rid: {f"{rid}.jpg": _blob(rid)} for rid in SANKAKU},
               archives=lambda rid: f"{SANKAKU[rid]}/0{rid % 1000:03d}.tar")


def _cosplay(hub_root):
    build_repo(hub_root, "deepghs/hentai_cosplay_trans", {rid: {f"{rid}.png": _blob(rid)} for rid in COSPLAY},
               archives=lambda rid: f"{COSPLAY[rid]}/{rid % 1000:03d}.tar")


def test_sankaku_finds_an_ids_archive_in_whichever_folder_holds_it(hub, hub_root, tmp_path):
    _sankaku(hub_root)
    pool = datapool.SankakuDataPool(endpoint=hub.url)
    assert pool._request_possible_archives(2001) == ["images/part1/0001.tar", "images/part2/0001.tar"]
    report = pool.batch_download_to_directory(list(SANKAKU) + [5005], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == sorted(SANKAKU) and list(report.missing) == [5005]


def test_hentai_cosplay_tries_the_ids_archive_in_every_folder(hub, hub_root, tmp_path):
    _cosplay(hub_root)
    pool = datapool.HentaiCosplayDataPool(endpoint=hub.url)
    assert pool._request_possible_archives(345) == ["2023/345.tar", "2024/345.tar", "archive/old/345.tar"]
    report = pool.batch_download_to_directory(list(COSPLAY) + [999], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == sorted(COSPLAY) and list(report.missing) == [999]


@pytest.mark.peer
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason=f"peer venv with cheesechaser 0.2.2 not found at {PEER_PYTHON}")
@pytest.mark.parametrize("name", ["SankakuDataPool", "HentaiCosplayDataPool"])
def test_the_listed_pools_leave_the_same_files_as_cheesechaser(hub, hub_root, tmp_path, name):
    (_sankaku if name == "SankakuDataPool" else _cosplay)(hub_root)
    ids = list(SANKAKU if name == "SankakuDataPool" else COSPLAY) + [999]
    trees = {}
    for m, python in (("cheesechaser", str(PEER_PYTHON)), ("pools", sys.executable)):
        dst = tmp_path / m
        script = (f"from {m}.datapool import {name}\n"
                  f"{name}().batch_download_to_directory({ids!r}, {str(dst)!r}, max_workers=4, silent=True)\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / f"home-{m}"), PYTHONPATH=str(ROOT),
                   HF_HUB_DISABLE_TELEMETRY="1")
        proc = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=180,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        trees[m] = {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()}
    assert trees["cheesechaser"] and trees["pools"] == trees["cheesechaser"]
