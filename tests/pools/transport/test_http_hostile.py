"""Issue 10, the HTTP rows: a hostile server cannot hang, flood, redirect or poison the engine.

Each test sets one mode of the hostile proxy (``tests/support/hostile_hub.py``) in front of a real
loopback Hub and checks the outcome for the ids concerned, that the rest of the job is unharmed,
and, where memory is the point, the peak RSS of a child process doing the fetch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from app.hub.dataset import build_repo
from pools import Downloader, HubUnreachableError, IncrementIDDataPool
from pools.transport import cache
from pools.transport.budget import set_budget_factory
from pools.errors import RedirectError
from pools.transport import Cancelled, HubClient, IndexTooLargeError, RetryPolicy

from tests.support.helpers import assert_only_verified, binary_resources
from tests.support.hostile_hub import HostileHub

WAIT = 60
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _policy(**kw) -> RetryPolicy:
    base = dict(attempts=2, backoff=0.001, max_backoff=0.002, jitter=0.0)
    base.update(kw)
    return RetryPolicy(**base)


@pytest.fixture
def hostile(hub):
    hub.direct = True  # the proxy plays the real Hub's redirects itself, on top of plain answers
    with HostileHub(hub.url) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_budgets():
    set_budget_factory(None)
    yield


def _two_archives(hub_root, repo: str) -> tuple[list[int], object]:
    ids = [1000, 2000, 3000, 1001, 2001, 3001]  # archives images/0000.tar and images/0001.tar
    return sorted(ids), build_repo(hub_root, repo, binary_resources(ids))


def _run(hostile, repo, ids, dst, policy, workers=2):
    pool = IncrementIDDataPool(repo, endpoint=hostile.url, retry=policy)
    with Downloader(max_workers=workers, retry=policy) as dl:
        return dl.submit(pool, ids, str(dst)).wait(WAIT)


def _wait_until(condition, timeout: float = WAIT) -> bool:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.01)
    return True


# --- deadlines -----------------------------------------------------------------------------------

def test_a_trickling_body_fails_its_files_stalled_and_the_rest_is_unharmed(hub_root, hostile, tmp_path):
    ids, manifest = _two_archives(hub_root, "t/trickle")
    hostile.modes = {"trickle": {"every": 0.2, "paths": "images/0001.tar"}}
    policy = _policy(stall_bytes=1024, stall_seconds=0.5)
    report = _run(hostile, "t/trickle", ids, tmp_path / "o", policy)
    assert sorted(report.downloaded) == [1000, 2000, 3000]
    assert sorted(report.failed) == [1001, 2001, 3001]
    assert all("stalled: less than 1024 bytes in 0.5 s" in why and "after 2 attempts" in why
               for why in report.failed.values()), report.failed
    assert_only_verified(tmp_path / "o", manifest)


def test_a_server_that_accepts_and_never_answers_is_given_up_on(hub_root, hostile, tmp_path):
    ids, manifest = _two_archives(hub_root, "t/silent")
    hostile.modes = {"silent": {"paths": "images/0001.tar"}}
    report = _run(hostile, "t/silent", ids, tmp_path / "o", _policy(first_byte_timeout=0.5))
    assert sorted(report.downloaded) == [1000, 2000, 3000]
    assert all("no answer within 0.5 s" in why for why in report.failed.values()) and len(report.failed) == 3
    assert_only_verified(tmp_path / "o", manifest)


def test_a_cancel_ends_a_wait_for_an_index_that_never_comes(hub_root, hostile):
    _two_archives(hub_root, "t/hang")
    client = HubClient(hostile.url, policy=RetryPolicy())  # the default deadlines: a minute
    sha = client.resolve("t/hang", "main")
    hostile.modes = {"silent": {"paths": "*.json"}}
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def fetch():
        try:
            client.fetch_index("t/hang", "images/0000.json", sha, json.loads, cancel)
        except BaseException as err:  # noqa: BLE001 - the outcome is the assertion
            outcome.append(err)

    worker = threading.Thread(target=fetch)
    worker.start()
    assert _wait_until(lambda: hostile.requests("hub", suffix=".json"))
    cancel.set()
    worker.join(10)  # far below the minute the deadlines allow: the cancel ended the wait
    assert not worker.is_alive() and len(outcome) == 1 and isinstance(outcome[0], Cancelled)


def test_the_first_ctrl_c_during_an_index_fetch_stops_the_cli(hub_root, hostile, tmp_path):
    _two_archives(hub_root, "t/ctrlc")
    hostile.modes = {"silent": {"paths": "*.json"}}
    env = dict(os.environ, PYTHONPATH=ROOT, HF_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([sys.executable, "-m", "app", "download", "t/ctrlc", "1000-3001", "-o",
                             str(tmp_path / "o"), "--endpoint", hostile.url, "--report", str(tmp_path / "r.json")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: hostile.requests("hub", suffix=".json"))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads((tmp_path / "r.json").read_text())["state"] == "cancelled"


# --- redirects and pagination --------------------------------------------------------------------

@pytest.mark.parametrize("mode, words", [("redirect-loop", "redirects loop"),
                                         ("file-redirect", "not http(s) (file:)")])
def test_a_bad_redirect_fails_the_ids_concerned_with_the_reason(hub_root, hostile, tmp_path, mode, words):
    ids, manifest = _two_archives(hub_root, "t/redir")
    hostile.modes = {mode: {"paths": "images/0001.tar", "hops": 2}}
    report = _run(hostile, "t/redir", ids, tmp_path / "o", _policy())
    assert report.state == "done" and sorted(report.downloaded) == [1000, 2000, 3000]
    assert sorted(report.failed) == [1001, 2001, 3001]
    assert all(words in why and "internal error" not in why for why in report.failed.values()), report.failed
    # on an index: that archive's ids fail with the reason, the job goes on
    ids, manifest = _two_archives(hub_root, "t/redir-index")  # an index not cached yet
    hostile.modes = {mode: {"paths": "images/0001.json", "hops": 2}}
    report = _run(hostile, "t/redir-index", ids, tmp_path / "p", _policy())
    assert report.state == "done" and sorted(report.downloaded) == [1000, 2000, 3000]
    assert sorted(report.failed) == [1001, 2001, 3001] and all(words in w for w in report.failed.values())
    assert_only_verified(tmp_path / "p", manifest)


@pytest.mark.parametrize("mode, words", [("redirect-loop", "redirects loop"),
                                         ("file-redirect", "not http(s)")])
def test_a_bad_redirect_of_an_api_call_ends_the_job_with_one_clear_line(hub_root, hostile, tmp_path, mode, words):
    ids, _ = _two_archives(hub_root, "t/apiredir")
    hostile.modes = {mode: {"paths": "*/revision/*", "api": True}}
    report = _run(hostile, "t/apiredir", ids, tmp_path / "o", _policy())
    assert report.state == "failed" and words in report.error, report.error
    assert "internal error" not in report.error and "\n" not in report.error
    assert report.not_reached == len(ids) and report.downloaded == []


def test_redirects_past_the_hop_limit_are_an_error(hub_root, hostile):
    build_repo(hub_root, "t/hops", binary_resources([1000]))
    client = HubClient(hostile.url, policy=_policy(max_redirects=1))
    sha = client.resolve("t/hops", "main")
    hostile.modes = {"redirect-loop": {"hops": 3, "paths": "*.tar"}}  # four URLs, then the first again
    with pytest.raises(RedirectError, match="more than 1 redirects"):
        client.stream_range("t/hops", "images/0000.tar", sha, 0, 9, lambda b: None)


def test_a_next_page_on_another_origin_is_not_followed_and_gets_no_token(hub_root, hostile):
    build_repo(hub_root, "t/pages", binary_resources([1000]), private=True, tokens=["hf_pagetoken"])
    hostile.modes = {"link-elsewhere": {}}
    pool = IncrementIDDataPool("t/pages", endpoint=hostile.url, hf_token="hf_pagetoken", retry=_policy())
    with pytest.raises(HubUnreachableError, match="another server; not followed") as caught:
        list(pool.list_archives())
    assert "hf_pagetoken" not in str(caught.value)
    assert hostile.elsewhere.tokens == [], "the other origin was not even asked"
    hostile.modes = {}
    assert [a.path for a in pool.list_archives()] == ["images/0000.tar"]


# --- bounded memory ------------------------------------------------------------------------------

_CHILD = """
import json, resource, sys
from pools.transport import HubClient, IndexTooLargeError, RetryPolicy
client = HubClient(sys.argv[1], policy=RetryPolicy(attempts=1))
sha = client.resolve("t/big", "main")
try:
    client.fetch_index("t/big", "images/0000.json", sha, json.loads)
    outcome = "parsed"
