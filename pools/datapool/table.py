"""cheesechaser 0.2.2's table pools: a table (one row per file) says which archive and which file
in it hold each id, for datasets whose names do not give the id.

``TableBasedHfDataPool`` takes the table from ``_load_df()`` (cheesechaser's override point): a
pyarrow table, a pandas DataFrame (a script written for cheesechaser returns one) or rows as
dicts. ``SimpleTableHfDataPool`` reads a CSV or Parquet file of the repo with pyarrow, verified
and cached like an index: no pandas needed. Files are saved as ``<id><ext>`` unless
``mock_use_id=False``.
"""

from __future__ import annotations

import io
import os
import posixpath
import threading
from typing import Any, Iterator, List, Optional

from pools.base import DataLocation, FileUnrecognizableError, HfBasedDataPool
from pools.errors import FileMissing, IndexFormatError
from pools.transport.retry import RetryPolicy

MAX_TABLE_BYTES = 1 << 30  # a table of files held in memory: far past any real one (a few hundred MB)


def _n_path(path: str) -> str:
    """A path in a repo or archive, made comparable: ``./a/../b.png`` and ``b.png`` are ``/b.png``."""
    return posixpath.normpath(posixpath.join("/", str(path)))


def _rows(table: Any) -> Iterator[dict]:
    if hasattr(table, "to_pylist"):  # pyarrow
        return iter(table.to_pylist())
    if hasattr(table, "to_dict"):  # pandas
        return iter(table.to_dict("records"))
    return iter(table)


class TableBasedHfDataPool(HfBasedDataPool):
    """Ids, archives and files from a table: ``archive_column`` and ``file_in_archive_column`` of
    each row, its id in ``id_column``. Subclasses give the table by overriding ``_load_df``."""

    def __init__(self, data_repo_id: str, archive_column: str, file_in_archive_column: str,
                 id_column: str = 'id', data_revision: str = 'main', mock_use_id: bool = True,
                 hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        HfBasedDataPool.__init__(self, data_repo_id=data_repo_id, data_revision=data_revision,
                                 idx_repo_id=data_repo_id, idx_revision=data_revision, hf_token=hf_token,
                                 endpoint=endpoint, retry=retry)
        self._archive_column = archive_column
        self._file_in_archive_column = file_in_archive_column
        self._id_column = id_column
        self._mock_use_id = mock_use_id
        self._st: tuple[dict[int, str], dict[tuple[str, str], int]] | None = None
        self._st_lock = threading.Lock()

    def _load_df(self):
        raise NotImplementedError  # pragma: no cover

    def _get_st(self) -> tuple[dict[int, str], dict[tuple[str, str], int]]:
        """``(id -> archive, (archive, file) -> id)`` from the table, read once."""
        with self._st_lock:
            if self._st is None:
                to_archive: dict[int, str] = {}
                to_id: dict[tuple[str, str], int] = {}
                for row in _rows(self._load_df()):
                    rid, archive = int(row[self._id_column]), str(row[self._archive_column])
                    to_archive[rid] = archive
                    to_id[(_n_path(archive), _n_path(row[self._file_in_archive_column]))] = rid
                self._st = to_archive, to_id
        return self._st

    def _file_to_resource_id(self, tar_file: str, filename: str) -> int:
        rid = self._get_st()[1].get((_n_path(tar_file), _n_path(filename)))
        if rid is None:
            raise FileUnrecognizableError(f"Resource in tar {tar_file!r}'s file {filename!r} unrecognizable.")
        return rid

    def _request_possible_archives(self, resource_id) -> List[str]:
        archive = self._get_st()[0].get(int(resource_id))
        return [archive] if archive is not None else []

    def _get_dst_filename(self, location: DataLocation) -> str:
        if self._mock_use_id:
            return f"{location.resource_id}{os.path.splitext(location.filename)[1].lower()}"
        return HfBasedDataPool._get_dst_filename(self, location)


class SimpleTableHfDataPool(TableBasedHfDataPool):
    """The table is ``table_file`` (``.csv`` or ``.parquet``) of the data repo."""

    def __init__(self, data_repo_id: str, archive_column: str, file_in_archive_column: str,
                 table_file: str, id_column: str = 'id', data_revision: str = 'main',
                 mock_use_id: bool = True, hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        TableBasedHfDataPool.__init__(self, data_repo_id, archive_column, file_in_archive_column, id_column,
                                      data_revision, mock_use_id, hf_token, endpoint=endpoint, retry=retry)
        self._table_file = table_file

    def _load_df(self):
        """The table as a pyarrow table (``to_pylist`` gives its rows)."""
        ext = os.path.splitext(self._table_file.lower())[1]
        if ext not in (".csv", ".parquet"):
            raise RuntimeError(f"Unable to determine the reading operation of file {self._table_file!r}.")
        import pyarrow  # lazy: only table pools read tables
        import pyarrow.csv  # lazy: as above
        import pyarrow.parquet  # lazy: as above

        def parse(raw: bytes):
            reader = pyarrow.csv.read_csv if ext == ".csv" else pyarrow.parquet.read_table
            try:
                return reader(io.BytesIO(raw))
            except (pyarrow.ArrowException, OSError, ValueError) as err:  # never cached
                raise IndexFormatError(f"{self._table_file} of {self.data_repo_id} is not a readable "
                                       f"{ext[1:]} table ({err.__class__.__name__})") from None

        table = self.client.fetch_index(self.data_repo_id, self._table_file, self.resolve_revision(), parse,
                                        max_bytes=MAX_TABLE_BYTES)
        if table is None:
            raise FileMissing(f"{self._table_file} is not in {self.data_repo_id}")
        return table

