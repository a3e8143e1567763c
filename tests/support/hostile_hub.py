"""A hostile Hub for the transport tests: a proxy in front of a real loopback Hub, on 127.0.0.1.

Every request is forwarded to the upstream ``HubServer`` (so repos, API calls, indexes and
archives are real) and its answer is then bent the way one kind of bad server or real-Hub
behaviour would bend it. Modes are switched on at run time, each with its options and a
``paths`` glob (matched against the path in the repo and its basename; None: every file)::

    hostile = HostileHub(hub.url).start()
    hostile.modes = {"cdn": {"expires": 3}, "rate-limit": {"quota": 5, "window": 2}}

Modes:

``cdn``            resolve of a ``.tar`` answers 302 to a second "CDN" port with a signed URL
                   (``X-Amz-Expires``, ``X-Amz-Date``, ``Signature``) and ``X-Linked-Size`` /
                   ``X-Linked-Etag``; the CDN refuses a request with ``Authorization`` or past expiry (403)
``gzip``           small files gzip-encoded when the client accepts it (ETag of the decoded bytes)
``resolve-cache``  small files answer 307 to a relative ``/api/resolve-cache/...`` URL
``rate-limit``     every ``/resolve/`` counts: ``RateLimit``/``RateLimit-Policy`` on every answer,
                   429 with ``r=0;t=<left>`` (no ``Retry-After``) past ``quota`` per ``window`` s
``trickle``        headers, then one byte every ``every`` seconds
``silent``         accept, read the request, never answer
``redirect-loop``  302 to itself (``hops``: through that many other URLs first; ``api``: API calls too)
``file-redirect``  302 to ``file:///etc/passwd``
``link-elsewhere`` tree pages get ``Link: rel=next`` to another origin (``hostile.elsewhere``, which
                   records whether it was sent a token)
``huge``           an index of ``size`` bytes (valid JSON, padded with spaces)
``gzip-bomb``      ``Content-Encoding: gzip`` body of about 1 MB that inflates to ``size`` (1 GB)
``deep``           an index nested ``depth`` (200,000) lists deep
``poison``         the index lists the right names with other bytes' sha256 (a doctored index
                   under the real commit sha, which the API still reports)
``ignore-range``   ranged GETs answered 200 with the whole file
``opaque-etag``    ETags replaced by a 40-hex value that is not the content's hash
``plain-404``      404 without ``X-Error-Code``
"""

from __future__ import annotations

import calendar
import fnmatch
import gzip
import hashlib
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

_BOMB: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """A gzip body inflating to ``size`` bytes of a JSON index padded with spaces (~1 MB per GB):
    one member per MiB of spaces (gzip members may follow one another), compressed once."""
    if size not in _BOMB:
        block = gzip.compress(b" " * (1 << 20), compresslevel=9)
        _BOMB[size] = (gzip.compress(b'{"filesize": 1, "files": {') + block * (size >> 20)
                       + gzip.compress(b"}}"))
    return _BOMB[size]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up on a hostile answer is the point, not news


class Elsewhere:
    """Another origin: answers an empty tree page and records whether a token came with it."""

    def __init__(self):
        self.tokens: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.tokens.append(self.headers.get("Authorization"))
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