except IndexTooLargeError as err:
    outcome = "too large: " + str(err)
from pools.transport import cache
cache.flush()
print(json.dumps({"outcome": outcome, "rss_mib": int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024}))
"""


@pytest.mark.parametrize("mode", ["huge", "gzip-bomb"])
def test_an_index_past_the_cap_is_refused_in_bounded_memory_and_never_cached(hub_root, hostile, tmp_path, mode):
    build_repo(hub_root, "t/big", binary_resources([1000]))
    size = (128 << 20) if mode == "huge" else (1 << 30)  # 128 MiB plain; 1 GiB from a 1 MB gzip body
    hostile.modes = {mode: {"size": size}}
    home = tmp_path / "home"
    env = dict(os.environ, PYTHONPATH=ROOT, HF_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", _CHILD, hostile.url], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("too large: index too large: t/big/images/0000.json"), out.stderr
    print(f"{mode}: peak RSS {result['rss_mib']:.0f} MiB")
    assert result["rss_mib"] < 300, f"peak RSS {result['rss_mib']:.0f} MiB"  # the cap is 64 MiB
    assert not [p for p in home.rglob("*") if p.is_file() and "0000.json" in p.name], "nothing cached"


def test_a_parse_that_refuses_an_index_leaves_nothing_cached(hub_root, hostile, hf_cache):
    build_repo(hub_root, "t/deep", binary_resources([1000]))
    hostile.modes = {"deep": {"depth": 200_000}}
    client = HubClient(hostile.url, policy=_policy())
    sha = client.resolve("t/deep", "main")
    for _ in range(2):  # asked again: not read back from a cache
        with pytest.raises(RecursionError):
            client.fetch_index("t/deep", "images/0000.json", sha, json.loads)
    cache.flush()
    assert len(hostile.requests("hub", suffix="0000.json")) == 2
    assert cache.lookup(hostile.url, "t/deep", "images/0000.json", sha) is None
    with pytest.raises(IndexTooLargeError):  # the cap is checked while streaming, before any parse
        client.fetch_index("t/deep", "images/0000.json", sha, json.loads, max_bytes=64 * 1024)


# --- the cache -----------------------------------------------------------------------------------

def test_an_endpoint_claiming_a_real_commit_cannot_poison_the_cache_for_another(hub, hub_root, hostile, hf_cache):
    build_repo(hub_root, "t/poison", binary_resources([1000, 2000]))
    hostile.modes = {"poison": {}}
    evil = HubClient(hostile.url, policy=_policy())
    sha = evil.resolve("t/poison", "main")  # the real commit: the proxy passes the API through
    doctored = evil.fetch_index("t/poison", "images/0000.json", sha, json.loads)
    cache.flush()
    genuine = HubClient(hub.url, policy=_policy())
    assert genuine.resolve("t/poison", "main") == sha
    hub.clear_log()
    real = genuine.fetch_index("t/poison", "images/0000.json", sha, json.loads)
    assert [r.path for r in hub.request_log if r.path.endswith(".json")], "asked the genuine Hub"
    assert real["files"]["1000.bin"]["sha256"] != doctored["files"]["1000.bin"]["sha256"]
    # each endpoint reads back its own, with no request
    hub.clear_log()
    assert genuine.fetch_index("t/poison", "images/0000.json", sha, json.loads) == real
    assert evil.fetch_index("t/poison", "images/0000.json", sha, json.loads) == doctored
    assert not [r for r in hub.request_log if r.path.endswith(".json")]
    cache.flush()
    assert cache.endpoint_root(hub.url) != cache.endpoint_root(hostile.url)
    assert cache.endpoint_root("https://huggingface.co") == str(hf_cache)
