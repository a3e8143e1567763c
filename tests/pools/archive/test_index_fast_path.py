"""The index's fast path for common names agrees with the full checks, and entries are built lazily.

Issue 9: a real index lists ~10,000 names; each is checked once, the common shapes (``ID.ext``,
``./ID.ext``, ``dir/ID.ext``) without the full safety checks, and entries are built only for the
ids looked up. Issue 10: control, C1, DEL and bidi characters make a name unsafe.
"""

from __future__ import annotations

import json

import pytest

from pools import ArchiveIndex, IndexFormatError
from pools.archive.index import NO_ID, UNSAFE_NAME, classify_name, fast_id
from pools.archive.layout import resource_id_of
from tests.support.reliability import UNSAFE_NAMES

SHA = "c" * 64
ODD_NAMES = UNSAFE_NAMES + [
    "1.png", "./1.png", "sub/1.png", "a/b/c/1.png", "a-b_c/0001.png", "1", "1.", "1.tar.gz", ".1.png",
    "./././1.png", "././1.png", "a//1.png", "a/./1.png", "./a/1.png", "1.PNG", "1.p-g", "1 .png",
    "１２.png", "١٢٣.png", "²³.png", "12\x1b[2J.png", "12\x9b.png", "12\x7f.png", "12\u202e.png",
    "\u202e12.png", "dir\u2066/12.png", "12.png\u200f", "12\x85.png", "+12.png", "-12.png", "12e3.png",
    "0x12.png", "9" * 19 + ".png", "9" * 20 + ".png", "1" * 5000 + ".png", "", "/", "./", ".", "a/",
    "a\\1.png", "C:\\1.png", "meta/info.csv", "README.txt", "1.json", "x/../1.png",
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=repr)
def test_the_fast_path_never_disagrees_with_the_full_checks(name):
    rid, reason = classify_name(name)
    fast = fast_id(name)
    if fast is not None:
        assert (fast, None) == (rid, reason), "a name the fast path takes must be safe, with the same id"
    index = ArchiveIndex.from_dict("images/0001.tar", {"files": {name: {"offset": 0, "size": 1, "sha256": SHA}}})
    if rid is None:
        assert index.unrecognized == [(name, reason)] and not index.by_id
    else:
        assert list(index.by_id) == [rid] and rid == resource_id_of(name)


@pytest.mark.parametrize("name", ["12\x1b[2J.png", "12\x9b.png", "12\x7f.png", "12\u202e.png",
                                  "dir\u2066/12.png", "13001.bin\n", "12\x00001.bin"], ids=repr)
def test_control_c1_del_and_bidi_names_are_unsafe(name):
    assert classify_name(name) == (None, UNSAFE_NAME)


def test_common_names_take_the_fast_path():
    assert [fast_id(n) for n in ("7.png", "./7.png", "images/7.webp", "a/b/0007.jpg", "7")] == [7] * 5
    assert classify_name("README.txt") == (None, NO_ID)


def _index_of(n: int, **extra) -> dict:
    files = {f"{i}.webp": {"offset": 512 * i, "size": 100, "sha256": SHA} for i in range(n)}
    files.update(extra)
    return {"filesize": 512 * (n + 10), "files": files}


def test_entries_are_built_only_for_the_ids_looked_up():
    index = ArchiveIndex.from_bytes("images/0001.tar", json.dumps(_index_of(10_000)))
    assert index.has(4321) and not index.has(10_001)
    [entry] = index.lookup(4321)
    assert (entry.name, entry.offset, entry.size, entry.basename) == ("4321.webp", 512 * 4321, 100, "4321.webp")
    assert index._full is None and len(index._built) == 1, "one id looked up, one entry built"
    assert index.lookup(4321)[0] is entry and index.lookup(10_001) == []
    # the whole index is still there for browsing, built on first use
    assert index.n_files == 10_000 and index.n_ids == 10_000 and len(index.entries) == 10_000
    assert index.id_min == 0 and index.id_max == 9_999 and index.by_id[4321] == [entry]


