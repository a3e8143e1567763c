"""cheesechaser 0.2.2's table pools without pandas: a table of (id, archive, file) rows says where
each id is, whatever the names in the archives; files are saved as ``<id><ext>``."""

from __future__ import annotations

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pools.datapool as datapool
from app.hub.dataset import build_repo
from pools import IndexFormatError
from tests.support.peer import files_both_leave, needs_peer

ROWS = [(11, "packs/a.tar", "img/cat.PNG"), (12, "packs/a.tar", "img/dog.jpg"), (13, "packs/b.tar", "x/13.webp")]


def _blob(name: str) -> bytes:
    return name.encode() * 60


def _repo(hub_root, fmt: str = "parquet"):
    table = pa.table({"id": [r[0] for r in ROWS], "archive": [r[1] for r in ROWS], "file": [r[2] for r in ROWS]})
    buf = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buf)
    else:
        import pyarrow.csv as pcsv
        pcsv.write_csv(table, buf)
    by_name = {r[2]: r for r in ROWS}
    # the archives hold the files under names that give no id: only the table knows
    build_repo(hub_root, "t/table", {r[0]: {} for r in ROWS[:0]},
               extra_members={r[1]: {f: _blob(f) for f, rr in by_name.items() if rr[1] == r[1]} for r in ROWS},
               repo_files={f"meta/table.{fmt}": buf.getvalue()})


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_simple_table_pool_downloads_by_the_tables_ids(hub, hub_root, tmp_path, fmt):
    _repo(hub_root, fmt)
    pool = datapool.SimpleTableHfDataPool("t/table", "archive", "file", f"meta/table.{fmt}", endpoint=hub.url)
    report = pool.batch_download_to_directory([11, 12, 13, 14], str(tmp_path / "o"), silent=True)
    assert sorted(report.downloaded) == [11, 12, 13] and list(report.missing) == [14]
    got = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir() if p.is_file()}
    assert got == {"11.png": _blob("img/cat.PNG"), "12.jpg": _blob("img/dog.jpg"), "13.webp": _blob("x/13.webp")}


def test_a_subclass_giving_the_table_as_rows_is_honoured(hub, hub_root, tmp_path):
    _repo(hub_root)

    class Rows(datapool.TableBasedHfDataPool):
        def _load_df(self):
            return [{"pid": r[0], "tar": r[1], "member": r[2]} for r in ROWS]

    pool = Rows("t/table", "tar", "member", id_column="pid", mock_use_id=False, endpoint=hub.url)
    with pool.mock_resource(12, {"k": 1}) as (td, info):
        assert os.listdir(td) == ["dog.jpg"] and info == {"k": 1}


def test_a_table_that_is_not_parquet_is_a_clear_error(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/badtable", {1: {"1.png": b"x" * 100}}, repo_files={"meta/table.parquet": b"not parquet"})
    pool = datapool.SimpleTableHfDataPool("t/badtable", "archive", "file", "meta/table.parquet", endpoint=hub.url)
    with pytest.raises(IndexFormatError, match="not a readable parquet table"):
        pool._request_possible_archives(1)


@pytest.mark.peer
@needs_peer
def test_a_simple_table_pool_leaves_the_same_files_as_cheesechaser(hub, hub_root, tmp_path):
    _repo(hub_root, "csv")
    script = ("from {module}.datapool import SimpleTableHfDataPool\n"
              "p = SimpleTableHfDataPool('t/table', 'archive', 'file', 'meta/table.csv')\n"
              "p.batch_download_to_directory([11, 12, 13, 14], {dst!r}, max_workers=2, silent=True)\n")
    theirs, ours = files_both_leave(script, hub, tmp_path)
    assert theirs and ours == theirs
