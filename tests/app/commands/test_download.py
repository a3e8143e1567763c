"""``cheesechaser-tui download`` as a script sees it: exit codes, messages, resume, report, progress.

Exit codes and the non-terminal behaviour are checked in a real subprocess (no stdin, pipes for
output); the many usage-error cases run in-process through ``app.cli.main``.
"""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.hub.dataset import build_repo, corrupt_member

ROOT = Path(__file__).resolve().parents[3]
SECRET = "hf_cli_secret_token_987"


def _resources(ids, size=3000):
    return {rid: {f"{rid}.bin": random.Random(rid).randbytes(size)} for rid in ids}


def _env(tmp_path, hub):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT))
    return env


def _run(args, tmp_path, hub, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "app", "download", *args], cwd=ROOT, text=True,
                          env=_env(tmp_path, hub), timeout=120, **kw)


class _Stopped:
    """Where a stopped hub was."""

    def __init__(self, url):
        self.url = url


def _no_traceback(*texts):
    for text in texts:
        assert "Traceback" not in text


def test_exit_0_with_missing_ids_reported(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/cli", _resources([1000, 2000, 1001]))
    out = _run(["t/cli", "1000-1001, 2000, 5, 3000-3002", "-o", str(tmp_path / "o"), "--workers", "3"],
               tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert "3 downloaded, 0 already present, 4 missing, 0 failed" in out.stderr
    assert "missing (in no archive): 5, 3000-3002" in out.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["1000.bin", "1001.bin", "2000.bin"]
    # not a terminal: no progress bar, no carriage returns; nothing on stdout
    assert "\r" not in out.stderr and "█" not in out.stderr and "ETA" not in out.stderr
    assert out.stdout == ""
    _no_traceback(out.stderr)


def test_exit_1_when_something_failed(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/broken", _resources([1000, 2000, 3000]))
    corrupt_member(hub_root, "t/broken", "images/0000.tar", "2000.bin")
    out = _run(["t/broken", "1000, 2000, 3000", "-o", str(tmp_path / "o"), "--retries", "2"], tmp_path, hub)
    assert out.returncode == 1
    assert "2 downloaded" in out.stderr and "1 failed" in out.stderr
    assert "failed 2000: sha256 mismatch (2000.bin) (after 2 attempts)" in out.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["1000.bin", "3000.bin"]
    _no_traceback(out.stderr)


def test_exit_1_and_a_clean_message_when_the_hub_is_unreachable(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/cli", _resources([1000]))
    env_hub = _Stopped(hub.url)
    hub.stop()
    out = _run(["t/cli", "1000", "-o", str(tmp_path / "o"), "--retries", "2"], tmp_path, env_hub)
    assert out.returncode == 1
    assert "error: gave up after 2 attempts: network error" in out.stderr
    assert "missing" not in out.stderr  # no counts of a job that never started
    _no_traceback(out.stderr)


@pytest.mark.parametrize("args,message", [
    (["t/cli", "5-1"], "bad range: '5-1' is reversed"),
    (["t/cli", "abc"], "bad range: 'abc' is not a number"),
    (["not a repo", "1-5"], "repo id 'not a repo' is not valid"),
])
def test_usage_errors_exit_2_with_one_line_in_a_subprocess(hub, tmp_path, args, message):
    out = _run([*args, "-o", str(tmp_path / "o")], tmp_path, hub)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert lines[0].startswith("cheesechaser-tui download: error: ")
    assert not (tmp_path / "o").exists()
    assert hub.request_log == [], "a usage error must not touch the network"


@pytest.mark.parametrize("args,message", [
    (["t/cli", ""], "bad range: empty range"),
    (["t/cli", "1-2-3"], "'1-2-3' is malformed"),
    (["t/cli", "-4"], "'-4' is malformed"),
    (["t/cli", "1,,2"], "empty part"),
    (["justname", "1"], "repo id 'justname' is not valid"),
    (["a/b/c", "1"], "repo id 'a/b/c' is not valid"),
    (["t/cli", "1", "--idx-repo", "bad idx"], "index repo id 'bad idx' is not valid"),
    (["t/cli", "1", "--base-level", "0"], "base level must be a number from 1 to 9, got '0'"),
    (["t/cli", "1", "--base-level", "x"], "base level must be a number from 1 to 9, got 'x'"),
    (["t/cli", "1", "--base-level", "3,y"], "base level must be a number from 1 to 9, got 'y'"),
    (["t/cli", "1", "--workers", "0"], "--workers must be at least 1"),
    (["t/cli", "1", "--retries", "0"], "--retries must be at least 1"),
    (["t/cli", "1", "--report", "/nonexistent-folder/r.json"], "cannot write the report to /nonexistent-folder/r.json"),
])
def test_usage_errors_exit_2_with_one_line(hub, tmp_path, capsys, args, message):
    code = main(["download", *args, "-o", str(tmp_path / "o"), "--endpoint", hub.url])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert hub.request_log == []


def test_a_destination_that_cannot_be_written_is_a_usage_error(hub, hub_root, tmp_path, capsys):
    build_repo(hub_root, "t/cli", _resources([1000]))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["download", "t/cli", "1000", "-o", str(blocker / "sub"), "--endpoint", hub.url])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to" in err and len(err.strip().splitlines()) == 1


def test_rerunning_the_same_command_resumes(hub, hub_root, tmp_path):
    ids = list(range(1000, 1006)) + list(range(2000, 2006))
    build_repo(hub_root, "t/again", _resources(ids))
    args = ["t/again", "1000-1005, 2000-2005", "-o", str(tmp_path / "o")]
    first = _run(args, tmp_path, hub)
    assert first.returncode == 0 and "12 downloaded" in first.stderr
    dst = tmp_path / "o"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dst.iterdir()}
    assert len(before) == 12

    hub.clear_log()
    second = _run(args, tmp_path, hub)
    assert second.returncode == 0
    assert "0 downloaded, 12 already present, 0 missing, 0 failed" in second.stderr
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dst.iterdir()}
    assert after == before, "a verified file was rewritten"
    assert not [r for r in hub.request_log if r.path.endswith(".tar")], "a file was fetched again"
    # a new process: the revision is resolved, the indexes come from the huggingface_hub cache
    assert not [r for r in hub.request_log if r.path.endswith(".json")]


def test_report_json(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/rep", _resources([1000, 2000, 3000]),
               extra_members={"images/0000.tar": {"notes.txt": b"x"}})
    corrupt_member(hub_root, "t/rep", "images/0000.tar", "3000.bin")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "2000.bin").write_bytes(_resources([2000])[2000]["2000.bin"])
    report_path = tmp_path / "report.json"
    out = _run(["t/rep", "1000, 2000, 3000, 4000-4001", "-o", str(tmp_path / "o"), "--report", str(report_path),
                "--retries", "1"], tmp_path, hub)
    assert out.returncode == 1
    report = json.loads(report_path.read_text())
    assert report["state"] == "done" and report["error"] is None
    assert report["downloaded"] == [1000] and report["skipped"] == [2000]
    assert report["missing"] == ["4000-4001"] and report["missing_count"] == 2  # ranges (issue 10)
    assert list(report["failed"]) == ["3000"] and "sha256 mismatch" in report["failed"]["3000"]
    assert report["unrecognized"] == [{"archive": "images/0000.tar", "name": "notes.txt",
                                       "reason": report["unrecognized"][0]["reason"]}]
    assert report["files"] == 1 and report["bytes"] == 3000
    assert isinstance(report["elapsed"], float)


