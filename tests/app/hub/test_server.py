"""The loopback Hub (app/hub/server.py) against the real clients: huggingface_hub 2.4, hfutils 0.13
and, in a subprocess, cheesechaser 0.2.2.

Pointing huggingface_hub at a loopback server *in-process* (what works with 2.4; see the
``hf_env`` fixture below):

- ``HF_ENDPOINT`` is read once, at import, into ``huggingface_hub.constants.ENDPOINT`` and
  ``HUGGINGFACE_CO_URL_TEMPLATE``. ``HfApi()`` reads ``constants.ENDPOINT`` when it is built and
  ``hf_hub_url()`` formats ``HUGGINGFACE_CO_URL_TEMPLATE``, so monkeypatch **both** constants
  (``endpoint=srv.url`` on every call also works, but hfutils never passes it).
- The cache folder: monkeypatch ``constants.HF_HUB_CACHE`` (read at call time), and
  ``HF_TOKEN_PATH`` / ``HF_STORED_TOKENS_PATH`` so a developer's saved token is never sent; delete
  ``HF_TOKEN`` from the environment.
- hfutils caches an ``HfApi`` per token (``hfutils.operate.base.get_hf_client`` and ``get_hf_fs``
  are ``lru_cache``d, so they keep the first endpoint): call ``.cache_clear()`` on both. It also
  caches parsed indexes by (repo, archive, revision), not by endpoint: clear
  ``hfutils.index.fetch._HF_TAR_IDX_CACHE`` and ``_HF_TAR_IDX_PFILES_CACHE``.
- Subprocesses just get ``HF_ENDPOINT=srv.url`` and ``HF_HOME=<tmp>`` in their environment.

The whole file runs in a few seconds; nothing sleeps.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.hub.server import FaultConfig, HubServer
from app.hub.serve_cli import serve_main

# The peer client (cheesechaser 0.2.2) lives in its own venv; CI sets the variable (.ci/run).
PEER_PYTHON = Path(os.environ.get("CHEESECHASER_PEER_PYTHON") or "/work/peer/bin/python")
REPO = "demo/mini"
TOKEN = "hf_loopback_good"
OTHER_TOKEN = "hf_loopback_other"


def _payload(resource_id: int) -> bytes:
    return hashlib.sha256(str(resource_id).encode()).digest() * (20 + resource_id % 7)


def write_repo(root: Path, repo_id: str = REPO, ids=(1001, 2001, 3001, 1002)) -> dict[str, bytes]:
    """A tiny increment-id repo (base level 3): real tars plus hfutils indexes."""
    from hfutils.index import tar_create_index

    repo = root / "datasets" / repo_id
    (repo / "images").mkdir(parents=True, exist_ok=True)
    members: dict[str, dict[str, bytes]] = {}
    for rid in ids:
        archive = f"images/{rid % 1000:04d}.tar"
        members.setdefault(archive, {})[f"{rid}.png"] = _payload(rid)
    for archive, files in members.items():
        with tarfile.open(repo / archive, "w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        tar_create_index(str(repo / archive), silent=True)
    (repo / "README.md").write_text("# mini\n")
    return {name: data for files in members.values() for name, data in files.items()}


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    write_repo(root)
    return root


@pytest.fixture
def hub(hub_root: Path):
    with HubServer(hub_root) as srv:
        yield srv


def point_hf_clients(hub: HubServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point huggingface_hub and hfutils at ``hub``, with a fresh cache under ``home`` and no token
    (``monkeypatch`` undoes it; call :func:`clear_hf_caches` after)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    clear_hf_caches()


def clear_hf_caches() -> None:
    from hfutils.index import fetch
    from hfutils.operate import base

    base.get_hf_client.cache_clear()
    base.get_hf_fs.cache_clear()
    fetch._HF_TAR_IDX_CACHE.clear()
    fetch._HF_TAR_IDX_PFILES_CACHE.clear()


@pytest.fixture
def hf_env(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point huggingface_hub and hfutils at ``hub``, with a fresh cache and no token."""
    point_hf_clients(hub, tmp_path / "hf_home", monkeypatch)
    yield hub
    clear_hf_caches()


