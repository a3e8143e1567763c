"""Property-based tests (hypothesis) of the loopback Hub's request parsing: ``Range`` headers,
paths inside a repo, and whole requests with hostile paths and headers sent to a live server.
Bounded (``max_examples``, ``deadline``) so the file takes seconds."""

from __future__ import annotations

import http.client
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app.hub.handler import MAX_RANGES, parse_range
from app.hub.repo import split_repo_path
from app.hub.server import HubServer
from tests.app.hub.test_server import REPO, write_repo

FAST = settings(max_examples=150, deadline=None)
LIVE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---- Range ------------------------------------------------------------------------------------

spec = st.one_of(
    st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 5000).map(lambda a: f"{a}-"),
    st.integers(0, 5000).map(lambda n: f"-{n}"),
    st.text("0123456789-, x=", max_size=12),
)


def _wanted(specs: list[str], size: int) -> set[int] | None:
    """The bytes a well-formed header asks for (a reference model), None when it is malformed."""
    out: set[int] = set()
    for part in specs:
        part = part.strip()
        first, dash, last = part.partition("-")
        if not dash or not all(c.isdigit() for c in first + last) or (not first and not last):
            return None
        if first == "":
            n = int(last)
            out |= set(range(max(0, size - n), size))
        else:
            a = int(first)
            b = int(last) if last else size - 1
            if last and b < a:
                return None
            out |= set(range(a, min(b, size - 1) + 1))
    return out


@FAST
@given(st.lists(spec, min_size=1, max_size=30), st.integers(0, 4000))
def test_parse_range_matches_a_model_and_is_bounded(specs: list[str], size: int):
    header = "bytes=" + ",".join(specs)
    got = parse_range(header, size)
    want = _wanted(specs, size)
    if want is None:
        assert got is None
        return
    if not want:
        assert got == "unsatisfiable"
        return
    if got is None:  # only when merging leaves more than MAX_RANGES parts
        return
    assert isinstance(got, list) and 1 <= len(got) <= MAX_RANGES
    covered: set[int] = set()
    for (a, b), nxt in zip(got, got[1:] + [None]):
        assert 0 <= a <= b < size
        if nxt is not None:
            assert nxt[0] > b + 1  # sorted, disjoint, not even touching
        covered |= set(range(a, b + 1))
    assert covered == want
    assert sum(b - a + 1 for a, b in got) <= size


@FAST
@given(st.text(max_size=200), st.integers(0, 10**12))
def test_parse_range_never_raises(header: str, size: int):
    got = parse_range(header, size)
    assert got is None or got == "unsatisfiable" or sum(b - a + 1 for a, b in got) <= size


# ---- paths ------------------------------------------------------------------------------------


@FAST
@given(st.lists(st.sampled_from(["a", "b.tar", ".", "..", "", "\x00", ".git", "%2e%2e", "x y", "\u202e"]),
                max_size=8).map("/".join))
def test_split_repo_path_never_leads_out(path: str):
    rel = split_repo_path(path)
    if rel is None or rel == "":
        return
    parts = rel.split("/")
    assert not rel.startswith("/") and all(p not in ("", ".", "..", ".git") and "\x00" not in p for p in parts)


# ---- whole requests against a live server -----------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("parsing") / "hub"
    write_repo(root)
    (root / "secret.txt").write_text("TOPSECRET")  # in ROOT but in no repo
    with HubServer(root) as srv:
        yield srv


segment = st.one_of(
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%0d%0a", "%0D%0AX-Evil:%201", "secret.txt", "main",
                     "resolve", "api", "datasets", "demo", "mini", "images", "0001.tar", "tree", "%ff", "~"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters="/?#% "), max_size=6),
)


def _send(port: int, target: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", "x")
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheaders(), body


@LIVE
@given(st.lists(segment, min_size=1, max_size=8))
def test_any_path_gets_a_clean_answer_and_nothing_outside(live: HubServer, parts: list[str]):
    for prefix in ("", f"/datasets/{REPO}/resolve/main", f"/api/datasets/{REPO}/tree/main", "/api/resolve-cache/datasets"):
        status, headers, body = _send(live.port, prefix + "/" + "/".join(parts), {})
        assert status in (200, 302, 307, 400, 401, 403, 404), (parts, status)
        assert b"TOPSECRET" not in body
        names = {k.lower() for k, _ in headers}
        assert "x-evil" not in names
        for _, v in headers:
            assert "\r" not in v and "\n" not in v


header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_characters="\r\n"), max_size=60)


@LIVE
@given(st.dictionaries(st.sampled_from(["Range", "Authorization", "Accept-Encoding", "If-None-Match",
                                        "Content-Type", "X-Anything"]), header_value, max_size=4))
def test_any_header_gets_a_clean_answer(live: HubServer, headers: dict[str, str]):
    for target in (f"/datasets/{REPO}/resolve/main/images/0001.tar", f"/datasets/{REPO}/resolve/main/README.md",
                   f"/api/datasets/{REPO}"):
        status, _, body = _send(live.port, target, headers)
        assert status in (200, 206, 302, 307, 400, 401, 404, 416), (headers, status)


@LIVE
@given(st.binary(max_size=300))
def test_garbage_bytes_never_crash_the_server(live: HubServer, data: bytes):
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall(data + b"\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ") or answer.startswith(b"HTTP/1.0 ")
    # and the server still answers
    assert _send(live.port, f"/api/datasets/{REPO}", {})[0] == 200
