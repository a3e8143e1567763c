"""`cheesechaser-tui serve` pointed at a folder and shared: one test per row of issue 10's `serve`
table (symlinks out of ROOT, header injection, range floods, big bodies, malformed requests and
slow connections, the junk-token oracle, tokens in `ps`), over real sockets on loopback."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.hub.server import HubServer
from tests.app.hub.test_server import REPO, TAR_URL, TOKEN, Client, raw, write_repo

HERE = Path(__file__).resolve().parent


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    write_repo(root)
    write_repo(root, "demo/secret", ids=(7,))
    (root / "access.json").write_text(json.dumps({"demo/secret": {"private": True, "tokens": [TOKEN]}}))
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside ROOT that looks like repos, with a secret in it."""
    out = tmp_path / "outside"
    write_repo(out, "owner/leak", ids=(5,))
    (out / "datasets" / "owner" / "leak" / "secret.txt").write_text("TOPSECRET")
    return out


@pytest.fixture
def hub(hub_root: Path):
    with HubServer(hub_root) as srv:
        yield srv


def _exchange(port: int, data: bytes, read_all: bool = True) -> bytes:
    """Send raw bytes, return what the server answers until it closes (or 5 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not read_all and b"\r\n\r\n" in out:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    return out


def _head_block(answer: bytes) -> tuple[str, list[str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *lines = head.split("\r\n")
    return status, lines


# ---- nothing outside ROOT --------------------------------------------------------------------


@pytest.mark.parametrize("level", ["owner", "repo", "type"])
def test_a_symlink_out_of_root_is_never_served_or_listed(hub_root: Path, outside: Path, level: str):
    if level == "owner":
        os.symlink(outside / "datasets" / "owner", hub_root / "datasets" / "evil")
        repo = "evil/leak"
    elif level == "repo":
        os.symlink(outside / "datasets" / "owner" / "leak", hub_root / "datasets" / "demo" / "leak")
        repo = "demo/leak"
    else:
        os.rename(hub_root / "datasets", hub_root / "moved")
        os.symlink(outside / "datasets", hub_root / "datasets")
        repo = "owner/leak"
    with HubServer(hub_root) as hub:
        client = Client(hub)
        for path in (f"/api/datasets/{repo}", f"/api/datasets/{repo}/tree/main?recursive=1",
                     f"/datasets/{repo}/resolve/main/secret.txt", f"/datasets/{repo}/resolve/main/images/0005.tar"):
            resp, body = client.get("GET", path)
            assert resp.status in (401, 404) and resp.getheader("X-Error-Code") == "RepoNotFound", path
            assert b"TOPSECRET" not in body and b"secret.txt" not in body
        assert not any("leak" in name for name in hub.repos())


def test_a_file_link_into_another_repo_or_out_of_root_is_not_served(hub: HubServer, hub_root: Path,
                                                                     outside: Path):
    mini = hub_root / "datasets" / REPO
    os.symlink(hub_root / "datasets" / "demo" / "secret" / "README.md", mini / "stolen.md")
    os.symlink(outside / "datasets" / "owner" / "leak" / "secret.txt", mini / "secret.txt")
    os.symlink(outside / "datasets" / "owner", mini / "dir")
    for name in ("stolen.md", "secret.txt", "dir/leak/secret.txt"):
        resp, body = Client(hub).get("GET", f"/datasets/{REPO}/resolve/main/{name}")
        assert resp.status == 404 and b"TOPSECRET" not in body, name
    listing = raw(hub, "GET", f"/api/datasets/{REPO}/tree/main?recursive=1")[1].decode()
    paths = [e["path"] for e in json.loads(listing)]
    assert "stolen.md" not in paths and "secret.txt" not in paths and not any(p.startswith("dir") for p in paths)


# ---- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
def test_cr_lf_in_a_url_never_reach_a_header(hub: HubServer, direct: bool):
    hub.direct = direct
    for target in (f"/datasets/{REPO}/resolve/v1%0d%0aX-Injected:%20yes/README.md",
                   f"/datasets/{REPO}/resolve/main/a%0D%0ASet-Cookie:%20x=1%0D%0A%0D%0Abody",
                   f"/api/datasets/{REPO}/tree/ma%0ain%0d%0aX-Injected:%201"):
        answer = _exchange(hub.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, lines = _head_block(answer)
        assert status.startswith("HTTP/1.1 404"), status
        names = [line.split(":", 1)[0].lower() for line in lines]
        assert "x-injected" not in names and "set-cookie" not in names
        message = next(line for line in lines if line.startswith("X-Error-Message:"))
        if "v1" in target:  # the bad revision is echoed, made harmless
            assert message == "X-Error-Message: Invalid rev id: v1%0D%0AX-Injected: yes"


# ---- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
def test_range_floods_are_capped(hub: HubServer, hub_root: Path, direct: bool):
    hub.direct = direct
    data = (hub_root / "datasets" / REPO / "images" / "0001.tar").read_bytes()
    client = Client(hub)
    resp, body = client.get("GET", TAR_URL, {"Range": "bytes=" + ",".join(["0-"] * 2000)})
    assert resp.status == 206 and body == data  # 2000 copies of the file merge into one: the file, once
    resp, body = client.get("GET", TAR_URL, {"Range": "bytes=" + ",".join(["0-"] * 20000)})
    assert resp.status == 200 and body == data  # a header that long is not read as ranges at all
    resp, body = client.get("GET", TAR_URL, {"Range": "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17))})
    assert resp.status == 200 and body == data  # more than 16 parts: the whole file, once
    resp, body = client.get("GET", TAR_URL, {"Range": "bytes=0-99,50-149,150-199,-10"})
    if direct:  # merged: 0-199 and the tail
        assert resp.status == 206 and resp.getheader("Content-Type").startswith("multipart/byteranges")
        assert body.count(b"Content-Range: bytes ") == 2 and f"bytes 0-199/{len(data)}".encode() in body
    else:  # the CDN honours one range only
        assert resp.status == 200 and body == data
    resp, body = client.get("GET", TAR_URL, {"Range": "bytes=0-49,10-19,40-99"})
    assert resp.status == 206 and body == data[:100]  # overlaps merged into one part
    assert sum(r.bytes_sent for r in hub.request_log) <= 8 * len(data) + 8192


# ---- bodies ----------------------------------------------------------------------------------


def test_bodies_are_refused_on_get_and_head_and_capped_on_post(hub: HubServer):
    for method in ("GET", "HEAD"):
        answer = _exchange(hub.port, f"{method} /api/datasets/{REPO} HTTP/1.1\r\nHost: x\r\n"
                                     "Content-Length: 5\r\n\r\nhello".encode())
        assert _head_block(answer)[0].startswith("HTTP/1.1 400"), method
    answer = _exchange(hub.port, f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                                 f"Content-Length: {1 << 30}\r\n\r\n".encode() + b"x" * 65536)
    status, lines = _head_block(answer)
    assert status.startswith("HTTP/1.1 413") and "Connection: close" in lines
    # Within bounds, paths-info still works (form body, and chunked).
    body = "paths=README.md&paths=images"
    answer = _exchange(hub.port, (f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
                                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    assert _head_block(answer)[0].startswith("HTTP/1.1 200") and b'"README.md"' in answer
    answer = _exchange(hub.port, (f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
                                  "Connection: close\r\n\r\n"
                                  f"{len(body):x}\r\n{body}\r\n0\r\n\r\n").encode())
    assert _head_block(answer)[0].startswith("HTTP/1.1 200") and b'"images"' in answer


def test_big_unauthenticated_posts_leave_memory_flat(hub_root: Path, tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE.parents[2])
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        chunk = b"x" * (1 << 20)
        for _ in range(4):  # each announces 1 GB and streams what the server lets through
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                          f"Content-Length: {1 << 30}\r\n\r\n".encode())
                sent = 0
                try:
                    while sent < 256 << 20:
                        s.sendall(chunk)
                        sent += len(chunk)
                except OSError:
                    pass  # refused and closed: what we want
                assert sent < 256 << 20, "the server kept reading a 1 GB body"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        assert peak_kib < 150 * 1024, f"peak RSS {peak_kib} KiB"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err


# ---- malformed requests and slow connections ---------------------------------------------------


def test_malformed_requests_get_400_not_a_traceback(hub: HubServer, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="app.hub.server")
    post = f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for request in (post + "zz\r\nhello\r\n0\r\n\r\n", post + "5\r\nhelloXX0\r\n\r\n",
                    post.replace("chunked", "chunked") + "-1\r\n", "GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                    f"GET {TAR_URL} HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
                    f"POST /api/datasets/{REPO}/paths-info/main HTTP/1.1\r\nContent-Length: 1e9\r\n\r\n"):
        answer = _exchange(hub.port, request.encode())
        status = _head_block(answer)[0]
        assert status.split(" ")[1] in ("400", "505"), (request, status)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert Client(hub).get("GET", f"/datasets/{REPO}/resolve/main/README.md")[1] == b"# mini\n"


def test_slow_connections_hold_a_bounded_pool(hub_root: Path):
    with HubServer(hub_root, workers=8) as hub:
        base = threading.active_count()
        silent = [socket.create_connection(("127.0.0.1", hub.port), timeout=10) for _ in range(200)]
        partial = [socket.create_connection(("127.0.0.1", hub.port), timeout=10) for _ in range(4)]
        try:
            for s in partial:
                s.sendall(b"GET / HTTP/1.1\r\n")  # a request line, then silence: holds a worker
            # 200 silent connections cost no thread and no worker: a real request is answered at
            # once, and keep-alive connections go back to waiting without a thread either.
            client = Client(hub)
            for _ in range(3):
                assert client.get("GET", f"/datasets/{REPO}/resolve/main/README.md")[1] == b"# mini\n"
            assert threading.active_count() == base, "a thread was started per connection"
        finally:
            for s in silent + partial:
                s.close()


def test_silent_connections_are_closed_after_the_idle_timeout(hub_root: Path):
    with HubServer(hub_root, idle_timeout=0.3) as hub:
        s = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
        assert s.recv(1) == b""  # closed by the server, long before our own 10 s timeout
        s = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
        s.sendall(f"GET /api/datasets/{REPO} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):  # answered, then kept alive until idle, then closed
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1


# ---- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["hf_junk", None, "hf_other_known"])
def test_a_junk_token_cannot_tell_private_from_missing(hub: HubServer, token: str | None):
    hub.access = {"demo/other": {"private": True, "tokens": ["hf_other_known"]}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for private, missing in (("/api/datasets/demo/secret", "/api/datasets/demo/nothing"),
                             ("/datasets/demo/secret/resolve/main/README.md",
                              "/datasets/demo/nothing/resolve/main/README.md"),
                             ("/api/datasets/demo/secret/tree/main", "/api/datasets/demo/nothing/tree/main")):
        a, body_a = raw(hub, "GET", private, headers)
        b, body_b = raw(hub, "GET", missing, headers)
        assert (a.status, a.getheader("X-Error-Code"), a.getheader("X-Error-Message"), body_a) == \
               (b.status, b.getheader("X-Error-Code"), b.getheader("X-Error-Message"), body_b), private


def test_tokens_from_a_file_or_the_environment_not_the_command_line(hub_root: Path, tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# private repos\ndemo/secret=hf_from_file\n")
    env = dict(os.environ, CHEESECHASER_HUB_PRIVATE="demo/mini=hf_from_env")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root), "--private-file", str(tokens)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parents[2], env=env)
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])

        class Srv:
            pass

        Srv.port = port
        for repo, token in (("demo/secret", "hf_from_file"), ("demo/mini", "hf_from_env")):
            assert raw(Srv, "GET", f"/api/datasets/{repo}")[0].status == 401
            resp, body = raw(Srv, "GET", f"/api/datasets/{repo}", {"Authorization": f"Bearer {token}"})
            assert resp.status == 200 and json.loads(body)["private"] is True
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"hf_from" not in cmdline
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "hf_from" not in err and "warning" not in err


def test_a_token_on_the_command_line_warns_and_bad_token_files_are_one_line(hub_root: Path, tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root), "--private", "demo/mini=hf_cli"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parents[2])
    try:
        assert proc.stdout.readline().startswith("http://127.0.0.1:")
        warning = proc.stderr.readline()
        assert "warning" in warning and "process list" in warning and "hf_cli" not in warning
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    bad = tmp_path / "bad"
    bad.write_text("demo/mini=hf ok\n")
    for args in (["--private-file", str(tmp_path / "none")], ["--private-file", str(bad)]):
        out = subprocess.run([sys.executable, "-m", "app", "serve", str(hub_root), *args], capture_output=True,
                             text=True, cwd=HERE.parents[2], timeout=60)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert "hf ok" not in out.stderr


def test_verbose_log_shows_what_a_client_sent_escaped(hub_root: Path):
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root), "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=HERE.parents[2])
    try:
        port = int(proc.stdout.readline().decode().strip().rsplit(":", 1)[1])
        _exchange(port, b"GET /\x1b]0;owned\x07\x1b[2J HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _exchange(port, b"\x1b[2J\x9b\r\n\r\n")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"\x1b" not in err and b"\x07" not in err and b"\xc2\x9b" not in err
    assert b"\\x1b" in err and b"Traceback" not in err


def test_a_port_in_use_is_one_line_and_exit_2(hub, hub_root: Path):
    port = int(hub.url.rsplit(":", 1)[1])
    out = subprocess.run([sys.executable, "-m", "app", "serve", str(hub_root), "--port", str(port)],
                         capture_output=True, text=True, cwd=HERE.parents[2], timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"cheesechaser-tui serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_the_faults_are_said_in_words_not_as_a_repr(hub_root: Path):
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(hub_root), "--latency-ms", "40",
                             "--fail-rate", "0.05", "--fault-paths", "*.tar"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE.parents[2])
    try:
        proc.stdout.readline()
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert "faults: 40 ms latency, 5% errors (500/502/503) on *.tar" in line and "FaultConfig" not in line


def test_every_command_says_its_version():
    for args in (["--version"], ["download", "--version"], ["serve", "--version"]):
        out = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                             cwd=HERE.parents[2], timeout=60)
        assert out.returncode == 0 and out.stdout.strip().split()[-1][0].isdigit(), out


def test_a_slow_client_is_cut_off_at_the_header_deadline_not_kept_for_ever(hub_root: Path):
    """One header byte every 0.3 s kept a worker for minutes (each read's idle timeout restarted);
    the headers now have a deadline from the first byte, and the others are served meanwhile."""
    import socket
    import time
    import urllib.error
    import urllib.request

    from app.hub.server import HubServer

    srv = HubServer(hub_root, workers=2).start()
    try:
        srv._httpd.header_timeout = 1.0
        slow = []
        for _ in range(2):  # as many as there are workers
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"G")
            slow.append(s)
        t0 = time.monotonic()
        closed: set = set()
        while len(closed) < len(slow) and time.monotonic() - t0 < 15:
            for s in slow:
                if s in closed:
                    continue
                try:
                    s.sendall(b"E")  # one more byte of a request line that never ends
                    s.settimeout(0.3)
                    if s.recv(1024) == b"":
                        closed.add(s)
                except socket.timeout:
                    continue
                except OSError:  # reset: closed by the server
                    closed.add(s)
        assert len(closed) == len(slow) and time.monotonic() - t0 < 8
        try:  # the others are served (an answer, whatever it is)
            with urllib.request.urlopen(f"{srv.url}/api/datasets", timeout=10) as r:
                assert r.status == 200
        except urllib.error.HTTPError as err:
            assert err.code == 404
    finally:
        for s in slow:
            s.close()
        srv.stop()


def test_one_address_cannot_hold_every_connection(hub_root: Path):
    import socket

    from app.hub.server import HubServer

    srv = HubServer(hub_root).start()
    try:
        srv._httpd.max_per_address = 5
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
        extra = socket.create_connection(("127.0.0.1", srv.port))
        extra.settimeout(10)
        assert extra.recv(64).startswith(b"HTTP/1.1 503")
        for s in held:
            s.close()
        extra.close()
    finally:
        srv.stop()
