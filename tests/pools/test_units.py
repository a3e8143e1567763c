"""Pure units of the engine: the archive path rule, names to ids, range expressions, index checks."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from pools import ArchiveIndex, IdRanges, IndexFormatError, RangeError, archive_path, index_path, parse_ids
from pools.archive.layout import resource_id_of, safe_basename


@pytest.mark.parametrize("rid,level,expected", [
    (114514, 3, "images/0514.tar"),
    (114514, 4, "images/4/0514.tar"),
    (114514, 2, "images/014.tar"),
    (7, 3, "images/0007.tar"),
    (7, 6, "images/000/0007.tar"),
    (123456789, 5, "images/56/0789.tar"),
])
def test_archive_path_rule(rid, level, expected):
    assert archive_path(rid, level) == expected


def test_index_path_and_base_dir():
    assert archive_path(5, 3, "original/x/") == "original/x/0005.tar"
    assert index_path("images/0514.tar") == "images/0514.json"


@pytest.mark.parametrize("name,rid", [
    ("1000.png", 1000), ("./1000.png", 1000), ("sub/1000.png", 1000), ("1000.json", 1000),
    ("1000", 1000), ("README.txt", None), ("1000a.png", None), ("../../1000.png", None),
    ("/etc/1000.png", None), ("a/../../1000.png", None), ("12.tar.gz", None), ("-5.png", None),
    ("a\\1.png", None), ("", None),
])
def test_resource_id_of_names(name, rid):
    assert resource_id_of(name) == rid


def test_safe_basename_refuses_escapes():
    assert safe_basename("./a/b.png") == "b.png"
    for bad in ("../x.png", "/etc/x.png", "a/../../b.png", "x\x00.png", ".", ""):
        assert safe_basename(bad) is None


def test_parse_ids_forms():
    r = parse_ids(" 0-5, 1000-1003,7000 ")
    assert list(r) == [0, 1, 2, 3, 4, 5, 1000, 1001, 1002, 1003, 7000]
    assert len(r) == 11 and 1002 in r and 6 not in r
    assert str(parse_ids("3,1-2,2-4")) == "1-4"
    assert str(parse_ids("7")) == "7"


@pytest.mark.parametrize("text,needle", [
    ("5-1", "'5-1' is reversed"), ("abc", "'abc'"), ("1-2-3", "'1-2-3'"), ("-4", "'-4'"),
    ("", "empty"), ("1,,2", "empty part"), ("1, x-3", "'x-3'"),
])
def test_parse_ids_errors_name_the_part(text, needle):
    with pytest.raises(RangeError) as err:
        parse_ids(text)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_huge_range_is_lazy():
    tracemalloc.start()
    r = parse_ids("1-100000000")
    assert len(r) == 100_000_000
    assert r.residues(1000) == list(range(1000))
    assert r.count_with_residue(514, 1000) == 100_000
    first = []
    for rid in r.with_residue(514, 1000):
        first.append(rid)
        if len(first) == 3:
            break
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert first == [514, 1514, 2514]
    assert peak < 1_000_000


def test_residues_of_small_ranges():
    r = parse_ids("998-1002, 5005")
    assert r.residues(1000) == [0, 1, 2, 5, 998, 999]
    assert list(r.with_residue(0, 1000)) == [1000]
    assert IdRanges.of([3, 1, 2, 9]).ranges == ((1, 3), (9, 9))


def _index(files, filesize=10_000):
    return {"filesize": filesize, "hash": "x", "hash_lfs": "y", "files": files}


def test_index_sets_aside_unsafe_and_impossible_entries():
    sha = "a" * 64
    data = _index({
        "./1.png": {"offset": 512, "size": 10, "sha256": sha},
        "sub/1.json": {"offset": 1024, "size": 5, "sha256": sha},
        "../../2.png": {"offset": 2048, "size": 5, "sha256": sha},
        "/etc/3.png": {"offset": 2048, "size": 5, "sha256": sha},
        "a/../../4.png": {"offset": 2048, "size": 5, "sha256": sha},
        "5.png": {"offset": 9_999, "size": 50, "sha256": sha},
        "6.png": {"size": 5},
        "README.txt": {"offset": 3000, "size": 5, "sha256": sha},
    })
    index = ArchiveIndex.from_dict("images/0001.tar", data)
    assert sorted(index.by_id) == [1]
    assert [e.basename for e in index.by_id[1]] == ["1.png", "1.json"]
    reasons = dict(index.unrecognized)
    assert set(reasons) == {"../../2.png", "/etc/3.png", "a/../../4.png", "5.png", "6.png", "README.txt"}
    assert "unsafe" in reasons["../../2.png"] and "past the archive's end" in reasons["5.png"]
    assert index.id_min == index.id_max == 1 and index.n_files == 8


@pytest.mark.parametrize("raw", [b"not json {", json.dumps({"filesize": 3}).encode(), b"[]"])
def test_broken_index_raises_one_line_error(raw):
    with pytest.raises(IndexFormatError) as err:
        ArchiveIndex.from_bytes("images/0001.tar", raw)
    assert "images/0001.tar" in str(err.value) and "\n" not in str(err.value)


def test_two_entries_saved_under_one_name_keep_the_first_and_report_the_second():
    sha = "b" * 64
    index = ArchiveIndex.from_dict("images/0001.tar", _index({
        "a/1.png": {"offset": 512, "size": 10, "sha256": sha},
        "b/1.png": {"offset": 1024, "size": 10, "sha256": sha},
        "1.json": {"offset": 2048, "size": 10, "sha256": sha},
    }))
    assert [e.name for e in index.by_id[1]] == ["a/1.png", "1.json"]
    assert index.unrecognized == [("b/1.png", "duplicate file name: another entry is saved under the same name")]


def test_id_list_keeps_order_and_compresses_strided_runs():
    from pools import IdList

    ids = [rid for residue in range(20) for rid in range(residue, 1_000_000, 1000) if rid % 7]
    kept = IdList(ids)
    assert list(kept) == ids and len(kept) == len(ids)
    assert kept.runs < len(ids) // 4, "ids 1000 apart must share runs"
    assert IdList(range(0, 10**7, 1000)).runs == 1
    assert 1002 in kept and 1001 not in kept and 5_000_000 not in kept
    mixed = IdList([5, 3, 9, 10, 11, 11])
    assert list(mixed) == [5, 3, 9, 10, 11, 11] and mixed == [5, 3, 9, 10, 11, 11]
    assert not IdList() and list(IdList()) == []


def test_ids_past_the_limit_are_a_range_error_not_a_crash():
    from pools.ranges import MAX_ID

    assert len(parse_ids(f"0-{MAX_ID}")) == MAX_ID + 1
    with pytest.raises(RangeError, match="too large"):
        parse_ids("0-9999999999999999999")
