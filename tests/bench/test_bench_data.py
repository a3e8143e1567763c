"""The benchmarks' datasets are what they claim: hfutils indexes, real-sized and well formed."""

from __future__ import annotations

import hashlib
import json

from tests.bench.bench_data import (
    FILLERS,
    body,
    build_big,
    build_padded,
    build_small,
    repo_dir,
    write_archive,
)
from hfutils.index import tar_get_index_info

from pools.archive.index import ArchiveIndex


def test_write_archive_gives_the_index_hfutils_computes(tmp_path):
    members = [(f"{1000 * k}.webp", body(1000 * k, 700 * k)) for k in range(1, 6)]
    members.append(("sub/6000.png", body(6000, 10)))
    index = write_archive(tmp_path, "images/0000.tar", members)
    theirs = tar_get_index_info(str(tmp_path / "images/0000.tar"), silent=True)
    assert index == theirs
    assert list(index["files"]) == list(theirs["files"])
    assert json.loads((tmp_path / "images/0000.json").read_text()) == theirs


def test_padded_index_is_real_sized_and_every_entry_verifies(tmp_path):
    ds = build_padded(tmp_path, "bench/real", archives=2, entries=10_000)
    top = repo_dir(tmp_path, "bench/real")
    assert ds.archives == 2 and len(ds.ids["sparse"]) == 2
    assert 1_150_000 < ds.index_bytes / 2 < 1_500_000  # ~1.3 MB per index, as on the real Hub
    for rid in ds.ids["sparse"]:
        archive, name = ds.tasks([rid])[0]
        raw = (top / archive.replace(".tar", ".json")).read_bytes()
        index = json.loads(raw)
        files = index["files"]
        assert len(files) == 10_000 and name in files
        assert all(int(n.split(".")[0]) % 1000 == rid % 1000 for n in files)
        tar = (top / archive).read_bytes()
        assert index["filesize"] == len(tar)
        assert index["hash_lfs"] == hashlib.sha256(tar).hexdigest()
        for entry in files.values():  # every entry points at bytes that hash to its sha256
            data = tar[entry["offset"]:entry["offset"] + entry["size"]]
            assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert files[name]["sha256"] == ds.files[rid][name]
        assert len({e["offset"] for e in files.values()}) == FILLERS + 1  # the fillers and the wanted file
        parsed = ArchiveIndex.from_bytes(archive, raw)
        assert parsed.unrecognized == [] and parsed.n_files == 10_000


def test_small_and_big_datasets_list_what_they_hold(tmp_path):
    small = build_small(tmp_path, sparse_archives=3)
    assert len(small.ids["dense"]) == 300 and len(small.ids["sparse"]) == 3 and small.archives == 15
    big = build_big(tmp_path, files=3, archives=2, sizes=(1000, 2000))
    assert len(big.ids["all"]) == 3 and big.archives == 2
    for ds in (small, big):
        top = repo_dir(tmp_path, ds.repo)
        for archive, name in ds.tasks(ds.ids[next(iter(ds.ids))]):
            entry = json.loads((top / archive.replace(".tar", ".json")).read_text())["files"][name]
            tar = (top / archive).read_bytes()
            data = tar[entry["offset"]:entry["offset"] + entry["size"]]
            assert hashlib.sha256(data).hexdigest() == ds.expected(ds.ids[next(iter(ds.ids))])[name]
