"""``download --cluster``: the same download run on a Dask cluster.

``--cluster local:N`` starts a LocalCluster of N worker processes for the run;
``--cluster tcp://HOST:8786`` uses a running scheduler (its workers must reach ``--output``).
"""

from __future__ import annotations

import argparse
import sys

from app.commands.running import run_to_end


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default=None, metavar="ADDR",
                        help="run on a Dask cluster: local:N for N local worker processes (TLS with credentials "
                             "made for the run: no other process can attach), or a scheduler's address "
                             "(tcp:// or tls://). A remote cluster is trusted with code: its scheduler and "
                             "workers can run code in this process (Dask unpickles their results). Needs pip "
                             "install 'cheesechaser-tui[dask]'; --output must be a folder every worker can "
                             "reach; --workers is threads per task")
    parser.add_argument("--cluster-token", choices=("workers", "send"), default="workers",
                        help="a remote cluster's token: 'workers' (default) never sends yours, each worker "
                             "uses its own HF_TOKEN; 'send' sends yours to the scheduler and workers (a local:N "
                             "cluster always gets it: its workers are this machine's processes)")


def spec_for(address: str, spec, send_token: bool):
    """The pool spec a cluster is sent: without the token for a remote one, unless told to send it."""
    import dataclasses

    if address.startswith("local:") or send_token or getattr(spec, "token", None) is None:
        return spec
    return dataclasses.replace(spec, token=None)


def run_on_cluster(args: argparse.Namespace, spec, ids, fail_usage, summarise, *, listeners=(),
                   selection=None, commits=None) -> int:
    """Run the job on ``args.cluster``; Ctrl-C cancels every task. Returns the exit code.

    ``listeners`` hear the job's events as a local job's (``--json``, captions); ``selection``
    (``--where``/``--captions``) is closed after the job, as on a local run; ``commits``: the
    revisions the CLI already resolved (the tasks are given them).
    """
    try:
        from pools.cluster import ClusterRunner, open_client  # lazy: optional dependency (dask)
    except ImportError as err:
        return fail_usage(str(err))
    try:
        client, close = open_client(args.cluster)
    except ValueError as err:
        return fail_usage(str(err))
    except Exception as err:  # noqa: BLE001 - an unreachable scheduler: one line
        return fail_usage(f"cannot reach the Dask scheduler at {args.cluster}: {err.__class__.__name__}")

    spec = spec_for(args.cluster, spec, getattr(args, "cluster_token", "workers") == "send")

    def submit():
        job = ClusterRunner(client, threads=args.workers, merge_gap=args.merge_gap,
                            save_metainfo=not args.no_metainfo).submit(
            spec, ids, args.output, commits=commits, on_event=list(listeners), job_id=1)
        print(f"cluster: {len(job.tasks)} tasks on {len(client.scheduler_info().get('workers', {}))} workers",
              file=sys.stderr)
        return job

    try:
        report, interrupted = run_to_end(submit)
    finally:
        close()
    if selection is not None:
        selection.close(sys.stderr)
    return summarise(args, report, interrupted)