def raw(srv: HubServer, method: str, path: str, headers: dict | None = None, conn=None):
    """One request with http.client; returns (response, body or the read error)."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    try:
        body: bytes | Exception = resp.read()
    except (http.client.IncompleteRead, ConnectionError) as e:
        body = e
    return resp, body


TAR_URL = f"/datasets/{REPO}/resolve/main/images/0001.tar"


class Client:
    """Follows redirects as the real clients do (a relative Location on the same connection, an
    absolute one on a connection to its origin, dropping ``Authorization`` when the origin changes),
    keeping one keep-alive connection per origin. ``hops`` holds the statuses of the redirects."""

    def __init__(self, srv: HubServer):
        self.srv = srv
        self.conns: dict[str, http.client.HTTPConnection] = {}
        self.hops: list[int] = []

    def conn(self, netloc: str) -> http.client.HTTPConnection:
        if netloc not in self.conns:
            self.conns[netloc] = http.client.HTTPConnection(netloc, timeout=10)
        return self.conns[netloc]

    def get(self, method: str, path: str, headers: dict | None = None):
        from urllib.parse import urlsplit

        netloc = f"127.0.0.1:{self.srv.port}"
        headers = dict(headers or {})
        self.hops = []
        for _ in range(5):
            resp, body = raw(self.srv, method, path, headers, conn=self.conn(netloc))
            if resp.status not in (301, 302, 307, 308):
                return resp, body
            self.hops.append(resp.status)
            target = urlsplit(resp.getheader("Location"))
            if target.netloc and target.netloc != netloc:
                netloc = target.netloc
                headers.pop("Authorization", None)
            path = target.path + (f"?{target.query}" if target.query else "")
        raise AssertionError("redirect loop")


def follow(srv: HubServer, method: str, path: str, headers: dict | None = None):
    return Client(srv).get(method, path, headers)


# ---- huggingface_hub ------------------------------------------------------------------------


def test_hf_hub_download_and_sha_pinned_cache(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi, hf_hub_download

    path = hf_hub_download(REPO, "README.md", repo_type="dataset")
    assert Path(path).read_text() == "# mini\n"
    sha = HfApi().dataset_info(REPO).sha
    assert f"/snapshots/{sha}/" in path
    # Pinned to the commit and cached: no request at all.
    hf_env.clear_log()
    hf_hub_download(REPO, "README.md", repo_type="dataset", revision=sha)
    assert hf_env.request_log == []


def test_list_repo_tree_pages_over_1000_entries(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi

    many = hub_root / "datasets" / REPO / "many" / "deep"
    many.mkdir(parents=True)
    for i in range(1203):
        (many / f"{i:05d}.txt").write_bytes(b"x%d" % i)
    hf_env.clear_log()
    entries = list(HfApi().list_repo_tree(REPO, repo_type="dataset", recursive=True))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths))
    assert sum(p.startswith("many/deep/") for p in paths) == 1203
    assert {"many", "many/deep", "images", "images/0001.tar", "README.md"} <= set(paths)
    assert hf_env.count("GET", "/tree/main") == 2  # two pages
    tar = next(e for e in entries if e.path == "images/0001.tar")
    index = json.loads((hub_root / "datasets" / REPO / "images" / "0001.json").read_text())
    assert tar.lfs is not None and tar.lfs.sha256 == index["hash_lfs"] and tar.size == index["filesize"]
    # Non-recursive listing of a sub folder (path encoded with %2F by the client).
    sub = list(HfApi().list_repo_tree(REPO, path_in_repo="images", repo_type="dataset"))
    assert sorted(e.path for e in sub) == ["images/0001.json", "images/0001.tar", "images/0002.json", "images/0002.tar"]
    # The next-page link is absolute.
    resp, _ = raw(hf_env, "GET", f"/api/datasets/{REPO}/tree/main?recursive=true")
    assert resp.getheader("Link").startswith(f'<{hf_env.url}/api/datasets/{REPO}/tree/main?')


def test_dataset_info_sha_stable_then_changes(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    api = HfApi()
    info = api.dataset_info(REPO)
    assert len(info.sha) == 40 and info.private is False and info.gated is False
    assert api.dataset_info(REPO).sha == info.sha
    assert api.dataset_info(REPO, revision=info.sha).sha == info.sha
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["README.md"] == 7 and "images/0001.tar" in sizes
    readme = hub_root / "datasets" / REPO / "README.md"
    readme.write_text("# MINI\n")  # same size, in place
    st = readme.stat()
    os.utime(readme, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    new = api.dataset_info(REPO).sha
    assert new != info.sha
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision=info.sha)
    # The file endpoint agrees with the new commit.
    resp, body = follow(hf_env, "GET", f"/datasets/{REPO}/resolve/main/README.md")
    assert body == b"# MINI\n" and resp.getheader("X-Repo-Commit") == new


def test_paths_info_and_refs(hf_env: HubServer):
    from huggingface_hub import HfApi

    api = HfApi()
    got = api.get_paths_info(REPO, ["images", "README.md", "nope.txt", "../README.md"], repo_type="dataset")
    assert [type(x).__name__ for x in got] == ["RepoFolder", "RepoFile"]
    readme = got[1]
    assert readme.path == "README.md" and readme.size == 7
    assert readme.blob_id == hashlib.sha1(b"blob 7\0# mini\n").hexdigest()
    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert refs.branches[0].target_commit == api.dataset_info(REPO).sha


def test_errors_map_to_client_exceptions(hf_env: HubServer, tmp_path: Path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "images/nope.tar", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "README.md", repo_type="dataset", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        HfApi().dataset_info(REPO, revision="0" * 40)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().dataset_info("demo/nope")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("demo/nope", "README.md", repo_type="dataset")
    with pytest.raises(EntryNotFoundError):
        list(HfApi().list_repo_tree(REPO, path_in_repo="nope", repo_type="dataset"))


# ---- raw HTTP -------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True], ids=["redirects", "direct"])
def test_ranges_head_and_keep_alive(hub: HubServer, hub_root: Path, direct: bool):
    hub.direct = direct
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    size = len(data)
    sha256 = hashlib.sha256(data).hexdigest()
    client = Client(hub)
    resp, body = client.get("HEAD", TAR_URL)
    assert resp.status == 200 and body == b"" and int(resp.getheader("Content-Length")) == size
    assert resp.getheader("ETag") == f'"{sha256}"'
    assert len(resp.getheader("X-Repo-Commit") or "x" * 40) == 40
    assert client.hops == ([] if direct else [302])
    for rng, (a, b) in {"bytes=10-19": (10, 19), "bytes=100-": (100, size - 1),
                        "bytes=5-99999999": (5, size - 1), "bytes=-16": (size - 16, size - 1)}.items():
        resp, body = client.get("GET", TAR_URL, {"Range": rng})
        assert resp.status == 206, rng
        assert resp.getheader("Content-Range") == f"bytes {a}-{b}/{size}"
        assert body == data[a : b + 1] and int(resp.getheader("Content-Length")) == b - a + 1
    resp, body = client.get("GET", TAR_URL, {"Range": f"bytes={size}-"})
    assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{size}"
    resp, body = client.get("GET", TAR_URL)
    assert resp.status == 200 and body == data
    # README is small and not LFS: its ETag is the git blob sha1.
    resp, body = client.get("HEAD", f"/datasets/{REPO}/resolve/main/README.md")
    assert resp.getheader("ETag") == '"%s"' % hashlib.sha1(b"blob 7\0# mini\n").hexdigest()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == 7
    assert client.hops == ([] if direct else [307])
    # Errors on HEAD carry Content-Length too, and everything went over one connection per origin.
    resp, body = client.get("HEAD", f"/datasets/{REPO}/resolve/main/nope")
    assert resp.status == 404 and resp.getheader("X-Error-Code") == "EntryNotFound"
    assert resp.getheader("Content-Length") is not None
    assert not any(h.lower().startswith("x-xet") for h in resp.headers)
    assert len(client.conns) == (1 if direct else 2)
    assert hub.count("GET", "images/0001.tar", kind="resolve") == 6 and hub.count("HEAD", kind="resolve") == 3
    assert hub.cdn_gets == (0 if direct else 6) and hub.resolves == 9
    assert len(hub.data_gets(".tar")) == 5  # the 416 carried no bytes


def test_paths_never_escape_the_repo(hub: HubServer, hub_root: Path, tmp_path: Path):
    (hub_root / "access.json").write_text("{}")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, hub_root / "datasets" / REPO / "link.txt")
    (hub_root / "datasets" / ".hidden" / "repo").mkdir(parents=True)
    for path in (
        f"/datasets/{REPO}/resolve/main/..%2F..%2F..%2Faccess.json",
        f"/datasets/{REPO}/resolve/main/../../../access.json",
        f"/datasets/{REPO}/resolve/main/%2Fetc%2Fpasswd",
        f"/datasets/{REPO}/resolve/main/link.txt",
        f"/datasets/{REPO}/resolve/main/images/..%2F..%2FREADME.md",
    ):
        resp, body = raw(hub, "GET", path)
        assert resp.status == 404 and resp.getheader("X-Error-Code") == "EntryNotFound", path
        assert b"secret" not in body
    resp, _ = raw(hub, "GET", "/api/datasets/.hidden/repo")
    assert resp.getheader("X-Error-Code") == "RepoNotFound"
    resp, body = raw(hub, "GET", f"/api/datasets/{REPO}/tree/main?recursive=1")
    assert "link.txt" not in body.decode() and "access.json" not in body.decode()


# ---- access control -------------------------------------------------------------------------


def test_private_repo(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    write_repo(hub_root, "demo/secret", ids=(7,))
    (hub_root / "access.json").write_text(json.dumps({"demo/secret": {"private": True, "tokens": [TOKEN]}}))
    hf_env.access = {"demo/other": {"private": True, "tokens": [OTHER_TOKEN]}}
    for token in (None, OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            HfApi().dataset_info("demo/secret", token=token or False)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("demo/secret", "README.md", repo_type="dataset", token=token or False)
    with pytest.raises(HfHubHTTPError) as bad:
        HfApi().dataset_info("demo/secret", token="hf_made_up")
    assert not isinstance(bad.value, RepositoryNotFoundError) and bad.value.response.status_code == 401
    assert "hf_made_up" not in str(bad.value)
    info = HfApi().dataset_info("demo/secret", token=TOKEN)
    assert info.private is True
    path = hf_hub_download("demo/secret", "README.md", repo_type="dataset", token=TOKEN)
    assert Path(path).read_text() == "# mini\n"
    resp, _ = raw(hf_env, "GET", "/api/datasets/demo/secret")
    assert resp.status == 401 and resp.getheader("X-Error-Code") == "RepoNotFound"
    resp, _ = raw(hf_env, "GET", "/api/datasets/demo/secret", {"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert resp.status == 404 and resp.getheader("X-Error-Code") == "RepoNotFound"


def test_gated_repo(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    hf_env.access = {"demo/mini": {"gated": True, "tokens": [TOKEN]}, "demo/x": {"tokens": [OTHER_TOKEN]}}
    assert HfApi().dataset_info(REPO, token=False).gated == "manual"  # metadata stays public
    with pytest.raises(GatedRepoError):
        hf_hub_download(REPO, "README.md", repo_type="dataset", token=False)
    with pytest.raises(GatedRepoError):
        hf_hub_download(REPO, "README.md", repo_type="dataset", token=OTHER_TOKEN)
    assert hf_hub_download(REPO, "README.md", repo_type="dataset", token=TOKEN)


# ---- hfutils --------------------------------------------------------------------------------


def test_hfutils_archive_access(hf_env: HubServer, tmp_path: Path):
    from hfutils.index import hf_tar_file_download, hf_tar_list_files

    assert sorted(hf_tar_list_files(REPO, "images/0001.tar")) == ["1001.png", "2001.png", "3001.png"]
    hf_env.clear_log()
    dst = tmp_path / "out" / "2001.png"
    hf_tar_file_download(REPO, "images/0001.tar", "2001.png", str(dst))
    assert dst.read_bytes() == _payload(2001)
    ranged = [r for r in hf_env.request_log if r.range]
    assert [(r.kind, r.status) for r in ranged] == [("resolve", 302), ("cdn", 206)]
    assert ranged[1].bytes_sent == len(_payload(2001))


# ---- faults ---------------------------------------------------------------------------------


def test_fault_kinds_seen_by_a_raw_client(hub: HubServer, hub_root: Path):
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()

    hub.faults = FaultConfig(rate_429=1.0, retry_after=3)
    resp, body = follow(hub, "GET", TAR_URL)
    assert resp.status == 429 and resp.getheader("Retry-After") == "3" and resp.getheader("Content-Length")

    hub.faults = FaultConfig(error_rate=1.0, error_codes=(502,))
    resp, _ = follow(hub, "GET", TAR_URL, {"Range": "bytes=0-9"})
    assert resp.status == 502
    resp, _ = follow(hub, "HEAD", TAR_URL)  # HEAD is not faulted unless on_head
    assert resp.status == 200

    hub.faults = FaultConfig(drop_rate=1.0)
    resp, body = follow(hub, "GET", TAR_URL)
    assert resp.status == 200 and isinstance(body, (http.client.IncompleteRead, ConnectionError))

    hub.faults = FaultConfig(truncate_rate=1.0)
    resp, body = follow(hub, "GET", TAR_URL, {"Range": "bytes=512-4095"})
    assert resp.status == 206 and isinstance(body, http.client.IncompleteRead)
    assert 0 < len(body.partial) < 3584 and body.partial == data[512 : 512 + len(body.partial)]

    hub.faults = FaultConfig(corrupt_rate=1.0)
    resp, body = follow(hub, "GET", TAR_URL)
    assert resp.status == 200 and len(body) == len(data)
    assert sum(x != y for x, y in zip(body, data)) == 1

    hub.faults = FaultConfig(error_rate=1.0, paths="*.tar")
    resp, _ = follow(hub, "GET", f"/datasets/{REPO}/resolve/main/README.md")
    assert resp.status == 200

    hub.faults = FaultConfig(rate_429=1.0, on_head=True, on_api=True)
    assert raw(hub, "HEAD", TAR_URL)[0].status == 429
    assert raw(hub, "GET", f"/api/datasets/{REPO}")[0].status == 429

    hub.faults = FaultConfig(latency_ms=30)
    resp, body = follow(hub, "GET", TAR_URL)
    assert resp.status == 200 and body == data

    hub.faults = None
    resp, body = follow(hub, "GET", TAR_URL)
    assert body == data
    faults = [r.fault for r in hub.request_log if r.fault]
    assert faults == ["429", "error", "drop", "truncate", "corrupt", "429", "429"]


def test_faults_are_seeded(hub: HubServer):
    def run() -> list:
        hub.faults = FaultConfig(error_rate=0.2, rate_429=0.2, corrupt_rate=0.2, seed=7)
        hub.clear_log()
        client = Client(hub)
        for _ in range(30):
            client.get("GET", TAR_URL, {"Range": "bytes=0-99"})
        return [(r.status, r.fault) for r in hub.request_log if r.kind == "cdn"]

    first = run()
    assert first == run()
    assert {f for _, f in first} == {None, "429", "error", "corrupt"}


def test_concurrent_ranged_gets(hub: HubServer, hub_root: Path):
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    local = threading.local()

    def get(i: int) -> bool:
        if not hasattr(local, "client"):
            local.client = Client(hub)
        a = (i * 37) % (len(data) - 100)
        _, body = local.client.get("GET", TAR_URL, {"Range": f"bytes={a}-{a + 99}"})
        return body == data[a : a + 100]

    with ThreadPoolExecutor(12) as pool:
        assert all(pool.map(get, range(600)))
    assert hub.count("GET", status=206) == 600


def test_multi_range_and_stop_closes_keep_alive(hub: HubServer, hub_root: Path):
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    hub.direct = True  # the CDN honours a single range only (see test_cdn_*)
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
    resp, body = raw(hub, "GET", TAR_URL, {"Range": "bytes=0-9,100-109"}, conn=conn)
    assert resp.status == 206 and resp.getheader("Content-Type").startswith("multipart/byteranges")
    assert data[0:10] in body and data[100:110] in body and len(body) == int(resp.getheader("Content-Length"))
    hub.direct = False
    client = Client(hub)
    assert client.get("GET", TAR_URL)[1] == data
    hub.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        raw(hub, "GET", TAR_URL, conn=conn)
    for cdn in client.conns.values():  # the CDN port's keep-alive connections are cut too
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            cdn.request("GET", "/")
            cdn.getresponse().read()


# ---- command line and the peer client -------------------------------------------------------


def test_serve_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert serve_main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_serve_subprocess_prints_url_first(hub_root: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.hub.serve_cli", str(hub_root), "--private", "demo/mini=hf_x"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3],
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection(url[len("http://"):], timeout=10)
        conn.request("GET", f"/api/datasets/{REPO}", headers={"Authorization": "Bearer hf_x"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["private"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "hf_x" not in err


@pytest.mark.peer
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason=f"peer venv with cheesechaser 0.2.2 not found at {PEER_PYTHON}")
def test_cheesechaser_peer_downloads(hub: HubServer, tmp_path: Path):
    dst = tmp_path / "dst"
    script = (
        "import sys\n"
        "from cheesechaser.datapool import IncrementIDDataPool\n"
        f"pool = IncrementIDDataPool({REPO!r}, base_level=3)\n"
        f"pool.batch_download_to_directory([1001, 2001, 1002], {str(dst)!r}, max_workers=3, silent=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "peer_home"), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([str(PEER_PYTHON), "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for rid in (1001, 2001, 1002):
        assert (dst / f"{rid}.png").read_bytes() == _payload(rid)
