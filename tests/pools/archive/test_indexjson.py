"""An index read lazily (msgspec, entries left as raw JSON) reads exactly as ``json`` reads it.

Issue 9: a sparse job's CPU per file went mostly to parsing whole 1.3 MB indexes for one entry
each. ``pools.archive.indexjson`` decodes the names and leaves the entries raw; these properties hold it
to the reference reading (``json`` alone) on generated documents, hostile ones included: every
verdict (the error, the entries, the names set aside and why) is the same either way.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pools import ArchiveIndex, IndexFormatError
from pools.archive import indexjson
from pools.archive.names import _ODD_LINE, odd_lines

pytest.importorskip("msgspec")

SHA = "ab" * 32
NAMES = st.one_of(
    st.integers(0, 10**6).map(lambda i: f"{i}.webp"),
    st.integers(0, 10**6).map(lambda i: f"./{i}.png"),
    st.integers(0, 999).map(lambda i: f"dir/sub/{i}.jpg"),
    st.sampled_from(["../1.png", "/etc/2.png", "a\\3.png", "x.png", "4", "5.", ".6.png", "7.tar.gz", "",
                     "9" * 20 + ".png", "8\x1b.png", "1\u202e.png", "10.p-g", "11 .png", "dir//12.png", "a/./13.png",
                     "１４.png", "15.png\n", "16\"q.png"]),
    st.text(alphabet="0123456789./_-ab\\\"", max_size=12),
)
COUNTS = st.one_of(st.integers(0, 5000), st.integers(-5, -1), st.just(2**63), st.just(10**30),
                   st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(), st.just("12"))
ENTRIES = st.one_of(
    st.fixed_dictionaries({"offset": COUNTS, "size": COUNTS},
                          optional={"sha256": st.one_of(st.just(SHA), st.just(SHA.upper()), st.just("z" * 64),
                                                        st.integers(), st.none()),
                                    "extra": st.recursive(st.integers(), lambda c: st.lists(c, max_size=3), max_leaves=4)}),
    st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2), st.none(),
)


def _reading(doc: bytes):
    try:
        index = ArchiveIndex.from_bytes("images/0001.tar", doc)
    except IndexFormatError as err:
        return str(err)
    looked_up = {rid: (index.lookup(rid), index.problems_of(rid)) for rid in (0, 1, 4, 5, 7, 12, 13, 14, 15)}
    return (index.filesize, index.hash, index.hash_lfs, index.name_problems, looked_up,
            index.entries, index.unrecognized, index.n_files)


def _both(doc: bytes, monkeypatch):
    fast = _reading(doc)
    with monkeypatch.context() as m:
        m.setattr(indexjson, "msgspec", None)
        reference = _reading(doc)
    return fast, reference


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(NAMES, ENTRIES), max_size=12),
       filesize=COUNTS, ascii_only=st.booleans(), compact=st.booleans())
def test_generated_indexes_read_the_same(files, filesize, ascii_only, compact, monkeypatch):
    # pairs, not a dict: a name may come twice (the last one stands, in both readings)
    sep = (",", ":") if compact else (", ", ": ")
    body = sep[0].join(json.dumps(name, ensure_ascii=ascii_only) + sep[1] + json.dumps(value, ensure_ascii=ascii_only)
                       for name, value in files)
    doc = ("{" + f'"filesize"{sep[1]}{json.dumps(filesize)}{sep[0]}"files"{sep[1]}{{{body}}}' + "}").encode()
    fast, reference = _both(doc, monkeypatch)
    assert fast == reference


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10**6), junk=st.binary(min_size=1, max_size=3))
def test_damaged_indexes_read_the_same(cut, junk, monkeypatch):
    files = {f"{i}.webp": {"offset": 100 * i, "size": 50, "sha256": SHA} for i in range(20)}
    files["x/../13.png"] = {"offset": 0, "size": 1}
    good = json.dumps({"filesize": 10_000, "files": files}).encode()
    at = cut % len(good)
    doc = good[:at] + junk + good[at + len(junk):]  # a few bytes overwritten: often not JSON any more
    fast, reference = _both(doc, monkeypatch)
    assert fast == reference


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(NAMES, st.text(max_size=8)), max_size=30))
def test_odd_lines_by_shape_are_the_regular_expressions_lines(names):
    text = "\n".join(n.replace("\n", "") for n in names)
    assert odd_lines(text) == [(m.start(), m.group(0)) for m in _ODD_LINE.finditer(text)]


def test_a_non_ascii_index_takes_the_whole_parse():
    doc = json.dumps({"files": {"１.png": {"offset": 0, "size": 1}, "2.png": {"offset": 0, "size": 1}}},
                     ensure_ascii=False).encode()
    assert indexjson.loads_lazy(doc) is None  # msgspec would not check the UTF-8 of a skipped entry
    bad_utf8 = b'{"files": {"2.png": {"offset": 0, "size": 1, "x": "\xc0\x80"}}}'
    assert indexjson.loads_lazy(bad_utf8) is None
    with pytest.raises(IndexFormatError, match=re.escape("not valid JSON")):
        ArchiveIndex.from_bytes("images/0001.tar", bad_utf8)  # as json: not UTF-8, not an index
