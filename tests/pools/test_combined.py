"""A pool that combines layouts (danbooru2023: data-0XYZ/data-1XYZ by id % 1000, then
updates/*/dataset-N by id % 10), over real HTTP against the loopback Hub."""

from __future__ import annotations


import pytest

from app.hub.dataset import build_repo
from pools import Downloader
from pools.combined import DANBOORU2023_LAYERS, CombinedLayoutDataPool, parse_layer

from tests.support.helpers import binary_resources, sha256_file

ORIGINAL = [5000, 5001, 7002]
RECENT = [6001, 6999]
UPDATE_1 = [7000003, 7000014]
UPDATE_2 = [7100005, 7100006]


def _where(rid: int) -> str:
    if rid in ORIGINAL:
        return f"original/data-0{rid % 1000:03d}.tar"
    if rid in RECENT:
        return f"recent/data-1{rid % 1000:03d}.tar"
    if rid in UPDATE_1:
        return f"updates/20240319/dataset-{rid % 10}.tar"
    return f"updates/20240522/dataset-{rid % 10}.tar"


def test_ids_are_found_in_every_layer_in_order(hub, hub_root, tmp_path):
    ids = ORIGINAL + RECENT + UPDATE_1 + UPDATE_2
    manifest = build_repo(hub_root, "nyanko7/danbooru2023", binary_resources(ids, 1500), archives=_where,
                          name_prefix="./")
    pool = CombinedLayoutDataPool("nyanko7/danbooru2023", endpoint=hub.url)
    assert pool.archives_for(7000003) == ["original/data-0003.tar", "recent/data-1003.tar",
                                          "updates/20240319/dataset-3.tar", "updates/20240522/dataset-3.tar"]
    wanted = ids + [5002, 7000007]  # two ids no archive holds
    with Downloader(max_workers=3) as dl:
        report = dl.submit(pool, wanted, str(tmp_path / "out")).wait()
    assert sorted(report.downloaded) == sorted(ids)
    assert sorted(report.missing) == [5002, 7000007]
    assert not report.failed
    for rid in ids:
        name = f"{rid}.bin"
        assert sha256_file(tmp_path / "out" / name) == manifest.files[rid][name]
    preview = pool.preview([5000, 7000003])
    assert "updates/20240319/dataset-3.tar" in preview.archives and "original/data-0000.tar" in preview.archives


def test_layer_parsing_and_checks():
    assert parse_layer("10:updates/x/dataset-{residue}.tar") == (10, "updates/x/dataset-{residue}.tar")
    assert parse_layer("original/data-0{residue:03d}.tar") == (1000, "original/data-0{residue:03d}.tar")
    for bad in ("../x/{residue}.tar", "/abs/{residue}.tar", "x/{other}.tar", "x/{residue}.zip", "x/fixed.tar",
                "0:x/{residue}.tar"):
        with pytest.raises(ValueError):
            parse_layer(bad)
    assert CombinedLayoutDataPool("a/b").layers == DANBOORU2023_LAYERS
    with pytest.raises(ValueError):
        CombinedLayoutDataPool("a/b", layers=())
