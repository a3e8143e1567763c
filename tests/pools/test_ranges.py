"""The range parser (``pools.ranges.parse_ids``): its rules, and properties checked by hypothesis.

Hypothesis runs a bounded number of examples per property (no deadline: the machine is shared),
so the whole module stays a few seconds.
"""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pools import IdRanges, RangeError, parse_ids
from pools.ranges import MAX_DIGITS, MAX_ID
from pools.text import is_unsafe_text

BOUNDED = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- the rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, ids", [
    ("7_000_000", "7000000"),
    ("1_000-1_002, 9", "9, 1000-1002"),
    ("0, 7", "0, 7"),
    ("007", "7"),  # a leading zero is harmless in the first part: no comma before it
    ("1-3,0", "0-3"),
])
def test_underscores_separate_digits(text, ids):
    assert str(parse_ids(text)) == ids


@pytest.mark.parametrize("text, hint", [
    ("7,000,000", "write 7000000 or 7_000_000"),
    ("7, 000, 000", "write 7000000 or 7_000_000"),
    ("7,000,000-7,000,999", "write 7000000-7000999 or 7_000_000-7_000_999"),
    ("5, 1,000,500", "write 5, 1000500 or 5, 1_000_500"),
    ("1, 05", "without leading zeros"),
])
def test_a_leading_zero_after_a_comma_is_refused_with_a_hint(text, hint):
    with pytest.raises(RangeError) as err:
        parse_ids(text)
    message = str(err.value)
    assert "leading zero after a comma" in message and hint in message
    assert "\n" not in message


@pytest.mark.parametrize("text", [
    "1" * 5000,                      # crashed int() before: "Exceeds the limit (4300 digits)"
    "0-" + "9" * 5000,
    "1" * (MAX_DIGITS + 1),
    "0" * (MAX_DIGITS + 1),          # more than 19 digits, whatever their value
    str(2**63),
    f"0-{MAX_ID + 1}",
    "9" * MAX_DIGITS,
])
def test_ids_past_the_limit_are_one_bounded_line(text):
    with pytest.raises(RangeError, match="too large") as err:
        parse_ids(text)
    message = str(err.value)
    assert "\n" not in message and len(message) < 200


@pytest.mark.parametrize("text, needle", [
    ("7__000", "'_' goes between two digits"), ("7_", "'_' goes between two digits"),
    ("_7", "'_' goes between two digits"), ("7a", "not a number"), ("7,", "empty part"),
])
def test_misplaced_underscores_and_commas(text, needle):
    with pytest.raises(RangeError, match=needle):
        parse_ids(text)


def test_error_messages_never_carry_raw_control_characters():
    with pytest.raises(RangeError) as err:
        parse_ids("1, \x1b[2J\x1b]0;title\x07\u202e[red]x[/]")
    assert not is_unsafe_text(str(err.value)) and "\\x1b[2J" in str(err.value)


def test_a_non_string_is_a_range_error():
    with pytest.raises(RangeError, match="text, not int"):
        parse_ids(7)  # type: ignore[arg-type]


# ---- properties ------------------------------------------------------------------------------

ids = st.integers(min_value=0, max_value=MAX_ID)
spans = st.lists(st.tuples(ids, st.integers(min_value=0, max_value=10**6)), max_size=30).map(
    lambda pairs: IdRanges((lo, min(MAX_ID, lo + width)) for lo, width in pairs))
ALPHABET = "0123456789,-_ \t\n\x1b\x9b\x7f\u202e[]/abc+.;"


@BOUNDED
@given(spans)
def test_str_round_trips(ranges):
    if not ranges:
        with pytest.raises(RangeError, match="empty"):
            parse_ids(str(ranges))
        return
    assert parse_ids(str(ranges)) == ranges
    assert str(parse_ids(str(ranges))) == str(ranges)


@BOUNDED
@given(st.integers(min_value=0, max_value=MAX_ID))
def test_python_digit_grouping_with_underscores_is_read_as_one_id(n):
    assert list(parse_ids(f"{n:_}").ranges) == [(n, n)]


@BOUNDED
@given(st.integers(min_value=1000, max_value=MAX_ID))
def test_thousands_separators_are_never_read_as_ids_0(n):
    """``f"{n:,}"``, as the app prints ids: either refused with the right hint, or it has no
    zero-led group (then it is ids a, bbb, ccc: no group of it is silently turned into 0)."""
    text = f"{n:,}"
    groups = text.split(",")
    if any(g.startswith("0") for g in groups[1:]):
        with pytest.raises(RangeError) as err:
            parse_ids(text)
        assert f"write {n} or {n:_}" in str(err.value)
    else:
        assert sorted(parse_ids(text)) == sorted({int(g) for g in groups})


@BOUNDED
@given(st.text(alphabet=ALPHABET, max_size=200) | st.text(max_size=60))
def test_any_text_parses_or_is_one_safe_range_error(text):
    try:
        result = parse_ids(text)
    except RangeError as err:
        message = str(err)
        assert message and "\n" not in message and len(message) < 400
        assert not is_unsafe_text(message.replace("…", ""))
    else:
        assert isinstance(result, IdRanges) and result
        assert parse_ids(str(result)) == result


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=20))
def test_memory_follows_the_text_not_the_span(pairs):
    text = ", ".join(f"{min(a, b)}-{max(a, b)}" for a, b in pairs)
    tracemalloc.start()
    try:
        result = parse_ids(text)
        len(result), result.min, result.max, str(result)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # a span of 2**62 ids costs a few integers, never a list of them