def test_progress_bar_on_a_terminal(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/tty", _resources([1000, 2000, 1001]))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "app", "download", "t/tty", "1000-1001, 2000, 7",
                                 "-o", str(tmp_path / "o")], cwd=ROOT, env=_env(tmp_path, hub),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(60) == 0
        proc.stdout.close()
    finally:
        os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace")
    assert "\r" in err and "█" in err
    assert "ids 4/4" in err and "3 files" in err and "ETA" in err and "/s" in err
    assert "3 downloaded, 0 already present, 1 missing" in err


def test_a_token_never_appears_in_output(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/private", _resources([1000]), private=True, tokens=[SECRET])
    report_path = tmp_path / "r.json"
    ok = _run(["t/private", "1000", "-o", str(tmp_path / "o"), "--token", SECRET, "--report", str(report_path)],
              tmp_path, hub)
    assert ok.returncode == 0 and "1 downloaded" in ok.stderr
    wrong = "hf_cli_wrong_token_000"
    denied = _run(["t/private", "1000", "-o", str(tmp_path / "o2"), "--token", wrong], tmp_path, hub)
    assert denied.returncode == 1 and "access denied" in denied.stderr
    nothing = _run(["t/private", "1000", "-o", str(tmp_path / "o3")], tmp_path, hub)
    assert nothing.returncode == 1 and "access denied" in nothing.stderr and " missing" not in nothing.stderr
    for out in (ok, denied, nothing):
        for text in (out.stdout, out.stderr):
            assert SECRET not in text and wrong not in text
        _no_traceback(out.stderr)
    assert SECRET not in report_path.read_text()


def test_archive_templates_for_data_xyz_layouts(hub, hub_root, tmp_path):
    chooser = {1000: "original/data-0000.tar", 7000001: "recent/data-1001.tar"}
    build_repo(hub_root, "t/xyz", _resources(list(chooser)), archives=chooser, idx_repo_id="t/xyz_index")
    out = _run(["t/xyz", "1000, 7000001, 5", "--idx-repo", "t/xyz_index", "-o", str(tmp_path / "o"),
                "--archive-template", "original/data-0{residue:03d}.tar",
                "--archive-template", "recent/data-1{residue:03d}.tar"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["1000.bin", "7000001.bin"]
    bad = _run(["t/xyz", "1", "-o", str(tmp_path / "p"), "--archive-template", "/etc/{residue}.tar"], tmp_path, hub)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_an_endpoint_that_is_not_a_url_is_a_usage_error(tmp_path, capsys):
    code = main(["download", "t/cli", "1", "-o", str(tmp_path / "o"), "--endpoint", "localhost:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "cheesechaser-tui download: error: --endpoint 'localhost:1' must be an http:// or https:// URL"]


def test_a_repo_that_a_dataset_class_reads_gets_its_layout_and_the_dry_run_says_so(hub, hub_root, tmp_path):
    """deepghs/rule34_full keeps newer ids at level 4: without --base-level, its class's levels [3, 4]
    are used (a level-3-only download left them missing)."""
    from app.hub.dataset import build_repo
    from pools.archive.layout import archive_path

    ids = [1001, 22002]
    build_repo(hub_root, "deepghs/rule34_full", {rid: {f"{rid}.png": b"x" * (100 + rid % 7)} for rid in ids},
               archives=lambda rid: archive_path(rid, 3 if rid < 5000 else 4, "images"))
    plan = _run(["deepghs/rule34_full", "1001,22002", "-o", str(tmp_path / "o"), "--dry-run"], tmp_path, hub)
    assert plan.returncode == 0, plan.stderr
    assert "layout of Rule34DataPool" in plan.stdout
    done = _run(["deepghs/rule34_full", "1001,22002", "-o", str(tmp_path / "o")], tmp_path, hub)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == ["1001.png", "22002.png"]
    explicit = _run(["deepghs/rule34_full", "22002", "-o", str(tmp_path / "o3"), "--base-level", "3"], tmp_path, hub)
    # told otherwise: level 3 only, where 22002 has no archive (said, exit 1)
    assert explicit.returncode == 1 and "level 3" in explicit.stderr
    assert not (tmp_path / "o3" / "22002.png").exists()


def test_an_unknown_dataset_class_is_a_one_line_usage_error(hub, tmp_path):
    out = _run(["deepghs/x", "1", "-o", str(tmp_path / "o"), "--dataset", "NoSuchDataPool"], tmp_path, hub)
    assert out.returncode == 2 and "NoSuchDataPool" in out.stderr and "GelbooruDataPool" in out.stderr
    assert "Traceback" not in out.stderr


def test_download_by_a_preset_name_needs_no_repo(hub, hub_root, tmp_path):
    from app.hub.dataset import build_repo
    from pools.archive.layout import archive_path

    ids = [1001, 22002]
    build_repo(hub_root, "deepghs/rule34_full", {rid: {f"{rid}.png": b"x" * (100 + rid % 7)} for rid in ids},
               archives=lambda rid: archive_path(rid, 3 if rid < 5000 else 4, "images"))
    plan = _run(["--dataset", "rule34", "1001,22002", "-o", str(tmp_path / "o"), "--dry-run"], tmp_path, hub)
    assert plan.returncode == 0, plan.stderr
    assert "layout of Rule34DataPool" in plan.stdout
    done = _run(["--dataset", "rule34", "1001,22002", "-o", str(tmp_path / "o")], tmp_path, hub)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == ["1001.png", "22002.png"]
