"""The DuckDB-native copy of a big table (pools.metadata.tagindex): built once, reused, rebuilt when
the file changes, never left half-written, and giving the same answers as the file itself."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tracemalloc

import duckdb
import pytest

from pools.metadata import QueryError, open_table, parse_mapping
from pools.metadata import table as table_module
from pools.metadata import tagindex
from tests.pools.metadata.test_language import CASES, table_dir  # noqa: F401 - the small table, its twins


def _copies(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _big(path, rows: int) -> None:
    duckdb.connect().execute(
        f"COPY (SELECT range AS id, CASE WHEN range % 2 = 0 THEN 'g' ELSE 's' END AS rating, range % 100 AS score, "
        f"concat_ws(' ', CASE WHEN range % 3 = 0 THEN 'three' END, 'tag_' || (range % 50)) AS tag_string_general, "
        f"'artist_' || (range % 7) AS tag_string_artist FROM range({rows})) TO '{path}'")


def test_the_copy_is_built_once_and_reused(table_dir, tmp_path):  # noqa: F811
    seen = []
    with open_table(str(table_dir / "posts.parquet"), index=True, index_dir=str(tmp_path),
                    on_index=lambda done, total: seen.append((done, total))) as t:
        assert t.index_built and t.index_path.startswith(str(tmp_path))
        assert seen[-1] == (6, 6)
        first = [list(t.ids(q)) for q, _ in CASES]
    assert _copies(tmp_path) == [os.path.basename(t.index_path)]  # no temporary file left
    with open_table(str(table_dir / "posts.parquet"), index=True, index_dir=str(tmp_path),
                    on_index=lambda *a: pytest.fail("built again")) as again:
        assert not again.index_built and again.index_path == t.index_path
        assert [list(again.ids(q)) for q, _ in CASES] == first == [e for _, e in CASES]


def test_a_changed_file_gets_a_new_copy(tmp_path):
    path = tmp_path / "t.parquet"
    _big(path, 100)
    copies = tmp_path / "copies"
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        assert t.count("three") == 34
        old = t.index_path
    _big(path, 200)
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        assert t.index_built and t.count("three") == 67
        assert _copies(copies) == [os.path.basename(t.index_path)] != [os.path.basename(old)]  # the old one went


def test_copies_nobody_opened_for_a_month_go_when_another_is_built(tmp_path):
    copies = tmp_path / "copies"
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    for path in (a, b, c):
        _big(path, 100)
    with open_table(str(a), index=True, index_dir=str(copies)) as ta:
        pass
    with open_table(str(b), index=True, index_dir=str(copies)) as tb:
        pass
    month_ago = os.path.getmtime(ta.index_path) - (tagindex.UNUSED_DAYS + 1) * 86400
    for path in (ta.index_path, tb.index_path):
        os.utime(path, (month_ago, month_ago))
    with open_table(str(b), index=True, index_dir=str(copies)) as again:  # b is used again: it stays
        assert not again.index_built
    with open_table(str(c), index=True, index_dir=str(copies)) as tc:
        assert tc.index_built
    assert _copies(copies) == sorted(os.path.basename(t.index_path) for t in (tb, tc))  # a's went
    with open_table(str(a), index=True, index_dir=str(copies)) as ta2:  # and is built again when asked
        assert ta2.index_built and ta2.count("three") == 34


def test_small_tables_are_queried_in_place_big_ones_from_a_copy(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    _big(path, 100)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with open_table(str(path)) as t:
        assert t.index_path is None
    monkeypatch.setattr(table_module, "MIN_INDEX_BYTES", 1)
    with open_table(str(path)) as t:
        assert t.index_path.startswith(str(tmp_path / "cache" / "cheesechaser-tui" / "tables"))
        assert t.count("three artist_0") == 5


def test_an_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    _big(path, 5000)
    copies = tmp_path / "copies"
    monkeypatch.setattr(tagindex, "BUILD_BATCH", 1000)
    cancel = threading.Event()

    def progress(done, total):
        assert total == 5000
        if done >= 2000:
            cancel.set()
    with pytest.raises(tagindex.IndexBuildCancelled):
        open_table(str(path), index=True, index_dir=str(copies), on_index=progress, cancel=cancel)
    assert _copies(copies) == []

    def boom(done, total):
        raise KeyboardInterrupt  # Ctrl-C mid-build
    with pytest.raises(KeyboardInterrupt):
        open_table(str(path), index=True, index_dir=str(copies), on_index=boom)
    assert _copies(copies) == []
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        assert t.count("tag_7") == 100 and t.count("") == 5000


def test_a_dead_builds_temporary_file_is_removed_and_a_damaged_copy_rebuilt(tmp_path):
    path = tmp_path / "t.parquet"
    _big(path, 100)
    copies = tmp_path / "copies"
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        dest = t.index_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = f"{dest}.{int(dead.stdout)}.abcd1234.building"
    with open(stale, "wb") as f:
        f.write(b"half a database")
    with open(dest, "wb") as f:
        f.write(b"not a database at all")
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        assert t.index_built and t.count("three") == 34
    assert _copies(copies) == [os.path.basename(dest)]


def test_wide_wildcards_use_a_semi_join(table_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(tagindex, "MAX_LIST_TEST", 0)
    with open_table(str(table_dir / "posts.parquet"), index=True, index_bits=0, index_dir=str(tmp_path)) as t:
        assert "rowid IN" in t.where("artist:artist_*").where
        for query, expected in CASES:
            assert list(t.ids(query)) == expected, query


@pytest.mark.parametrize("name", ["posts.csv", "posts.tsv", "posts.jsonl"])
def test_copies_of_other_formats_give_the_same_answers(table_dir, tmp_path, name):  # noqa: F811
    with open_table(str(table_dir / name), index=True, index_bits=3, index_dir=str(tmp_path)) as t:
        for query, expected in CASES:
            assert list(t.ids(query)) == expected, query


def test_a_list_column_copy(table_dir, tmp_path):  # noqa: F811
    mapping = parse_mapping("id=post_id,width=w,height=h,tags=tag_list")
    with open_table(str(table_dir / "list.parquet"), columns=mapping, index=True, index_bits=2,
                    index_dir=str(tmp_path)) as t:
        assert list(t.ids("cat_ears -comic")) == [1]
        assert list(t.ids("~hat ~ribbon")) == [3, 4, 7]
        assert list(t.ids("cat* width:>=1100")) == [2, 4]
        assert t.tags_of([4])[4]["tags"] == ["ribbon", "1boy", "cat", "kagamine_len", "vocaloid", "absurdres"]


def test_the_copy_is_read_only_and_its_own_columns_stay_hidden(table_dir, tmp_path):  # noqa: F811
    with open_table(str(table_dir / "posts.parquet"), index=True, index_dir=str(tmp_path)) as t:
        assert not any(name.startswith("__cc_") for name in t.schema)
        cur = t.cursor()
        for statement in ("DELETE FROM posts", "DROP TABLE __cc_dict", "CREATE TABLE x (a INT)"):
            with pytest.raises(duckdb.Error):
                cur.execute(statement)
        with pytest.raises(QueryError, match="cannot order by"):
            t.rows(order_by="__cc_b0")
        assert t.count(sql="tag_string_meta LIKE '%comic%'") == 2  # --sql sees the original columns
        assert [r.tags for r in t.rows("dog")] == ["dog solo hat artist_a"]


def test_a_million_matching_ids_stream_into_a_download(tmp_path):
    """A query's ids reach Downloader.submit lazily: its ``take`` keeps the stream, ``chunks`` cuts it,
    and nothing holds the million ints at once."""
    from pools.ids import IdRanges, chunks, take
    path = tmp_path / "t.parquet"
    duckdb.connect().execute(f"COPY (SELECT range AS id, 'a' AS tag_string_general FROM range(1000000)) TO '{path}'")
    with open_table(str(path), index=True, index_dir=str(tmp_path / "copies")) as t:
        ids = t.ids("a")
        assert len(ids) == 1_000_000
        stream = take(ids, {})
        assert not isinstance(stream, IdRanges)
        tracemalloc.start()
        try:
            total = 0
            for chunk in chunks(stream, 65_536):
                total += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert total == 1_000_000
    assert peak < 20 * 2**20, peak  # a list of a million ints alone is ~36 MB


def test_only_the_files_this_engine_made_are_ever_removed_from_an_index_dir(tmp_path):
    """index_dir=DIR once deleted a user's own old .duckdb files there; a kill -9 mid-build of one
    copy left its GBs until that same copy was built again."""
    copies = tmp_path / "copies"
    copies.mkdir()
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _big(a, 100)
    _big(b, 100)
    theirs = copies / "my-analysis.duckdb"
    theirs.write_bytes(b"a user's own database")
    old = os.path.getmtime(theirs) - (tagindex.UNUSED_DAYS + 5) * 86400
    os.utime(theirs, (old, old))
    with open_table(str(a), index=True, index_dir=str(copies)) as ta:
        dest_a = ta.index_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = f"{dest_a}.{int(dead.stdout)}.abcd1234.building"  # a's build killed: b's build sweeps it
    with open(stale, "wb") as f:
        f.write(b"half a database")
    with open_table(str(b), index=True, index_dir=str(copies)) as tb:
        assert tb.index_built
    assert theirs.read_bytes() == b"a user's own database" and not os.path.exists(stale)
