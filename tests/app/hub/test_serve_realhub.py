"""The loopback Hub's real-Hub ways, seen by raw HTTP and by the unmodified clients.

By default LFS-style files answer ``resolve`` with a 302 to a signed, expiring URL on the CDN port
and regular files with a relative 307 to ``/api/resolve-cache/``; flags add the resolver quota,
opaque ETags (a mirror), plain 404s, or turn it all off (``direct``). Every test here runs over
real HTTP on loopback; time-dependent checks move the server's clock instead of sleeping, except
the one that proves huggingface_hub waits a (one-second) window out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.hub.server import HubServer
from tests.app.hub.test_server import (PEER_PYTHON, REPO, TAR_URL, TOKEN, _payload, clear_hf_caches, point_hf_clients, raw,
                             write_repo)

README_URL = f"/datasets/{REPO}/resolve/main/README.md"
INDEX_URL = f"/datasets/{REPO}/resolve/main/images/0001.json"


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    write_repo(root)
    write_repo(root, "demo/secret", ids=(7, 1007))
    (root / "access.json").write_text(json.dumps({"demo/secret": {"private": True, "tokens": [TOKEN]}}))
    return root


@pytest.fixture
def hub(hub_root: Path):
    with HubServer(hub_root) as srv:
        yield srv


@pytest.fixture
def hf_env(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    point_hf_clients(hub, tmp_path / "hf_home", monkeypatch)
    yield hub
    clear_hf_caches()


def _cdn_location(hub: HubServer, path: str = TAR_URL, headers: dict | None = None) -> str:
    resp, _ = raw(hub, "GET", path, headers)
    assert resp.status == 302, resp.status
    return resp.getheader("Location")


def _get_url(url: str, headers: dict | None = None):
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    conn.request("GET", parts.path + "?" + parts.query, headers=headers or {})
    resp = conn.getresponse()
    return resp, resp.read()


# ---- redirects ------------------------------------------------------------------------------


def test_lfs_file_redirects_to_a_signed_cdn_url(hub: HubServer, hub_root: Path):
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    lengths = []
    for method in ("GET", "HEAD"):
        resp, body = raw(hub, method, TAR_URL)
        assert resp.status == 302
        assert resp.getheader("X-Linked-Size") == str(len(data))
        assert resp.getheader("X-Linked-Etag") == resp.getheader("ETag") == f'"{sha256}"'
        assert re.fullmatch(r"[0-9a-f]{40}", resp.getheader("X-Repo-Commit"))
        lengths.append(int(resp.getheader("Content-Length")))
        assert not any(h.lower().startswith("x-xet") or h.lower() == "link" for h in resp.headers)
    assert body == b"" and lengths[0] == lengths[1] > 0  # a HEAD announces the body a GET gets
    location = resp.getheader("Location")
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == hub.cdn_url != hub.url
    q = parse_qs(parts.query)
    assert q["X-Amz-Expires"] == ["3600"] and int(q["Expires"][0]) >= int(hub.signer.clock()) + 3600
    assert re.fullmatch(r"[0-9a-f]{64}", q["Signature"][0])
    # The CDN honours one range, and answers the whole file for several (as S3 does).
    resp, body = _get_url(location, {"Range": "bytes=10-19"})
    assert resp.status == 206 and body == data[10:20] and resp.getheader("Content-Range") == f"bytes 10-19/{len(data)}"
    resp, body = _get_url(location, {"Range": "bytes=0-9,100-109"})
    assert resp.status == 200 and body == data
    resp, body = _get_url(location, {"Range": f"bytes={len(data)}-"})
    assert resp.status == 416
    # A signed URL is good for many GETs: the log tells resolves from CDN GETs.
    hub.clear_log()
    for a in range(0, 500, 100):
        assert _get_url(location, {"Range": f"bytes={a}-{a + 9}"})[1] == data[a : a + 10]
    assert hub.resolves == 0 and hub.cdn_gets == 5


def test_cdn_refuses_authorization_tampering_expiry_and_the_wrong_port(hub: HubServer):
    location = _cdn_location(hub)
    resp, body = _get_url(location, {"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 403 and b"auth mechanism" in body and TOKEN.encode() not in body
    parts = urlsplit(location)
    for bad in (location.replace("Signature=", "Signature=0"), location.replace("Expires=", "Expires=9"),
                f"{hub.cdn_url}{parts.path.replace('0001.tar', '0002.tar')}?{parts.query}",
                f"{hub.cdn_url}{parts.path}"):
        assert _get_url(bad)[0].status == 403, bad
    assert _get_url(f"{hub.url}{parts.path}?{parts.query}")[0].status == 404  # the endpoint is no CDN
    assert _get_url(f"{hub.cdn_url}/datasets/{REPO}/resolve/main/README.md")[0].status == 404
    # An hour later the URL has expired; a new resolve gives a fresh one.
    now = hub.signer.clock()
    hub.signer.clock = lambda: now + 3601
    resp, body = _get_url(location)
    assert resp.status == 403 and b"expired" in body
    assert _get_url(_cdn_location(hub))[0].status == 200
    # Changed content: the blob a URL was signed for is gone.
    hub.signer.clock = lambda: now
    location = _cdn_location(hub)
    with open(hub.root / "datasets" / REPO / "images" / "0001.tar", "ab") as f:
        f.write(b"\0" * 512)
    assert _get_url(location)[0].status == 404
    assert _get_url(_cdn_location(hub))[0].status == 200


def test_cdn_ttl_is_the_signed_lifetime(hub_root: Path):
    with HubServer(hub_root, cdn_ttl=30) as hub:
        location = _cdn_location(hub)
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["30"]
        now = hub.signer.clock()
        hub.signer.clock = lambda: now + 29
        assert _get_url(location)[0].status == 200
        hub.signer.clock = lambda: now + 32
        assert _get_url(location)[0].status == 403


def test_regular_file_redirects_to_resolve_cache_with_gzip(hub: HubServer, hub_root: Path):
    raw_index = (hub_root / "datasets" / REPO / "images" / "0001.json").read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(raw_index) + raw_index).hexdigest()
    resp, _ = raw(hub, "HEAD", INDEX_URL)
    assert resp.status == 307 and resp.getheader("ETag") == f'"{blob}"'
    location = resp.getheader("Location")
    commit = resp.getheader("X-Repo-Commit")
    assert location.startswith(f"/api/resolve-cache/datasets/{REPO}/{commit}/images/0001.json?")
    resp, body = raw(hub, "GET", location, {"Accept-Encoding": "gzip, deflate"})
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == raw_index and int(resp.getheader("Content-Length")) == len(body)
    resp, body = raw(hub, "GET", location)
    assert resp.status == 200 and resp.getheader("Content-Encoding") is None and body == raw_index
    resp, body = raw(hub, "GET", location, {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert resp.status == 206 and body == raw_index[:10]
    # A .tar is never answered there; a stale commit is a bad revision.
    resp, _ = raw(hub, "GET", location.replace(commit, "0" * 40))
    assert resp.status == 404 and resp.getheader("X-Error-Code") == "RevisionNotFound"
    assert hub.count(kind="cache") == 4 and hub.count(kind="resolve") == 1


def test_private_repo_resolve_cache_checks_the_token(hub: HubServer):
    path = "/datasets/demo/secret/resolve/main/README.md"
    assert raw(hub, "GET", path)[0].status == 401
    resp, _ = raw(hub, "GET", path, {"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 307
    location = resp.getheader("Location")
    assert raw(hub, "GET", location)[0].status == 401
    resp, body = raw(hub, "GET", location, {"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200 and body == b"# mini\n"


def test_hf_hub_download_and_hfapi_through_the_redirects(hf_env: HubServer, hub_root: Path):
    from huggingface_hub import HfApi, hf_hub_download

    tar = hf_hub_download(REPO, "images/0001.tar", repo_type="dataset")
    assert Path(tar).read_bytes() == (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    index = hf_hub_download(REPO, "images/0001.json", repo_type="dataset")
    assert json.loads(Path(index).read_text())["filesize"] == os.path.getsize(tar)
    kinds = {(r.kind, r.status) for r in hf_env.request_log}
    assert {("resolve", 302), ("cdn", 200), ("resolve", 307), ("cache", 200)} <= kinds
    # Private: the token goes to the endpoint, never to the CDN.
    hf_env.clear_log()
    path = hf_hub_download("demo/secret", "images/0007.tar", repo_type="dataset", token=TOKEN)
    assert Path(path).stat().st_size > 0
    assert [r.status for r in hf_env.request_log if r.kind == "cdn"] == [200]
    assert HfApi().dataset_info("demo/secret", token=TOKEN).private is True


def test_hfutils_through_the_redirects_with_a_private_repo(hf_env: HubServer, tmp_path: Path):
    from hfutils.index import hf_tar_file_download, hf_tar_list_files

    assert sorted(hf_tar_list_files("demo/secret", "images/0007.tar", hf_token=TOKEN)) == ["1007.png", "7.png"]
    hf_env.clear_log()
    dst = tmp_path / "out" / "1007.png"
    hf_tar_file_download("demo/secret", "images/0007.tar", "1007.png", str(dst), hf_token=TOKEN)
    assert dst.read_bytes() == _payload(1007)
    cdn = [r for r in hf_env.request_log if r.kind == "cdn"]
    assert [(r.status, r.bytes_sent) for r in cdn] == [(206, len(_payload(1007)))]


@pytest.mark.peer
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason=f"peer venv with cheesechaser 0.2.2 not found at {PEER_PYTHON}")
def test_cheesechaser_peer_private_repo_through_the_cdn(hub: HubServer, tmp_path: Path):
    dst = tmp_path / "dst"
    script = (
        "from cheesechaser.datapool import IncrementIDDataPool\n"
        "pool = IncrementIDDataPool('demo/secret', base_level=3)\n"
        f"pool.batch_download_to_directory([7, 1007], {str(dst)!r}, max_workers=2, silent=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "peer_home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_TOKEN=TOKEN)
    proc = subprocess.run([str(PEER_PYTHON), "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (dst / "7.png").read_bytes() == _payload(7) and (dst / "1007.png").read_bytes() == _payload(1007)
    assert hub.count(kind="cdn", status=403) == 0 and hub.count(kind="cdn", status=206) >= 2


# ---- the resolver quota ---------------------------------------------------------------------


def test_resolver_quota_headers_and_429(hub_root: Path):
    with HubServer(hub_root, resolver_quota=3, window=60) as hub:
        remaining = []
        for path in (TAR_URL, README_URL, f"/datasets/{REPO}/resolve/main/nope"):
            resp, _ = raw(hub, "GET", path)
            assert resp.getheader("RateLimit-Policy") == '"fixed window";"resolvers";q=3;w=60'
            remaining.append(re.fullmatch(r'"resolvers";r=(\d+);t=(\d+)', resp.getheader("RateLimit")).group(1))
        assert remaining == ["2", "1", "0"]
        resp, body = raw(hub, "HEAD", TAR_URL)
        assert resp.status == 429 and resp.getheader("Retry-After") is None
        t = int(re.fullmatch(r'"resolvers";r=0;t=(\d+)', resp.getheader("RateLimit")).group(1))
        assert 1 <= t <= 60
        # API calls, the CDN and resolve-cache do not count; another token has its own window.
        assert raw(hub, "GET", f"/api/datasets/{REPO}")[0].status == 200
        assert raw(hub, "GET", README_URL, {"Authorization": f"Bearer {TOKEN}"})[0].status == 307
        # The window over, resolves are allowed again.
        now = hub.quota.clock()
        hub.quota.clock = lambda: now + 61
        assert raw(hub, "HEAD", TAR_URL)[0].status == 302
        assert hub.count(status=429) == 1 and hub.resolves == 6


def test_huggingface_hub_waits_the_window_out(hub_root: Path, hf_env_factory):
    with HubServer(hub_root, resolver_quota=2, window=1) as hub:
        hf_env_factory(hub)
        from huggingface_hub import hf_hub_download

        for name in ("README.md", "images/0001.json", "images/0002.json"):
            assert hf_hub_download(REPO, name, repo_type="dataset")
        assert hub.count(status=429) >= 1  # the third HEAD was refused, then retried after t


@pytest.fixture
def hf_env_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Call it with a started hub to point the clients at it."""
    yield lambda hub: point_hf_clients(hub, tmp_path / "hf_home", monkeypatch)
    clear_hf_caches()


