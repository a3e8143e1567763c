"""``cheesechaser-tui query`` and the ``download --where`` options: choose ids from a metadata table.

::

    cheesechaser-tui query REPO 'cat_ears -comic rating:g,s score:>=10' [--count] [--format ids|csv|jsonl]
    cheesechaser-tui download REPO --where 'QUERY' [IDS] [--limit N] [--sample N --seed S] [--captions txt] -o DIR

The table is ``--metadata`` (a path or ``hf://datasets/OWNER/NAME/PATH[@REV]``), else the one the
repo's preset names, else ``metadata.parquet`` or ``meta/*.parquet`` at the repo's root.
Exit codes: 0 done, 1 the Hub failed us (access denied, unreachable), 2 usage errors (a bad query,
no table, a bad repo id), as for ``download``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

from app.commands.usage import add_token_arguments, apply_token, fail_usage, named_dataset
from app.core import tables
from app.core.settings import check_repo_id
from app.core.tables import TableUsageError
from pools import IdRanges, PoolError, RepoNotFoundError, RevisionNotFoundError
from pools.text import shown
from pools.transport import HubClient

FORMATS = ("ids", "csv", "jsonl")


def add_table_arguments(parser: argparse.ArgumentParser, *, download: bool = False) -> argparse.ArgumentParser:
    """The options that pick ids from a table, shared by ``query`` and ``download``."""
    group = parser.add_argument_group("choosing ids by metadata")
    if download:
        group.add_argument("--where", default=None, metavar="QUERY",
                           help="booru query on the metadata table, e.g. 'cat_ears -comic rating:g,s "
                                "score:>=10'; with IDS too, the ids that are in both")
        group.add_argument("--captions", choices=("txt", "json"), default=None,
                           help="write each image's tags beside it: <id>.txt (comma-separated) or <id>.tags.json")
    group.add_argument("--metadata", default=None, metavar="PATH|hf://...",
                       help="the metadata table (Parquet, CSV/TSV, JSON Lines): a path or "
                            "hf://datasets/OWNER/NAME/PATH[@REVISION]; default: the preset's, or "
                            "metadata.parquet / meta/*.parquet in the repo")
    group.add_argument("--columns", default=None, metavar="FIELD=COL[,...]",
                       help="column mapping for other schemas, e.g. 'tags=tag_list,width=w'")
    group.add_argument("--max-table-gb", type=float, default=16.0, metavar="GB",
                       help="the most a metadata table fetched from the Hub may hold (default 16)")
    group.add_argument("--sql-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="stop a --sql query that runs longer (default 60)")
    group.add_argument("--sql", default=None, metavar="CLAUSE",
                       help="a read-only SQL WHERE clause on the table, e.g. \"score > 50 AND rating = 'g'\"")
    group.add_argument("--limit", type=int, default=None, metavar="N", help="at most N matching ids")
    group.add_argument("--sample", type=int, default=None, metavar="N", help="N matching ids picked at random")
    group.add_argument("--seed", type=int, default=0, metavar="S", help="seed of --sample (default 0)")
    group.add_argument("--order", default=None, metavar="COLUMN[:desc]",
                       help="with --limit: keep the first N by this column or field (score:desc: highest first)")
    return parser


def add_query_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("repo", metavar="REPO", nargs="?", default=None,
                        help="dataset repo id, e.g. deepghs/danbooru2024-sfw (may be left out with --dataset)")
    parser.add_argument("query", metavar="QUERY", nargs="?", default="",
                        help="booru query, e.g. 'cat_ears solo -comic rating:g,s score:>=10' (empty: every post)")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="a preset or one of cheesechaser's classes (gelbooru, GelbooruDataPool...): its repo "
                             "and metadata table; then `query --dataset NAME QUERY`")
    parser.add_argument("--dash-terms", action="append", default=[], help=argparse.SUPPRESS)  # see app.cli.dash_terms
    parser.add_argument("--count", action="store_true", help="print only how many posts match")
    parser.add_argument("--format", choices=FORMATS, default="ids",
                        help="ids (one a line, ascending), csv or jsonl rows (default ids)")
    parser.add_argument("--revision", default="main", metavar="REV", help="data revision (default main)")
    add_token_arguments(parser)
    parser.add_argument("--endpoint", default=None, metavar="URL", help="Hub endpoint (default: HF_ENDPOINT)")
    return add_table_arguments(parser)


def wants_table(args: argparse.Namespace) -> bool:
    """Whether a download needs the metadata table at all."""
    return any(getattr(args, name, None) is not None
               for name in ("where", "sql", "captions", "limit", "sample", "metadata"))


class _FetchProgress:
    def __init__(self, stream):
        self.stream = stream
        self.enabled = stream.isatty()
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        import humanize
        total_text = f" / {humanize.naturalsize(total, binary=True)}" if total else ""
        self.stream.write(f"\rfetching the metadata table: {humanize.naturalsize(done, binary=True)}{total_text}   ")
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class _IndexProgress:
    """The one-off copy of a big table, on stderr: a line once it runs for a few seconds, redrawn on a
    terminal, and a closing line with the time it took."""

    AFTER = 3.0

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.started: float | None = None
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        import time
        if self.started is None:
            self.started = time.monotonic()
        elapsed = time.monotonic() - self.started
        if elapsed < self.AFTER:
            return
        of = f" of {total:,}" if total else ""
        if self.tty:
            self.stream.write(f"\rcopying the metadata table for fast queries (once): {done:,}{of} rows   ")
        elif not self.shown:
            self.stream.write(f"copying the metadata table for fast queries (once; {total:,} rows)…\n"
                              if total else "copying the metadata table for fast queries (once)…\n")
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        import time
        if self.shown:
            end = "\n" if self.tty else ""
            self.stream.write(f"{end}copied in {time.monotonic() - self.started:.0f} s\n")
            self.stream.flush()


def open_repo_table(args: argparse.Namespace, client, repo: str, revision: str = "main"):
    """The table the options name for ``repo``, its fetch and one-off copy shown on stderr."""
    progress, indexing = _FetchProgress(sys.stderr), _IndexProgress(sys.stderr)
    try:
        table = tables.open_repo_table(client, repo, revision, metadata=args.metadata, columns=args.columns,
                                       on_progress=progress, on_index=indexing,
                                       max_bytes=int(max(0.001, getattr(args, "max_table_gb", 16.0)) * 1024 ** 3))
        table.sql_deadline = max(0.1, float(getattr(args, "sql_timeout", 60.0) or 60.0))
        return table
    finally:
        progress.end()
        indexing.end()


def matching_ids(args: argparse.Namespace, table, query: str, within=None, pool=None):
    """The ids ``query`` matches and how many. With a ``pool`` (a download), ``--sample``/``--limit``
    choose among the matches its archives hold (their indexes say), not among every row."""
    from pools.metadata import QueryError, TableReadError  # lazy: start-up time of every download (DuckDB)

    for name in ("limit", "sample"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise TableUsageError(f"--{name} must not be negative")
    order, descending = parse_order(args.order)
    try:
        if pool is not None and (args.sample is not None or args.limit is not None):
            return _held_matches(args, table, query, within, pool, order, descending)
        ids = table.ids(query, sql=args.sql, within=within, limit=args.limit, sample=args.sample, seed=args.seed,
                        order_by=order, descending=descending)
        count = len(ids)
    except TableReadError:
        raise  # the table's fault, not the query's: exit 1, as when the Hub fails us
    except QueryError as err:
        raise TableUsageError(str(err)) from None
    return ids, count


def _held_matches(args, table, query: str, within, pool, order, descending):
    """``--sample N`` / ``--limit N`` among the matches an archive holds: the matches are walked in
    the sample's (seeded) or the limit's order, each looked up in its archive's index, until N are
    found; how many were in no archive is said on stderr."""
    every = len(table.ids(query, sql=args.sql, within=within))
    wanted = args.sample if args.sample is not None else args.limit
    ordered = table.ids(query, sql=args.sql, within=within, seed=args.seed, order_by=order, descending=descending,
                        **({"sample": every} if args.sample is not None else {"limit": every}))
    picked: list[int] = []
    absent = 0
    for rid in ordered.in_order():
        if len(picked) >= wanted:
            break
        if pool.locate(rid) is not None:
            picked.append(rid)
        else:
            absent += 1
    if args.sample is not None and args.limit is not None:
        picked = sorted(picked)[:args.limit]
    print(f"{len(picked)} picked of {every} matching posts: {absent} looked at first are in no archive "
          f"of the repo", file=sys.stderr)
    return IdRanges.of(picked), len(picked)


def parse_order(text: str | None) -> tuple[str | None, bool]:
    """``"score:desc"`` -> ``("score", True)``; ``"date"`` / ``"date:asc"`` -> ``("date", False)``."""
    if not text:
        return None, False
    column, _, direction = text.partition(":")
    if direction.lower() not in ("", "asc", "desc") or not column:
        raise TableUsageError(f"--order {text!r}: write COLUMN, COLUMN:asc or COLUMN:desc")
    return column, direction.lower() == "desc"


class Selection:
    """What ``download`` takes from the table: the ids, and the caption writer if asked for."""

    def __init__(self, table, ids, count: int | None, captions: str | None, dst_dir: str):

        self.table = table
        self.ids = ids
        self.count = count
        from pools.metadata import CaptionWriter  # lazy: start-up time of every download (DuckDB)

        self.captions = CaptionWriter(table, dst_dir, captions) if captions else None

    def on_event(self, event) -> None:
        if self.captions is not None:
            self.captions.on_event(event)

    def close(self, out) -> None:

        if self.captions is not None:
            self.captions.close()
            print(f"{self.captions.written} captions written ({self.captions.fmt})", file=out)
            for line in self.captions.errors[:10]:
                print(shown(line), file=out)
        self.table.close()


def select_for_download(args: argparse.Namespace, pool, within) -> Selection:
    """Open the table for ``pool``'s repo and choose the ids (``within`` the IDS given, if any)."""
    table = open_repo_table(args, pool.client, pool.data_repo_id, getattr(pool, "data_revision", "main"))
    try:
        if args.where is None and args.sql is None and args.limit is None and args.sample is None and within is not None:
            ids, count = within, None  # the table only writes captions
        else:
            ids, count = matching_ids(args, table, args.where or "", within, pool)
            print(f"{count} posts match in {shown_source(table)}", file=sys.stderr)
        return Selection(table, ids, count, args.captions, args.output)
    except BaseException:
        table.close()
        raise


