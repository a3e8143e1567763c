"""A command's job from submit to its end, wherever it runs (this process or a Dask cluster).

Ctrl-C or SIGTERM cancels the job, whose report is still written; a second one stops at once
(``KeyboardInterrupt``: the next run cleans up and resumes). The handlers are in place before the
job is submitted: its workers start at once, and a Ctrl-C then must cancel it, not escape.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

from pools.engine.job import JobLike
from pools.engine.report import DownloadReport

TICK = 0.1  # seconds between two looks at the job (a progress line redraws at most this often)


def run_to_end(submit: Callable[[], JobLike], on_tick: Callable[[JobLike], None] = lambda job: None
               ) -> tuple[DownloadReport, bool]:
    """``submit()`` the job and wait for its end: ``(its report, whether it was interrupted)``.
    What ``submit`` raises is raised here, the signal handlers restored."""
    interrupted = threading.Event()
    running: list[JobLike] = []

    def on_signal(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        for job in running:
            job.cancel()

    previous = signal.signal(signal.SIGINT, on_signal)
    previous_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        job = submit()
        running.append(job)
        if interrupted.is_set():
            job.cancel()
        while not job.done:
            try:
                job.wait(TICK)
            except TimeoutError:
                pass
            on_tick(job)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    return job.wait(), interrupted.is_set()