def test_a_bad_entry_is_set_aside_when_its_id_is_looked_up():
    index = ArchiveIndex.from_dict("images/0001.tar", _index_of(3, **{"5.png": {"size": 3}, "b/1.webp": {
        "offset": 0, "size": 1, "sha256": SHA}}))
    assert index.lookup(5) == [] and index.problems_of(5) == [("5.png", "index entry lacks a valid offset or size")]
    assert [e.name for e in index.lookup(1)] == ["1.webp"]
    assert index.problems_of(1) == [("b/1.webp", "duplicate file name: another entry is saved under the same name")]
    assert dict(index.unrecognized) == {"5.png": "index entry lacks a valid offset or size",
                                        "b/1.webp": "duplicate file name: another entry is saved under the same name"}


def test_an_index_nested_too_deeply_is_a_broken_index_not_a_recursion_error():
    raw = '{"files": {"1.png": ' + "[" * 200_000 + "]" * 200_000 + "}}"
    with pytest.raises(IndexFormatError, match="nested too deeply") as err:
        ArchiveIndex.from_bytes("images/0001.tar", raw)
    assert "\n" not in str(err.value)


def test_a_pool_with_its_own_name_rule_gets_it_for_every_name():
    def odd_rule(name):  # ids are written in hex here
        try:
            return int(name.split(".")[0], 16)
        except ValueError:
            return None
    index = ArchiveIndex.from_dict("x.tar", {"files": {"ff.png": {"offset": 0, "size": 1}, "10.png": {
        "offset": 1, "size": 1}}}, odd_rule)
    assert sorted(index.by_id) == [16, 255]


def _lookups(index, ids):
    return {rid: [e.name for e in index.lookup(rid)] for rid in ids}


@pytest.mark.parametrize("extra", [{}, {"7\n8.png": {"offset": 0, "size": 1}}], ids=["no newline", "a name with a newline"])
def test_looking_an_id_up_by_search_agrees_with_the_whole_map(extra):
    names = ODD_NAMES + [f"{i}.webp" for i in range(0, 3000, 7)] + ["0000123.png", "x/123.jpg", "123.", "y.z/123.png",
                                                                       "1230.png", "91234.png", "123"]
    files = {n: {"offset": 10 * i, "size": 5, "sha256": SHA} for i, n in enumerate(names)}
    files.update(extra)
    wanted = [0, 1, 7, 12, 13, 123, 1001, 1230, 2996, 4001, 5001, 99999, 10**18]
    searched = ArchiveIndex.from_dict("images/0001.tar", {"files": files})
    by_search = _lookups(searched, wanted)
    mapped = ArchiveIndex.from_dict("images/0001.tar", {"files": files})
    mapped.ids()  # the whole map first
    assert by_search == _lookups(mapped, wanted)
    assert by_search[123] == ["0000123.png", "x/123.jpg", "123.", "y.z/123.png", "123"], "every name, in order"
    assert searched.name_problems == mapped.name_problems
    assert {rid: searched.has(rid) for rid in wanted} == {rid: mapped.has(rid) for rid in wanted}


def test_a_sparse_lookup_never_maps_the_whole_index():
    index = ArchiveIndex.from_bytes("images/0001.tar", json.dumps(_index_of(10_000)))
    for rid in (4321, 777, 9999, 123_456):
        index.lookup(rid)
    assert index._names._map is None, "a few ids are found by search"
    for rid in range(100):
        index.has(rid)
    assert index._names._map is not None, "many ids: the index is mapped once"
    assert [e.name for e in index.lookup(4321)] == ["4321.webp"]


