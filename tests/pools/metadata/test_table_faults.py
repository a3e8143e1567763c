"""A table's faults that are not the query's: a copy damaged after it was built is built again
once (never a traceback, never the same failure on every later run); a copy someone else could
have planted is not taken; a cell too large for the memory limit is one line, exit 1."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pools.metadata import MetadataTable, QueryError, TableReadError, open_table
from pools.metadata import tagindex
from tests.pools.metadata.test_tagindex import _big


def _answers(t) -> tuple:
    return t.count("three"), list(t.ids("tag_7")), [r.id for r in t.iter_rows("tag_3 artist_2")], \
        sorted(t.tags_of(list(range(0, 60, 7))))


def test_a_copy_damaged_after_its_build_is_built_again_and_answers_right(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    _big(path, 20_000)
    copies = tmp_path / "copies"
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        dest, expected = t.index_path, _answers(t)
    good = open(dest, "rb").read()
    rng = random.Random(7)
    at_query = []
    for _ in range(24):  # one byte changed: the header, the catalogue or a data block
        data = bytearray(good)
        data[rng.randrange(4096 * 3, len(data))] ^= 0xFF
        open(dest, "wb").write(bytes(data))
        with open_table(str(path), index=True, index_dir=str(copies)) as t:
            built_at_open = t.index_built
            assert _answers(t) == expected
            if not built_at_open and t.index_built:  # opened fine, found damaged by a query
                at_query.append(bytes(data))
        assert os.listdir(copies).count(os.path.basename(dest)) == 1
    assert at_query  # some damage shows only when a query reads the block
    # once built again in this open, the same damage again is one line, not a loop
    monkeypatch.setattr(MetadataTable, "_recover", lambda self, err: False)
    open(dest, "wb").write(at_query[0])
    with open_table(str(path), index=True, index_dir=str(copies)) as t, \
            pytest.raises(TableReadError, match=r"its copy .* is damaged \(Corrupt database file") as caught:
        _answers(t)
    assert "\n" not in str(caught.value)


def test_a_copy_that_is_not_the_users_own_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "t.parquet"
    _big(path, 500)
    copies = tmp_path / "copies"
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        dest = t.index_path
    os.chmod(dest, 0o666)  # anyone may write it: anyone may have
    with pytest.raises(ValueError, match="not yours or others may write it"):
        open_table(str(path), index=True, index_dir=str(copies))
    assert os.path.exists(dest)  # not ours to remove


def test_copy_names_are_keyed_so_a_planted_file_is_not_taken(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    _big(path, 500)
    copies = tmp_path / "copies"
    files, mapping = [str(path)], {}
    ours = tagindex.index_path(files, "parquet", mapping, tagindex.INDEX_BITS, str(copies))
    monkeypatch.setattr(tagindex, "names_key", lambda: b"")  # what someone without our key computes
    guessed = tagindex.index_path(files, "parquet", mapping, tagindex.INDEX_BITS, str(copies))
    monkeypatch.undo()
    assert ours != guessed
    # a "copy" planted at the guessable name, made from another table: never opened
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": [1], "tag_string_general": ["planted"]}), other)
    with open_table(str(other), index=True, index_dir=str(tmp_path / "elsewhere")) as planted:
        os.makedirs(copies, exist_ok=True)
        os.replace(planted.index_path, guessed)
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        assert t.index_path == ours and t.count("planted") == 0 and t.count("") == 500
    key = os.path.join(os.path.dirname(tagindex.cache_root()), "copy-names.key")
    assert os.stat(key).st_mode & 0o777 == 0o600


def test_a_cell_too_large_for_the_memory_limit_is_one_line_and_exit_1(tmp_path):
    bomb = tmp_path / "bomb.parquet"
    big = "x" * (100 * 2**20)  # 100 MiB a cell, a few KiB compressed
    pq.write_table(pa.table({"id": pa.array(range(24), pa.int64()), "tags": pa.array([big] * 24)}), bomb,
                   compression="zstd", row_group_size=4, use_dictionary=False)
    assert os.path.getsize(bomb) < 1_000_000
    run = subprocess.run([sys.executable, "-m", "app", "query", "demo/x", "--metadata", str(bomb), "--format", "csv"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "within 1GB of memory" in run.stderr
    with open_table(str(bomb)) as t, pytest.raises(QueryError):
        list(t.iter_rows(""))


def test_a_query_on_the_callers_cursor_also_builds_a_damaged_copy_again(tmp_path):
    """The Query screen passes its own cursor (to interrupt it): damage met there is repaired
    too, not reported on every later open."""
    path = tmp_path / "t.parquet"
    _big(path, 20_000)
    copies = tmp_path / "copies"
    with open_table(str(path), index=True, index_dir=str(copies)) as t:
        dest, expected = t.index_path, (t.count("three"), [r.id for r in t.rows("tag_3", limit=50)])
    good = open(dest, "rb").read()
    rng = random.Random(11)
    repaired = 0
    for _ in range(16):
        data = bytearray(good)
        data[rng.randrange(4096 * 3, len(data))] ^= 0xFF
        open(dest, "wb").write(bytes(data))
        with open_table(str(path), index=True, index_dir=str(copies)) as t:
            built_at_open = t.index_built
            cursor = t.cursor()
            got = (t.count("three", cursor=cursor), [r.id for r in t.rows("tag_3", limit=50, cursor=cursor)])
            assert got == expected
            repaired += not built_at_open and t.index_built
    assert repaired > 0
