"""The one formatting module: plurals, IEC units, separators and durations, for CLI and TUI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.format import (fmt_bytes, fmt_counts, fmt_duration, fmt_elapsed, fmt_progress_bytes,
                        fmt_rate, fmt_ratio, plural)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (99.94 * 1024, "99.9 KiB"), (99.96 * 1024, "100 KiB"), (1023.97 * 1024, "1.0 MiB"),
    (20.9 * 2**20, "20.9 MiB"), (3 * 2**30, "3.0 GiB"), (None, "–"),
])
def test_sizes_are_iec(n, text):
    assert fmt_bytes(n) == text
    assert "Bytes" not in fmt_bytes(n) and "MB" not in fmt_bytes(n)


@pytest.mark.parametrize("n, word, text", [
    (1, "id", "1 id"), (2, "id", "2 ids"), (0, "id", "0 ids"), (4800, "id", "4,800 ids"),
    (1, "unrecognized file", "1 unrecognized file"), (2, "unrecognized file", "2 unrecognized files"),
    (1, "archive", "1 archive"), (3, "index", "3 indexes"), (2, "entry", "2 entries"),
    (2, "day", "2 days"), (1_234_567, "file", "1,234,567 files"),
])
def test_plurals_agree_and_carry_separators(n, word, text):
    assert plural(n, word) == text


def test_durations_and_elapsed():
    assert fmt_duration(7) == "0:07" and fmt_duration(750) == "12:30" and fmt_duration(3723) == "1:02:03"
    assert fmt_duration(None) == fmt_duration(-1) == fmt_duration(float("nan")) == "–"
    assert fmt_elapsed(0.3) == "0.3 s" and fmt_elapsed(42.4) == "42 s" and fmt_elapsed(59.7) == "1:00"
    assert fmt_elapsed(62) == "1:02"


def test_rates_ratios_and_counts():
    assert fmt_rate(0) == fmt_rate(None) == "–" and fmt_rate(1536) == "1.5 KiB/s"
    assert fmt_ratio(29, 4800) == "29/4,800"
    assert fmt_progress_bytes(0, 27238) == "0 B / 26.6 KiB" and fmt_progress_bytes(5, 0) == "5 B"
    assert fmt_counts(3, 0, 4, 0, 1) == ("3 downloaded, 0 already present, 4 missing, 0 failed, "
                                          "1 unrecognized file skipped")
    assert fmt_counts(1000, 1, 2, 3) == "1,000 downloaded, 1 already present, 2 missing, 3 failed"


def test_demo_data_reports_what_the_tui_shows(tmp_path, hub_root, hub):
    """`demo-data` once said "2365 files, 22.3 MB" where the archives screen said "2,369 files ·
    20.9 MiB": both now count every member of every index and the archives' bytes, in IEC."""
    from pools import IncrementIDDataPool
    from app.hub.demo import DEMO_BASE_DIR, DEMO_BASE_LEVEL, DEMO_REPO

    out = subprocess.run([sys.executable, "-m", "app", "demo-data", str(hub_root)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    pool = IncrementIDDataPool(DEMO_REPO, base_level=DEMO_BASE_LEVEL, base_dir=DEMO_BASE_DIR,
                               endpoint=hub.url)
    archives = list(pool.list_archives())
    indexes = [pool.get_index(a.path) for a in archives]
    # what the archives screen adds up (app/screens/browse.py, the dataset line)
    n_files = sum(i.n_files for i in indexes)
    n_ids = sum(i.n_ids for i in indexes)
    size = sum(a.size for a in archives)
    assert (f"{plural(len(archives), 'archive')} · {fmt_bytes(size)} · {plural(n_ids, 'id')} in "
            f"{plural(n_files, 'file')}") in out.stdout


@pytest.mark.parametrize("n,text", [
    (99_999, "99,999"), (150_000, "150k"), (1_510_000, "1.51M"), (999_999_999, "1.00G"),
    (999_999_999_999, "1.00T"), (4_000_000_000_000_000_000, "4.00E"), (2**63, "9.22E"),
])
def test_short_counts_stay_short_however_big(n, text):
    """A range of 4e18 ids once read "4000000000G/…"."""
    from app.core.format import fmt_short

    assert fmt_short(n) == text and len(text) <= 6
