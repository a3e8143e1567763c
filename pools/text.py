"""Strings that came from a dataset or a server, made safe to show.

Everything remote (index names, archive paths, error messages, ids typed from a file) passes
through :func:`shown` before it reaches a terminal, a log or a Textual widget: control characters
(C0, DEL, C1), bidi overrides and other invisible format characters become visible escapes
(``\\x1b``, ``\\u202e``), and the result is cut to a bounded length. Rich markup is not this
module's concern: widgets render the result as plain ``Text`` (or through ``rich.markup.escape``).

:func:`shown_lines` does the same line by line for panels and notifications; :func:`is_unsafe_text`
is the matching test for names that must never become files.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls, DEL, C1 controls; bidi embeddings, overrides and isolates; zero-width and other
# invisible format characters (category Cf), line/paragraph separators.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u200b-\u200d\u2028\u2029\u2060-\u2064\ufeff\ufff9-\ufffb]")

DEFAULT_LIMIT = 300


def _escape_char(match: re.Match) -> str:
    ch = match.group(0)
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def is_unsafe_text(text: str) -> bool:
    """True when ``text`` holds a character that must not reach a terminal or a file name."""
    if _UNSAFE.search(text):
        return True
    if text.isascii():  # every character <= 0x7f, and 0x00-0x1f and 0x7f were searched for
        return False
    # any other format/unassigned/surrogate/private character
    return any(unicodedata.category(c) in ("Cf", "Cs", "Co", "Cn") for c in text if ord(c) > 0x7e)


def shown(text: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """``text`` as it may be shown: unsafe characters escaped, at most ``limit`` characters.

    A cut string ends with ``…``. Non-strings are shown through ``str``; bytes are decoded with
    replacement characters first.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    if limit is not None and len(text) > limit * 4:
        text = text[: limit * 4]  # bound the work before escaping
    out = _UNSAFE.sub(_escape_char, text)
    if not out.isascii() and any(ord(c) > 0x7e for c in out):
        out = "".join(c if ord(c) <= 0x7e or unicodedata.category(c) not in ("Cf", "Cs", "Co", "Cn")
                      else f"\\u{ord(c):04x}" for c in out)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def shown_lines(text: object, limit: int | None = DEFAULT_LIMIT, max_lines: int | None = 50) -> str:
    """Like :func:`shown`, for text laid out on several lines (a panel, a notification).

    Each ``\\n``-separated line is escaped and cut to ``limit`` on its own; every other control
    character (``\\r`` included) is escaped. At most ``max_lines`` lines are kept.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    if limit is not None and max_lines is not None:
        text = text[: (limit * 4 + 1) * max_lines]  # bound the work before splitting
    lines = text.split("\n")
    cut = max_lines is not None and len(lines) > max_lines
    if cut:
        lines = lines[:max_lines]
    out = "\n".join(shown(line, limit) for line in lines)
    return out + "\n…" if cut else out


def plain_text(text: str) -> str:
    """``text`` with every control, bidi and invisible formatting character removed: what goes
    into a caption file or a sample that a terminal, an editor or a trainer will read."""
    return _UNSAFE.sub("", text)