def shown_source(table) -> str:
    return shown(table.source, 120)


def _fail_usage(message: str) -> int:
    return fail_usage("query", message)


def _fail(err: BaseException, code: int = 1) -> int:
    """One line on stderr for what failed us (the Hub, the table), and the exit code."""
    print(f"cheesechaser-tui query: {shown(str(err), 500)}", file=sys.stderr)
    return code


def resolve_dataset(args: argparse.Namespace) -> str | None:
    """Fill ``args.repo`` from ``--dataset`` (the one positional then being the query); the
    problem, or None. Negated terms the command line handed over apart join the query."""
    terms = getattr(args, "dash_terms", None) or []
    if terms:
        args.query = " ".join(t for t in (args.query or "", *terms) if t)
    preset, problem = named_dataset(args)
    if problem or not args.dataset:
        return problem
    if preset is None:
        return (f"--dataset {shown(args.dataset, 100)!r} is no preset, cheesechaser class or repo id that a class "
                "reads (see the picker's list, or the README's table of classes)")
    if args.repo and not args.query and args.repo != preset.repo:
        args.query, args.repo = args.repo, preset.repo  # `query --dataset NAME QUERY`
    elif args.repo and args.repo != preset.repo:
        return f"REPO {args.repo} is not {preset.name}'s repo ({preset.repo})"
    args.repo = preset.repo
    return None


