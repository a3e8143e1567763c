"""Issue 8, "never silent": a job that could not complete as a whole says so through every API.

``batch_download_to_directory`` (the reference API) raises the ``pools`` exception that stopped the
job (Hub unreachable, access denied, destination unusable) after keeping every file it wrote, with
the report on the exception; ``Downloader`` jobs keep returning their report. The ids a failed or
cancelled job never reached are reported as ranges, to rerun.
"""

from __future__ import annotations

import os

import pytest

from app.hub.dataset import build_repo
from pools import DestinationError, Downloader, HubUnreachableError, IncrementIDDataPool
from pools.engine import write as write_module
from pools.transport import RetryPolicy
from tests.support.helpers import assert_only_verified, binary_resources, closed_port
from tests.support.reliability import FullDisk

FAST = RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, jitter=0.0)
WAIT = 60


def test_a_dead_endpoint_raises_through_the_reference_api_with_the_report(tmp_path):
    pool = IncrementIDDataPool("t/gone", endpoint=f"http://127.0.0.1:{closed_port()}", retry=FAST)
    with pytest.raises(HubUnreachableError) as err:
        pool.batch_download_to_directory([1000, 1001, 1002, 5000], str(tmp_path / "o"))
    message = str(err.value)
    assert "\n" not in message and message == err.value.report.error
    report = err.value.report
    assert report.state == "failed" and report.not_reached == 4
    assert not report.downloaded and not report.failed and not list(report.missing), "nothing reads as missing"
    assert report.to_dict()["not_reached_ids"] == ["1000-1002", "5000"]


def test_the_downloader_keeps_returning_the_report(tmp_path):
    pool = IncrementIDDataPool("t/gone", endpoint=f"http://127.0.0.1:{closed_port()}", retry=FAST)
    with Downloader(max_workers=2) as dl:
        report = dl.submit(pool, "7-9", str(tmp_path / "o")).wait(WAIT)
    assert report.state == "failed" and report.not_reached == 3 and report.not_reached_ranges() == ["7-9"]


def test_a_destination_that_fills_up_raises_after_keeping_what_it_wrote(hub, hub_root, tmp_path, monkeypatch):
    ids = sorted(a + 1000 * k for a in range(3) for k in range(1, 11))
    manifest = build_repo(hub_root, "t/fills", binary_resources(ids))
    dst = tmp_path / "o"
    monkeypatch.setattr(write_module, "open", FullDisk(dst, budget=25_000), raising=False)
    pool = IncrementIDDataPool("t/fills", endpoint=hub.url, retry=FAST)
    with pytest.raises(DestinationError, match="disk full") as err:
        pool.batch_download_to_directory(ids, str(dst), max_workers=3, save_metainfo=False)
    report = err.value.report
    kept = sorted(n for n in os.listdir(dst) if not n.startswith("."))
    assert kept and sorted(f"{rid}.bin" for rid in report.downloaded) == kept, "every file written is kept"
    assert report.not_reached > 0 and report.not_reached_ranges()
    assert_only_verified(dst, manifest, partial_ok=True)


def test_a_job_with_some_failed_files_returns_its_report(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/part", binary_resources([1000, 2000]))
    pool = IncrementIDDataPool("t/part", endpoint=hub.url, retry=FAST)
    report = pool.batch_download_to_directory([1000, 2000, 3000], str(tmp_path / "o"))
    assert report.state == "done" and sorted(report.downloaded) == [1000, 2000] and list(report.missing) == [3000]
    assert report.to_dict()["not_reached_ids"] == []

