"""`download --dry-run`, `--json`, `--ids-from`, the wrong-layout check, destinations and `--help`,
each in a real subprocess against the loopback Hub."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.hub.dataset import build_repo

ROOT = Path(__file__).resolve().parents[3]


def _resources(ids, size=3000):
    return {rid: {f"{rid}.bin": random.Random(rid).randbytes(size)} for rid in ids}


def _run(args, tmp_path, hub, input=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT), CHEESECHASER_CONFIG=str(tmp_path / "no-config.toml"))
    return subprocess.run([sys.executable, "-m", "app", "download", *args], cwd=ROOT, text=True,
                          env=env, timeout=120, capture_output=True,
                          stdin=subprocess.DEVNULL if input is None else None, input=input)


def _data_gets(hub):
    """Requests for data: archive bytes and index files (the tree listing and repo info are API)."""
    return [r for r in hub.request_log if "/resolve/" in r.path]


@pytest.fixture
def repo(hub, hub_root):
    # level 2: ids 100..105 and 200..203 live in images/000.tar .. images/005.tar
    build_repo(hub_root, "t/sess", _resources([100, 101, 102, 103, 104, 105, 200, 201, 202, 203]),
               base_level=2)
    return hub


def test_dry_run_prints_the_plan_and_fetches_nothing(repo, tmp_path):
    out = _run(["t/sess", "100-105", "-o", str(tmp_path / "o"), "--base-level", "2", "--dry-run"],
               tmp_path, repo)
    assert out.returncode == 0, out.stderr
    assert "plan: 6 ids in 6 archives" in out.stdout
    assert "indexes: 0 cached, 6 to fetch" in out.stdout
    assert "resolves: at most 12 (6 index fetches + 6 archive URLs)" in out.stdout
    assert _data_gets(repo) == [] and not (tmp_path / "o").exists()
    # after a real run the indexes are cached: files and bytes are exact, still nothing fetched
    assert _run(["t/sess", "100-105", "-o", str(tmp_path / "o"), "--base-level", "2"],
                tmp_path, repo).returncode == 0
    before = len(_data_gets(repo))
    out = _run(["t/sess", "100-105, 999", "-o", str(tmp_path / "o2"), "--base-level", "2",
                "--dry-run", "--json"], tmp_path, repo)
    assert out.returncode == 0, out.stderr
    (plan,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert plan["event"] == "plan" and plan["indexes_cached"] == 6 and plan["indexes_to_fetch"] == 0
    assert plan["files"] == 6 and plan["nbytes"] == 6 * 3000 and plan["ids_found"] == 6
    assert plan["absent_archives"] == 1 and plan["resolves"] == 6
    # the revisions resolved through the API; not one index or archive request
    assert len(_data_gets(repo)) == before and not (tmp_path / "o2").exists()


def test_a_wrong_layout_is_an_error_not_all_missing(repo, tmp_path):
    out = _run(["t/sess", "100-105, 200-203", "-o", str(tmp_path / "o"), "--base-level", "3"],
               tmp_path, repo)
    assert out.returncode == 1
    assert ("error: none of the 10 archives these ids map to exists under images/ at level 3; "
            "the repo has images/000.tar … images/005.tar under images/ at level 2?") in out.stderr
    assert _data_gets(repo) == [] and "Traceback" not in out.stderr
    out = _run(["t/sess", "100-105", "-o", str(tmp_path / "o"), "--base-level", "2", "--base-dir",
                "original"], tmp_path, repo)
    assert out.returncode == 1
    assert "exists under original/ at level 2; the repo has images/000.tar" in out.stderr
    assert "Traceback" not in out.stderr
    # with the right layout, some absent archives are not an error: their ids are missing
    out = _run(["t/sess", "100, 999", "-o", str(tmp_path / "o"), "--base-level", "2"], tmp_path, repo)
    assert out.returncode == 0 and "1 missing" in out.stderr


def test_json_prints_one_event_per_line_then_the_report(repo, tmp_path):
    out = _run(["t/sess", "100-105, 7", "-o", str(tmp_path / "o"), "--base-level", "2", "--json"],
               tmp_path, repo)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]  # every line is JSON
    kinds = [x["event"] for x in lines]
    assert kinds[0] == "job_state" and kinds[-1] == "report"
    done = sorted(x["resource_id"] for x in lines if x["event"] == "resource_done")
    assert done == [100, 101, 102, 103, 104, 105]
    assert [x["ids"] for x in lines if x["event"] == "resources_missing"] == ["7"]
    report = lines[-1]
    assert report["state"] == "done" and report["downloaded"] == done and report["missing"] == ["7"]
    assert "worker_state" not in kinds
    assert "6 downloaded" in out.stderr  # the summary stays on stderr for people


def test_ids_from_a_file_and_from_stdin(repo, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# wanted\n100-102\n\n200\n201, 202  # two more\n")
    out = _run(["t/sess", "--ids-from", str(ids_file), "-o", str(tmp_path / "o"), "--base-level", "2"],
               tmp_path, repo)
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["100.bin", "101.bin", "102.bin", "200.bin",
                                                  "201.bin", "202.bin"]
    out = _run(["t/sess", "103", "--ids-from", "-", "-o", str(tmp_path / "p"), "--base-level", "2"],
               tmp_path, repo, input="104\n105\n")
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path / "p")) == ["103.bin", "104.bin", "105.bin"]


@pytest.mark.parametrize("content, message", [
    ("100\n5-1\n", "line 2: "),
    ("100\nabc\n", "line 2: "),
    (b"\xff\xfe1\n", "is not a UTF-8 text file of ids"),
    ("# nothing\n\n", "no ids given"),
])
def test_bad_ids_files_are_one_line_usage_errors(repo, tmp_path, content, message):
    ids_file = tmp_path / "ids.txt"
    if isinstance(content, bytes):
        ids_file.write_bytes(content)
    else:
        ids_file.write_text(content)
    out = _run(["t/sess", "--ids-from", str(ids_file), "-o", str(tmp_path / "o")], tmp_path, repo)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and _data_gets(repo) == []


def test_usage_errors_for_ids_and_destinations(repo, tmp_path):
    out = _run(["t/sess", "-o", str(tmp_path / "o")], tmp_path, repo)
    assert out.returncode == 2 and "give IDS, --ids-from FILE" in out.stderr
    out = _run(["t/sess", "--ids-from", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")],
               tmp_path, repo)
    assert out.returncode == 2 and "cannot read ids from" in out.stderr and "No such file" in out.stderr
    out = _run(["t/sess", "100", "-o", "/etc/passwd"], tmp_path, repo)
    assert out.returncode == 2 and "error: cannot write to /etc/passwd: it is not a folder" in out.stderr
    assert "File exists" not in out.stderr
    out = _run(["t/sess", "100", "-o", "/etc/passwd/sub"], tmp_path, repo)
    assert out.returncode == 2 and "cannot write to /etc/passwd/sub: /etc/passwd is not a folder" in out.stderr


def test_help_shows_examples(tmp_path):
    out = subprocess.run([sys.executable, "-m", "app", "download", "--help"], cwd=ROOT, text=True,
                         capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0
    assert "examples:" in out.stdout and "--ids-from -" in out.stdout and "--dry-run" in out.stdout
    assert "exit codes:" in out.stdout
