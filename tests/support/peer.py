"""The same script run with cheesechaser 0.2.2 (the peer venv) and with ``pools``, against the
loopback Hub: what a port from one to the other must not change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The peer client lives in its own venv; CI sets the variable (.ci/run).
PEER_PYTHON = Path(os.environ.get("CHEESECHASER_PEER_PYTHON") or "/work/peer/bin/python")
needs_peer = pytest.mark.skipif(not PEER_PYTHON.exists(),
                                reason=f"peer venv with cheesechaser 0.2.2 not found at {PEER_PYTHON}")
PYTHONS = {"cheesechaser": str(PEER_PYTHON), "pools": sys.executable}


def run_script(module: str, code: str, hub, tmp_path: Path) -> subprocess.CompletedProcess:
    """``code`` in a new ``module`` ("cheesechaser" or "pools") process, ``HF_ENDPOINT`` on the Hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / f"home-{module}"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([PYTHONS[module], "-c", code], env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the engine's partial folder aside), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".cheesechaser-partial" not in p.parts}


def files_both_leave(script: str, hub, tmp_path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """``script`` (with ``{module}`` and ``{dst}`` to fill) run by cheesechaser, then by pools:
    the files each left, theirs first."""
    out = []
    for module in ("cheesechaser", "pools"):
        dst = tmp_path / module
        run_script(module, script.format(module=module, dst=str(dst)), hub, tmp_path)
        out.append(files_in(dst))
    return out[0], out[1]
