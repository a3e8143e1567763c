"""Ctrl-C stops a slow ``query --sql`` at once (DuckDB does not look at signals while it runs: the
query ran on for a minute with SIGINT ignored, then printed a traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[3]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctrl_c_interrupts_a_slow_sql_query(tmp_path):
    table = tmp_path / "posts.parquet"
    duckdb.connect().execute(f"COPY (SELECT range AS id, 'tag_' || (range % 50) AS tag_string_general "
                             f"FROM range(2000000)) TO '{table}'")
    slow = "CAST(id AS VARCHAR)"
    for _ in range(60):  # half a minute or more of md5 over 2M distinct values: allowed, bounded by --sql-timeout
        slow = f"md5({slow})"
    env = dict(os.environ, CHEESECHASER_TABLE_COPY="never", PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "app", "query", "demo/x", "--metadata", str(table), "--count",
                              "--sql-timeout", "600", "--sql", f"{slow} > 'z'"], cwd=tmp_path, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _cpu_seconds(child.pid) < 3.0 and time.monotonic() < deadline:
            try:  # wait on the child until its CPU time says the query is under way (past start-up)
                child.wait(timeout=0.1)
                raise AssertionError(child.communicate())  # it ended before: the query was too quick
            except subprocess.TimeoutExpired:
                pass
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.strip() == "interrupted" and out == ""
