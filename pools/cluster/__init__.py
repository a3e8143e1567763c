"""Run a download on a Dask cluster: an optional extra, ``pip install 'cheesechaser-tui[dask]'``.

A job's ids are planned by archive (:mod:`pools.cluster.tasks`), split into tasks of whole
archives, and each task runs the same engine (:class:`pools.Downloader`) on a Dask worker,
writing atomically into a destination every worker can reach. All tasks share one resolver
budget held on the scheduler (:mod:`pools.cluster.shared_budget`); the per-task reports are merged into
one :class:`pools.DownloadReport` (:mod:`pools.cluster.merge`).
"""

try:
    import distributed  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only where dask is absent
    raise ImportError("running on a cluster needs Dask: pip install 'cheesechaser-tui[dask]'") from err

from pools.cluster.shared_budget import SharedBudget
from pools.cluster.merge import merge_reports
from pools.cluster.tasks import ClusterTask, plan_tasks
from pools.cluster.runner import ClusterJob, ClusterRunner, open_client

__all__ = ["ClusterJob", "ClusterRunner", "ClusterTask", "SharedBudget", "merge_reports",
           "open_client", "plan_tasks"]