def _mixed_index() -> dict:
    """Well-formed entries in shuffled offset order, and every kind of bad entry and odd name."""
    import random

    rng = random.Random(9)
    files: dict = {}
    for i in range(400):
        files[f"{1000 + i}.webp"] = {"offset": rng.randrange(0, 10**6), "size": 10, "sha256": SHA}
    files.update({
        "5.png": {"offset": -1, "size": 1, "sha256": SHA},  # bad offsets at the smallest values
        "6.png": {"offset": True, "size": 1, "sha256": SHA},
        "7.png": {"offset": 0, "size": 10**9, "sha256": SHA},  # past the end
        "8.png": {"offset": 3, "size": 1, "sha256": "A" * 64},  # upper case: usable, lowered
        "9.png": {"offset": 4, "size": 1, "sha256": None},
        "10.png": {"offset": 5, "size": 1, "sha256": "z" * 64},
        "11.png": [1, 2],
        "a/12.png": {"offset": 6, "size": 1, "sha256": SHA},
        "b/12.png": {"offset": 2, "size": 1, "sha256": SHA},  # same basename: the second is set aside
        "12.json": {"offset": 7, "size": 1, "sha256": SHA},
        "..": {"offset": 1, "size": 1, "sha256": SHA},
        "x/../13.png": {"offset": 1, "size": 1, "sha256": SHA},
        "14.png": {"offset": 1, "size": "1", "sha256": SHA},
    })
    for name in ODD_NAMES:
        files.setdefault(name, {"offset": 8, "size": 1, "sha256": SHA})
    return {"filesize": 2 * 10**6, "files": files}


def test_every_entry_at_once_agrees_with_looking_each_id_up():
    whole = ArchiveIndex.from_dict("images/0001.tar", _mixed_index())
    one_by_one = ArchiveIndex.from_dict("images/0001.tar", _mixed_index())
    looked_up = {rid: one_by_one.lookup(rid) for rid in one_by_one.ids()}
    assert whole.by_id == {rid: got for rid, got in looked_up.items() if got}
    assert whole.entries == one_by_one.entries
    assert whole.unrecognized == one_by_one.unrecognized
    assert whole.lookup(8)[0].sha256 == "a" * 64 and whole.lookup(9)[0].sha256 is None
    assert [e.name for e in whole.lookup(12)] == ["a/12.png", "12.json"]
    assert {n for n, _ in whole.unrecognized} >= {"5.png", "6.png", "7.png", "10.png", "11.png", "b/12.png",
                                                   "..", "x/../13.png", "14.png"}


@pytest.mark.parametrize("n", [1, 5, 50, 100, 399, 5000])
def test_the_first_page_is_where_the_list_sorted_by_offset_starts(n):
    index = ArchiveIndex.from_dict("images/0001.tar", _mixed_index())
    first = index.first_entries(n)
    full = ArchiveIndex.from_dict("images/0001.tar", _mixed_index())
    assert first == sorted(full.entries, key=lambda e: e.offset)[:n]
    assert index.entries == full.entries  # building the page first changes nothing after
    assert index.first_entries(n) == first  # and the same once everything is built


ODD_DOCUMENTS = [
    b'{"files": {"1.png": {"offset": 0, "size": 1, "sha256": "%s"}, "1.png": {"offset": 5, "size": 1}}}' % SHA.encode(),
    b'{"filesize": 123456789012345678901234567890, "files": {"1.png": {"offset": 0, "size": 1}}}',
    b'{"files": {"1.png": {"offset": 123456789012345678901234567890, "size": 1}, "2.png": {"offset": 9223372036854775808, "size": 1}}}',
    b'{"filesize": 100, "files": {"1.png": {"offset": 1e400, "size": 1}, "2.png": {"offset": NaN, "size": 1}}}',
    '{"files": {"1.png": {"offset": 0, "size": 1}}}'.encode("utf-16"),
    b'\xef\xbb\xbf{"files": {"1.png": {"offset": 0, "size": 1}}}',
    b'{"files": {"\\ud800.png": {"offset": 0, "size": 1}, "2.png": {"offset": 1.5, "size": 1}}}',
    b'{"files": {"1.png": {"offset": -0.0, "size": 1}, "\\u0031.png": {"offset": 3, "size": 1}}}',
]