def run_query(args: argparse.Namespace) -> int:
    problem = apply_token(args, "query") or resolve_dataset(args)
    if problem:
        return _fail_usage(problem)
    try:
        check_repo_id(args.repo)
    except ValueError as err:
        return _fail_usage(str(err))
    if args.endpoint is not None and not args.endpoint.startswith(("http://", "https://")):
        return _fail_usage(f"--endpoint {args.endpoint!r} must be an http:// or https:// URL")
    client = HubClient(endpoint=args.endpoint, token=args.token)
    try:
        table = open_repo_table(args, client, args.repo, args.revision)
    except TableUsageError as err:
        return _fail_usage(str(err))
    except (RepoNotFoundError, RevisionNotFoundError) as err:
        return _fail_usage(str(err))
    except PoolError as err:
        return _fail(err)
    from pools.metadata import QueryError, TableReadError  # lazy: start-up time (DuckDB)

    with table:
        try:
            ids, count = matching_ids(args, table, args.query)
        except TableUsageError as err:
            return _fail_usage(str(err))
        except TableReadError as err:
            return _fail(err)
        try:
            if args.count:
                print(count)
            elif args.format == "ids":
                _write_ids(ids, sys.stdout)
            else:
                order, descending = parse_order(args.order)
                rows = table.iter_rows(args.query, sql=args.sql, ids=ids if args.sample is not None else None,
                                       limit=args.limit, order_by=order, descending=descending)
                (_write_csv if args.format == "csv" else _write_jsonl)(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            _quiet_stdout()
            return 0
        except QueryError as err:  # met while the rows are read (a cell too large, a damaged file)
            sys.stdout.flush()
            return _fail(err, 1 if isinstance(err, TableReadError) else 2)
    print(f"{count} posts match in {shown_source(table)}", file=sys.stderr)
    return 0


def _quiet_stdout() -> None:
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _write_ids(ids, out) -> None:
    lines: list[str] = []
    for rid in ids:
        lines.append(str(rid))
        if len(lines) >= 4096:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")


ROW_FIELDS = ("id", "rating", "score", "width", "height", "ext", "date", "tags")


def _cell(value):
    """A table value made safe for a terminal (remote text: control and bidi characters escaped)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    return shown(value if isinstance(value, str) else str(value), None)


# a text cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...), +cmd|...):
# it gets a leading ' (OWASP's advice for CSV injection), so it opens as the text it is
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    cell = _cell(value)
    return "'" + cell if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell


def _write_csv(rows, out) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, name)) for name in ROW_FIELDS])


def _write_jsonl(rows, out) -> None:
    for row in rows:
        record = {name: getattr(row, name) for name in ROW_FIELDS}
        record["tags"] = (row.tags or "").split()
        out.write(json.dumps(record, ensure_ascii=True, default=str) + "\n")  # ASCII: nothing raw reaches a terminal

