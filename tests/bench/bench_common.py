"""What the benchmark scripts share: running a client in a child, checking its files, the Hub.

Not a test module; imported by ``tests/bench_*.py``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLIENT_NAMES = {"peer": "cheesechaser 0.2.2", "hfutils": "hfutils loop", "ours": "this engine",
                "bare": "bare client"}


def peer_python() -> str | None:
    """The peer's interpreter: ``CHEESECHASER_PEER_PYTHON``, else ``/work/peer/bin/python``."""
    exe = os.environ.get("CHEESECHASER_PEER_PYTHON")
    if exe:
        return exe
    default = "/work/peer/bin/python"
    return default if os.path.exists(default) else None


def child_env(hf_home: Path, endpoint: str, ours: bool) -> dict[str, str]:
    """A clean environment for a client: its own HF_HOME, the loopback endpoint, no token."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE")) and k != "PYTHONPATH"}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_DISABLE="1")
    if ours:  # the peer's venv must not see this project's modules
        env["PYTHONPATH"] = str(ROOT)
    return env


def run_client(python: str, client: str, spec: dict, spec_file: Path, hf_home: Path,
               endpoint: str, timeout: float = 1800) -> dict:
    """Run ``client`` (see ``bench_clients.py``) in a child process; its JSON figures, or an error."""
    spec_file.write_text(json.dumps(spec))
    env = child_env(hf_home, endpoint, ours=client != "peer")
    try:
        out = subprocess.run([python, str(HERE / "bench_clients.py"), client, str(spec_file)], check=False, cwd=ROOT,
                             env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {out.returncode}: {tail[0][:300]}", "stderr": out.stderr[-4000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_files(dst: Path, expected: dict[str, str]) -> tuple[int, list[str]]:
    """How many of ``expected`` (basename -> sha256) are in ``dst`` with the right bytes; the others."""
    good, bad = 0, []
    for name, sha in expected.items():
        h = hashlib.sha256()
        try:
            with open(dst / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError:
            bad.append(name)
            continue
        if h.hexdigest() == sha:
            good += 1
        else:
            bad.append(name)
    return good, bad


def start_hub(root: Path, latency_ms: float = 0.0, **features):
    """A started ``HubServer`` on ``root`` with ``latency_ms`` on every request (files, HEADs, API)
    and the given keyword features (e.g. ``resolver_quota=100, window=10``).

    Raises :class:`Unsupported` when this loopback Hub does not take one of ``features`` yet.
    """
    from app.hub.server import FaultConfig, HubServer

    missing = hub_lacks(features)
    if missing:
        raise Unsupported(f"this loopback Hub has no {', '.join(missing)} yet")
    faults = FaultConfig(latency_ms=latency_ms, on_head=True, on_api=True) if latency_ms else None
    return HubServer(root, faults=faults, log_limit=1_000_000, **features).start()


def hub_lacks(features) -> list[str]:
    """The keyword arguments of ``features`` this tree's ``HubServer`` does not take."""
    from app.hub.server import HubServer

    params = inspect.signature(HubServer).parameters
    return [k for k in features if k not in params]


class Unsupported(Exception):
    """A scenario needs a loopback Hub feature this tree does not have."""


@dataclass
class Served:
    """What the Hub served during one run, from its request log."""

    requests: int = 0
    resolves: int = 0  # requests to a /resolve/ URL (what the real Hub's resolver quota counts)
    limited: int = 0  # answers 429
    ranged: int = 0  # GETs with a Range header
    cdn: int = 0  # requests to a signed URL on the CDN port

    @classmethod
    def of(cls, hub) -> Served:
        s = cls()
        for r in hub.request_log:
            kind = getattr(r, "kind", None)  # the Hub's own label; older Hubs: from the path
            s.requests += 1
            s.resolves += kind == "resolve" if kind is not None else "/resolve/" in r.path
            s.cdn += kind == "cdn"
            s.limited += r.status == 429
            s.ranged += bool(r.method == "GET" and r.range)
        return s


def redirect_hops(hub, repo: str, archive: str, index: str) -> tuple[int, int]:
    """Requests one index GET and one archive GET take on this Hub: 1 when it answers directly,
    2 when it redirects (307 to resolve-cache, 302 to a CDN). Probed once, outside any timing."""
    import urllib3

    http = urllib3.PoolManager()
    hops = []
    for path in (index, archive):
        url = f"{hub.url}/datasets/{repo}/resolve/main/{path}"
        r = http.request("GET", url, redirect=False, preload_content=False, headers={"Range": "bytes=0-0"})
        r.release_conn()
        hops.append(2 if 300 <= r.status < 400 else 1)
    hub.clear_log()
    return hops[0], hops[1]


def command_line(script: str, argv: list[str]) -> str:
    return " ".join(["python", f"tests/bench/{script}", *map(shlex.quote, argv)])


def goal(ok: bool | None, text: str) -> str:
    """A goal printed next to its figure: met, not met, or not measurable in this run."""
    mark = "–" if ok is None else ("met" if ok else "NOT met")
    return f"{text}: {mark}"


def mib(kb: float) -> str:
    return f"{kb / 1024:,.0f} MiB"
