"""Missing ids as ranges in the CLI summary and ``--report``, and a report on a full disk.

``pools.idruns.intervals`` turns the report's arithmetic runs into ranges without listing ids;
hypothesis checks it against the plain answer. The CLI writes the report after the summary,
atomically; a full disk (injected ENOSPC, and a real tmpfs when the machine lets us mount one)
is one line and exit 1, with the summary already printed.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import main
from app.hub.dataset import build_repo
from pools import IdRanges
from pools.idruns import intervals, range_texts
from pools.ranges import IdList

ROOT = Path(__file__).resolve().parents[2]
PRESENT = [5, 1000, 1001, 4000, 77777]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---- intervals from arithmetic runs --------------------------------------------------------

def _as_archives(span: int, modulus: int, present: set[int], residues) -> IdList:
    """Missing ids as the downloader settles them: archive by archive, ``modulus`` apart."""
    missing = IdList()
    for r in residues:
        missing.extend(i for i in range(r, span + 1, modulus) if i not in present)
    return missing


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(0, 3000), st.sets(st.integers(0, 3000), max_size=30),
       st.data())
def test_intervals_of_archive_by_archive_runs_are_the_plain_ranges(modulus, span, present, data):
    residues = data.draw(st.lists(st.integers(0, modulus - 1), unique=True, max_size=modulus))
    missing = _as_archives(span, modulus, present, residues)
    missing.extend(data.draw(st.lists(st.integers(0, 5000), max_size=10)))  # retries, strays
    assert list(intervals(missing)) == list(IdRanges.of(missing).ranges)
    assert missing.to_ranges() == IdRanges.of(missing)  # what the report's to_dict() uses


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=60))
def test_intervals_of_any_append_order(ids):
    assert list(intervals(IdList(ids))) == list(IdRanges.of(ids).ranges)


def test_a_million_missing_ids_cost_their_runs_not_their_count():
    missing = _as_archives(10**6, 1000, set(PRESENT), range(1000))
    assert len(missing) == 10**6 + 1 - len(PRESENT) and missing.runs < 1100
    tracemalloc.start()
    try:
        texts, cut = range_texts(missing)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert texts == ["0-4", "6-999", "1002-3999", "4001-77776", "77778-1000000"] and not cut
    assert peak < 1024 * 1024  # listing the ids would take ~40 MB


def test_range_texts_stop_at_the_limit():
    missing = IdList(range(0, 100, 2))
    texts, cut = range_texts(missing, 3)
    assert texts == ["0", "2", "4"] and cut


# ---- the CLI ----------------------------------------------------------------------------

@pytest.fixture
def small_repo(hub, hub_root):
    build_repo(hub_root, "t/small", {rid: {f"{rid}.bin": b"x" * 100} for rid in PRESENT})
    return hub


def _download(hub, tmp_path, *extra):
    return main(["download", "t/small", "0-1000000", "-o", str(tmp_path / "out"), "--endpoint", hub.url,
                 "--workers", "4", *extra])


def test_summary_and_report_write_missing_as_ranges(small_repo, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert _download(small_repo, tmp_path, "--report", str(report)) == 0
    err = capsys.readouterr().err
    assert "missing (in no archive): 0-4, 6-999, 1002-3999, 4001-77776, 77778-1000000" in err
    data = json.loads(report.read_text())
    assert data["missing"] == ["0-4", "6-999", "1002-3999", "4001-77776", "77778-1000000"]
    assert data["missing_count"] == 1_000_001 - len(PRESENT)
    assert sorted(data["downloaded"]) == PRESENT and data["state"] == "done"
    assert report.stat().st_size < 2000  # listing the ids was 12 MB
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


class _FullAt:
    """``os.fdopen`` for files under ``folder``: writes fail with ENOSPC after ``budget`` bytes."""

    def __init__(self, folder, budget):
        self.folder, self.budget, self.real = str(folder), budget, os.fdopen

    def __call__(self, fd, *args, **kwargs):
        f = self.real(fd, *args, **kwargs)
        if os.readlink(f"/proc/self/fd/{fd}").startswith(self.folder + os.sep):
            return _Capped(f, self.budget)
        return f


class _Capped:
    def __init__(self, f, budget):
        self._f, self._left = f, budget

    def write(self, data):
        if len(data) > self._left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc to tell files apart")
def test_report_on_a_full_disk_prints_the_summary_then_one_line(small_repo, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "reports"
    folder.mkdir()
    old = folder / "report.json"
    old.write_text('{"previous": true}')
    monkeypatch.setattr(os, "fdopen", _FullAt(folder, budget=100))
    code = _download(small_repo, tmp_path, "--report", str(old))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err
    assert "downloaded" in lines[0] and "missing (in no archive)" in err  # the summary first
    assert lines[-1] == f"error: cannot write the report to {old}: disk full"
    assert old.read_text() == '{"previous": true}'  # never half a report
    assert sorted(p.name for p in folder.iterdir()) == ["report.json"]
    assert sorted(os.listdir(tmp_path / "out")) == [f"{rid}.bin" for rid in sorted(PRESENT, key=str)]


def _mount(*args) -> bool:
    if not IS_ROOT:
        return False
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_report_on_a_real_full_tmpfs(small_repo, tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)):
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        with builtins.open(folder / "filler", "wb", buffering=0) as f:  # fill it up
            with pytest.raises(OSError) as full:
                while True:
                    f.write(b"\0" * 1024)
            assert full.value.errno == errno.ENOSPC
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-m", "app", "download", "t/small", "0-1000000", "-o", str(tmp_path / "out"),
             "--endpoint", small_repo.url, "--report", str(folder / "r.json")],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
            check=False)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert "downloaded" in lines[0]
        assert lines[-1] == f"error: cannot write the report to {folder / 'r.json'}: disk full"
        assert sorted(os.listdir(folder)) == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30, check=False)