class HostileHub:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.modes: dict[str, dict] = {}
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self._window: tuple[float, int] = (0.0, 0)
        self._stop = threading.Event()
        self._sha256: dict[str, tuple[int, str]] = {}
        self._grants: dict[str, str] = {}  # signature -> the token the resolve came with (server side)
        self._revoked: set[str] = set()
        self.elsewhere: Elsewhere | None = None
        self._hub = self._cdn = None

    # -- lifecycle
    def start(self) -> "HostileHub":
        self._hub = _Server(("127.0.0.1", 0), self._handler("hub"))
        self._cdn = _Server(("127.0.0.1", 0), self._handler("cdn"))
        for srv in (self._hub, self._cdn):
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self.elsewhere = Elsewhere()
        return self

    def stop(self) -> None:
        self._stop.set()
        for srv in (self._hub, self._cdn):
            srv.shutdown()
            srv.server_close()
        self.elsewhere.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def requests(self, port: str = "hub", suffix: str = "", status: int | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.log if r["port"] == port and r["path"].split("?")[0].endswith(suffix)
                    and (status is None or r["status"] == status)]

    def resolves(self) -> int:
        with self._lock:
            return sum(1 for r in self.log if r["port"] == "hub" and "/resolve/" in r["path"])

    def revoke_all(self) -> None:
        """The CDN refuses (403) every URL signed so far, as it does past their expiry."""
        with self._lock:
            self._revoked.update(self._grants)

    # -- helpers
    def mode(self, name: str, path: str) -> dict | None:
        opts = self.modes.get(name)
        if opts is None:
            return None
        pattern = opts.get("paths")
        if pattern is None:
            return opts
        rel = path.split("/resolve/", 1)[-1].split("/", 1)[-1] if "/resolve/" in path else path
        base = rel.rsplit("/", 1)[-1]
        return opts if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(base, pattern) else None

    def upstream_call(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.getheaders(), body
        finally:
            conn.close()

    def linked(self, path: str, auth: str | None) -> tuple[int, str] | tuple[int, list, bytes]:
        """Size and sha256 of a whole upstream file (small test archives), or the upstream's
        answer (status, headers, body) when it is not there."""
        if path not in self._sha256:
            headers = {"Authorization": auth} if auth else {}
            status, hdrs, body = self.upstream_call("GET", path, headers)
            if status != 200:
                return status, hdrs, body
            self._sha256[path] = (len(body), hashlib.sha256(body).hexdigest())
        return self._sha256[path]

    def _rate(self, path: str) -> tuple[list[tuple[str, str]], bool]:
        """Count a resolve; the headers to send, and whether the quota is spent."""
        opts = self.modes.get("rate-limit")
        if opts is None or "/resolve/" not in path:
            return [], False
        quota, window = opts.get("quota", 5), opts.get("window", 2.0)
        with self._lock:
            now = time.monotonic()
            start, used = self._window
            if now - start >= window:
                start, used = now, 0
            used += 1
            self._window = (start, used)
        left = max(0.0, window - (now - start))
        remaining = max(0, quota - used)
        headers = [("RateLimit", f'"resolvers";r={remaining};t={int(left + 0.999)}'),
                   ("RateLimit-Policy", f'"fixed window";"resolvers";q={quota};w={int(window)}')]
        return headers, used > quota

    def _handler(self, port: str):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._serve(head=True)

            def do_GET(self):
                self._serve(head=False)

            def _record(self, status: int) -> None:
                with owner._lock:
                    owner.log.append({"port": port, "method": self.command, "path": self.path,
                                      "status": status, "auth": self.headers.get("Authorization")})

            def _send(self, status: int, headers: list, body: bytes, head: bool = False) -> None:
                self._record(status)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                try:
                    if port == "cdn":
                        self._serve_cdn(head)
                    else:
                        self._serve_hub(head)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _serve_cdn(self, head: bool) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                expires = float(query.get("X-Amz-Expires", "0"))
                signed = calendar.timegm(time.strptime(query.get("X-Amz-Date", "19700101T000000Z"),
                                                       "%Y%m%dT%H%M%SZ"))
                if self.headers.get("Authorization"):
                    return self._send(403, [("Content-Type", "text/plain")], b"one auth mechanism only", head)
                if time.time() > signed + expires or query.get("Signature") in owner._revoked:
                    return self._send(403, [("Content-Type", "text/plain")], b"Request has expired", head)
                upstream_path = unquote(parts.path.removeprefix("/cdn"))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("range",)}
                grant = owner._grants.get(query.get("Signature", ""))
                if grant:
                    headers["Authorization"] = grant
                status, hdrs, body = owner.upstream_call("GET", upstream_path, headers)
                keep = [(k, v) for k, v in hdrs if k.lower() in ("content-type", "content-range", "accept-ranges")]
                self._send(status, keep, body, head)

            def _serve_hub(self, head: bool) -> None:
                path = self.path
                clean = path.split("?")[0]
                if owner.mode("silent", clean) is not None:
                    self._record(0)
                    owner._stop.wait(60)
                    self.close_connection = True
                    return
                rate_headers, spent = owner._rate(clean)
                if spent:
                    return self._send(429, rate_headers + [("Content-Type", "text/plain")], b"rate limited", head)
                if ((opts := owner.mode("redirect-loop", clean)) is not None
                        and ("/resolve/" in clean or opts.get("api"))):
                    hop = int(dict(parse_qsl(urlsplit(path).query)).get("hop", "0"))
                    nxt = f"{clean}?hop={(hop + 1) % (opts.get('hops', 0) + 1)}"
                    return self._send(302, rate_headers + [("Location", nxt)], b"", head)
                if ((opts := owner.mode("file-redirect", clean)) is not None
                        and ("/resolve/" in clean or opts.get("api"))):
                    return self._send(302, rate_headers + [("Location", "file:///etc/passwd")], b"", head)
                if owner.mode("plain-404", clean) is not None and "/resolve/" in clean:
                    return self._send(404, rate_headers + [("Content-Type", "text/plain")], b"Not Found", head)
                if ((opts := owner.mode("cdn", clean)) is not None and "/resolve/" in clean
                        and (clean.endswith(".tar") or opts.get("paths"))):
                    return self._redirect_cdn(clean, opts, rate_headers, head)
                if (owner.mode("resolve-cache", clean) is not None and "/resolve/" in clean
                        and not clean.endswith(".tar")):
                    target = "/api/resolve-cache/" + clean.lstrip("/").replace("/resolve/", "/", 1)
                    return self._send(307, rate_headers + [("Location", target)], b"", head)
                upstream_path = path
                if clean.startswith("/api/resolve-cache/"):
                    rest = clean.removeprefix("/api/resolve-cache/")
                    kind, owner_, name, rev_path = rest.split("/", 3)
                    upstream_path = f"/{kind}/{owner_}/{name}/resolve/{rev_path}"
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "range", "user-agent")}
                status, hdrs, body = owner.upstream_call(self.command, upstream_path, headers)
                hdrs = [(k, v) for k, v in hdrs if k.lower() not in ("content-length", "connection",
                                                                    "transfer-encoding", "keep-alive")]
                hdrs += rate_headers
                if owner.mode("link-elsewhere", clean) is not None and "/tree/" in clean:
                    hdrs = [(k, v) for k, v in hdrs if k.lower() != "link"]
                    hdrs.append(("Link", f'<{owner.elsewhere.url}{clean}?cursor=abc>; rel="next"'))
                if status in (200, 206) and clean.endswith(".json") and "/resolve/" in upstream_path:
                    if (opts := owner.mode("huge", clean)) is not None:
                        return self._stream_huge(hdrs, opts.get("size", 200 << 20), head)
                    if (opts := owner.mode("gzip-bomb", clean)) is not None:
                        body = gzip_bomb(opts.get("size", 1 << 30))
                        hdrs = [(k, v) for k, v in hdrs if k.lower() != "etag"] + [("Content-Encoding", "gzip")]
                        return self._send(200, hdrs, body, head)
                    if (opts := owner.mode("deep", clean)) is not None:
                        depth = opts.get("depth", 200_000)
                        body = b'{"files": ' + b"[" * depth + b"]" * depth + b"}"
                        hdrs = [(k, v) for k, v in hdrs if k.lower() != "etag"]
                        return self._send(200, hdrs, body, head)
                    if owner.mode("poison", clean) is not None:
                        body = _poisoned(body)
                        hdrs = [(k, v) for k, v in hdrs if k.lower() != "etag"]
                if owner.mode("opaque-etag", clean) is not None:
                    fake = hashlib.sha1(clean.encode()).hexdigest()
                    hdrs = [(k, v) for k, v in hdrs if k.lower() != "etag"] + [("ETag", f'"{fake}"')]
                if status == 206 and owner.mode("ignore-range", clean) is not None:
                    status, full_hdrs, body = owner.upstream_call(
                        "GET", upstream_path, {k: v for k, v in headers.items() if k.lower() != "range"})
                    hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-range"]
                if (owner.mode("gzip", clean) is not None and status == 200
                        and "gzip" in self.headers.get("Accept-Encoding", "")):
                    body = gzip.compress(body)  # the ETag stays the decoded content's, as on the Hub
                    hdrs.append(("Content-Encoding", "gzip"))
                if (opts := owner.mode("trickle", clean)) is not None and status in (200, 206):
                    return self._trickle(status, hdrs, body, opts.get("every", 5.0), head)
                self._send(status, hdrs, body, head)

            def _redirect_cdn(self, clean: str, opts: dict, rate_headers: list, head: bool) -> None:
                auth = self.headers.get("Authorization")
                found = owner.linked(clean, auth)
                if len(found) == 3:  # not there (or not for this token): the Hub's own answer
                    status, hdrs, body = found
                    keep = [(k, v) for k, v in hdrs if k.lower() not in ("content-length", "connection")]
                    return self._send(status, keep + rate_headers, body, head)
                size, sha = found
                stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                with owner._lock:
                    signature = f"sig{len(owner._grants)}"
                    owner._grants[signature] = auth or ""
                query = f"X-Amz-Date={stamp}&X-Amz-Expires={opts.get('expires', 3600)}&Signature={signature}"
                if opts.get("stale"):
                    size += 512
                location = f"{owner.cdn_url}/cdn{quote(clean)}?{query}"
                headers = rate_headers + [("Location", location), ("X-Linked-Size", str(size)),
                                          ("X-Linked-Etag", f'"{sha}"')]
                self._send(302, headers, b"", head)

            def _stream_huge(self, hdrs: list, size: int, head: bool) -> None:
                self._record(200)
                self.send_response(200)
                for k, v in hdrs:
                    if k.lower() not in ("etag", "content-range"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if head:
                    return
                self.wfile.write(b'{"files": {')
                sent, block = 11, b" " * (1 << 20)
                while sent < size - 2 and not owner._stop.is_set():
                    chunk = block[: size - 2 - sent]
                    self.wfile.write(chunk)
                    sent += len(chunk)
                self.wfile.write(b"}}")

            def _trickle(self, status: int, hdrs: list, body: bytes, every: float, head: bool) -> None:
                self._record(status)
                self.send_response(status)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if head:
                    return
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    if owner._stop.wait(every):
                        break
                self.close_connection = True

        return Handler


def _poisoned(body: bytes) -> bytes:
    import json

    index = json.loads(body)
    for info in index.get("files", {}).values():
        if isinstance(info, dict) and "sha256" in info:
            info["sha256"] = hashlib.sha256(b"doctored" + info["sha256"].encode()).hexdigest()
    return json.dumps(index).encode()
