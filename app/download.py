"""``cheesechaser-tui download``: the headless batch downloader for scripts.

Exit codes: 0 when nothing failed (missing ids are reported, not failures), 1 when something
failed, 2 for usage errors (bad range, repo id, base level, destination), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

import humanize

from pools.text import shown

USAGE_ERROR = 2
ERROR_LIMIT = 500  # characters of one error line


def add_download_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("repo", metavar="REPO", help="dataset repo id, e.g. deepghs/danbooru_newest")
    parser.add_argument("ids", metavar="IDS", help="range expression, e.g. '0-5, 1000-1003, 7000'")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="destination folder")
    parser.add_argument("--workers", type=int, default=12, metavar="N", help="parallel workers (default 12)")
    parser.add_argument("--base-level", default="3", metavar="L[,L...]",
                        help="archive level(s): id %% 10**L picks the archive; a list is tried in order (default 3)")
    parser.add_argument("--base-dir", default="images", metavar="D", help="folder of the archives (default images)")
    parser.add_argument("--archive-template", action="append", default=None, metavar="T",
                        help="for data-XYZ layouts instead of a base level: an archive path with "
                             "{residue} = id %% 1000, e.g. 'original/data-0{residue:03d}.tar'; "
                             "repeat to try several in order")
    parser.add_argument("--idx-repo", default=None, metavar="R", help="repo holding the indexes, if separate")
    parser.add_argument("--revision", default="main", metavar="REV", help="data revision (default main)")
    parser.add_argument("--idx-revision", default="main", metavar="REV", help="index revision (default main)")
    parser.add_argument("--token", default=None, metavar="T",
                        help="Hub token (default: HF_TOKEN or the stored huggingface_hub login)")
    parser.add_argument("--endpoint", default=None, metavar="URL", help="Hub endpoint (default: HF_ENDPOINT)")
    parser.add_argument("--no-metainfo", action="store_true", help="accepted for parity; ids from a range carry no metainfo")
    parser.add_argument("--report", default=None, metavar="FILE.json", help="write the full report as JSON")
    parser.add_argument("--retries", type=int, default=6, metavar="N",
                        help="attempts per request before giving up (default 6)")
    parser.add_argument("--merge-gap", type=int, default=512 * 1024, metavar="BYTES",
                        help="fetch neighbouring files closer than this with one request (default 524288)")
    return parser


def _fail_usage(message: str) -> int:
    # messages quote the repo, the endpoint and what the Hub said: escaped, one bounded line
    print(f"cheesechaser-tui download: error: {shown(message, ERROR_LIMIT)}", file=sys.stderr)
    return USAGE_ERROR


def _short_ids(ids, limit: int = 20) -> str:
    from pools import IdRanges
    text = str(IdRanges.of(ids))
    parts = text.split(", ")
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f", … ({len(ids)} ids)"
    return text


class _ProgressLine:
    """One self-overwriting status line on stderr, redrawn at most ten times a second."""

    def __init__(self, job, stream):
        self.job = job
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0

    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        p = self.job.snapshot()
        width = 24
        filled = int(width * p.fraction)
        bar = "█" * filled + "░" * (width - filled)
        eta = p.eta
        eta_text = humanize.naturaldelta(eta) if eta is not None and eta > 1 else "-"
        line = (f"\r{bar} {p.ids_done}/{p.ids_total} ids  {p.files_done} files  "
                f"{humanize.naturalsize(p.bytes_done, binary=True)}  "
                f"{humanize.naturalsize(p.rate_bps, binary=True)}/s  ETA {eta_text}")
        self.stream.write(line[:200].ljust(90))
        self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


def run_download(args: argparse.Namespace) -> int:
    from app.settings import check_repo_id, parse_base_level
    from pools import (ArchiveTemplateDataPool, Downloader, DownloadReport, IncrementIDDataPool, PoolError, RangeError, RepoNotFoundError,
                       RetryPolicy, RevisionNotFoundError, parse_ids)

    try:
        check_repo_id(args.repo)
        check_repo_id(args.idx_repo, "index repo id")
    except ValueError as err:
        return _fail_usage(str(err))
    try:
        ids = parse_ids(args.ids)
    except RangeError as err:
        return _fail_usage(f"bad range: {err}")
    try:
        base_level = parse_base_level(args.base_level)
    except ValueError as err:
        return _fail_usage(str(err))
    if args.workers < 1:
        return _fail_usage("--workers must be at least 1")
    if args.retries < 1:
        return _fail_usage("--retries must be at least 1")
    if args.endpoint is not None and not args.endpoint.startswith(("http://", "https://")):
        return _fail_usage(f"--endpoint {args.endpoint!r} must be an http:// or https:// URL")
    if args.report:
        folder = os.path.dirname(os.path.abspath(args.report))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(args.report):
            return _fail_usage(f"cannot write the report to {args.report}: no such writable folder")

    retry = RetryPolicy(attempts=args.retries)
    if args.archive_template:
        try:
            pool = ArchiveTemplateDataPool(args.repo, data_revision=args.revision, idx_repo_id=args.idx_repo,
                                           idx_revision=args.idx_revision, archive_templates=args.archive_template,
                                           hf_token=args.token, endpoint=args.endpoint, retry=retry)
        except ValueError as err:
            return _fail_usage(str(err))
    else:
        pool = IncrementIDDataPool(args.repo, data_revision=args.revision, idx_repo_id=args.idx_repo,
                                   idx_revision=args.idx_revision, base_level=base_level,
                                   base_dir=args.base_dir, hf_token=args.token, endpoint=args.endpoint,
                                   retry=retry)
    # The revisions first: a repo or revision that does not exist is a usage error (one line,
    # exit 2); access denied or an unreachable Hub is a failed run, with its summary and report.
    try:
        pool.resolve_revision()
        pool.resolve_index_revision()
    except (RepoNotFoundError, RevisionNotFoundError) as err:
        return _fail_usage(str(err))
    except PoolError as err:
        return _summarise(args, DownloadReport(state="failed", error=str(err)), interrupted=False)
    except Exception as err:  # noqa: BLE001 - e.g. a URL the HTTP client refuses: one line, no traceback
        return _fail_usage(f"cannot reach the Hub at {pool.client.endpoint}: {err.__class__.__name__}: {err}")
    downloader = Downloader(max_workers=args.workers, merge_gap=args.merge_gap)
    try:
        job = downloader.submit(pool, ids, args.output, save_metainfo=not args.no_metainfo)
    except PoolError as err:
        downloader.close()
        return _fail_usage(str(err))

    progress = _ProgressLine(job, sys.stderr)
    interrupted = threading.Event()

    def on_sigint(signum, frame):
        if interrupted.is_set():  # a second Ctrl-C: stop now; the next run cleans up and resumes
            raise KeyboardInterrupt
        interrupted.set()
        job.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    try:
        while not job.done:
            job._done.wait(0.1)
            progress.draw()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    report = job.wait()
    downloader.close()
    progress.end()
    return _summarise(args, report, interrupted.is_set())


def _summarise(args: argparse.Namespace, report, interrupted: bool) -> int:
    """Write the report, print the summary on stderr, return the exit code."""
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=2)

    out = sys.stderr
    print(f"{len(report.downloaded)} downloaded, {len(report.skipped)} already present, "
          f"{len(report.missing)} missing, {len(report.failed)} failed, "
          f"{len(report.unrecognized)} unrecognized files skipped; "
          f"{humanize.naturalsize(report.nbytes, binary=True)} in {report.elapsed:.1f}s "
          f"-> {os.path.abspath(args.output)}", file=out)
    if report.not_reached:
        print(f"{report.not_reached} ids not reached before the job stopped; run the same command "
              f"again to resume", file=out)
    if report.missing:
        print(f"missing (in no archive): {_short_ids(report.missing)}", file=out)
    for rid, reason in sorted(report.failed.items())[:20]:
        print(f"failed {rid}: {shown(reason, ERROR_LIMIT)}", file=out)
    if len(report.failed) > 20:
        print(f"… and {len(report.failed) - 20} more failed", file=out)
    if interrupted:
        print("interrupted: verified files are kept; run the same command again to resume", file=out)
        return 130
    if report.error:
        print(f"error: {shown(report.error, ERROR_LIMIT)}", file=out)
        return 1
    return 0 if report.ok else 1
