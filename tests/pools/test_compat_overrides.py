"""Code written for cheesechaser 0.2.2 runs on ``pools`` with only the import changed.

Each script below is written the way cheesechaser's own pools are; it runs once with
``cheesechaser`` (the peer venv, skipped when it is absent) and once with ``pools``, over real HTTP
against the loopback Hub, and the files they leave must be the same. A silent "everything
missing" (an override the engine never called) is the failure these tests exist for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from pathlib import Path

import pytest

from app.hub.dataset import build_repo
from pools import IncrementIDDataPool, InvalidResourceDataError
from pools.base import DataLocation, id_modulo_cut
from tests.support.helpers import tar_gets
from tests.support.peer import files_in, needs_peer, run_script

IDS = list(range(1000, 1040))


def _payload(rid: int) -> bytes:
    return hashlib.sha256(str(rid).encode()).digest() * (20 + rid % 7)


def _repo(hub_root) -> None:
    """Archives named ``shards/part-<id % 4>.tar``: no base level reaches them, only an override."""
    build_repo(hub_root, "t/compat", {rid: {f"{rid}.bin": _payload(rid)} for rid in IDS},
               archives=lambda rid: f"shards/part-{rid % 4}.tar")


OVERRIDE = """
from {module}.datapool import IncrementIDDataPool

class ShardPool(IncrementIDDataPool):
    def __init__(self):
        IncrementIDDataPool.__init__(self, "t/compat", base_level=3)

    def _request_possible_archives(self, resource_id):
        return [f"shards/part-{{int(resource_id) % 4}}.tar"]

pool = ShardPool()
pool.batch_download_to_directory({ids!r}, {dst!r}, max_workers=4, silent=True)
"""


def _run(module: str, script: str, hub, tmp_path: Path, **fmt):
    return run_script(module, textwrap.dedent(script).format(module=module, **fmt), hub, tmp_path)


_tree = files_in


def test_an_override_of_the_possible_archives_is_called_not_silently_skipped(hub, hub_root, tmp_path):
    _repo(hub_root)
    dst = tmp_path / "ours"
    _run("pools", OVERRIDE, hub, tmp_path, ids=IDS[:12], dst=str(dst))
    assert _tree(dst) == {f"{rid}.bin": _payload(rid) for rid in IDS[:12]}


@pytest.mark.peer
@needs_peer
def test_the_same_override_script_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    _repo(hub_root)
    ids = IDS[:12] + [999_999]  # one id no archive holds: skipped by both
    _run("cheesechaser", OVERRIDE, hub, tmp_path, ids=ids, dst=str(tmp_path / "peer"))
    _run("pools", OVERRIDE, hub, tmp_path, ids=ids, dst=str(tmp_path / "ours"))
    theirs, ours = _tree(tmp_path / "peer"), _tree(tmp_path / "ours")
    assert theirs and ours == theirs


def test_max_downloads_counts_resources_brought_not_ids_tried(hub, hub_root, tmp_path):
    """cheesechaser's ``max_downloads`` stops after that many downloads: ids that are missing do not
    use it up (ours wrote nothing here before: it cut the id list to ``max_downloads`` ids)."""
    build_repo(hub_root, "t/max", {rid: {f"{rid}.bin": _payload(rid)} for rid in range(1100, 1139)}, base_level=2)
    pool = IncrementIDDataPool("t/max", base_level=2, endpoint=hub.url)
    missing = list(range(5000, 5050))  # 50 ids no archive holds, first
    report = pool.batch_download_to_directory(missing + list(range(1100, 1139)), str(tmp_path / "o"),
                                              max_workers=2, max_downloads=10, silent=True)
    written = [p for p in (tmp_path / "o").iterdir() if p.suffix == ".bin"]
    assert 10 <= len(written) < 39
    assert report.state == "cancelled" and len(report.downloaded) >= 10


def test_data_location_is_a_dataclass_and_id_modulo_cut_exists():
    loc = DataLocation(resource_id=7, tar_file="images/0007.tar", filename="7.png")
    assert dataclasses.asdict(loc) == {"resource_id": 7, "tar_file": "images/0007.tar", "filename": "7.png"}
    assert loc == DataLocation(7, "images/0007.tar", "7.png") and loc != DataLocation(8, "images/0007.tar", "7.png")
    with pytest.raises(TypeError):
        hash(loc)
    assert id_modulo_cut("123456789") == ["123", "456", "789"]
    assert id_modulo_cut("12345") == ["12", "345"] and id_modulo_cut("7") == ["7"]


DST_NAME = """
import hashlib, os
from {module}.datapool import IncrementIDDataPool

class PostPool(IncrementIDDataPool):
    def _get_dst_filename(self, location):
        return f"post{{location.resource_id}}" + os.path.splitext(location.filename)[1]

pool = PostPool("t/names", base_level=2)
for rid in {ids!r}:
    with pool.mock_resource(rid, None, silent=True) as (td, info):
        for name in sorted(os.listdir(td)):
            print(name, hashlib.sha256(open(os.path.join(td, name), "rb").read()).hexdigest())
