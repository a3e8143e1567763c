"""``download --format webdataset|parquet`` and ``--resize`` from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from app.hub.dataset import build_repo

ROOT = Path(__file__).resolve().parents[3]


def _png(rid: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (50 + rid % 11, 30), (rid % 256, 1, 1)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def repo(hub, hub_root):
    build_repo(hub_root, "t/cli-shards", {rid: {f"{rid}.png": _png(rid), f"{rid}.json": b"{}"}
                                          for rid in range(100, 160)}, base_level=2)


def _run(args, tmp_path, hub):
    """``download t/cli-shards IDS --base-level 2 OPTIONS...`` (``args[0]`` is IDS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run([sys.executable, "-m", "app", "download", "t/cli-shards", args[0], "--base-level", "2",
                           *args[1:]],
                          cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def test_files_resized_on_the_way_and_a_rerun_skips_them(repo, hub, tmp_path):
    dst = tmp_path / "o"
    out = _run(["100-169", "-o", str(dst), "--resize", "20", "--resize-mode", "keep_ratio_largest",
                "--image-format", "webp"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert "60 ids written resized" in out.stderr and "10 missing" in out.stderr
    images = sorted(dst.glob("*.webp"))
    assert len(images) == 60 and all(max(Image.open(p).size) == 20 for p in images)
    assert (dst / "100.json").read_bytes() == b"{}"  # sidecars as they are
    again = _run(["100-169", "-o", str(dst), "--resize", "20", "--resize-mode", "keep_ratio_largest",
                  "--image-format", "webp"], tmp_path, hub)
    assert again.returncode == 0 and "60 already there" in again.stderr


def test_webdataset_from_the_command_line_says_each_shard(repo, hub, tmp_path):
    out = _run(["100-159", "-o", str(tmp_path / "o"), "--format", "webdataset", "--shard-size", "25"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert [line.split(":")[0] for line in out.stderr.splitlines()[:3]] == ["00000.tar", "00001.tar", "00002.tar"]
    assert "3 shards written: 60 samples" in out.stderr


@pytest.mark.parametrize("args,message", [
    (["--resize", "64", "--resize-mode", "squash"], "invalid choice"),
    (["--resize", "64", "--quality", "0"], "quality"),
    (["--format", "webdataset", "--shard-size", "0"], "at least 1"),
    (["--format", "parquet", "--cluster", "local:1"], "not on a cluster"),
])
def test_bad_output_options_are_one_line_usage_errors(repo, hub, tmp_path, args, message):
    out = _run(["100-101", "-o", str(tmp_path / "o"), *args], tmp_path, hub)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
