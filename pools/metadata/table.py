"""A metadata table opened in DuckDB: count, list, sample and iterate the posts a query matches.

Parquet is read in place (columnar, with filters pushed into the scan); CSV/TSV and JSON Lines
are loaded into memory once. A big table (``MIN_INDEX_BYTES`` of files or more) is instead queried
from its DuckDB-native copy with indexed tags (:mod:`pools.metadata.tagindex`), built once. After opening, the connection loses access to every file but the
table's own and its configuration is locked: a ``--sql`` clause cannot read, write or install
anything.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import duckdb

from pools.metadata.columns import Columns, quote_ident, resolve_columns
from pools.metadata.language import Compiled, QueryError, compile_query
from pools.metadata.faults import TableReadError, check_owner, damaged, interruptible
from pools.metadata.matches import MatchingIds
from pools.metadata.sqlguard import check_where_sql
from pools.metadata.tagindex import (
    INDEX_BITS,
    INDEX_VERSION,
    MIN_INDEX_BYTES,
    PREFIX,
    BuildProgress,
    TagIndex,
    build_index,
    index_path,
    mark_used,
    remove_copy,
)

FORMATS = ("parquet", "csv", "tsv", "jsonl")
BATCH = 8192
MAX_RANGES = 64  # ranges of a `within` written as BETWEENs; more go as one list of ids
MAX_LISTED_IDS = 5_000_000
_BUILD_READ_LIMIT = "256MB"
_BUILD_WRITE_LIMIT = "512MB"


def format_of(path: str) -> str:
    name = path.lower()
    for suffix in (".gz", ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {os.path.basename(path)!r}: "
                     f"use a .parquet, .csv, .tsv or .jsonl file")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reader(files: Sequence[str], fmt: str) -> str:
    listed = "[" + ", ".join(_literal(f) for f in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({listed}, union_by_name=true)"
    if fmt == "csv":
        return f"read_csv({listed}, header=true, union_by_name=true)"
    if fmt == "tsv":
        return f"read_csv({listed}, header=true, delim='\\t', union_by_name=true)"
    return f"read_json({listed}, format='newline_delimited', union_by_name=true)"


@dataclass(frozen=True)
class Row:
    """One matching post, as the TUI and ``query --format`` show it (values straight from the table)."""

    id: int
    rating: Any = None
    score: Any = None
    width: Any = None
    height: Any = None
    ext: Any = None
    date: Any = None
    tags: str = ""


class _BadCopy(ValueError):
    """A cached copy that cannot be opened or read."""


class MetadataTable:
    """One table, one DuckDB connection; methods may be called from any thread."""

    def __init__(self, files: Sequence[str], fmt: str | None = None, columns: Mapping[str, str] | None = None,
                 *, source: str | None = None, memory_limit: str = "1GB", threads: int | None = None,
                 index: bool | None = None, index_dir: str | None = None, index_bits: int = INDEX_BITS,
                 on_index: BuildProgress | None = None, cancel: threading.Event | None = None):
        """``index``: query a DuckDB-native copy with indexed tags (built once into ``index_dir``,
        see :mod:`pools.metadata.tagindex`); None: only for files of ``MIN_INDEX_BYTES`` or more.
        ``on_index(rows_done, rows_total)`` follows a build."""
        files = [os.path.abspath(f) for f in files]
        if not files:
            raise ValueError("no table file given")
        fmt = fmt or format_of(files[0])
        if fmt not in FORMATS:
            raise ValueError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.files = files
        self.format = fmt
        self.source = source or files[0]
        self.sql_deadline: float = 60.0  # seconds a query with a user's --sql may run
        self.index_path: str | None = None
        self.index_meta: dict | None = None
        self.index_built = False  # True when this open built the copy
        self._tags: TagIndex | None = None
        config: dict[str, Any] = {"memory_limit": memory_limit}
        if threads:
            config["threads"] = threads
        if index is None:  # CHEESECHASER_TABLE_COPY=always|never overrides the size rule
            mode = os.environ.get("CHEESECHASER_TABLE_COPY", "auto").strip().lower()
            index = mode == "always" or (mode != "never" and sum(os.path.getsize(f) for f in files) >= MIN_INDEX_BYTES)
        self._lock = threading.Lock()
        self._open_args = (columns, config, memory_limit, threads, index_bits)
        self._recovered = False
        self.memory_limit = memory_limit
        dest = index_path(files, fmt, dict(columns or {}), index_bits, index_dir) if index else None
        if dest is None or not os.path.exists(dest):
            self._open_source(files, fmt, columns, config, view=bool(dest))
            if dest is not None:
                self._build(dest, columns, memory_limit, threads, index_bits, on_index, cancel)
        if dest is not None:
            try:
                self._open_index(dest, columns, config)
            except _BadCopy:
                if self.index_built:
                    raise
                remove_copy(dest)  # a copy this version cannot read (or a damaged one): built again, once
                self._open_source(files, fmt, columns, config, view=True)
                self._build(dest, columns, memory_limit, threads, index_bits, on_index, cancel)
                self._open_index(dest, columns, config)
        self._lock_down(dest)

    def _lock_down(self, dest: str | None) -> None:
        """Nothing but the table's own files is readable from SQL, and no setting can change."""
        files, fmt = self.files, self.format
        allowed = files + [os.path.realpath(f) for f in files] if fmt == "parquet" and dest is None else []
        self._con.execute(f"SET allowed_paths=[{', '.join(_literal(p) for p in allowed)}]")
        self._con.execute("SET enable_external_access=false")
        self._con.execute("SET lock_configuration=true")

    def _open_source(self, files, fmt, columns, config, view: bool) -> None:
        self._con = duckdb.connect(":memory:", config=config)
        try:
            kind = "VIEW" if fmt == "parquet" or view else "TABLE"
            self._con.execute(f"CREATE {kind} posts AS SELECT * FROM {_reader(files, fmt)}")
            schema = {row[0]: str(row[1]) for row in self._con.execute("DESCRIBE posts").fetchall()}
        except duckdb.Error as err:
            self._con.close()
            raise ValueError(f"cannot read the table {self.source}: {_one_line(err)}") from None
        self._set_schema(schema, columns)
        if view and any(name.startswith(PREFIX) for name in schema):
            self._con.close()
            raise ValueError(f"cannot index the table {self.source}: a column name starts with {PREFIX!r}")

    def _set_schema(self, schema: dict, columns) -> None:
        try:
            self.columns: Columns = resolve_columns(schema, columns)
        except ValueError:
            self._con.close()
            raise
        self.schema = schema

    def _build(self, dest, columns, memory_limit, threads, bits, on_index, cancel) -> None:
        total = None
        if self.format == "parquet":
            total = int(self._con.execute("SELECT count(*) FROM posts").fetchall()[0][0])
        # the reading side and the writing side share the memory limit (one process, two databases)
        self._con.execute(f"SET memory_limit='{_BUILD_READ_LIMIT}'")
        try:
            build_index(self._con, "SELECT * FROM posts", self.columns, dest, bits=bits, total_rows=total,
                        on_progress=on_index, cancel=cancel, memory_limit=_BUILD_WRITE_LIMIT, threads=threads)
        except duckdb.Error as err:
            raise ValueError(f"cannot copy the table {self.source}: {_one_line(err)}") from None
        finally:
            self._con.close()
        self.index_built = True

    def _open_index(self, dest, columns, config) -> None:
        self._con = None
        check_owner(dest)
        try:
            self._con = duckdb.connect(dest, read_only=True, config=config)
            schema = {row[0]: str(row[1]) for row in self._con.execute("DESCRIBE posts").fetchall()
                      if not row[0].startswith(PREFIX)}
            self._tags = TagIndex(self._con, self._lock)
            if self._tags.meta.get("version") != INDEX_VERSION:
                raise duckdb.Error(f"made by index version {self._tags.meta.get('version')}")
        except (duckdb.Error, KeyError, TypeError, ValueError) as err:
            if self._con is not None:
                self._con.close()
            raise _BadCopy(f"cannot open the table copy {dest}: {_one_line(err)} (delete it to rebuild)") from None
        self._set_schema(schema, columns)
        mark_used(dest)
        self.index_path = dest
        self.index_meta = self._tags.meta

    # -- plumbing
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one thread; ``cursor.interrupt()`` from another thread stops its query."""
        with self._lock:
            return self._con.cursor()

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"MetadataTable({self.source!r})"

    def where(self, query: str = "", *, sql: str | None = None, within=None) -> Compiled:
        """The WHERE clause for a booru ``query``, a ``--sql`` clause and ids ``within`` an IdRanges."""
        compiled = self._compile(query)
        if sql is not None:
            with self._lock:
                check_where_sql(self._con, sql)
            compiled = compiled.and_(Compiled(f"({sql}\n)"))
        if within is not None:
            ranges = list(getattr(within, "ranges", ()))
            if not ranges:
                return compiled.and_(Compiled("FALSE"))
            col = quote_ident(self.columns.id)
            if len(ranges) <= MAX_RANGES:
                compiled = compiled.and_(Compiled(" OR ".join(f"{col} BETWEEN ? AND ?" for _ in ranges),
                                                  [x for r in ranges for x in r]))
            elif len(within) <= MAX_LISTED_IDS:  # many scattered ids (e.g. --ids-from): one list parameter
                compiled = compiled.and_(Compiled(f"{col} IN (SELECT UNNEST(?::BIGINT[]))", [list(within)]))
            else:
                raise QueryError(f"too many ids to intersect with ({len(within):,} in {len(ranges):,} ranges); "
                                 f"at most {MAX_LISTED_IDS:,} scattered ids")
        return compiled

    def _compile(self, query: str) -> Compiled:
        """``compile_query`` (which reads a copy's tag dictionary: a damaged copy is built again once)."""
        for attempt in (0, 1):
            try:
                return compile_query(query, self.columns, self._tags)
            except duckdb.Error as err:
                if attempt or not self._recover(err):
                    raise self._error(err) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, sql: str, params: list, cursor=None, deadline: float | None = None) -> duckdb.DuckDBPyConnection:
        """Execute on ``cursor`` (a new one by default); ``deadline``: seconds after which the
        query is interrupted (a user's ``--sql``), a QueryError then."""
        cur = cursor or self.cursor()
        timer = None
        expired = threading.Event()
        if deadline:
            def stop() -> None:
                expired.set()
                cur.interrupt()
            timer = threading.Timer(deadline, stop)
            timer.daemon = True
            timer.start()
        try:
            return interruptible(lambda: cur.execute(sql, params), cur)
        except duckdb.InterruptException:
            if expired.is_set():
                raise QueryError(f"the query ran past {deadline:g} s and was stopped (--sql-timeout)") from None
            raise
        except duckdb.Error as err:
            stale = cursor is not None and self._recovered and isinstance(err, duckdb.ConnectionException)
            if stale or self._recover(err):  # on the copy built again (once), with a cursor of its own
                return self._run(sql, params, None, deadline)
            raise self._error(err) from None
        finally:
            if timer is not None:
                timer.cancel()

    def fetch(self, sql: str, params: list, deadline: float | None = None) -> Iterator[tuple]:
        """Every row of ``sql``, in batches. A copy found damaged part way is built again once and
        the query run again from the row it had reached (the ORDER BY makes that the same row)."""
        done = 0
        cur = self._run(sql, params, None, deadline)
        while True:
            try:
                batch = interruptible(lambda: cur.fetchmany(BATCH), cur)
            except duckdb.Error as err:
                if not self._recover(err):
                    raise self._error(err) from None
                cur = self._run(f"SELECT * FROM ({sql}) OFFSET {done}", params, None, deadline)
                continue
            if not batch:
                return
            done += len(batch)
            yield from batch

    def fetch_all(self, sql: str, params: list, deadline: float | None = None, cursor=None) -> list[tuple]:
        """Every row of ``sql``; on ``cursor`` when given (one the caller may interrupt)."""
        if cursor is None:
            return list(self.fetch(sql, params, deadline))
        try:
            return self._run(sql, params, cursor, deadline).fetchall()
        except duckdb.Error as err:
            if self._recover(err):
                return list(self.fetch(sql, params, deadline))
            raise self._error(err) from None

    def _error(self, err: BaseException) -> QueryError:
        """The one line a user reads for DuckDB's ``err``: the query's fault or the table's."""
        if isinstance(err, duckdb.OutOfMemoryException):
            return TableReadError(f"cannot read the table {self.source} within {self.memory_limit} of memory "
                                  f"(a cell too large for a metadata table?): {_one_line(err)}")
        if damaged(err):
            where = f"its copy {self.index_path}" if self.index_path else "it"
            return TableReadError(f"cannot read the table {self.source}: {where} is damaged ({_one_line(err)})")
        return QueryError(_one_line(err))

    def _recover(self, err: BaseException) -> bool:
        """A damaged copy (``err`` says so): removed and built again from the files, once per
        table. False when that is not the case or was already done."""
        dest = self.index_path
        if dest is None or not damaged(err) or self._recovered:
            return False
        with self._lock:
            if self._recovered:
                return True  # another thread did it meanwhile
            self._recovered = True
            columns, config, memory_limit, threads, bits = self._open_args
            self._con.close()
            remove_copy(dest)
            self._open_source(self.files, self.format, columns, config, view=True)
            self._build(dest, columns, memory_limit, threads, bits, None, None)
            self._open_index(dest, columns, config)
            self._lock_down(dest)
        return True

    # -- the API
    def count(self, query: str = "", *, sql: str | None = None, within=None, cursor=None) -> int:
        w = self.where(query, sql=sql, within=within)
        sql_text = f"SELECT count(*) FROM posts WHERE {w.where}"
        return int(self.fetch_all(sql_text, w.params, self.sql_deadline if sql else None, cursor)[0][0])

    def ids(self, query: str = "", *, sql: str | None = None, within=None, limit: int | None = None,
            sample: int | None = None, seed: int = 0, order_by: str | None = None,
            descending: bool = False) -> "MatchingIds":
        """The matching ids, lazily, ascending; ``limit``/``sample`` choose which (see MatchingIds)."""
        matches = MatchingIds(self, self.where(query, sql=sql, within=within), limit=limit, sample=sample,
                              seed=seed, order=self._order(order_by, descending))
        matches.user_sql = sql is not None
        return matches

    def rows(self, query: str = "", *, sql: str | None = None, within=None, limit: int = 100,
             offset: int = 0, order_by: str | None = None, descending: bool = False,
             cursor=None) -> list[Row]:
        """Up to ``limit`` matching rows from ``offset``, in ``order_by`` order (default: by id)."""
        w = self.where(query, sql=sql, within=within)
        sql_text = (f"SELECT {self._row_select()} FROM posts WHERE {w.where} "
                    f"ORDER BY {self._order(order_by, descending)} LIMIT ? OFFSET ?")
        params, deadline = [*w.params, int(limit), int(offset)], self.sql_deadline if sql else None
        return [Row(*r) for r in self.fetch_all(sql_text, params, deadline, cursor)]

    def iter_rows(self, query: str = "", *, sql: str | None = None, within=None,
                  order_by: str | None = None, descending: bool = False, limit: int | None = None,
                  ids=None) -> Iterator[Row]:
        """Every matching row, fetched in batches (for ``query --format csv|jsonl``)."""
        w = self.where(query, sql=sql, within=within)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        if ids is not None:  # exactly these ids (a sample): joined on the table
            w = w.and_(Compiled(f"{quote_ident(self.columns.id)} IN (SELECT UNNEST(?::BIGINT[]))", [list(ids)]))
        for r in self.fetch(f"SELECT {self._row_select()} FROM posts WHERE {w.where} "
                            f"ORDER BY {self._order(order_by, descending)}{tail}", w.params,
                            self.sql_deadline if sql else None):
            yield Row(*r)

    def tags_of(self, ids: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        """``{id: {category: [tags]}}`` for these ids (one scan per call: batch them)."""
        if not ids:
            return {}
        cats = list(self.columns.tags.items())
        if not cats:
            return {int(i): {} for i in ids}
        cols = ", ".join(_tag_text(c.name, c.is_list) for _, c in cats)
        rows = self.fetch_all(f"SELECT {quote_ident(self.columns.id)}, {cols} FROM posts "
                              f"WHERE {quote_ident(self.columns.id)} IN (SELECT UNNEST(?::BIGINT[]))",
                              [[int(i) for i in ids]])
        out: dict[int, dict[str, list[str]]] = {}
        for row in rows:
            out[int(row[0])] = {cat: (text or "").split() for (cat, _), text in zip(cats, row[1:])}
        return out

    def info_of(self, ids: Sequence[int]) -> dict[int, Row]:
        """The rows of these ids (for captions in JSON)."""
        if not ids:
            return {}
        col = quote_ident(self.columns.id)
        rows = self.fetch_all(f"SELECT {self._row_select()} FROM posts WHERE {col} IN (SELECT UNNEST(?::BIGINT[]))",
                              [[int(i) for i in ids]])
        return {int(r[0]): Row(*r) for r in rows}

    # -- helpers
    def _order(self, order_by: str | None, descending: bool) -> str:
        id_col = quote_ident(self.columns.id)
        if not order_by or order_by == "id":
            return f"{id_col} DESC" if descending else id_col
        column = self.columns.field(order_by) or (order_by if order_by in self.schema else None)
        if column is None:
            raise QueryError(f"cannot order by {order_by!r}: the table has no such column or field")
        return f"{quote_ident(column)} {'DESC' if descending else 'ASC'} NULLS LAST, {id_col}"

    def _row_select(self) -> str:
        parts = [quote_ident(self.columns.id)]
        for key in ("rating", "score", "width", "height", "ext", "date"):
            column = self.columns.field(key)
            parts.append(quote_ident(column) if column else "NULL")
        tag_cols = [_tag_text(c.name, c.is_list) for c in self.columns.tags.values()]
        parts.append("concat_ws(' ', " + ", ".join(tag_cols) + ")" if tag_cols else "''")
        return ", ".join(parts)


def _tag_text(name: str, is_list: bool) -> str:
    text = f"array_to_string({quote_ident(name)}, ' ')" if is_list else quote_ident(name)
    return f"nullif(trim({text}), '')"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__