"""


def _names_repo(hub_root) -> None:
    build_repo(hub_root, "t/names", {rid: {f"{rid}.bin": _payload(rid)} for rid in IDS[:6]}, base_level=2)


def test_mock_resource_saves_each_file_under_the_name_an_override_gives(hub, hub_root, tmp_path):
    _names_repo(hub_root)
    out = _run("pools", DST_NAME, hub, tmp_path, ids=IDS[:3]).stdout.split("\n")
    assert [line.split()[0] for line in out if line] == [f"post{rid}.bin" for rid in IDS[:3]]


@pytest.mark.peer
@needs_peer
def test_mock_resource_with_an_override_of_the_name_matches_cheesechaser(hub, hub_root, tmp_path):
    _names_repo(hub_root)
    theirs = _run("cheesechaser", DST_NAME, hub, tmp_path, ids=IDS[:4]).stdout
    ours = _run("pools", DST_NAME, hub, tmp_path, ids=IDS[:4]).stdout
    assert theirs.strip() and ours == theirs


def test_a_name_an_override_gives_never_leads_outside_the_folder(hub, hub_root, tmp_path):
    _names_repo(hub_root)

    class Climbing(IncrementIDDataPool):
        def _get_dst_filename(self, location):
            return "../../escaped.bin"

    pool = Climbing("t/names", base_level=2, endpoint=hub.url)
    with pytest.raises(InvalidResourceDataError, match="not a file name inside"):
        with pool.mock_resource(IDS[0], None):
            pass
    assert not list(tmp_path.rglob("escaped.bin"))


BATCH_NAMES = """
import os
from {module}.datapool import IncrementIDDataPool

class PostPool(IncrementIDDataPool):
    def _get_dst_filename(self, location):
        return f"post{{location.resource_id}}" + os.path.splitext(location.filename)[1]

PostPool("t/names", base_level=2).batch_download_to_directory({ids!r}, {dst!r}, max_workers=3, silent=True)
"""


def test_the_batch_download_saves_files_under_an_overrides_names(hub, hub_root, tmp_path):
    """The table pools rely on it: cheesechaser writes ``post1010.png`` where the archive has ``1010.png``."""
    _names_repo(hub_root)
    _run("pools", BATCH_NAMES, hub, tmp_path, ids=IDS[:4], dst=str(tmp_path / "ours"))
    assert _tree(tmp_path / "ours") == {f"post{rid}.bin": _payload(rid) for rid in IDS[:4]}
    # a rerun finds them under the same names: nothing is fetched again
    gets = len(tar_gets(hub))
    _run("pools", BATCH_NAMES, hub, tmp_path, ids=IDS[:4], dst=str(tmp_path / "ours"))
    assert len(tar_gets(hub)) == gets


@pytest.mark.peer
@needs_peer
def test_the_batch_download_with_an_override_of_the_name_matches_cheesechaser(hub, hub_root, tmp_path):
    _names_repo(hub_root)
    _run("cheesechaser", BATCH_NAMES, hub, tmp_path, ids=IDS[:4], dst=str(tmp_path / "peer"))
    _run("pools", BATCH_NAMES, hub, tmp_path, ids=IDS[:4], dst=str(tmp_path / "ours"))
    assert _tree(tmp_path / "peer") and _tree(tmp_path / "ours") == _tree(tmp_path / "peer")


def test_a_batch_file_named_outside_the_destination_fails_that_id_only(hub, hub_root, tmp_path):
    _names_repo(hub_root)

    class Climbing(IncrementIDDataPool):
        def _get_dst_filename(self, location):
            return "../escaped.bin" if location.resource_id == IDS[0] else f"sub/{location.resource_id}.bin"

    report = Climbing("t/names", base_level=2, endpoint=hub.url).batch_download_to_directory(
        IDS[:3], str(tmp_path / "o"), silent=True)
    assert set(report.failed) == {IDS[0]} and "not a file name inside" in report.failed[IDS[0]]
    assert sorted(report.downloaded) == IDS[1:3]
    assert _tree(tmp_path / "o") == {f"sub/{rid}.bin": _payload(rid) for rid in IDS[1:3]}
    assert not list(tmp_path.rglob("escaped.bin"))


LOCATED = """
from {module}.datapool import IncrementIDDataPool, DataLocation, ResourceNotFoundError

class Located(IncrementIDDataPool):
    \"\"\"Says itself where each id's file is, the way cheesechaser's table pools do.\"\"\"
    def __init__(self):
        IncrementIDDataPool.__init__(self, "t/compat", base_level=3)

    def _request_resource_by_id(self, resource_id):
        rid = int(resource_id)
        if rid >= 1030:
            raise ResourceNotFoundError(f"no {{rid}}")
        return [DataLocation(resource_id=rid, tar_file=f"shards/part-{{rid % 4}}.tar", filename=f"{{rid}}.bin")]

    def _get_dst_filename(self, location):
        return f"located_{{location.resource_id}}.bin"

Located().batch_download_to_directory({ids!r}, {dst!r}, max_workers=4, silent=True)
"""


def test_an_override_of_where_an_id_is_is_asked_by_the_batch_download(hub, hub_root, tmp_path):
    """No archive layout reaches these files: only ``_request_resource_by_id`` knows them."""
    _repo(hub_root)
    dst = tmp_path / "ours"
    _run("pools", LOCATED, hub, tmp_path, ids=IDS, dst=str(dst))
    assert _tree(dst) == {f"located_{rid}.bin": _payload(rid) for rid in IDS if rid < 1030}


@pytest.mark.peer
@needs_peer
def test_an_override_of_where_an_id_is_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    _repo(hub_root)
    _run("cheesechaser", LOCATED, hub, tmp_path, ids=IDS, dst=str(tmp_path / "peer"))
    _run("pools", LOCATED, hub, tmp_path, ids=IDS, dst=str(tmp_path / "ours"))
    theirs, ours = _tree(tmp_path / "peer"), _tree(tmp_path / "ours")
    assert len(theirs) == 30 and ours == theirs
