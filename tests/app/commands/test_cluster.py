"""``cheesechaser-tui download --cluster local:N`` in a real subprocess against the loopback Hub:
the same files, report and exit codes as a local run; bad addresses are one-line usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from app.hub.dataset import build_repo  # noqa: E402

from tests.support.helpers import assert_only_verified, binary_resources  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def _run(args, tmp_path, hub):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app", "download", *args], cwd=ROOT, text=True,
                          env=env, timeout=180, stdin=subprocess.DEVNULL, capture_output=True)


def test_download_on_a_local_cluster_same_report_as_local(hub, hub_root, tmp_path):
    ids = [rid for rid in range(100, 140) if rid % 5]
    manifest = build_repo(hub_root, "t/cli", binary_resources(ids), base_level=1)
    common = ["t/cli", "100-139", "--base-level", "1", "--endpoint", hub.url, "--workers", "2"]
    proc = _run([*common, "-o", str(tmp_path / "c"), "--cluster", "local:2", "--report", str(tmp_path / "c.json")],
                tmp_path, hub)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    local = _run([*common, "-o", str(tmp_path / "l"), "--report", str(tmp_path / "l.json")], tmp_path, hub)
    assert local.returncode == 0, local.stderr[-2000:]
    cluster_report = json.loads((tmp_path / "c.json").read_text())
    local_report = json.loads((tmp_path / "l.json").read_text())
    for key in ("state", "downloaded", "missing", "failed", "not_reached", "files"):
        assert cluster_report[key] == local_report[key], key
    assert cluster_report["downloaded"] == ids
    assert_only_verified(tmp_path / "c", manifest)
    assert sorted(os.listdir(tmp_path / "c")) == sorted(os.listdir(tmp_path / "l"))


@pytest.mark.parametrize("address, message", [("local:x", "local:N needs a number"),
                                              ("local:0", "1 to 256 workers")])
def test_bad_cluster_address_is_a_one_line_usage_error(hub, hub_root, tmp_path, address, message):
    build_repo(hub_root, "t/bad", binary_resources([100]), base_level=1)
    proc = _run(["t/bad", "100", "--base-level", "1", "--endpoint", hub.url, "-o", str(tmp_path / "o"),
                 "--cluster", address], tmp_path, hub)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_events_on_a_cluster_are_a_local_runs(hub, hub_root, tmp_path):
    ids = [rid for rid in range(100, 130) if rid % 4]
    build_repo(hub_root, "t/cj", binary_resources(ids), base_level=1)
    common = ["t/cj", "100-129", "--base-level", "1", "--endpoint", hub.url, "--workers", "2", "--json"]
    cluster = _run([*common, "-o", str(tmp_path / "c"), "--cluster", "local:2"], tmp_path, hub)
    local = _run([*common, "-o", str(tmp_path / "l")], tmp_path, hub)
    assert cluster.returncode == local.returncode == 0, cluster.stderr[-2000:]
    ours, theirs = _json_lines(cluster.stdout), _json_lines(local.stdout)

    def done(lines):
        return sorted((e["resource_id"], e["status"], tuple(e["files"])) for e in lines if e["event"] == "resource_done")

    def missing(lines):
        return sum(e["count"] for e in lines if e["event"] == "resources_missing")
    assert done(ours) == done(theirs) and len(done(ours)) == len(ids)
    assert missing(ours) == missing(theirs) == 30 - len(ids)
    states = [e["state"] for e in ours if e["event"] == "job_state"]
    assert states == [e["state"] for e in theirs if e["event"] == "job_state"] == ["queued", "running", "done"]
    assert ours[-1]["event"] == "report" and theirs[-1]["event"] == "report"
    for key in ("state", "downloaded", "missing", "failed", "not_reached", "files"):
        assert ours[-1][key] == theirs[-1][key], key
    last = [e for e in ours if e["event"] == "job_progress"][-1]
    assert last["ids_done"] == last["ids_total"] == 30
    rows = {e["worker"] for e in ours if e["event"] == "cluster_worker_state"}
    assert 1 <= len(rows) <= 2  # one row per Dask worker


def test_where_and_captions_on_a_cluster(hub, hub_root, tmp_path):
    import random

    from tests.app.commands.test_query import HELD, POSTS, _parquet, _resources

    build_repo(hub_root, "t/tagged", _resources(HELD), base_level=2,
               repo_files={"metadata.parquet": _parquet(tmp_path / "posts.parquet")})
    dst = tmp_path / "out"
    out = _run(["t/tagged", "--where", "cat_ears -comic", "--base-level", "2", "-o", str(dst), "--endpoint", hub.url,
                "--captions", "txt", "--workers", "2", "--cluster", "local:2"], tmp_path, hub)
    assert out.returncode == 0, out.stderr[-2000:]
    held = [rid for rid in (101, 103, 205, 901, 902) if rid in HELD]
    assert sorted(p.name for p in dst.iterdir()) == sorted([f"{r}.bin" for r in held] + [f"{r}.txt" for r in held])
    for rid in held:
        rating, score, tags, artist = POSTS[rid]
        assert (dst / f"{rid}.txt").read_text() == ", ".join([artist, *tags.split()]) + "\n"
        assert (dst / f"{rid}.bin").read_bytes() == random.Random(rid).randbytes(1500)
    assert f"{len(held)} captions written" in out.stderr
    assert "missing (in no archive): 901-902" in out.stderr
