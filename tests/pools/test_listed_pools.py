"""Sankaku and HentaiCosplay: archive folders found by listing the repo, as cheesechaser 0.2.2
finds them, served by the loopback Hub under the real repo names."""

from __future__ import annotations

import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo
from tests.support.peer import files_both_leave, needs_peer


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
@needs_peer
@pytest.mark.parametrize("name", ["SankakuDataPool", "HentaiCosplayDataPool"])
def test_the_listed_pools_leave_the_same_files_as_cheesechaser(hub, hub_root, tmp_path, name):
    (_sankaku if name == "SankakuDataPool" else _cosplay)(hub_root)
    ids = list(SANKAKU if name == "SankakuDataPool" else COSPLAY) + [999]
    script = (f"from {{module}}.datapool import {name}\n"
              f"{name}().batch_download_to_directory({ids!r}, {{dst!r}}, max_workers=4, silent=True)\n")
    theirs, ours = files_both_leave(script, hub, tmp_path)
    assert theirs and ours == theirs