ASCII_ODD_DOCUMENTS = [  # read lazily (entries left raw), each entry decoded as json would
    b'{"files": {"1.png": {"offset": 0, "size": 1}, "2.png": [1, 2], "3.png": "x", "4.png": null}, "filesize": 9}',
    b'{"files": {"1.png": {"offset": 0, "size": 1}}, "files": {"2.png": {"offset": 1, "size": 1}}}',
    b'{"files": {"1.png": {"offset": 0, "size": 1}}, "files": 5}',
    b'{"files": 5, "files": {"2.png": {"offset": 1, "size": 1}}}',
    b'{"hash": 7, "hash_lfs": ["x"], "filesize": -1, "files": {"1.png": {"offset": 0, "size": 1e400}}}',
    b'{"files": {"1.png": {"offset": 0, "size": 1, "sha256": "%s"}, "x/../2.png": {"offset": 0, "size": 1}}}' % SHA.encode(),
    b'{"files": {"1.png": {"offset": 0, "size": 1, "extra": {"deep": [[[[1]]]]}}}}',
    b'{"files": {"1.png": {"offset": 0, "size": 1}}} trailing',
    b'{"files": {"1.png": {"offset": 01, "size": 1}}}',
    b'{"files": {"\\u0031.png": {"offset": 0, "size": 1}, "1.png": {"offset": 4, "size": 1}}}',
    b'{"files": {"1.png": {"offset": 0, "size": 1}}, "other": {"2.png": {"offset": 0, "size": 1}}}',
    b'[{"files": {}}]',
    b'{"files": {"1.png": {"offset": 0, "size": 1, "sha256": "\\u0041%s"}}}' % SHA[1:].encode(),
]


def _read(doc):
    try:
        index = ArchiveIndex.from_bytes("images/0001.tar", doc)
    except IndexFormatError as err:
        return str(err)
    return index.filesize, index.hash, index.hash_lfs, index.entries, index.unrecognized, index.n_files


def _read_sparse(doc, ids=(1, 2, 3, 4)):
    try:
        index = ArchiveIndex.from_bytes("images/0001.tar", doc)
    except IndexFormatError as err:
        return str(err)
    return {rid: (index.has(rid), index.lookup(rid), index.problems_of(rid)) for rid in ids}, index.name_problems


@pytest.mark.parametrize("on_parser_thread", [False, True])
@pytest.mark.parametrize("doc", ODD_DOCUMENTS + ASCII_ODD_DOCUMENTS, ids=range(len(ODD_DOCUMENTS + ASCII_ODD_DOCUMENTS)))
def test_msgspec_reads_every_index_as_json_does(doc, on_parser_thread, monkeypatch):
    from pools.archive import indexjson

    if on_parser_thread:
        monkeypatch.setattr(indexjson, "PARSER_THREAD_BYTES", 0)
    fast, sparse = _read(doc), _read_sparse(doc)
    monkeypatch.setattr(indexjson, "msgspec", None)  # json alone: the reference reading
    assert fast == _read(doc)
    assert sparse == _read_sparse(doc)


def test_a_real_sized_ascii_index_is_read_lazily():
    from pools.archive import indexjson

    pytest.importorskip("msgspec")
    doc = json.dumps(_index_of(10_000)).encode()
    index = ArchiveIndex.from_bytes("images/0001.tar", doc)
    assert index._lazy and sum(map(indexjson.is_raw, index._files.values())) == 10_000, "no entry decoded yet"
    assert [(e.name, e.offset) for e in index.lookup(4321)] == [("4321.webp", 512 * 4321)]
    assert sum(map(indexjson.is_raw, index._files.values())) == 10_000, "a lookup decodes its entry only"
    assert len(index.entries) == 10_000 and not index._lazy
    assert not any(map(indexjson.is_raw, index._files.values()))
    assert index.entries == ArchiveIndex.from_dict("images/0001.tar", json.loads(doc)).entries
