"""cheesechaser 0.2.2's named dataset pools under their own names: the same repos, revisions,
levels and folders as the reference's (read from the peer venv when it is there), and a download
through one of them from a loopback Hub that serves the repo under its real name."""

from __future__ import annotations

import json
import subprocess

import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo
from pools.archive.layout import archive_path
from pools.datapool.named import NAMED
from tests.support.peer import PEER_PYTHON, needs_peer

FACTS = ("data_repo_id", "data_revision", "idx_repo_id", "idx_revision", "base_level", "base_dir")


def _ours(cls) -> dict:
    pool = cls(revision="r7")
    return {k: getattr(pool, k) for k in FACTS}


@pytest.mark.peer
@needs_peer
def test_every_named_pool_reads_the_same_repo_and_layout_as_cheesechasers():
    names = [cls.__name__ for cls in NAMED]
    script = ("import json, cheesechaser.datapool as d\n"
              f"out = {{n: {{k: getattr(getattr(d, n)(revision='r7'), k) for k in {FACTS!r}}} for n in {names!r}}}\n"
              "print(json.dumps(out))")
    proc = subprocess.run([str(PEER_PYTHON), "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {cls.__name__: _ours(cls) for cls in NAMED} == theirs


def test_every_named_pool_is_importable_where_cheesechaser_scripts_import_it():
    for cls in NAMED:
        assert getattr(datapool, cls.__name__) is cls
        assert cls.__name__ in datapool.__all__


def test_a_named_pool_downloads_from_its_repo_at_both_levels(hub, hub_root, tmp_path):
    """gelbooru_full keeps older ids by their last 3 digits and newer ones by 4: both are found."""
    def archive(rid):
        return archive_path(rid, 3 if rid < 5000 else 4, "images")

    ids = [1001, 2002, 7003, 12004]
    build_repo(hub_root, "deepghs/gelbooru_full", {rid: {f"{rid}.jpg": str(rid).encode() * 50} for rid in ids},
               archives=archive)
    pool = datapool.GelbooruDataPool(endpoint=hub.url)
    report = pool.batch_download_to_directory(ids + [9_999_999], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == ids and list(report.missing) == [9_999_999]
    assert {p.name for p in (tmp_path / "o").iterdir() if p.suffix == ".jpg"} == {f"{rid}.jpg" for rid in ids}


@pytest.mark.peer
@needs_peer
def test_every_name_cheesechaser_datapool_exports_is_in_pools_datapool():
    script = "import cheesechaser.datapool as d; print(' '.join(n for n in dir(d) if not n.startswith('_')))"
    proc = subprocess.run([str(PEER_PYTHON), "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = {n for n in proc.stdout.split() if n[0].isupper()}
    assert theirs and theirs <= set(dir(datapool)), sorted(theirs - set(dir(datapool)))
