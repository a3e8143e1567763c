"""Partial files on a shared destination (issue 13): names carry host and pid, and the stale-file
sweep removes only this host's dead processes' files, never another host's."""

from __future__ import annotations

import os
import subprocess
import sys

from pools.files import host_tag, owner_of, process_tag, unpredictable_name
from pools.engine.write import clean_stale_partials


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: nothing has this pid for the moment


def test_partial_names_carry_host_and_pid():
    name = unpredictable_name("12.webp")
    prefix, tag, rand, part = name.rsplit(".", 3)
    assert (prefix, part, tag) == ("12.webp", "part", process_tag())
    assert tag == f"{os.getpid()}@{host_tag()}" and len(rand) == 16
    assert owner_of(tag) == (os.getpid(), True)
    assert owner_of(f"{os.getpid()}@{'0' * 8 if host_tag() != '0' * 8 else '1' * 8}") == (os.getpid(), False)
    assert owner_of("1234") == (1234, True)  # as runs before this one named them
    assert owner_of("x@y") is None


def test_sweep_keeps_another_hosts_partials_and_removes_our_dead_ones(tmp_path):
    dead = _dead_pid()
    other = "0" * 8 if host_tag() != "0" * 8 else "1" * 8
    folder = tmp_path / "partial"
    folder.mkdir()
    theirs = folder / f"5.webp.{dead}@{other}.{'a' * 16}.part"  # same pid number, another machine
    theirs_live = folder / f"6.webp.{os.getpid()}@{other}.{'b' * 16}.part"
    ours_dead = folder / f"7.webp.{dead}@{host_tag()}.{'c' * 16}.part"
    legacy_dead = folder / f"8.webp.{dead}.{'d' * 16}.part"
    ours_live = folder / f"9.webp.{os.getppid()}@{host_tag()}.{'e' * 16}.part"
    for path in (theirs, theirs_live, ours_dead, legacy_dead, ours_live):
        path.write_bytes(b"half")
    clean_stale_partials(str(folder))
    assert sorted(p.name for p in folder.iterdir()) == sorted([theirs.name, theirs_live.name, ours_live.name])
