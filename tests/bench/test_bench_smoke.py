"""The benchmark scripts still run end to end on tiny sizes (their figures are not checked here:
speed lives in the scripts' output, never in a test). Every client must bring back every file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(*argv: str, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def test_bench_download_sparse_real_runs_every_client_to_completion():
    out = run_script("tests/bench/bench_download.py", "--scenario", "sparse-real", "--rounds", "1", "--no-peer",
                     "--real-archives", "3", "--real-entries", "600", "--latency-ms", "0", "--markdown")
    assert "INCOMPLETE" not in out and "FAILED" not in out
    for client in ("hfutils", "ours", "bare"):
        assert f"round 1 {client:7}:" in out
    table = out[out.index("#### Real-sized indexes"):]
    wall = next(line for line in table.splitlines() if line.startswith("| wall |"))
    cells = [c.strip() for c in wall.strip("|").split("|")]
    assert cells[1] == "not run"  # no peer asked for
    assert all(c.endswith(" s") for c in cells[2:]), cells
    assert "`python tests/bench/bench_download.py --scenario sparse-real" in out


@pytest.mark.parametrize("script,argv,expect", [
    ("tests/bench/bench_plan.py", ["--archives", "12", "--range", "1-50000", "--rounds", "1"], "planning the range"),
    ("tests/bench/bench_tui_open.py", ["--entries", "2000", "--rounds", "1"], "first rows of the archive screen"),
    ("tests/bench/bench_index_parse.py", ["--entries", "2000", "--rounds", "2"], "one id looked up"),
    ("tests/bench/bench_pipe.py", ["--dense", "24", "--sparse", "6", "--rounds", "1", "--no-peer",
                                   "--latency-ms", "5"], "| dense x10 | 240 |"),
    ("tests/bench/bench_training.py", ["--dense", "24", "--sparse", "6", "--stream", "24", "--rounds", "1",
                                       "--no-peer", "--latency-ms", "5"], "webdataset shards vs files"),
    ("tests/bench/bench_table_fetch.py", ["--mib", "4", "--rounds", "1"], "bytes sent by the server"),
])
def test_bench_scripts_run(script, argv, expect):
    out = run_script(script, *argv)
    assert expect in out and (": met" in out or ": NOT met" in out)
