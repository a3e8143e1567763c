"""The pool engine over real HTTP against the loopback Hub: the reference API's behaviour."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from app.hub.dataset import build_repo, corrupt_member
from app.hub.images import tiny_image
from pools import (
    AccessDeniedError,
    DataLocation,
    IncrementIDDataPool,
    ResourceNotFoundError,
    archive_path,
)
from pools.transport import RetryPolicy

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)


def _resources(ids, sidecar_every=0):
    res = {}
    for rid in ids:
        files = {f"{rid}.png": tiny_image(rid) + rid.to_bytes(4, "big")}
        if sidecar_every and rid % sidecar_every == 0:
            files[f"{rid}.json"] = json.dumps({"id": rid, "tags": ["a", "b"]}).encode()
        res[rid] = files
    return res


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _assert_files(dst, manifest, ids):
    for rid in ids:
        for basename, sha in manifest.files[rid].items():
            path = os.path.join(dst, basename)
            assert os.path.isfile(path), f"{basename} not downloaded"
            assert _sha(path) == sha


def _pool(hub, repo, **kw):
    return IncrementIDDataPool(repo, endpoint=hub.url, retry=FAST, **kw)


@pytest.mark.parametrize("level", [3, 4])
def test_batch_download_at_base_level(hub, hub_root, tmp_path, level):
    ids = [5, 1005, 2005, 114514, 7, 10007]
    manifest = build_repo(hub_root, "t/lvl", _resources(ids), base_level=level)
    assert archive_path(114514, level) in manifest.archives
    dst = tmp_path / "out"
    report = _pool(hub, "t/lvl", base_level=level).batch_download_to_directory(ids + [99999], str(dst))
    assert sorted(report.downloaded) == sorted(ids)
    assert list(report.missing) == [99999]
    assert report.failed == {}
    _assert_files(dst, manifest, ids)
    assert not (dst / ".cheesechaser-partial").exists()


def test_base_level_list_tries_levels_in_order(hub, hub_root, tmp_path):
    low, high = [1001, 2002], [30003, 40004]
    chooser = {rid: archive_path(rid, 3) for rid in low} | {rid: archive_path(rid, 4) for rid in high}
    manifest = build_repo(hub_root, "t/list", _resources(low + high), archives=chooser)
    dst = tmp_path / "out"
    report = _pool(hub, "t/list", base_level=[3, 4]).batch_download_to_directory(low + high + [555], str(dst))
    assert sorted(report.downloaded) == sorted(low + high)
    assert list(report.missing) == [555]
    _assert_files(dst, manifest, low + high)


def test_non_default_base_dir_and_separate_index_repo(hub, hub_root, tmp_path):
    ids = [10, 1010, 20]
    manifest = build_repo(hub_root, "t/data", _resources(ids), base_dir="original/pics",
                          idx_repo_id="t/data_index")
    assert not any(p.suffix == ".json" for p in (hub_root / "datasets/t/data").rglob("*"))
    pool = _pool(hub, "t/data", idx_repo_id="t/data_index", base_dir="original/pics")
    dst = tmp_path / "out"
    report = pool.batch_download_to_directory(ids, str(dst))
    assert sorted(report.downloaded) == sorted(ids)
    _assert_files(dst, manifest, ids)


def test_dot_prefixed_and_subfolder_names(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/dot", _resources([1000, 2000]), name_prefix="./")
    build_repo(hub_root, "t/sub", _resources([1000, 2000]), subfolder="sub")
    for repo in ("t/dot", "t/sub"):
        pool = _pool(hub, repo)
        index = pool.get_index("images/0000.tar")
        assert sorted(index.by_id) == [1000, 2000]
        dst = tmp_path / repo.replace("/", "_")
        report = pool.batch_download_to_directory([1000, 2000], str(dst))
        assert sorted(report.downloaded) == [1000, 2000]
        assert sorted(os.listdir(dst)) == ["1000.png", "2000.png"]


def test_several_files_for_one_id_and_mock_resource(hub, hub_root):
    manifest = build_repo(hub_root, "t/multi", _resources([3000, 4000], sidecar_every=1000))
    pool = _pool(hub, "t/multi")
    with pool.mock_resource(3000, {"k": 1}) as (folder, info):
        assert info == {"k": 1}
        assert sorted(os.listdir(folder)) == ["3000.json", "3000.png"]
        for name in ("3000.json", "3000.png"):
            assert _sha(os.path.join(folder, name)) == manifest.files[3000][name]
        kept = folder
    assert not os.path.exists(kept), "mock_resource must remove its folder"
    with pytest.raises(ResourceNotFoundError):
        with pool.mock_resource(3001, None):
            pass


def test_missing_archive_and_missing_index_are_missing_not_errors(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/gaps", _resources([1, 2]), skip_index=[archive_path(2, 3)])
    report = _pool(hub, "t/gaps").batch_download_to_directory([1, 2, 3], str(tmp_path / "o"))
    assert report.downloaded == [1]
    assert sorted(report.missing) == [2, 3]
    assert report.failed == {}


def test_unrecognized_names_are_reported_never_downloaded(hub, hub_root, tmp_path):
    manifest = build_repo(hub_root, "t/unrec", _resources([1000]),
                          extra_members={"images/0000.tar": {"README.txt": b"hello", "meta/info.csv": b"a,b"}})
    pool = _pool(hub, "t/unrec")
    index = pool.get_index("images/0000.tar")
    assert sorted(name for name, _ in index.unrecognized) == ["README.txt", "meta/info.csv"]
    dst = tmp_path / "o"
    report = pool.batch_download_to_directory([1000], str(dst))
    assert os.listdir(dst) == ["1000.png"]
    assert sorted(n for _, n, _ in report.unrecognized) == ["README.txt", "meta/info.csv"]
    assert manifest.unrecognized["images/0000.tar"]


def test_hash_mismatch_is_a_failure_and_leaves_no_file(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/bad", _resources([1000, 2000]))
    corrupt_member(hub_root, "t/bad", "images/0000.tar", "1000.png")
    dst = tmp_path / "o"
    report = _pool(hub, "t/bad").batch_download_to_directory([1000, 2000], str(dst))
    assert report.downloaded == [2000]
    assert "sha256 mismatch" in report.failed[1000]
    assert sorted(os.listdir(dst)) == ["2000.png"]


def test_metainfo_lands_in_destination(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/meta", _resources([1000, 2000]))
    dst = tmp_path / "o"
    report = _pool(hub, "t/meta").batch_download_to_directory(
        [(1000, {"tags": ["x"]}), 2000, (3000, {"never": "written"})], str(dst))
    assert list(report.missing) == [3000]
    with open(dst / "1000_metainfo.json") as f:
        assert json.load(f) == {"tags": ["x"]}
    assert not (dst / "2000_metainfo.json").exists()
    assert not (dst / "3000_metainfo.json").exists()
    custom = tmp_path / "o2"
    _pool(hub, "t/meta").batch_download_to_directory([(2000, [1, 2])], str(custom), metainfo_fmt="meta-{resource_id}.json")
    assert json.loads((custom / "meta-2000.json").read_text()) == [1, 2]
    off = tmp_path / "o3"
    _pool(hub, "t/meta").batch_download_to_directory([(2000, [1])], str(off), save_metainfo=False)
    assert os.listdir(off) == ["2000.png"]


def test_private_repo_needs_its_token(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/secret", _resources([1000]), private=True, tokens=["hf_goodtoken123"])
    with pytest.raises(AccessDeniedError) as denied:
        _pool(hub, "t/secret").get_index("images/0000.tar")
    assert "hf_goodtoken123" not in str(denied.value)
    with pytest.raises(AccessDeniedError, match="access denied") as denied:  # never a silent report
        _pool(hub, "t/secret").batch_download_to_directory([1000], str(tmp_path / "none"))
    report = denied.value.report
    assert report.state == "failed" and "access denied" in report.error and report.not_reached == 1
    assert list(report.missing) == [], "access denied must never read as missing"
    report = _pool(hub, "t/secret", hf_token="hf_goodtoken123").batch_download_to_directory(
        [1000], str(tmp_path / "ok"))
    assert report.downloaded == [1000]


def test_rerun_resumes_without_fetching_again(hub, hub_root, tmp_path):
    ids = list(range(1000, 1010)) + list(range(2000, 2010))
    build_repo(hub_root, "t/resume", _resources(ids))
    dst = tmp_path / "o"
    first = _pool(hub, "t/resume").batch_download_to_directory(ids, str(dst))
    assert sorted(first.downloaded) == ids
    os.remove(dst / "1003.png")
    hub.clear_log()
    second = _pool(hub, "t/resume").batch_download_to_directory(ids, str(dst))
    assert second.downloaded == [1003]
    assert sorted(second.skipped) == sorted(set(ids) - {1003})
    tar_gets = [r for r in hub.request_log if r.method == "GET" and r.file.endswith(".tar") and r.status != 302]
    assert len(tar_gets) == 1


def test_data_location_and_reexports():
    import pools
    import pools.base as base

    for name in ("DataLocation", "DataPool", "HfBasedDataPool", "IncrementIDDataPool",
                 "InvalidResourceDataError", "FileUnrecognizableError", "ResourceNotFoundError"):
        assert getattr(pools, name) is getattr(base, name)
    a, b = DataLocation(1, "images/0001.tar", "1.png"), DataLocation(1, "images/0001.tar", "1.png")
    assert a == b and DataLocation.__hash__ is None
    assert issubclass(base.ResourceNotFoundError, base.InvalidResourceDataError)


def test_reference_signatures_and_defaults():
    import inspect

    from pools import DataPool, HfBasedDataPool, IncrementIDDataPool

    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()
                if p.kind is not p.KEYWORD_ONLY][1:]

    assert params(HfBasedDataPool.__init__)[:5] == [
        ("data_repo_id", inspect.Parameter.empty), ("data_revision", "main"), ("idx_repo_id", None),
        ("idx_revision", "main"), ("hf_token", None)]
    assert params(IncrementIDDataPool.__init__)[:7] == [
        ("data_repo_id", inspect.Parameter.empty), ("data_revision", "main"), ("idx_repo_id", None),
        ("idx_revision", "main"), ("base_level", 3), ("base_dir", "images"), ("hf_token", None)]
    assert params(DataPool.batch_download_to_directory)[:5] == [
        ("resource_ids", inspect.Parameter.empty), ("dst_dir", inspect.Parameter.empty), ("max_workers", 12),
        ("save_metainfo", True), ("metainfo_fmt", "{resource_id}_metainfo.json")]


def test_pools_never_imports_textual():
    code = "import sys, pools, pools.base, pools.engine.downloader; print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hf_endpoint_token_and_home_work_as_for_huggingface_hub(hub, hub_root, tmp_path):
    """No endpoint= or hf_token= given: the environment decides, as it does for huggingface_hub."""
    manifest = build_repo(hub_root, "t/envpriv", _resources([1000, 2000]), private=True,
                          tokens=["hf_envtoken456"])
    home, dst = tmp_path / "home", tmp_path / "out"
    code = ("import sys; from pools import IncrementIDDataPool; "
            "r = IncrementIDDataPool('t/envpriv').batch_download_to_directory([1000, 2000], sys.argv[1]); "
            "print(r.state, sorted(r.downloaded), r.error)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
    denied = subprocess.run([sys.executable, "-c", code, str(tmp_path / "denied")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert denied.returncode == 1 and denied.stdout == "", denied.stdout + denied.stderr
    assert denied.stderr.strip().splitlines()[-1].startswith("pools.errors.AccessDeniedError: access denied")
    env["HF_TOKEN"] = "hf_envtoken456"
    out = subprocess.run([sys.executable, "-c", code, str(dst)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "done [1000, 2000] None", out.stdout + out.stderr
    assert "hf_envtoken456" not in out.stdout + out.stderr + denied.stdout + denied.stderr
    _assert_files(dst, manifest, [1000, 2000])
    # under HF_HOME, in the huggingface_hub layout, in the folder of this (non-default) endpoint
    cached = list((home / "hub").glob("cheesechaser-endpoints/*/datasets--t--envpriv/snapshots/*/images/0000.json"))
    assert len(cached) == 1, "the index is cached under HF_HOME, as huggingface_hub would"


def test_template_layout_like_danbooru2023(hub, hub_root, tmp_path):
    """``original/data-0XYZ.tar`` then ``recent/data-1XYZ.tar``, indexes in their own repo, ./ names."""
    from pools import ArchiveTemplateDataPool

    old, new = [1000, 2001, 3002], [7000001, 7000002]
    chooser = {rid: f"original/data-0{rid % 1000:03d}.tar" for rid in old}
    chooser |= {rid: f"recent/data-1{rid % 1000:03d}.tar" for rid in new}
    manifest = build_repo(hub_root, "t/d2023", _resources(old + new), archives=chooser,
                          idx_repo_id="t/d2023_index", name_prefix="./")
    pool = ArchiveTemplateDataPool(
        "t/d2023", idx_repo_id="t/d2023_index", endpoint=hub.url, retry=FAST,
        archive_templates=("original/data-0{residue:03d}.tar", "recent/data-1{residue:03d}.tar"))
    assert pool.archives_for(7000001) == ["original/data-0001.tar", "recent/data-1001.tar"]
    dst = tmp_path / "out"
    report = pool.batch_download_to_directory(old + new + [4004], str(dst))
    assert sorted(report.downloaded) == sorted(old + new) and list(report.missing) == [4004]
    _assert_files(dst, manifest, old + new)
    with pytest.raises(ValueError):
        ArchiveTemplateDataPool("t/x", archive_templates=("../{residue}.tar",))


def test_a_hub_that_sends_a_crafted_commit_cannot_write_outside_the_cache(tmp_path, hf_cache):
    """The commit sha names a cache folder: a hostile or broken endpoint must not steer it."""
    import http.server
    import threading

    from pools import HubUnreachableError

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"sha": "../../../../../../" + str(tmp_path / "escaped")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pool = IncrementIDDataPool("t/evil", endpoint=f"http://127.0.0.1:{server.server_port}", retry=FAST)
        with pytest.raises(HubUnreachableError, match="no valid commit"):
            pool.get_index("images/0000.tar")
    finally:
        server.shutdown()
    assert not (tmp_path / "escaped").exists()
