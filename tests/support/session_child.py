"""A child process for the kill test (not a test module): the TUI, headless, running one job.

``python tests/support/session_child.py DATA_DIR ENDPOINT REPO LEVEL IDS DST N`` opens REPO on ENDPOINT,
queues IDS into DST from the app (so the session store records it as a user's job would be),
prints ``downloading <count>`` once N resources are done, and then waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.tui.app import make_app  # noqa: E402
from app.core.settings import AppSettings  # noqa: E402
from pools import RetryPolicy, parse_ids  # noqa: E402
from pools import events as ev  # noqa: E402


async def main(data_dir: str, endpoint: str, repo: str, level: str, ids: str, dst: str, n: str) -> None:
    settings = AppSettings(repo=repo, endpoint=endpoint, base_level=int(level), data_dir=Path(data_dir),
                           workers=2, retry=RetryPolicy(attempts=2, backoff=0.0, jitter=0.0))
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        reached = threading.Event()
        done = []

        def count(event) -> None:  # engine listener, on worker threads
            if isinstance(event, ev.ResourceDone):
                done.append(event.resource_id)
                if len(done) >= int(n):
                    reached.set()

        app.downloader.add_listener(count)
        view = app.queue_job(settings.make_pool(), parse_ids(ids), dst, 2)
        assert view is not None
        assert await asyncio.to_thread(reached.wait, 60)  # wait for the condition, never a sleep
        app.flush_engine_events()  # what the app writes to the store on its next fold
        await pilot.pause()
        print(f"downloading {len(done)}", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
