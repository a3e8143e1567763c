"""The batch downloader and its stages: the queue (:mod:`~pools.engine.downloader`), the job's
bookkeeping (:mod:`~pools.engine.job`), plan, fetch and write, and the report a job hands back."""

from pools.engine.downloader import PARTIAL_DIR, Downloader
from pools.engine.job import Job
from pools.engine.report import DownloadReport

__all__ = ["Downloader", "Job", "DownloadReport", "PARTIAL_DIR"]