# ---- mirrors --------------------------------------------------------------------------------


def test_opaque_etags_and_plain_404(hub_root: Path, hf_env_factory):
    with HubServer(hub_root, opaque_etags=True, plain_404=True) as hub:
        raw_readme = (hub_root / "datasets" / REPO / "README.md").read_bytes()
        resp, _ = raw(hub, "HEAD", README_URL)
        etag = resp.getheader("ETag").strip('"')
        assert re.fullmatch(r"[0-9a-f]{40}", etag)
        assert etag != hashlib.sha1(b"blob %d\0" % len(raw_readme) + raw_readme).hexdigest()
        resp, _ = raw(hub, "HEAD", TAR_URL)
        assert re.fullmatch(r'"[0-9a-f]{40}"', resp.getheader("X-Linked-Etag"))
        for path in (f"/datasets/{REPO}/resolve/main/nope", "/api/datasets/demo/none"):
            resp, _ = raw(hub, "GET", path, {"Authorization": f"Bearer {TOKEN}"})
            assert resp.status == 404 and resp.getheader("X-Error-Code") is None, path
        hf_env_factory(hub)
        from huggingface_hub import hf_hub_download

        assert Path(hf_hub_download(REPO, "README.md", repo_type="dataset")).read_bytes() == raw_readme


