"""The ids a metadata table's query matches, fetched lazily in batches (``MetadataTable.ids``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from pools.metadata.columns import quote_ident
from pools.metadata.language import Compiled, QueryError

if TYPE_CHECKING:
    from pools.metadata.table import MetadataTable


class MatchingIds:
    """The ids a query matches, ascending, fetched from DuckDB in batches as they are iterated.

    ``len()`` is a count query, never a list. ``limit`` keeps the first N in ``order`` (by id by
    default); ``sample`` keeps N chosen by a hash of each id with ``seed`` (the same seed, the same
    ids, whatever the thread count). Duplicate and NULL ids are skipped.
    """

    def __init__(self, table: MetadataTable, where: Compiled, *, limit: int | None = None,
                 sample: int | None = None, seed: int = 0, order: str | None = None):
        for name, value in (("limit", limit), ("sample", sample)):
            if value is not None and value < 0:
                raise QueryError(f"{name} must not be negative")
        self.user_sql = False  # a user's --sql is in ``where``: its queries get the table's deadline
        self.table = table
        id_col = quote_ident(table.columns.id)
        # ids are whole numbers in [0, 2**62): a table's 5.5, inf, NaN or 1e19 is no id (skipped,
        # never an OverflowError, never the whole download refused for one row)
        rid = f"TRY_CAST({id_col} AS BIGINT)"
        base = (f"SELECT {rid} AS rid FROM posts WHERE ({where.where}) AND {rid} IS NOT NULL "
                f"AND {rid} = {id_col} AND {rid} >= 0 AND {rid} < {2 ** 62}")
        params = list(where.params)
        if sample is not None:
            base += f" ORDER BY hash(xor(hash({id_col}), ?::UBIGINT)), {id_col} LIMIT ?"
            params += [int(seed) & (2**64 - 1), int(sample)]
            if limit is not None:
                base = f"SELECT rid FROM ({base}) ORDER BY rid LIMIT ?"
                params.append(int(limit))
        elif limit is not None:
            base += f" ORDER BY {order or id_col} LIMIT ?"
            params.append(int(limit))
        self._sql = base
        self._params = params
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            (row,) = self.table.fetch_all(f"SELECT count(DISTINCT rid) FROM ({self._sql})", self._params,
                                          self.table.sql_deadline if self.user_sql else None)
            self._len = int(row[0])
        return self._len

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[int]:
        return self._iterate(f"SELECT rid FROM ({self._sql}) ORDER BY rid")

    def in_order(self) -> Iterator[int]:
        """The ids in the order ``sample`` or ``limit`` chose them (the hash order of a sample, the
        ``order`` of a limit), not sorted: a caller that skips some takes the next ones."""
        return self._iterate(f"SELECT rid FROM ({self._sql})")

    def _iterate(self, sql: str) -> Iterator[int]:
        last = None
        for (rid,) in self.table.fetch(sql, self._params, self.table.sql_deadline if self.user_sql else None):
            if rid is None or rid == last:
                continue
            last = rid
            yield int(rid)

    def __repr__(self):
        return f"MatchingIds({self.table.source!r})"
