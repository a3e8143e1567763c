"""The ``cheesechaser-tui serve ROOT`` command line: flags, tokens, and the foreground loop.

Tokens for private and gated repos can come from a file (``--private-file``, ``--gated-file``:
``owner/name=TOKEN`` lines) or from the environment (``CHEESECHASER_HUB_PRIVATE``,
``CHEESECHASER_HUB_GATED``: the same entries separated by whitespace), so they never show in the
process list; ``--private REPO=TOKEN`` still works but warns that it does. A bad flag, file or
entry is one line on stderr and exit 2. Tokens are never printed.

Stdlib only; no Textual.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterable

from app.hub.faults import FaultConfig
from app.hub.server import HubServer

__all__ = ["add_serve_arguments", "run_serve", "serve_main", "ENV_PRIVATE", "ENV_GATED"]

ENV_PRIVATE = "CHEESECHASER_HUB_PRIVATE"
ENV_GATED = "CHEESECHASER_HUB_GATED"
PROG = "cheesechaser-tui serve"
MAX_TOKEN_FILE = 1024 * 1024


class UsageError(Exception):
    """A bad flag value, token file or entry: one line, exit 2."""


def _repo_token(value: str) -> tuple[str, str | None]:
    repo, eq, token = value.partition("=")
    repo = repo.strip().strip("/")
    if repo.count("/") not in (1, 2) or not all(repo.split("/")):
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME[=TOKEN], got {repo!r}")
    token = token.strip()
    if eq and (not token or any(c.isspace() or not c.isprintable() for c in token)):
        raise argparse.ArgumentTypeError(f"the token for {repo!r} is empty or holds spaces or control characters")
    return repo, (token if eq else None)


def _positive(kind: type) -> Any:
    def parse(value: str) -> Any:
        try:
            v = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if not v > 0 or v != v or v == float("inf"):
            raise argparse.ArgumentTypeError(f"must be more than 0, got {value!r}")
        return v
    return parse


def _entries(lines: Iterable[str], where: str) -> list[tuple[str, str | None]]:
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(_repo_token(line))
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{where}, entry {n}: {e}") from None
    return out


def _token_file(path: str) -> list[tuple[str, str | None]]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None
    if len(raw) > MAX_TOKEN_FILE:
        raise UsageError(f"{path}: larger than {MAX_TOKEN_FILE} bytes; not a token file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    return _entries(text.splitlines(), path)


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``serve`` options to ``parser`` (used by ``cheesechaser-tui serve``)."""
    parser.add_argument("root", metavar="ROOT", help="folder holding datasets/<owner>/<name>/ repos")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 picks a free one (default: 0)")
    h = parser.add_argument_group("real-Hub behaviour (default: LFS files 302 to a signed CDN URL, "
                                  "others 307 to /api/resolve-cache)")
    h.add_argument("--direct", action="store_true", help="answer every file in place, no redirects")
    h.add_argument("--resolver-quota", type=_positive(int), default=None, metavar="Q",
                   help="resolves allowed per window and per token or client, then 429 (default: no limit)")
    h.add_argument("--window", type=_positive(float), default=300.0, metavar="W",
                   help="rate-limit window in seconds (default: %(default)s)")
    h.add_argument("--cdn-ttl", type=_positive(float), default=3600.0, metavar="SECONDS",
                   help="lifetime of a signed CDN URL (default: %(default)s)")
    h.add_argument("--opaque-etags", action="store_true", help="ETags that are not content hashes (a mirror)")
    h.add_argument("--plain-404", action="store_true", help="404s without X-Error-Code (a mirror)")
    g = parser.add_argument_group("fault injection (per request, seeded)")
    g.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="delay before each answer")
    g.add_argument("--fail-rate", type=float, default=0.0, metavar="P", help="share of 5xx answers")
    g.add_argument(
        "--fail-codes", default="500,502,503", metavar="CODES", help="status codes for --fail-rate (%(default)s)"
    )
    g.add_argument("--rate-429", type=float, default=0.0, metavar="P", help="share of 429 answers")
    g.add_argument("--retry-after", type=int, default=1, metavar="S", help="Retry-After seconds on 429/503")
    g.add_argument("--drop-rate", type=float, default=0.0, metavar="P", help="share of bodies cut by a reset")
    g.add_argument("--truncate-rate", type=float, default=0.0, metavar="P", help="share of short bodies")
    g.add_argument("--corrupt-rate", type=float, default=0.0, metavar="P", help="share of bodies with a flipped byte")
    g.add_argument("--seed", type=int, default=0, help="fault dice seed (default: 0)")
    g.add_argument(
        "--fault-paths", action="append", metavar="GLOB", help="only fault these files (glob or re:REGEX; repeatable)"
    )
    g.add_argument("--fault-head", action="store_true", help="also fault file HEAD requests")
    g.add_argument("--fault-api", action="store_true", help="also fault /api/ requests")
    a = parser.add_argument_group(
        "access control (adds to ROOT/access.json)",
        f"Tokens on the command line show in the process list: prefer --private-file / --gated-file "
        f"(lines OWNER/NAME=TOKEN) or ${ENV_PRIVATE} / ${ENV_GATED} (entries separated by spaces).",
    )
    a.add_argument(
        "--private", action="append", type=_repo_token, default=[], metavar="REPO[=TOKEN]",
        help="make REPO private, readable with TOKEN (repeatable)",
    )
    a.add_argument(
        "--gated", action="append", type=_repo_token, default=[], metavar="REPO[=TOKEN]",
        help="make REPO gated, files readable with TOKEN (repeatable)",
    )
    a.add_argument("--private-file", action="append", default=[], metavar="FILE",
                   help="OWNER/NAME=TOKEN lines: private repos and their tokens (repeatable)")
    a.add_argument("--gated-file", action="append", default=[], metavar="FILE",
                   help="OWNER/NAME=TOKEN lines: gated repos and their tokens (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request to stderr")
    return parser


