"""The one helper every remote string goes through before it is shown."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pools.text import is_unsafe_text, shown


@pytest.mark.parametrize("raw, seen", [
    ("images/0001.tar", "images/0001.tar"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("t\x1b]0;title\x07", "t\\x1b]0;title\\x07"),
    ("c1\x9bx", "c1\\x9bx"),
    ("del\x7f", "del\\x7f"),
    ("rtl\u202eabc", "rtl\\u202eabc"),
    ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
    ("zw\u200bx", "zw\\u200bx"),
    ("new\nline", "new\\x0aline"),
    ("猫.png", "猫.png"),
])
def test_shown_escapes_what_a_terminal_would_act_on(raw, seen):
    assert shown(raw) == seen
    assert is_unsafe_text(raw) == (raw != seen)


def test_shown_is_bounded():
    out = shown("x" * 10_000, limit=50)
    assert len(out) == 50 and out.endswith("…")
    assert shown(b"\xff\x1b") == "\ufffd\\x1b"
    assert shown(12345) == "12345"


def test_shown_lines_keeps_line_breaks_and_escapes_the_rest():
    from pools.text import shown_lines

    text = "✗ Could not open a\x1b[2Jb\n\nerror: c\rd\u202e"
    assert shown_lines(text) == "✗ Could not open a\\x1b[2Jb\n\nerror: c\\x0dd\\u202e"
    assert not is_unsafe_text(shown_lines(text).replace("\n", ""))
    many = shown_lines("x\n" * 100, max_lines=3)
    assert many.split("\n") == ["x", "x", "x", "…"]
    assert all(len(line) <= 20 for line in shown_lines(("y" * 50 + "\n") * 2, limit=20).split("\n"))


def test_shown_is_idempotent():
    once = shown("a\x1b[2J\u202e\x9b[red]x[/]")
    assert shown(once) == once and "[red]x[/]" in once  # markup is left to the widgets


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=1, max_value=120))
def test_shown_never_lets_an_unsafe_character_through(text, limit):
    out = shown(text, limit)
    assert len(out) <= limit
    assert not is_unsafe_text(out.replace("…", ""))
    assert shown(text, None) == shown(shown(text, None), None)
