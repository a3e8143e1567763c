"""Issue 10, the Python API's ids: types checked, generators consumed lazily, huge ranges cheap.

* anything that is not an int (bools included) or an ``(int, info)`` pair is a ``TypeError`` that
  names the value, before anything is fetched;
* a generator of ids is consumed a chunk at a time (2M ids are never all in memory);
* a range of 10**8 ids over a small repo costs memory in proportion to what exists, and the
  report writes its missing ids as ranges;
* ids past 2**63 are a range error.

Memory is measured in a child process (its peak RSS), over real HTTP against the loopback Hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.hub.dataset import build_repo
from pools import Downloader, IncrementIDDataPool, RangeError
from pools.transport import RetryPolicy

from tests.support.helpers import binary_resources

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


def _pool(hub, repo, **kw):
    return IncrementIDDataPool(repo, endpoint=hub.url, retry=FAST, **kw)


@pytest.mark.parametrize("bad", [7.9, True, False, b"7", None, "7", (7.9, {}), (True, {}), (1, 2, 3), [7]],
                         ids=repr)
def test_an_id_that_is_not_an_int_is_a_type_error_naming_it(hub, hub_root, tmp_path, bad):
    build_repo(hub_root, "t/types", binary_resources([1000]))
    with Downloader(max_workers=1) as dl:
        with pytest.raises(TypeError) as err:
            dl.submit(_pool(hub, "t/types"), [1000, bad], str(tmp_path / "o"))
    assert repr(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(TypeError, match="ids must be ints"):
        _pool(hub, "t/types").batch_download_to_directory([1000, bad], str(tmp_path / "o"))
    assert not (tmp_path / "o" / "1000.bin").exists(), "refused before anything is fetched"


def test_not_an_iterable_of_ids_is_a_type_error(hub, tmp_path):
    with Downloader(max_workers=1) as dl:
        for bad in (b"1000", 1000, None):
            with pytest.raises(TypeError, match="ids must be"):
                dl.submit(IncrementIDDataPool("t/x", endpoint=hub.url), bad, str(tmp_path / "o"))


def test_a_bad_id_deep_in_a_generator_fails_the_job_with_a_type_error(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/gen", binary_resources([1000, 1001]))

    def ids():
        yield 1000
        yield 1001
        yield "1002"
    with pytest.raises(TypeError, match="'1002'") as err:
        _pool(hub, "t/gen").batch_download_to_directory(ids(), str(tmp_path / "o"))
    assert err.value.report.state == "failed"


def test_ids_past_2_63_are_a_range_error(hub, tmp_path):
    with Downloader(max_workers=1) as dl:
        for bad in ([2**64], [2**63 + 1], range(0, 2**64)):
            with pytest.raises(RangeError, match="too large"):
                dl.submit(IncrementIDDataPool("t/x", endpoint=hub.url), bad, str(tmp_path / "o"))


def test_ints_pairs_and_ranges_are_taken(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/ok", binary_resources([1000, 1001, 2001]))
    infos = {1000: {"a": 1}}
    gen = (x for x in [(1000, infos[1000]), 1001, 2001, 5])
    with Downloader(max_workers=2) as dl:
        report = dl.submit(_pool(hub, "t/ok"), gen, str(tmp_path / "o")).wait(WAIT)
        ranged = dl.submit(_pool(hub, "t/ok"), range(1000, 1002), str(tmp_path / "r")).wait(WAIT)
    assert sorted(report.downloaded) == [1000, 1001, 2001] and list(report.missing) == [5]
    assert json.loads((tmp_path / "o" / "1000_metainfo.json").read_text()) == {"a": 1}
    assert sorted(ranged.downloaded) == [1000, 1001]


def _child(code: str, hub, tmp_path) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; peak RSS is added (MiB)."""
    wrapper = code + "\nimport resource\nout['rss_mib'] = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024\nprint(json.dumps(out))\n"
    env = dict(os.environ, PYTHONPATH=ROOT, HF_HOME=str(tmp_path / "home"), HUB=hub.url, DST=str(tmp_path / "o"))
    done = subprocess.run([sys.executable, "-c", wrapper], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_generator_of_2m_ids_is_consumed_lazily(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/lazy", binary_resources([1000, 2000001]))
    out = _child("""
import json, os
from pools import IncrementIDDataPool
taken = 0
def ids():
    global taken
    for rid in range(1000, 2_001_000):
        taken += 1
        yield rid
pool = IncrementIDDataPool("t/lazy", endpoint=os.environ["HUB"])
report = pool.batch_download_to_directory(ids(), os.environ["DST"], save_metainfo=False)
out = {"taken": taken, "downloaded": sorted(report.downloaded), "missing": len(report.missing),
       "runs": report.missing.runs}
""", hub, tmp_path)
    assert out["taken"] == 2_000_000 and out["downloaded"] == [1000, 2000001]
    assert out["missing"] == 2_000_000 - 2
    # materialised, 2M ids cost ~550 MB (issue 10); a chunk at a time, the process stays near its baseline
    assert out["rss_mib"] < 200, out


def test_a_100m_id_range_over_a_small_repo_stays_small_and_reports_missing_as_ranges(hub, hub_root, tmp_path):
    present = [100, 4800, 5000, 99_999_999]
    build_repo(hub_root, "t/huge", binary_resources(present))
    out = _child("""
import json, os
from pools import IncrementIDDataPool
pool = IncrementIDDataPool("t/huge", endpoint=os.environ["HUB"])
report = pool.batch_download_to_directory("0-100000000", os.environ["DST"], save_metainfo=False)
d = report.to_dict()
out = {"state": d["state"], "downloaded": d["downloaded"], "missing": d["missing"], "n_missing": len(report.missing),
       "report_bytes": len(json.dumps(d))}
""", hub, tmp_path)
    assert out["state"] == "done" and out["downloaded"] == present
    assert out["missing"] == ["0-99", "101-4799", "4801-4999", "5001-99999998", "100000000"]
    assert out["n_missing"] == 100_000_001 - len(present)
    assert out["report_bytes"] < 10_000, "a missing range is written as ranges, not id by id"
    assert out["rss_mib"] < 200, out


class _CountedIds:
    """A lazy source that knows its count, like a metadata query's ids: never listed whole."""

    def __init__(self, ids):
        self._ids, self.read = ids, 0

    def __len__(self):
        return len(self._ids)

    def __iter__(self):
        for rid in self._ids:
            self.read += 1
            yield rid


def test_a_lazy_source_with_a_length_is_streamed_and_its_length_drives_progress(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/counted", binary_resources([1000, 1001]))
    source = _CountedIds([1000, 1001, 1002])
    progress = []
    with Downloader(max_workers=1, on_event=lambda e: progress.append(e) if hasattr(e, "ids_total") else None) as dl:
        job = dl.submit(_pool(hub, "t/counted"), source, str(tmp_path / "o"))
        assert job.ids is None and job.ids_total == 3, "its len() is the total before it is read"
        report = job.wait(WAIT)
    assert source.read == 3 and sorted(report.downloaded) == [1000, 1001] and list(report.missing) == [1002]
    assert report.not_reached == 0 and progress[-1].ids_total == 3 and progress[-1].ids_done == 3
