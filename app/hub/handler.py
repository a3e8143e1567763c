"""HTTP plumbing of the loopback Hub: the threaded server, the request handler and error answers.

The handler parses a request, hands it to the hub's :class:`~app.hub.routes.HubRoutes`, and sends
what the routes ask for: a whole body, headers only, or a body made of byte strings and ranges of
an open file (with ``sendfile`` for big ranges), applying a drop / truncate / corrupt fault across
it. Every request is logged once, before its last byte leaves.

Stdlib only; no Textual.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import socket
import struct
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import unquote

from app.hub.faults import NO_FAULT, Fault
from app.hub.header_clock import HEADER_TIMEOUT, HeaderClock
from pools.text import shown

if TYPE_CHECKING:
    from app.hub.pool import HubHTTPServer

__all__ = ["HubError", "HubRequestHandler", "parse_range", "MAX_BODY"]

logger = logging.getLogger("app.hub.server")  # one logger for the whole loopback hub

MAX_BODY = 1024 * 1024  # a paths-info form of a few thousand paths; anything larger is refused
SMALL_BODY = 256 * 1024  # read + one sendall below this, sendfile above
CHUNK = 1024 * 1024


class HubError(Exception):
    """An error answer: ``status``, a JSON body and ``X-Error-Message`` (plus ``X-Error-Code``)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)


MAX_RANGES = 16


def parse_range(value: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """``None`` = whole file (no, unparsable or too greedy a header), ``"unsatisfiable"``, or
    inclusive ranges, sorted, with overlapping and touching ones merged: never more than
    MAX_RANGES of them, never more bytes than the file."""
    if not value or len(value) > 8192:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not dash or not (first + last).isascii() or not all(c.isdigit() for c in first + last):
            return None
        if len(first) > 19 or len(last) > 19:
            return None
        if first == "":
            if not last:
                return None
            n = int(last)
            if n <= 0:
                continue
            a, b = max(0, size - n), size - 1
        else:
            a = int(first)
            b = int(last) if last else size - 1
            if last and b < a:
                return None  # syntactically invalid: ignore the header
            b = min(b, size - 1)
        if a <= b and a < size:
            out.append((a, b))
    if not out:
        return "unsatisfiable"
    out.sort()
    merged = [out[0]]
    for a, b in out[1:]:
        la, lb = merged[-1]
        if a <= lb + 1:
            merged[-1] = (la, max(lb, b))
        else:
            merged.append((a, b))
    if len(merged) > MAX_RANGES:
        return None  # a whole-file answer costs less than a flood of parts
    return merged


_date_cache: tuple[int, str] = (0, "")
_UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]")


