"""The Danbooru and E621 series of cheesechaser 0.2.2: repos, pinned revisions, archive names,
``updates/`` folders found by listing the repo (not a fixed list), and the Newest pools that look in
the stable repo first, then in the newest one. Repos are served by the loopback Hub under their
real names."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo
from tests.support.peer import PEER_PYTHON, files_both_leave, needs_peer

FACTS = ("data_repo_id", "data_revision", "idx_repo_id", "idx_revision")
SERIES = ["DanbooruDataPool", "DanbooruStableDataPool", "DanbooruWebpDataPool", "E621DataPool",
          "E621StableDataPool", "E621WebpDataPool"]
NEWEST = ["DanbooruNewestDataPool", "DanbooruNewestWebpDataPool", "E621NewestDataPool", "E621NewestWebpDataPool"]


def _blob(rid: int) -> bytes:
    return f"post {rid}\n".encode() * (30 + rid % 11)


def _danbooru_archive(rid: int) -> str:
    if rid < 3000:
        return f"original/data-0{rid % 1000:03d}.tar"
    if rid < 6000:
        return f"recent/data-1{rid % 1000:03d}.tar"
    folder = "20240319" if rid < 8000 else "20241201"  # the second folder is in no fixed list
    return f"updates/{folder}/dataset-{rid % 10}.tar"


IDS = [1001, 2002, 4003, 5004, 7005, 7016, 9007, 9018]


@pytest.mark.peer
@needs_peer
def test_the_series_read_the_repos_and_revisions_cheesechaser_reads():
    script = textwrap.dedent(f"""
        import json, cheesechaser.datapool as d
        facts = lambda p: {{k: getattr(p, k) for k in {FACTS!r}}}
        out = {{n: facts(getattr(d, n)()) for n in {SERIES!r}}}
        out.update({{n: [facts(getattr(d, n)()._old_pool), facts(getattr(d, n)()._newest_pool)] for n in {NEWEST!r}}})
        print(json.dumps(out))
    """)
    proc = subprocess.run([str(PEER_PYTHON), "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])

    def facts(pool):
        return {k: getattr(pool, k) for k in FACTS}
    ours = {n: facts(getattr(datapool, n)()) for n in SERIES}
    ours.update({n: [facts(p) for p in getattr(datapool, n)().pools] for n in NEWEST})
    assert ours == theirs


def test_danbooru_finds_ids_in_original_recent_and_every_updates_folder_listed(hub, hub_root, tmp_path):
    build_repo(hub_root, "nyanko7/danbooru2023", {rid: {f"{rid}.png": _blob(rid)} for rid in IDS},
               archives=_danbooru_archive, idx_repo_id="deepghs/danbooru2023_index")
    pool = datapool.DanbooruDataPool(endpoint=hub.url)
    report = pool.batch_download_to_directory(IDS + [6666], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == IDS and list(report.missing) == [6666]
    assert pool.update_layers() == ((10, "updates/20240319/dataset-{residue}.tar"),
                                    (10, "updates/20241201/dataset-{residue}.tar"))
    for rid in IDS:
        assert (tmp_path / "o" / f"{rid}.png").read_bytes() == _blob(rid)


def test_a_newest_pool_looks_in_the_stable_repo_then_the_newest(hub, hub_root, tmp_path):
    old, new = [1001, 2002, 3003], [8001, 8002]
    build_repo(hub_root, "KBlueLeaf/danbooru2023-webp-4Mpixel", {rid: {f"{rid}.webp": _blob(rid)} for rid in old},
               archives=lambda rid: f"images/data-0{rid % 1000:03d}.tar",
               idx_repo_id="deepghs/danbooru2023-webp-4Mpixel_index")
    build_repo(hub_root, "deepghs/danbooru_newest-webp-4Mpixel", {rid: {f"{rid}.webp": _blob(rid)} for rid in new})
    pool = datapool.DanbooruNewestWebpDataPool(endpoint=hub.url)
    report = pool.batch_download_to_directory(old + new + [99_999], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == old + new and list(report.missing) == [99_999]
    with pool.mock_resource(8002, None) as (td, _):
        assert Path(td, "8002.webp").read_bytes() == _blob(8002)
    with pytest.raises(datapool.ResourceNotFoundError):
        with pool.mock_resource(99_999, None):
            pass


@pytest.mark.peer
@needs_peer
def test_danbooru_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    build_repo(hub_root, "nyanko7/danbooru2023", {rid: {f"{rid}.png": _blob(rid)} for rid in IDS},
               archives=_danbooru_archive, idx_repo_id="deepghs/danbooru2023_index")
    script = ("from {module}.datapool import DanbooruDataPool\n"
              f"DanbooruDataPool().batch_download_to_directory({IDS + [6666]!r}, {{dst!r}}, max_workers=4, silent=True)\n")
    theirs, ours = files_both_leave(script, hub, tmp_path)
    assert theirs and ours == theirs