def test_direct_answers_in_place(hub_root: Path):
    with HubServer(hub_root, direct=True) as hub:
        assert raw(hub, "HEAD", TAR_URL)[0].status == 200
        assert raw(hub, "GET", README_URL)[1] == b"# mini\n"
        assert {r.kind for r in hub.request_log} == {"resolve"}


def test_serve_flags_reach_the_server(hub_root: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", str(hub_root), "--resolver-quota", "1", "--window", "60",
         "--cdn-ttl", "5", "--plain-404"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3],
    )
    try:
        url = proc.stdout.readline().strip()

        class Srv:
            port = int(url.rsplit(":", 1)[1])

        resp, _ = raw(Srv, "GET", TAR_URL)
        assert resp.status == 302 and "X-Amz-Expires=5&" in resp.getheader("Location")
        resp, _ = raw(Srv, "GET", TAR_URL)
        assert resp.status == 429 and resp.getheader("X-Error-Code") is None
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "app", "serve", str(hub_root), "--window", "0"],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3], timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1] == "cheesechaser-tui serve: error: argument --window: must be more than 0, got '0'"


# ---- the engine through the real-Hub paths ----------------------------------------------------


def _engine_repo(root: Path, repo: str, ids: list[int], **kw) -> None:
    from app.hub.dataset import build_repo
    from tests.support.helpers import binary_resources

    build_repo(root, repo, binary_resources(ids, 2000), base_level=1, **kw)


