"""Bad input at the command line: a revision or repo that does not exist, access denied, a closed port:
one line, the right exit code, never \"missing\"."""


from __future__ import annotations

import json
import re

import pytest

from app.hub.dataset import build_repo
from tests.support.helpers import closed_port as _closed_port
from tests.support.reliability import (
    resources,
    run_cli,
    visible,
)

# --- bad input at the command line -------------------------------------------------------------

def _main(hub, args, tmp_path, capsys):
    from app.cli import main

    code = main(["download", *args, "-o", str(tmp_path / "o"), "--endpoint", hub.url, "--retries", "2"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["t/cli", "1000", "--revision", "no-such-branch"], "revision not found in t/cli@no-such-branch"),
    (["t/cli", "1000", "--revision", "0" * 40], "revision not found in t/cli@" + "0" * 40),
    (["t/cli", "1000", "--idx-repo", "t/idx", "--idx-revision", "v9"], "revision not found in t/idx@v9"),
    (["t/nothere", "1000", "--token-file", "TOKEN_FILE"], "repository not found: t/nothere"),
])
def test_a_revision_or_repo_that_does_not_exist_is_a_one_line_usage_error(hub, hub_root, tmp_path, capsys,
                                                                        args, message):
    build_repo(hub_root, "t/cli", resources([1000]))
    build_repo(hub_root, "t/idx", resources([1000]))
    hub.access = {"t/other": {"private": True, "tokens": ["hf_reader_1"]}}  # a token the Hub knows
    (tmp_path / "token").write_text("hf_reader_1\n")
    args = [str(tmp_path / "token") if a == "TOKEN_FILE" else a for a in args]
    code, err = _main(hub, args, tmp_path, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cheesechaser-tui download: error: {message}"), err
    assert "Traceback" not in err and "hf_reader_1" not in err
    assert not (tmp_path / "o").exists(), "nothing is created for a usage error"
    assert not [r for r in hub.request_log if "/resolve/" in r.path], "no file is fetched"


@pytest.mark.parametrize("how", ["private, no token", "private, wrong token", "gated, no token",
                                 "gated, wrong token"])
def test_access_denied_is_said_never_missing(hub, hub_root, tmp_path, capsys, how):
    build_repo(hub_root, "t/deny", resources([1000, 1001]), private=how.startswith("private"),
               gated=how.startswith("gated"), tokens=["hf_owner_secret"])
    args = ["t/deny", "1000-1001", "--report", str(tmp_path / "r.json")]
    if "wrong" in how:
        args += ["--token", "hf_not_the_right_one"]
    code, err = _main(hub, args, tmp_path, capsys)
    assert code == 1 and "access denied" in err and not re.search(r"[1-9][\d,]* missing", err), err
    assert "Traceback" not in err and "hf_not_the_right_one" not in err and "hf_owner_secret" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["state"] == "failed" and "access denied" in report["error"] and report["missing"] == []
    assert visible(tmp_path / "o") == []


def test_a_closed_port_ends_at_once_with_an_error_and_a_report(tmp_path):
    out = run_cli(f"http://127.0.0.1:{_closed_port()}", ["t/any", "0-999999", "-o", str(tmp_path / "o"),
                                                       "--retries", "3", "--report", str(tmp_path / "r.json")],
               tmp_path)
    assert out.returncode == 1, out.stderr
    assert "error: gave up after 3 attempts: network error" in out.stderr
    assert "cannot connect (refused or unreachable)" in out.stderr and "Error" not in out.stderr.replace("error:", "")
    assert "0 missing" not in out.stderr  # no counts of a job that never started
    assert "Traceback" not in out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["state"] == "failed" and report["missing"] == [] and "gave up" in report["error"]


def test_a_token_on_the_command_line_is_warned_about_and_a_token_file_is_read(hub, hub_root, tmp_path, capsys):
    build_repo(hub_root, "t/priv", resources([1000]), private=True, tokens=["hf_owner_secret"])
    code, err = _main(hub, ["t/priv", "1000", "--token", "hf_owner_secret"], tmp_path, capsys)
    assert code == 0 and "shows in the process list" in err and "hf_owner_secret" not in err
    (tmp_path / "tok").write_text("hf_owner_secret\n")
    code, err = _main(hub, ["t/priv", "1000", "--token-file", str(tmp_path / "tok")], tmp_path, capsys)
    assert code == 0 and "process list" not in err and "already present" in err
    code, err = _main(hub, ["t/priv", "1000", "--token-file", str(tmp_path / "none")], tmp_path, capsys)
    assert code == 2 and "cannot read a token" in err and len(err.strip().splitlines()) == 1


def test_files_an_index_gives_no_sha256_for_are_said_unverified(hub, hub_root, tmp_path, capsys):
    from app.hub.dataset import rewrite_index

    build_repo(hub_root, "t/nosha", resources([1000, 2000]))  # both in images/0000.tar
    rewrite_index(hub_root, "t/nosha", "images/0000.tar",
                  lambda i: [info.pop("sha256", None) for info in i["files"].values()] and None)
    code, err = _main(hub, ["t/nosha", "1000,2000", "--report", str(tmp_path / "r.json")], tmp_path, capsys)
    assert code == 0 and "2 ids unverified: the index gives no sha256" in err
    assert json.loads((tmp_path / "r.json").read_text())["unverified"] == [1000, 2000]
