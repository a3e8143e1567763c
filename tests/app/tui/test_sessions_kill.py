"""`kill -9` of the app mid-job loses nothing: the next start offers the job and resumes it from
what is on disk, fetching no verified file twice (a real child process, the real loopback Hub)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from app.tui.app import make_app
from app.hub.dataset import build_repo
from app.hub.faults import FaultConfig
from app.tui.dialogs.sessions import ResumeScreen
from app.core.sessions import SessionStore
from app.core.settings import AppSettings
from pools import RetryPolicy

from tests.support.helpers import settle, tar_gets

ROOT = Path(__file__).resolve().parents[3]
IDS = list(range(100, 160))  # level 2: 60 ids, one per archive images/000.tar .. images/059.tar


def _resources():
    return {rid: {f"{rid}.bin": random.Random(rid).randbytes(2000)} for rid in IDS}


async def test_kill_9_mid_job_then_resume_fetches_nothing_twice(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/kill", _resources(), base_level=2)
    hub.faults = FaultConfig(latency_ms=120, paths="*.tar")  # the job takes a few seconds
    data_dir, dst = tmp_path / "data", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "support" / "session_child.py"), str(data_dir), hub.url, "t/kill",
         "2", "100-159", str(dst), "4"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.startswith("downloading"), child.stderr.read() if child.poll() is not None else line
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        child.stdout.close()
        child.stderr.close()

    # what survived: the job's row, still "running", owned by a process that is gone
    store = SessionStore(data_dir)
    (record,) = store.jobs()
    assert record.state == "running" and record.owner == child.pid and record.ids == "100-159"
    assert [r.id for r in store.unfinished()] == [record.id]
    store.close()
    on_disk = sorted(p.name for p in dst.iterdir() if p.is_file())
    assert 4 <= len(on_disk) < len(IDS), "the kill came mid-job"
    hub.faults = None

    settings = AppSettings(data_dir=data_dir, workers=2, clock=lambda: 0.0,
                           retry=RetryPolicy(attempts=2, backoff=0.0, jitter=0.0))
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ResumeScreen), "the resume offer")
        assert "100-159" in str(app.screen.query_one(".dialog-body").render())
        # the killed child's last requests are answered (or refused) and logged before counting
        await settle(pilot, lambda: hub.open_connections == 0, "the killed child's connections to close")
        gets_before = len(tar_gets(hub))
        await pilot.press("enter")
        await settle(pilot, lambda: app.model.jobs, "the resumed job")
        (view,) = app.model.jobs.values()
        await asyncio.to_thread(view.job.wait, 60)
        app.flush_engine_events()
        await pilot.pause()
        report = view.job.report
        assert view.session_id == record.id and report.state == "done"
        # the files verified before the kill were checked, not fetched: skipped, never downloaded
        kept_ids = {int(name.split(".")[0]) for name in on_disk}
        assert kept_ids <= set(report.skipped)
        assert not kept_ids & set(report.downloaded)
        assert sorted(report.downloaded + report.skipped) == IDS
        resumed_gets = tar_gets(hub)[gets_before:]
        assert len(resumed_gets) == len(IDS) - len(report.skipped)  # one ranged GET per file left
        fetched = {g.path.split("/", 6)[-1] for g in resumed_gets}
        assert fetched == {f"images/{rid % 100:03d}.tar" for rid in report.downloaded}
        assert not fetched & {f"images/{rid % 100:03d}.tar" for rid in kept_ids}
    store = SessionStore(data_dir)
    (after,) = store.jobs()
    assert after.id == record.id and after.state == "done" and after.runs == 2
    assert after.downloaded == len(report.downloaded) and after.skipped == len(report.skipped)
    assert store.unfinished() == [] and store.load_report(after.id)["state"] == "done"
    store.close()
    assert sorted(p.name for p in dst.iterdir() if p.is_file()) == [f"{i}.bin" for i in IDS]
