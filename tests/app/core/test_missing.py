"""The session's missing ids as runs: every id listed, counted once, and a bound that says so."""

from __future__ import annotations

from app.core import missing as missing_mod
from app.core.missing import MissingIds
from pools.ranges import IdList


def _residue_runs(modulus: int, first: int, last: int) -> IdList:
    """What a range leaves missing past a dataset's last id: one run per residue class."""
    ids = IdList()
    for r in range(modulus):
        start = first + (r - first) % modulus
        ids.append_run(start, modulus, (last - start) // modulus + 1)
    return ids


def test_a_huge_range_is_listed_whole_and_counted_once_across_jobs():
    m = MissingIds()
    big = _residue_runs(1000, 10_000, 4_000_000_000_000_000_000)
    m.add(1, big)
    m.add(2, IdList(range(3_000_000_000_000_000_000, 3_000_000_000_000_000_100)))
    union = m.union()
    assert union.complete
    assert union.runs == [(10_000, 4_000_000_000_000_000_000, (1, 2))]
    assert union.ids == len(big) == m.counts[1]


def test_overlapping_jobs_merge_into_one_row_with_both_jobs():
    m = MissingIds()
    m.add(1, tuple(range(10, 20)) + (50,))
    m.add(2, tuple(range(15, 25)))
    m.add(3, (70, 71))
    union = m.union()
    assert union.runs == [(10, 24, (1, 2)), (50, 50, (1,)), (70, 71, (3,))]
    assert union.ids == 18 and union.complete


def test_scattered_ids_past_the_bound_are_counted_not_stored_and_the_union_says_so(monkeypatch):
    monkeypatch.setattr(missing_mod, "RUNS_KEEP", 50)
    m = MissingIds()
    m.add(1, IdList(i * i for i in range(40)))  # ~20 runs: stored
    m.add(1, IdList(i * i for i in range(100, 300)))  # ~100 more runs: past the bound
    m.add(1, (1_000_000,))  # after a batch that did not fit, nothing more is stored
    assert m.counts[1] == 241 and m.stored(1) == 40
    assert m.cut_jobs() == [1]
    union = m.union()
    assert not union.complete and union.ids == 40


def test_the_listed_ranges_stop_at_their_limit():
    m = MissingIds()
    m.add(1, IdList(range(0, 200, 2)))  # 100 ranges of one id
    union = m.union(limit=10)
    assert len(union.runs) == 10 and not union.complete and union.ids == 10
    assert m.union(limit=100).complete
