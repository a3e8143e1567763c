"""``cheesechaser-tui download``: the headless batch downloader for scripts.

Exit codes: 0 when nothing failed (missing ids are reported, not failures), 1 when something
failed, 2 for usage errors (bad range, repo id, base level, destination), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from app.commands.cluster import add_cluster_argument, run_on_cluster
from app.commands.dry_run import make_plan
from app.commands.query import TableUsageError, add_table_arguments, select_for_download, wants_table
from app.commands.report import ReportWriteError, report_dict, short_ranges, write_report
from app.commands.running import run_to_end
from app.commands.shards import add_output_arguments, run_shards, shard_problem, wants_shards
from app.commands.usage import ERROR_LIMIT, add_token_arguments, apply_token, dataset_repo, fail_usage, say_waits
from app.core.catalogue import find_dataset
from app.core.config import ConfigError, load_config
from app.core.datasets import DatasetSpec
from app.core.destination import destination_problem
from app.core.diagnose import diagnose_layout
from app.core.format import fmt_bytes, fmt_counts, fmt_duration, fmt_elapsed, fmt_rate, fmt_ratio, plural
from app.core.idlists import IdFileError, read_ids
from app.core.settings import DEFAULT_WORKERS, check_repo_id, parse_base_level
from pools import (
    Downloader,
    DownloadReport,
    IdRanges,
    PoolError,
    RangeError,
    RepoNotFoundError,
    RetryPolicy,
    RevisionNotFoundError,
    parse_ids,
)
from pools import events as ev
from pools.datapool.catalogue import CLASSES, class_of, dataset_class
from pools.text import shown


def add_download_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("repo", metavar="REPO", nargs="?", default=None,
                        help="dataset repo id, e.g. deepghs/danbooru_newest (may be left out with --dataset)")
    parser.add_argument("ids", metavar="IDS", nargs="?", default=None,
                        help="range expression, e.g. '0-5, 1000-1003, 7000' (optional with --ids-from or --where)")
    parser.add_argument("-o", "--output", default=None, metavar="DIR",
                        help="destination folder (default: the config's defaults.destination)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help=f"parallel workers (default: the config's, else {DEFAULT_WORKERS})")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="one of cheesechaser's dataset classes (GelbooruDataPool, DanbooruNewestDataPool...): "
                             "its repos and layout; a REPO that a class reads uses that class unless a layout "
                             "option is given")
    parser.add_argument("--base-level", default=None, metavar="L[,L...]",
                        help="archive level(s): id %% 10**L picks the archive; a list is tried in order (default 3)")
    parser.add_argument("--base-dir", default=None, metavar="D", help="folder of the archives (default images)")
    parser.add_argument("--archive-template", action="append", default=None, metavar="T",
                        help="for data-XYZ layouts instead of a base level: an archive path with "
                             "{residue} = id %% 1000, e.g. 'original/data-0{residue:03d}.tar'; "
                             "repeat to try several in order")
    parser.add_argument("--idx-repo", default=None, metavar="R", help="repo holding the indexes, if separate")
    parser.add_argument("--revision", default="main", metavar="REV", help="data revision (default main)")
    parser.add_argument("--idx-revision", default="main", metavar="REV", help="index revision (default main)")
    add_token_arguments(parser)
    parser.add_argument("--endpoint", default=None, metavar="URL",
                        help="Hub endpoint (default: the config's, else HF_ENDPOINT)")
    parser.add_argument("--no-metainfo", action="store_true", help="accepted for parity; ids from a range carry no metainfo")
    parser.add_argument("--report", default=None, metavar="FILE.json", help="write the full report as JSON")
    add_output_arguments(parser)
    parser.add_argument("--retries", type=int, default=6, metavar="N",
                        help="attempts per request before giving up (default 6)")
    parser.add_argument("--merge-gap", type=int, default=512 * 1024, metavar="BYTES",
                        help="fetch neighbouring files closer than this with one request (default 524288)")
    # -- sessions: plans, machine-readable output, id files
    parser.add_argument("--ids-from", default=None, metavar="FILE|-",
                        help="read the ids from a file ('-' for standard input): range expressions "
                             "or one id per line, '#' starts a comment; added to IDS if both are given")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (archives, files, bytes, indexes cached or to fetch, "
                             "resolves) and fetch no data")
    parser.add_argument("--json", action="store_true",
                        help="print events as JSON, one object per line on stdout, then the report "
                             "({\"event\": \"report\", ...}); the summary stays on stderr")
    add_cluster_argument(parser)
    add_table_arguments(parser, download=True)
    return parser


DOWNLOAD_EXAMPLES = """\
examples:
  cheesechaser-tui download deepghs/danbooru_newest '7000000-7000999, 7100000' -o out
  cheesechaser-tui download deepghs/danbooru_newest 7000000-7000999 -o out --dry-run
  grep -o '^[0-9]*' wanted.csv | cheesechaser-tui download deepghs/danbooru_newest --ids-from - -o out
  cheesechaser-tui download deepghs/danbooru_newest --ids-from missing.txt -o out --json > events.jsonl
  cheesechaser-tui download nyanko7/danbooru2023 5000000-5000099 -o out --idx-repo deepghs/danbooru2023_index \\
      --archive-template 'original/data-0{residue:03d}.tar' --archive-template 'recent/data-1{residue:03d}.tar'

