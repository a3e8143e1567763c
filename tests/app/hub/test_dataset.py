"""The dataset builder (app/hub/dataset.py), the images and the demo dataset (app/hub/demo.py)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from hfutils.index import tar_get_index_info
from PIL import Image

from app.hub.dataset import (
    archive_path, build_repo, corrupt_member, index_path, repo_dir, rewrite_index, tar_index_info,
)
from app.hub.demo import (
    DEMO_BASE_DIR, DEMO_BASE_LEVEL, DEMO_REPO, DEMO_SEED, _files, add_demo_arguments,
    demo_cache_dir, demo_ids, demo_is_current, run_demo_data, write_demo,
)
from app.hub.demo_posts import demo_post
from app.hub.images import make_image, tiny_image


def sidecar(rid: int) -> bytes:
    return json.dumps({"id": rid, "tags": ["demo"]}).encode()


def resources(ids, *, ext: str = "png", with_json: bool = False) -> dict[int, dict[str, bytes]]:
    out = {}
    for rid in ids:
        files = {f"{rid}.{ext}": tiny_image(rid, ext)}
        if with_json:
            files[f"{rid}.json"] = sidecar(rid)
        out[rid] = files
    return out


def load_index(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_index_matches_tar(index_file: Path, tar_file: Path) -> dict:
    """Every index entry points at bytes in the tar whose sha256 is the recorded one."""
    index = load_index(index_file)
    raw = tar_file.read_bytes()
    assert index["filesize"] == len(raw)
    assert index["hash_lfs"] == hashlib.sha256(raw).hexdigest()
    assert index["hash"] == hashlib.sha1(f"blob {len(raw)}\0".encode() + raw).hexdigest()
    for name, entry in index["files"].items():
        data = raw[entry["offset"]:entry["offset"] + entry["size"]]
        assert len(data) == entry["size"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
    return index


# --- archive path rule ------------------------------------------------------------------------

@pytest.mark.parametrize(("rid", "level", "expected"), [
    (114514, 2, "images/014.tar"),
    (114514, 3, "images/0514.tar"),
    (114514, 4, "images/4/0514.tar"),
    (114514, 6, "images/114/0514.tar"),
    (7, 3, "images/0007.tar"),
    (7, 4, "images/0/0007.tar"),
    (1000, 3, "images/0000.tar"),
    (47, 2, "images/047.tar"),
    (5, 1, "images/05.tar"),
])
def test_archive_path_rule(rid, level, expected):
    assert archive_path(rid, level, "images") == expected


def test_archive_path_other_base_dir_and_index_path():
    assert archive_path(114514, 3, "original") == "original/0514.tar"
    assert index_path("images/4/0514.tar") == "images/4/0514.json"


# --- build_repo -------------------------------------------------------------------------------

def test_build_repo_writes_tars_and_matching_indexes(tmp_path):
    m = build_repo(tmp_path, "owner/pics", resources(range(1, 40), with_json=True), base_level=1)
    rdir = tmp_path / "datasets" / "owner" / "pics"
    assert m.repo_dir == rdir
    assert sorted(m.archives) == [f"images/0{d}.tar" for d in range(10)]
    assert m.ids == list(range(1, 40))
    for archive, names in m.archives.items():
        tar_file, index_file = rdir / archive, rdir / index_path(archive)
        index = assert_index_matches_tar(index_file, tar_file)
        assert list(index["files"]) == names
        assert m.archive_sizes[archive] == tar_file.stat().st_size
    # manifest hashes are the file bytes' hashes, and each id sits in its archive
    assert m.files[13] == {"13.png": hashlib.sha256(tiny_image(13)).hexdigest(),
                           "13.json": hashlib.sha256(sidecar(13)).hexdigest()}
    assert m.sizes[13]["13.json"] == len(sidecar(13))
    assert m.locations[13] == "images/03.tar"
    assert m.members[13] == {"13.png": "13.png", "13.json": "13.json"}
    assert m.unrecognized == {}
    assert not (tmp_path / "access.json").exists()


def test_own_index_equals_hfutils_index(tmp_path):
    m = build_repo(tmp_path, "o/r", resources([1000, 2000, 3000], with_json=True),
                   name_prefix="./", subfolder="sub",
                   extra_members={"images/0000.tar": {"README.txt": b"hello", "meta/info.csv": b"a,b\n"}},
                   repo_files={"README.md": b"# card\n"})
    tar_file = m.archive_file("images/0000.tar")
    ours = load_index(m.index_file("images/0000.tar"))
    theirs = tar_get_index_info(str(tar_file), silent=True)
    assert ours == theirs
    assert list(ours["files"]) == list(theirs["files"])  # same order too
    assert tar_index_info(tar_file.read_bytes()) == theirs


def test_separate_index_repo(tmp_path):
    m = build_repo(tmp_path, "data/set", resources([5, 15, 26]), base_level=1, idx_repo_id="data/set_index")
    data = sorted(p.relative_to(m.repo_dir).as_posix() for p in m.repo_dir.rglob("*") if p.is_file())
    idx = sorted(p.relative_to(m.idx_repo_dir).as_posix() for p in m.idx_repo_dir.rglob("*") if p.is_file())
    assert data == ["images/05.tar", "images/06.tar"]
    assert idx == ["images/05.json", "images/06.json"]
    assert m.idx_repo_id == "data/set_index"
    assert m.index_file("images/05.tar") == tmp_path / "datasets/data/set_index/images/05.json"
    for archive in m.archives:
        assert_index_matches_tar(m.index_file(archive), m.archive_file(archive))


def test_dot_slash_prefix_and_subfolder(tmp_path):
    m = build_repo(tmp_path, "o/dot", resources([1000, 1001]), name_prefix="./")
    assert m.archives["images/0000.tar"] == ["./1000.png"]
    assert list(load_index(m.index_file("images/0000.tar"))["files"]) == ["./1000.png"]
    assert m.members[1000] == {"1000.png": "./1000.png"}

    m = build_repo(tmp_path, "o/sub", resources([1000]), subfolder="sub")
    assert list(load_index(m.index_file("images/0000.tar"))["files"]) == ["sub/1000.png"]
    with tarfile.open(m.archive_file("images/0000.tar")) as tar:
        assert tar.getnames() == ["sub/1000.png"]


def test_several_files_per_id_and_extra_members(tmp_path):
    files = {7: {"7.webp": tiny_image(7, "webp"), "7.json": sidecar(7), "7.txt": b"x"}}
    m = build_repo(tmp_path, "o/multi", files, base_level=3,
                   extra_members={"images/0007.tar": {"README.txt": b"readme"},
                                  "images/0999.tar": {"meta/info.csv": b"id\n"}})
    assert m.archives["images/0007.tar"] == ["7.webp", "7.json", "7.txt", "README.txt"]
    assert m.unrecognized == {"images/0007.tar": ["README.txt"], "images/0999.tar": ["meta/info.csv"]}
    assert set(m.files[7]) == {"7.webp", "7.json", "7.txt"}
    assert m.ids == [7]
    index = assert_index_matches_tar(m.index_file("images/0999.tar"), m.archive_file("images/0999.tar"))
    assert list(index["files"]) == ["meta/info.csv"]


def test_archives_override_mixes_levels(tmp_path):
    def choose(rid: int) -> str:
        return archive_path(rid, 4 if rid >= 20000 else 3)

    m = build_repo(tmp_path, "o/mixed", resources([1514, 114514, 24514]), archives=choose)
    assert m.locations == {1514: "images/0514.tar", 114514: "images/4/0514.tar", 24514: "images/4/0514.tar"}
    assert m.archives["images/4/0514.tar"] == ["114514.png", "24514.png"]
    m = build_repo(tmp_path, "o/mixed2", resources([1, 2]), archives={2: "images/other.tar"})
    assert m.locations == {1: "images/0001.tar", 2: "images/other.tar"}


def test_skip_index_and_clean_rebuild(tmp_path):
    m = build_repo(tmp_path, "o/r", resources([1, 2]), skip_index=["images/0002.tar"])
    assert m.index_file("images/0001.tar").exists()
    assert not m.index_file("images/0002.tar").exists()
    assert "images/0002.tar" not in m.indexes
    m = build_repo(tmp_path, "o/r", resources([3]))
    files = sorted(p.name for p in m.repo_dir.rglob("*") if p.is_file())
    assert files == ["0003.json", "0003.tar"]


def test_access_json_merges(tmp_path):
    build_repo(tmp_path, "o/private", resources([1]), private=True, tokens=["hf_aaa"])
    build_repo(tmp_path, "o/gated", resources([1]), gated=True, tokens=("hf_bbb",))
    build_repo(tmp_path, "o/public", resources([1]))
    access = json.loads((tmp_path / "access.json").read_text())
    assert access == {
        "o/private": {"private": True, "gated": False, "tokens": ["hf_aaa"]},
        "o/gated": {"private": False, "gated": True, "tokens": ["hf_bbb"]},
    }
    build_repo(tmp_path, "o/private", resources([1]))  # rebuilt public: entry removed, others kept
    assert json.loads((tmp_path / "access.json").read_text()) == {
        "o/gated": {"private": False, "gated": True, "tokens": ["hf_bbb"]}}
    build_repo(tmp_path, "o/d", resources([1]), idx_repo_id="o/d_idx", private=True, tokens=["hf_c"])
    access = json.loads((tmp_path / "access.json").read_text())
    assert access["o/d"] == access["o/d_idx"] == {"private": True, "gated": False, "tokens": ["hf_c"]}


def test_bad_repo_id_rejected(tmp_path):
    for bad in ("noslash", "a/b/c", "../x", "a/.."):
        with pytest.raises(ValueError):
            repo_dir(tmp_path, bad)


def test_build_few_hundred_files(tmp_path):
    m = build_repo(tmp_path, "o/fast", resources(range(1, 301), with_json=True))
    assert m.n_files == 600 and len(m.archives) == 300


# --- breaking a repo on purpose ---------------------------------------------------------------

def test_rewrite_index_callable_and_verbatim(tmp_path):
    m = build_repo(tmp_path, "o/adv", resources([1000, 2000]))
    archive = "images/0000.tar"

    def evil(index: dict) -> dict:
        entry = index["files"].pop("1000.png")
        index["files"]["../../x.png"] = entry
        index["files"]["/etc/x.png"] = dict(entry, offset=10**9)
        index["files"]["a/../../b.png"] = {"offset": 0}
        return index

    path = rewrite_index(tmp_path, "o/adv", archive, evil)
    assert path == m.index_file(archive)
    assert set(load_index(path)["files"]) == {"2000.png", "../../x.png", "/etc/x.png", "a/../../b.png"}

    rewrite_index(tmp_path, "o/adv", archive, lambda index: index["files"].clear())  # in place
    assert load_index(path)["files"] == {}
    rewrite_index(tmp_path, "o/adv", archive, lambda index: "{not json")
    assert path.read_text() == "{not json"
    rewrite_index(tmp_path, "o/adv", archive, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    rewrite_index(tmp_path, "o/adv", archive, {"files": {}})
    assert load_index(path) == {"files": {}}


def test_rewrite_index_in_separate_index_repo(tmp_path):
    m = build_repo(tmp_path, "o/data", resources([1]), idx_repo_id="o/data_idx")
    def drop_hash(index: dict) -> None:
        del index["hash"]

    path = rewrite_index(tmp_path, "o/data_idx", "images/0001.tar", drop_hash)
    assert path == m.index_file("images/0001.tar")
    assert "hash" not in load_index(path)


def test_corrupt_member_breaks_only_that_member(tmp_path):
    res = {1000: {"1000.png": make_image(1000, "png", size=(96, 96)), "1000.json": sidecar(1000)},
           2000: {"2000.png": tiny_image(2000)}}
    m = build_repo(tmp_path, "o/bad", res, name_prefix="./")
    archive = "images/0000.tar"
    before = m.archive_file(archive).read_bytes()
    offset = corrupt_member(tmp_path, "o/bad", archive, "./1000.png")
    after = m.archive_file(archive).read_bytes()
    index = load_index(m.index_file(archive))
    assert len(after) == len(before)
    assert index["files"]["./1000.png"]["offset"] == offset
    for name, entry in index["files"].items():
        data = after[entry["offset"]:entry["offset"] + entry["size"]]
        ok = hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert ok == (name != "./1000.png"), name
    with pytest.raises(KeyError):
        corrupt_member(tmp_path, "o/bad", archive, "missing.png")


# --- images -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_images_decode_and_are_deterministic(fmt, pil):
    data = make_image(4242, fmt)
    assert data == make_image(4242, fmt)
    assert data != make_image(4243, fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == pil
        assert 96 <= img.width <= 256 and 96 <= img.height <= 256
        img.load()
    with Image.open(io.BytesIO(tiny_image(9, fmt))) as img:
        assert img.format == pil
        img.load()


def test_unknown_image_format_rejected():
    with pytest.raises(ValueError):
        make_image(1, "gif")


# --- the demo dataset -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-hub")
    started = time.perf_counter()
    manifest = write_demo(root)
    return root, manifest, time.perf_counter() - started


def test_demo_layout(demo):
    root, m, _ = demo
    rdir = root / "datasets" / "demo" / "booru-mini"
    assert m.repo_id == DEMO_REPO and m.base_level == DEMO_BASE_LEVEL == 2 and m.base_dir == DEMO_BASE_DIR
    assert sorted(m.archives) == [f"images/{r:03d}.tar" for r in range(48)]
    on_disk = sorted(p.relative_to(rdir).as_posix() for p in rdir.rglob("*") if p.is_file())
    assert on_disk == sorted(["README.md", "metadata.parquet"] + [f"images/{r:03d}.{e}" for r in range(48) for e in ("tar", "json")])
    assert (rdir / "README.md").read_text().startswith("---\n")
    assert not any(p.name.startswith(".demo-staging") for p in root.iterdir())

    ids = m.ids
    assert ids == demo_ids()
    assert all(1 <= i <= 4800 and i % 100 < 48 for i in ids)
    assert 0.75 * 2304 < len(ids) < 0.95 * 2304  # ~15 % deleted: gaps
    assert all(m.locations[i] == archive_path(i, 2, "images") for i in ids)
    exts = {name.rsplit(".", 1)[1] for files in m.files.values() for name in files}
    assert exts == {"png", "jpg", "webp", "json"}
    n_json = sum("{}.json".format(i) in m.files[i] for i in ids)
    assert 0.12 * len(ids) < n_json < 0.28 * len(ids)
    assert sorted(m.unrecognized) == ["images/000.tar", "images/017.tar", "images/031.tar", "images/046.tar"]
    assert m.unrecognized["images/031.tar"] == ["meta/info.csv"]


def test_demo_indexes_match_and_images_decode(demo):
    root, m, _ = demo
    for archive in ("images/000.tar", "images/031.tar", "images/047.tar"):
        index = assert_index_matches_tar(m.index_file(archive), m.archive_file(archive))
        raw = m.archive_file(archive).read_bytes()
        assert index == tar_index_info(raw)
        seen = set()
        for name, entry in index["files"].items():
            ext = name.rsplit(".", 1)[1]
            if ext in seen or ext not in ("png", "jpg", "webp"):
                continue
            seen.add(ext)
            with Image.open(io.BytesIO(raw[entry["offset"]:entry["offset"] + entry["size"]])) as img:
                img.load()
                assert img.format == {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[ext]
                assert 96 <= img.width <= 256
    sidecar_id = next(i for i in m.ids if f"{i}.json" in m.files[i])
    archive = m.locations[sidecar_id]
    entry = load_index(m.index_file(archive))["files"][f"{sidecar_id}.json"]
    meta = json.loads(m.archive_file(archive).read_bytes()[entry["offset"]:entry["offset"] + entry["size"]])
    assert meta["id"] == sidecar_id and meta["tags"] and meta["rating"]


def test_demo_is_idempotent(demo):
    root, m, _ = demo
    tar_file = m.archive_file("images/005.tar")
    mtime = tar_file.stat().st_mtime_ns
    again = write_demo(root)
    assert tar_file.stat().st_mtime_ns == mtime
    assert again.ids == m.ids and again.files == m.files and again.archives == m.archives
    assert again.root == Path(root)


def test_demo_incomplete_or_stale_is_not_current(tmp_path, demo):
    import shutil

    root, m, _ = demo
    assert demo_is_current(root)
    hub = tmp_path / "hub"
    shutil.copytree(root, hub)
    assert demo_is_current(hub)
    (hub / "datasets" / "demo" / "booru-mini" / "images" / "010.json").unlink()
    assert not demo_is_current(hub)

    shutil.rmtree(hub)
    shutil.copytree(root, hub)
    marker = hub / ".cheesechaser-demo.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps(dict(data, version=data["version"] - 1)))
    assert not demo_is_current(hub)
    marker.write_text("{broken")
    assert not demo_is_current(hub)


def test_demo_content_is_deterministic(demo):
    # regenerating gives the same bytes: each post is a pure function of (id, seed)
    root, m, _ = demo
    for rid in m.ids[:3] + m.ids[-3:]:
        assert {k: hashlib.sha256(v).hexdigest() for k, v in _files(demo_post(rid), DEMO_SEED).items()} == m.files[rid]


def test_demo_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert demo_cache_dir() == tmp_path / "cheesechaser-tui" / "demo-hub"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_cache_dir() == tmp_path / "home" / ".cache" / "cheesechaser-tui" / "demo-hub"


def test_run_demo_data_cli(demo, capsys, tmp_path):
    root, _, _ = demo
    parser = add_demo_arguments(argparse.ArgumentParser())
    assert run_demo_data(parser.parse_args([str(root)])) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and "Already up to date" in out[0] and "48 archives" in out[0]
    assert "--base-level 2" in out[2]  # how to download from it, at its level

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run_demo_data(parser.parse_args([str(blocker / "hub")])) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the demo dataset")
