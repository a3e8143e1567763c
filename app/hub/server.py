"""A loopback, Hub-compatible HTTP server over folders on disk.

``ROOT/datasets/<owner>/<name>/`` (also ``models/`` and ``spaces/``) is served as a repo with one
branch, ``main``, whose commit sha is derived from the files' paths, sizes and mtimes: it changes
when the content changes, so the client cache (keyed by commit) never serves stale files.

It speaks the subset of the Hub protocol that huggingface_hub, hfutils and cheesechaser use (see
the endpoint table in the project's hub-protocol notes): ``resolve`` HEAD/GET with ranges, repo
info, paged tree listings, paths-info and refs, with the error headers the client maps to its
exception classes. Access rules come from ``ROOT/access.json`` and/or ``access=``; seeded faults
from :class:`~app.hub.faults.FaultConfig`.

The parts: :mod:`app.hub.repo` (repo folders, snapshots, commit shas, content hashes),
:mod:`app.hub.access` (access rules), :mod:`app.hub.handler` (HTTP plumbing, ranges, error
answers), :mod:`app.hub.routes` (the endpoints), :mod:`app.hub.faults` (fault dice). This module
holds :class:`HubServer`, the request log and the ``serve`` command line.

Stdlib only; no Textual.

    with HubServer(root) as srv:
        os.environ["HF_ENDPOINT"] = srv.url
        ...
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from app.hub.access import AccessRules, RepoAccess, parse_access
from app.hub.faults import FaultConfig, FaultDice
from app.hub.pool import IDLE_TIMEOUT, WORKERS, HubHTTPServer
from app.hub.ratelimit import ResolverQuota
from app.hub.repo import ContentHashes, RepoStore
from app.hub.routes import HubRoutes
from app.hub.signing import SECRET, UrlSigner

__all__ = [
    "HubServer",
    "FaultConfig",
    "RequestRecord",
    "RepoAccess",
]


class RequestRecord(NamedTuple):
    """One served request, as seen by the server (``path`` is unquoted, without the query).

    ``kind`` tells the requests apart: ``"resolve"`` (every ``/resolve/`` URL, redirected or
    answered in place: what the resolver quota counts), ``"cdn"`` (a signed-URL request on the
    CDN port), ``"cache"`` (``/api/resolve-cache/``), ``"api"`` or ``"other"``. ``file`` is the
    path in the repo a resolve, CDN or resolve-cache request asked for ("" for the others).
    """

    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int
    fault: str | None = None
    kind: str = "other"
    file: str = ""


class HubServer:
    """A Hub-compatible server for the repos under ``root``, on a background thread.

    ``faults`` and ``access`` may be swapped at run time (``srv.faults = FaultConfig(...)``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        access: Mapping[str, Any] | None = None,
        *,
        verbose: bool = False,
        log_limit: int = 200_000,
        direct: bool = False,
        resolver_quota: int | None = None,
        window: float = 300.0,
        cdn_ttl: float = 3600.0,
        opaque_etags: bool = False,
        plain_404: bool = False,
        workers: int = WORKERS,
        idle_timeout: float = IDLE_TIMEOUT,
    ):
        """``direct`` answers every file in place (no 302/307); ``resolver_quota`` resolves per
        ``window`` seconds (per token or client) before 429s; ``cdn_ttl`` is the lifetime of a
        signed CDN URL; ``opaque_etags`` sends ETags that are not content hashes (a mirror);
        ``plain_404`` sends 404s without ``X-Error-Code``; all may be changed while it runs.
        ``workers`` threads per port serve connections; ``idle_timeout`` is how long a silent
        peer may hold one."""
        self.root = Path(root)
        self.workers = workers
        self.idle_timeout = idle_timeout
        self.direct = direct
        self.opaque_etags = opaque_etags
        self.plain_404 = plain_404
        self.secret = SECRET
        self.signer = UrlSigner(cdn_ttl)
        self.quota: ResolverQuota | None = ResolverQuota(resolver_quota, window) if resolver_quota else None
        self.host = host
        self.port = port
        self.verbose = verbose
        self._dice: FaultDice | None = None
        self.faults = faults
        self.access_rules = AccessRules(self.root / "access.json", access)
        self.store = RepoStore(self.root)
        self.hashes = ContentHashes()
        self.routes = HubRoutes(self)
        self._log_lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=log_limit)
        self._counters = {"requests": 0, "bytes_sent": 0}
        self._httpd: HubHTTPServer | None = None
        self._cdn: HubHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> "HubServer":
        if self._httpd is not None:
            return self
        if not self.root.is_dir():
            raise FileNotFoundError(f"hub root is not a folder: {self.root}")
        self.access_rules.from_file()  # fail early on a broken access.json
        pool = {"workers": self.workers, "idle_timeout": self.idle_timeout}
        self._httpd = HubHTTPServer((self.host, self.port), self, **pool)
        self.port = self._httpd.server_address[1]
        try:
            self._cdn = HubHTTPServer((self.host, 0), self, role="cdn", **pool)
        except OSError:
            self._httpd.server_close()
            self._httpd = None
            raise
        self.cdn_port = self._cdn.server_address[1]
        for name, httpd in (("loopback-hub", self._httpd), ("loopback-hub-cdn", self._cdn)):
            t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        servers = [s for s in (self._httpd, self._cdn) if s is not None]
        self._httpd = self._cdn = None
        for httpd in servers:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def _base(self, port: int) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The endpoint (``HF_ENDPOINT``)."""
        return self._base(self.port)

    @property
    def cdn_url(self) -> str:
        """The CDN port that LFS files redirect to (another origin: the token is dropped there)."""
        return self._base(self.cdn_port)

    # ---- configuration -------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig | None:
        return self._dice.config if self._dice else None

    @faults.setter
    def faults(self, config: FaultConfig | None) -> None:
        self._dice = FaultDice(config) if config is not None and config.active else None

    @property
    def dice(self) -> FaultDice | None:
        """The dice the current ``faults`` roll with; None when no fault is configured."""
        return self._dice

    @property
    def access(self) -> dict[str, RepoAccess]:
        """The rules given in code (``access=``); ``ROOT/access.json`` adds to them."""
        return dict(self.access_rules.given)

    @access.setter
    def access(self, rules: Mapping[str, Any] | None) -> None:
        self.access_rules.given = parse_access(rules)

    # ---- observability -------------------------------------------------------------------

    def log_request(
        self, method: str, path: str, range_: str | None, status: int, bytes_sent: int, fault: str | None,
        kind: str = "other", file: str = "",
    ) -> None:
        rec = RequestRecord(method, path, range_, status, bytes_sent, fault, kind, file)
        with self._log_lock:
            self._records.append(rec)
            self._counters["requests"] += 1
            self._counters["bytes_sent"] += rec.bytes_sent

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._records)

    def clear_log(self) -> None:
        with self._log_lock:
            self._records.clear()

    def count(self, method: str | None = None, path_suffix: str | None = None, status: int | None = None,
              kind: str | None = None) -> int:
        """Requests in the log matching every criterion given (``kind``: see :class:`RequestRecord`)."""
        with self._log_lock:
            return sum(
                1
                for r in self._records
                if (method is None or r.method == method)
                and (path_suffix is None or r.path.endswith(path_suffix))
                and (status is None or r.status == status)
                and (kind is None or r.kind == kind)
            )

    @property
    def resolves(self) -> int:
        """``/resolve/`` requests in the log (what the resolver quota counts)."""
        return self.count(kind="resolve")

    @property
    def cdn_gets(self) -> int:
        """GETs on the CDN port in the log."""
        return self.count("GET", kind="cdn")

    def data_gets(self, suffix: str = "") -> list[RequestRecord]:
        """The GETs that carried a file's bytes (answered in place, on the CDN or resolve-cache),
        for paths ending with ``suffix``; redirects and errors left out."""
        with self._log_lock:
            return [r for r in self._records if r.method == "GET" and r.status in (200, 206)
                    and r.kind in ("resolve", "cdn", "cache") and r.path.endswith(suffix)]

    @property
    def open_connections(self) -> int:
        """Connections still open on the Hub and its CDN port: 0 once every client that went away
        has had its last request logged."""
        return sum(s.open_connections for s in (self._httpd, self._cdn) if s is not None)

    @property
    def stats(self) -> dict[str, int]:
        with self._log_lock:
            return dict(self._counters)

    def repos(self) -> list[str]:
        """``type/owner/name`` of every repo folder under the root."""
        return self.store.names()