def test_engine_private_job_survives_a_signed_url_expiring_mid_job(hub: HubServer, hub_root: Path,
                                                                   tmp_path: Path, hf_cache):
    from pools import Downloader, IncrementIDDataPool, events

    ids = list(range(10, 110, 10))  # one level-1 archive: every file's GET goes to the same signed URL
    _engine_repo(hub_root, "t/expiring", ids, private=True, tokens=[TOKEN])
    moved = []

    def on_event(e) -> None:
        if isinstance(e, events.ResourceDone) and not moved:
            now = hub.signer.clock()
            hub.signer.clock = lambda: now + 7200  # every URL handed out so far has expired
            moved.append(e.resource_id)

    pool = IncrementIDDataPool("t/expiring", base_level=1, endpoint=hub.url, hf_token=TOKEN)
    with Downloader(max_workers=1, merge_gap=0, on_event=on_event) as dl:
        report = dl.submit(pool, ids, str(tmp_path / "o")).wait(60)
    assert sorted(report.downloaded) == ids, report
    assert moved, "no file arrived before the clock moved"
    cdn = [r for r in hub.request_log if r.kind == "cdn"]
    assert [r.status for r in cdn].count(403) == 1, "the engine refreshed the URL once, on the first 403"
    assert hub.count("GET", ".tar", kind="resolve") == 2  # resolved once, then once more after expiry
    assert len([r for r in cdn if r.status == 206]) == len(ids)


def test_engine_job_waits_out_the_resolver_quota(hub_root: Path, tmp_path: Path, hf_cache):
    from pools import Downloader, IncrementIDDataPool

    ids = [i * 10 + 1 for i in range(8)]  # eight level-1 archives: 16 resolves (index + data)
    _engine_repo(hub_root, "t/quota", ids)
    with HubServer(hub_root, resolver_quota=5, window=1) as hub:
        pool = IncrementIDDataPool("t/quota", base_level=1, endpoint=hub.url)
        with Downloader(max_workers=4) as dl:
            report = dl.submit(pool, ids, str(tmp_path / "o")).wait(60)
        assert sorted(report.downloaded) == ids, report
        assert hub.resolves - hub.count(status=429) <= 2 * len(ids)