exit codes: 0 nothing failed (missing ids are reported), 1 something failed or no archive the ids
map to exists (a wrong --base-level or --base-dir), 2 usage error, 130 interrupted.
"""


def _fail_usage(message: str) -> int:
    return fail_usage("download", message)


class _ProgressLine:
    """One self-overwriting status line on stderr, redrawn at most ten times a second."""

    def __init__(self, stream):
        self.job = None
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0

    def draw(self, job=None, force: bool = False) -> None:
        self.job = job or self.job
        if not self.enabled or self.job is None:
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
        line = (f"\r{bar} ids {fmt_ratio(p.ids_done, p.ids_total)}  {plural(p.files_done, 'file')}  "
                f"{fmt_bytes(p.bytes_done)}  {fmt_rate(p.rate_bps)}  ETA {fmt_duration(eta)}")
        self.stream.write(line[:200].ljust(90))
        self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


def run_download(args: argparse.Namespace) -> int:
    problem = apply_token(args, "download") or dataset_repo(args)
    if problem:
        return _fail_usage(problem)
    try:
        check_repo_id(args.repo)
        check_repo_id(args.idx_repo, "index repo id")
    except ValueError as err:
        return _fail_usage(str(err))
    problem = _apply_config(args)
    if problem:
        return _fail_usage(problem)
    ids = _ids_of(args, optional=wants_table(args))
    if isinstance(ids, int):
        return ids
    try:
        base_level = parse_base_level(args.base_level or "3")
    except ValueError as err:
        return _fail_usage(str(err))
    problem = destination_problem(args.output)
    if problem:
        return _fail_usage(problem)
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

    layout_given = args.base_level is not None or args.base_dir is not None or args.archive_template
    class_name = dataset_class(args.dataset) if args.dataset else (None if layout_given else dataset_class(args.repo))
    if args.dataset and class_name is None:  # a preset's name
        try:
            preset = find_dataset(args.dataset)
        except ValueError as err:
            return _fail_usage(f"--dataset {args.dataset}: {err}")
        class_name = preset.dataset_class if preset is not None else None
    if args.dataset and class_name is None:
        return _fail_usage(f"--dataset {args.dataset!r} is no preset nor one of cheesechaser's dataset classes "
                           f"({', '.join(sorted(CLASSES))})")
    dataset = DatasetSpec(args.repo, idx_repo=args.idx_repo, revision=args.revision,
                          idx_revision=args.idx_revision, base_dir=args.base_dir or "images", base_level=base_level,
                          archive_templates=tuple(args.archive_template or ()), endpoint=args.endpoint,
                          dataset_class=class_name, token=args.token, retry=RetryPolicy(attempts=args.retries))
    try:
        pool = dataset.make_pool()
    except ValueError as err:
        return _fail_usage(str(err))
    if not hasattr(pool, "resolve_revision"):  # the Newest pools and the manga pool read several repos
        return _fail_usage(f"{class_name} reads more than one repo: download from each of them "
                           f"(e.g. its stable repo's class, then the newest repo)")
    # The revisions first: a repo or revision that does not exist is a usage error (one line,
    # exit 2); access denied or an unreachable Hub is a failed run, with its summary and report.
    on_wait = say_waits(sys.stderr)
    try:
        pool.resolve_revision(on_wait=on_wait)
        pool.resolve_index_revision()
    except (RepoNotFoundError, RevisionNotFoundError) as err:
        return _fail_usage(str(err))
    except PoolError as err:
        return _summarise(args, DownloadReport(state="failed", error=str(err)), interrupted=False)
    except Exception as err:  # noqa: BLE001 - e.g. a URL the HTTP client refuses: one line, no traceback
        return _fail_usage(f"cannot reach the Hub at {pool.client.endpoint}: {err.__class__.__name__}: {err}")
    shards = wants_shards(args)
    problem = shard_problem(args)
    if problem:
        return _fail_usage(problem)
    if shards:  # captions go into the samples, not beside them as files
        args.captions = None
    selection = None
    if wants_table(args):  # the ids (and captions) come from the metadata table
        try:
            selection = select_for_download(args, pool, within=ids)
        except TableUsageError as err:
            return _fail_usage(str(err))
        except ValueError as err:  # pools.metadata.TableReadError: the table's fault, not the query's
            print(f"cheesechaser-tui download: {shown(str(err), 500)}", file=sys.stderr)
            return 1
        except PoolError as err:
            return _summarise(args, DownloadReport(state="failed", error=str(err)), interrupted=False)
        ids = selection.ids
    layout = _plan_or_layout_error(args, pool, ids)
    if layout is not None:
        return layout
    if shards:
        try:
            return run_shards(args, pool, ids, selection.table if selection is not None else None)
        finally:
            if selection is not None:
                selection.close(sys.stderr)
    events = _JsonEvents(sys.stdout) if args.json else None
    if args.cluster:  # the same job on a Dask cluster (the same events, captions, report)
        listeners = [e for e in (events, selection.on_event if selection is not None else None) if e is not None]
        return run_on_cluster(args, dataset, ids, _fail_usage, _summarise,
                              listeners=listeners, selection=selection,
                              commits={(pool.data_repo_id, pool.data_revision): pool.resolve_revision(),
                                       (pool.idx_repo_id, pool.idx_revision): pool.resolve_index_revision()})
    downloader = Downloader(max_workers=args.workers, merge_gap=args.merge_gap, on_event=events)
    if selection is not None and selection.on_event is not None:
        downloader.add_listener(selection.on_event)
    progress = _ProgressLine(sys.stderr)
    try:
        report, interrupted = run_to_end(
            lambda: downloader.submit(pool, ids, args.output, save_metainfo=not args.no_metainfo), progress.draw)
    except PoolError as err:
        downloader.close()
        return _fail_usage(str(err))
    downloader.close()
    progress.end()
    if selection is not None:
        selection.close(sys.stderr)
    return _summarise(args, report, interrupted)


def _summarise(args: argparse.Namespace, report, interrupted: bool) -> int:
    """Print the summary on stderr, then write the report; return the exit code.

    Missing ids are ranges (never a list of ids, however long the job's range). A report that
    cannot be written (a full disk) comes after the summary: one line, exit 1.
    """

    if getattr(args, "json", False):
        _print_json({"event": "report", **report_dict(report)})

    out = sys.stderr
    started = report.downloaded or report.skipped or report.missing or report.failed or report.elapsed
    if started or report.state != "failed":  # a job that never started has no counts to give
        print(f"{fmt_counts(len(report.downloaded), len(report.skipped), len(report.missing), len(report.failed), len(report.unrecognized))}; "
              f"{fmt_bytes(report.nbytes)} in {fmt_elapsed(report.elapsed)} "
              f"-> {shown(os.path.abspath(args.output), ERROR_LIMIT)}", file=out)
    if report.unverified:
        print(f"{plural(len(report.unverified), 'id')} unverified: the index gives no sha256 for their files, "
              f"so only their size was checked", file=out)
    if report.not_reached:
        print(f"{plural(report.not_reached, 'id')} not reached before the job stopped; run the same command "
              f"again to resume", file=out)
    if report.missing:
        print(f"missing (in no archive): {short_ranges(report.missing)}", file=out)
    for rid, reason in sorted(report.failed.items())[:20]:
        print(f"failed {rid}: {shown(reason, ERROR_LIMIT)}", file=out)
    if len(report.failed) > 20:
        print(f"… and {len(report.failed) - 20:,} more failed", file=out)
    report_failed = False
    if args.report:
        try:
            write_report(args.report, report)
        except ReportWriteError as err:
            print(f"error: {shown(err, ERROR_LIMIT)}", file=out)
            report_failed = True
    if interrupted:
        print("interrupted: verified files are kept; run the same command again to resume", file=out)
        return 130
    if report.error:
        print(f"error: {shown(report.error, ERROR_LIMIT)}", file=out)
        return 1
    return 0 if report.ok and not report_failed else 1


# ---- sessions: --ids-from, --dry-run, --json, the layout check -------------------------------

def _ids_of(args: argparse.Namespace, optional: bool = False):
    """The ids asked for (IDS and/or --ids-from), or an exit code after a one-line error.
    ``optional`` (ids chosen by --where): None when neither is given."""

    if args.ids is None and args.ids_from is None:
        if optional:
            return None
        return _fail_usage("give IDS, --ids-from FILE, or --where QUERY")
    ranges: list[tuple[int, int]] = []
    if args.ids is not None:
        try:
            ranges.extend(parse_ids(args.ids).ranges)
        except RangeError as err:
            return _fail_usage(f"bad range: {err}")
    if args.ids_from is not None:
        try:
            ranges.extend(read_ids(args.ids_from).ranges)
        except IdFileError as err:
            return _fail_usage(str(err))
    ids = IdRanges(ranges)
    if not ids:
        return _fail_usage("no ids given: the range and the file are empty")
    return ids


def _plan_or_layout_error(args: argparse.Namespace, pool, ids):
    """--dry-run: print the plan and return its exit code. Otherwise: exit 1 when no archive the
    ids map to exists (a wrong layout would report every id missing), else None (go on)."""

    if args.dry_run:
        try:
            plan = make_plan(pool, ids)
            plan.dataset_class = class_of(pool)
        except PoolError as err:
            print(f"error: {shown(str(err))}", file=sys.stderr)
            return 1
        if args.json:
            _print_json({"event": "plan", **plan.to_dict()})
        else:
            print("\n".join(plan.lines()))
        if plan.layout_error:
            print(f"error: {plan.layout_error}", file=sys.stderr)
            return 1
        return 0
    try:
        problem = diagnose_layout(pool, ids)
    except PoolError:
        return None  # the job itself reports an unreachable Hub or a denied repo
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        if args.json:
            _print_json({"event": "error", "error": problem})
        return 1
    return None


_JSON_LOCK = threading.Lock()


def _print_json(obj) -> None:
    line = json.dumps(obj, separators=(",", ":"))  # ASCII only: control and bidi characters escaped
    with _JSON_LOCK:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # the reader went away: the job goes on, quietly
            pass


def _event_name(event) -> str:
    name = type(event).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class _JsonEvents:
    """The downloader's ``on_event``: every event but worker chatter, one JSON object per line.

    Job progress is coalesced to at most five lines a second; the final counts are in the report.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self._last_progress = 0.0

    def __call__(self, event) -> None:
        from dataclasses import asdict


        if isinstance(event, ev.WorkerState):
            return
        if isinstance(event, ev.JobProgress):
            now = time.monotonic()
            if now - self._last_progress < 0.2 and event.ids_done < event.ids_total:
                return
            self._last_progress = now
        data = asdict(event)
        if isinstance(event, ev.ResourcesMissing):
            data["ids"] = str(IdRanges.of(event.ids))  # ranges: a run of 10,000 ids is one string
            data["count"] = len(event.ids)
        _print_json({"event": _event_name(event), **data})


def _apply_config(args: argparse.Namespace) -> str | None:
    """Fill --output, --workers and --endpoint from the config file; a problem in one line."""

    try:
        config = load_config()
    except ConfigError as err:
        return str(err)
    if args.output is None:
        args.output = config.destination
        if args.output is None:
            return "give -o DIR (or set defaults.destination in the config file)"
    if args.workers is None:
        args.workers = config.workers or DEFAULT_WORKERS
    if args.endpoint is None:
        args.endpoint = config.endpoint
    return None