def _header_safe(text: str) -> str:
    """A header name or value with every control character (CR and LF above all) made visible:
    nothing a client put in a URL can start a header of its own."""
    return _UNSAFE_HEADER.sub(lambda m: "%%%02X" % ord(m.group()), text)


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # a garbage request line still gets a status line and headers
    disable_nagle_algorithm = True
    server_version = "loopback-hub/1"
    sys_version = ""
    server: HubHTTPServer

    # Quiet by default; never prints headers (so never a token); what the client sent is escaped.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.hub.verbose:
            sys.stderr.write("hub: %s\n" % shown(format % args, limit=1000))

    def handle(self) -> None:
        """Answer the requests this connection has ready, then hand it back to the pool's
        selector (``keep_alive``) instead of waiting on it: an idle connection holds no worker."""
        self.keep_alive = False
        clock = self.rfile if isinstance(self.rfile, HeaderClock) else HeaderClock(
            self.rfile, self.connection, self.server)
        self.rfile = clock
        while True:
            self.close_connection = True
            clock.start(getattr(self.server, "header_timeout", HEADER_TIMEOUT))
            try:
                self.handle_one_request()
            finally:
                clock.stop()
            if self.close_connection:
                return
            if not self._has_buffered_request():
                self.keep_alive = True
                return

    def _has_buffered_request(self) -> bool:
        """Whether the next request is already here (read ahead into ``rfile``, or in the kernel)."""
        sock = self.connection
        try:
            sock.setblocking(False)
            try:
                return bool(self.rfile.peek(1))
            except (BlockingIOError, OSError, ValueError):
                return False
        finally:
            try:
                sock.settimeout(self.server.idle_timeout)
            except OSError:
                pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ---- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        if isinstance(self.rfile, HeaderClock):
            self.rfile.stop()  # the headers are in: a body or a slow answer has the idle timeout
        hub = self.server.hub
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form request target
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        raw_path, _, query = target.partition("?")
        raw_path = raw_path.split("#", 1)[0]
        self._rec: dict[str, Any] = {"status": 0, "sent": 0, "fault": None, "kind": "other", "file": ""}
        self.extra_headers: list[tuple[str, str]] = []  # sent on this request's answer, whatever it is
        self._logged = False
        self._method, self._raw_path = method, raw_path
        self._headers_sent = False
        try:
            body = self._read_body(method)
            hub.routes.route(self, method, raw_path, query, body)
        except HubError as e:
            if not self._headers_sent:
                self.send_hub_error(e, head=method == "HEAD")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            logger.exception("loopback hub: error serving %s %s", method, shown(raw_path))
            if not self._headers_sent:
                try:
                    self.send_hub_error(HubError(500, "Internal server error"), head=method == "HEAD")
                except OSError:
                    pass
            self.close_connection = True
        finally:
            self.log_now()

    def log_now(self) -> None:
        """Record this request, once, before its last byte leaves (so a client that has read the
        answer always finds it in ``request_log``); ``sent`` is the body size the server writes."""
        if self._logged:
            return
        self._logged = True
        rec = self._rec
        hub = self.server.hub
        hub.log_request(
            self._method, unquote(self._raw_path), self.headers.get("Range"), rec["status"], rec["sent"], rec["fault"],
            rec["kind"], rec["file"],
        )
        if hub.verbose:
            self.log_message('"%s %s" %s %s', self._method, self._raw_path, rec["status"], rec["sent"])

    def note_kind(self, kind: str, file: str = "") -> None:
        """Record what this request is: "resolve", "cdn", "cache" (resolve-cache), "api" or "other",
        and the path in the repo it asks for."""
        self._rec["kind"] = kind
        self._rec["file"] = file

    def note_fault(self, kind: str) -> None:
        """Record the injected fault this request gets (shown in ``request_log``)."""
        self._rec["fault"] = kind

    def _read_body(self, method: str) -> bytes:
        """The request body: none on GET/HEAD (a body there is refused), at most MAX_BODY bytes
        on POST, read before routing only when it is within bounds. A refused or malformed body
        closes the connection (its unread bytes would be taken for the next request)."""
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        closing = self.close_connection  # what the client asked for
        if chunked or length not in (None, "0"):
            self.close_connection = True
        if method != "POST":
            if chunked or length not in (None, "0"):
                raise HubError(400, f"A {method} request carries no body")
            return b""
        if chunked:
            return self._read_chunked()
        if length is None:
            return b""
        if not (length.isascii() and length.isdigit() and len(length) <= 19):
            raise HubError(400, "Invalid Content-Length")
        n = int(length)
        if n > MAX_BODY:
            raise HubError(413, f"Request body larger than {MAX_BODY} bytes")
        body = self.rfile.read(n)
        if len(body) != n:
            raise ConnectionAbortedError("the client sent a short body")
        self.close_connection = closing
        return body

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise HubError(400, "Malformed chunked body")
            size_s = line.split(b";")[0].strip()
            if not size_s or len(size_s) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size_s):
                raise HubError(400, "Malformed chunk size")
            size = int(size_s, 16)
            if size == 0:
                for _ in range(100):  # trailers, bounded
                    if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                        return bytes(out)
                raise HubError(400, "Malformed chunked body")
            if len(out) + size > MAX_BODY:
                raise HubError(413, f"Request body larger than {MAX_BODY} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise ConnectionAbortedError("the client sent a short chunk")
            out += chunk
            if self.rfile.readline(1024) not in (b"\r\n", b"\n"):
                raise HubError(400, "Malformed chunked body")

    def _header_block(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {self.server_version}", f"Date: {_http_date()}"]
        lines += [f"{_header_safe(k)}: {_header_safe(v)}" for k, v in [*headers, *self.extra_headers]]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    def send_headers_only(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Answer with ``headers`` (which carry the Content-Length) and no body: a HEAD."""
        self._rec["status"] = status
        self._headers_sent = True
        block = self._header_block(status, headers)
        self.log_now()
        self.connection.sendall(block)

    def send_bytes(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        head: bool = False,
        fault: Fault = NO_FAULT,
        content_length: int | None = None,
    ) -> None:
        """Send a whole response in one write. ``content_length`` is what a HEAD announces."""
        length = len(body) if content_length is None else content_length
        headers = headers + [("Content-Length", str(length))]
        if head:
            self.send_headers_only(status, headers)
            return
        self._rec["status"] = status
        self.send_segments(status, headers, [body], None, fault)

    def send_hub_error(self, e: HubError, head: bool = False) -> None:
        body = json.dumps({"error": e.message}).encode()
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if e.code and not (e.status == 404 and self.server.hub.plain_404):
            headers.append(("X-Error-Code", e.code))
        headers.append(("X-Error-Message", e.message))
        headers += e.headers
        self.send_bytes(e.status, headers, body, head=head)

    def send_json(
        self, obj: Any, headers: Iterable[tuple[str, str]] = (), *, head: bool = False, fault: Fault = NO_FAULT
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_bytes(
            200, [("Content-Type", "application/json; charset=utf-8"), *headers], body, head=head, fault=fault
        )

    def send_segments(
        self,
        status: int,
        headers: list[tuple[str, str]],
        segments: list[bytes | tuple[int, int]],
        fd: int | None,
        fault: Fault,
    ) -> None:
        """Send headers and a body made of literal bytes and (offset, length) ranges of file ``fd``,
        applying a drop / truncate / corrupt fault across the whole body."""
        total = sum(len(s) if isinstance(s, bytes) else s[1] for s in segments)
        limit = total
        flip = -1
        kind = fault.kind if total > 0 else None
        if kind == "drop":
            limit = min(total - 1, int(total * fault.where))
        elif kind == "truncate":
            limit = total - max(1, total // 8)
        elif kind == "corrupt":
            flip = min(total - 1, int(total * fault.where))
        if kind in ("drop", "truncate", "corrupt"):
            self._rec["fault"] = kind
        sock = self.connection
        out = bytearray(self._header_block(status, headers))
        if kind in ("drop", "truncate"):
            self.close_connection = True  # after the headers: a real cut is never announced
        self._headers_sent = True
        self._rec["status"] = status
        self._rec["sent"] = limit
        self.log_now()
        pos = 0

        def flush() -> None:
            if out:
                sock.sendall(out)
                out.clear()

        for seg in segments:
            if pos >= limit:
                break
            if isinstance(seg, bytes):
                take = min(len(seg), limit - pos)
                chunk = bytearray(seg[:take]) if pos <= flip < pos + take else seg[:take]
                if pos <= flip < pos + take:
                    chunk[flip - pos] ^= 0xFF
                out += chunk
                pos += take
                if len(out) >= CHUNK:
                    flush()
                continue
            off, seglen = seg
            take = min(seglen, limit - pos)
            has_flip = pos <= flip < pos + take
            if take <= SMALL_BODY or has_flip:
                done = 0
                while done < take:
                    n = min(CHUNK, take - done)
                    data = os.pread(fd, n, off + done)
                    if not data:
                        raise ConnectionAbortedError("file shrank while serving")
                    if pos + done <= flip < pos + done + len(data):
                        data = bytearray(data)
                        data[flip - pos - done] ^= 0xFF
                    out += data
                    done += len(data)
                    if len(out) >= CHUNK:
                        flush()
            else:
                flush()
                with open(fd, "rb", buffering=0, closefd=False) as fobj:
                    done = sock.sendfile(fobj, off, take)
                if done != take:
                    raise ConnectionAbortedError("file shrank while serving")
            pos += take
        flush()
        if kind == "drop":
            # Reset, not a clean close: the client sees "connection reset" mid-body.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    def abort(self) -> None:
        """Close the connection without an answer (a dropped HEAD)."""
        self.close_connection = True
        self._headers_sent = True
        self.log_now()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