def access_from_args(args: argparse.Namespace, environ: Any = os.environ) -> tuple[dict[str, dict[str, Any]], bool]:
    """The access rules the flags, files and environment give; and whether a token came on the
    command line (which the caller warns about)."""
    rules: dict[str, dict[str, Any]] = {}
    on_command_line = False
    for flag, env in (("private", ENV_PRIVATE), ("gated", ENV_GATED)):
        entries = list(getattr(args, flag, None) or [])
        on_command_line |= any(token for _, token in entries)
        for path in getattr(args, f"{flag}_file", None) or []:
            entries += _token_file(path)
        entries += _entries((environ.get(env) or "").split(), f"${env}")
        for repo, token in entries:
            r = rules.setdefault(repo, {"private": False, "gated": False, "tokens": []})
            r[flag] = True
            if token:
                r["tokens"].append(token)
    return rules, on_command_line


def run_serve(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM. The first stdout line is the base URL."""

    root = Path(args.root)
    if not root.is_dir():
        print(f"{PROG}: error: {root}: no such folder", file=sys.stderr)
        return 2
    try:
        access, warn = access_from_args(args)
        codes = tuple(int(c) for c in str(args.fail_codes).replace(" ", "").split(",") if c)
        faults = FaultConfig(
            latency_ms=args.latency_ms,
            error_rate=args.fail_rate,
            error_codes=codes or (500,),
            rate_429=args.rate_429,
            retry_after=args.retry_after,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            corrupt_rate=args.corrupt_rate,
            seed=args.seed,
            paths=args.fault_paths or None,
            on_head=args.fault_head,
            on_api=args.fault_api,
        )
        srv = HubServer(root, host=args.host, port=args.port, faults=faults, access=access, verbose=args.verbose,
                        direct=args.direct, resolver_quota=args.resolver_quota, window=args.window,
                        cdn_ttl=args.cdn_ttl, opaque_etags=args.opaque_etags, plain_404=args.plain_404)
        srv.start()
    except OSError as e:  # the port is taken, the address is not this machine's...
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    except (UsageError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if warn:
        print(f"{PROG}: warning: tokens given with --private/--gated show in the process list; "
              f"use --private-file or ${ENV_PRIVATE} instead", file=sys.stderr, flush=True)
    stop = threading.Event()
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        print(srv.url, flush=True)
        repos = srv.repos()
        ways = "files answered in place" if srv.direct else f"LFS files redirected to {srv.cdn_url}"
        if srv.quota is not None:
            ways += f"; {srv.quota.quota} resolves per {srv.quota.window:g} s"
        print(
            f"serving {len(repos)} repo(s) from {root} at {srv.url} ({ways}; Ctrl-C to stop)"
            + (f"; faults: {faults.describe()}" if faults.active else ""),
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 0


def serve_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve a folder as a loopback Hub.")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(serve_main())
