"""How numbers read, for the CLI and the TUI alike: one place decides plurals, units, separators.

- sizes are IEC everywhere (``0 B``, ``1.5 KiB``, ``20.9 MiB``), never "Bytes" or decimal MB;
- counts carry thousands separators (``2,369``) and a plural that agrees (``1 id``, ``2 ids``,
  ``1 unrecognized file``);
- durations: ``0.3 s``/``42 s`` under a minute, then ``1:02`` and ``1:02:03``; ETAs as ``m:ss``.

Nothing here imports Textual: the headless commands use it too.
"""

from __future__ import annotations

from pools import PoolError
from pools.errors import network_words
from pools.text import shown

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
NONE = "–"


def fmt_bytes(n: int | float | None) -> str:
    """An IEC size: ``0 B``, ``512 B``, ``1.5 KiB``, ``120 MiB``."""
    if n is None:
        return NONE
    n = float(n)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(n)} B"
            if round(abs(n), 1) >= 1024 and unit != _UNITS[-1]:
                n /= 1024
                continue  # 1023.96 KiB reads as 1.0 MiB, not "1024 KiB"
            return f"{n:.1f} {unit}" if round(abs(n), 1) < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def fmt_rate(bps: float | None) -> str:
    if not bps or bps <= 0:
        return NONE
    return f"{fmt_bytes(bps)}/s"


def fmt_progress_bytes(done: int, total: int | None) -> str:
    """``done / total`` of one transfer, or just ``done`` when the total is unknown."""
    return f"{fmt_bytes(done)} / {fmt_bytes(total)}" if total else fmt_bytes(done)


def fmt_duration(seconds: float | None) -> str:
    """A clock-style duration for ETAs and elapsed columns: ``0:07``, ``12:30``, ``1:02:03``."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return NONE
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_elapsed(seconds: float | None) -> str:
    """How long something took: ``0.3 s``, ``42 s``, then ``1:02`` / ``1:02:03``."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return NONE
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{int(round(seconds))} s" if round(seconds) < 60 else "1:00"
    return fmt_duration(seconds)


def fmt_count(n: int | None) -> str:
    return NONE if n is None else f"{n:,}"


def fmt_ratio(done: int, total: int) -> str:
    """``29/4,800``: both sides separated the same way."""
    return f"{done:,}/{total:,}"


def fmt_short(n: int) -> str:
    """A count in at most ~6 cells: 99,999 stays exact, then 150k, 1.51M, 10.0M, 1.20G, and on to
    T, P and E (a range of 4e18 ids reads 4.00E, not 4000000000G)."""
    if n < 1_000_000:
        return f"{n:,}" if n < 100_000 else f"{n // 1000}k"
    for div, unit in ((10**6, "M"), (10**9, "G"), (10**12, "T"), (10**15, "P"), (10**18, "E")):
        value = n / div
        if round(value) >= 1000 and unit != "E":
            continue  # the next unit up
        for digits, limit in ((2, 10), (1, 100)):
            if round(value, digits) < limit:
                return f"{value:.{digits}f}{unit}"
        return f"{value:.0f}{unit}" if value < 1000 else f"{n:.2e}"
    return str(n)  # pragma: no cover


def fmt_hash(h: str | None, width: int = 12) -> str:
    if not h:
        return NONE
    return h if len(h) <= width else h[:width]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 id``, ``2 ids``, ``1,000 files``, ``1 unrecognized file``; ``many`` for irregulars."""
    return f"{n:,} {word if n == 1 else (many or _plural_of(word))}"


def _plural_of(word: str) -> str:
    last = word.rsplit(" ", 1)[-1]
    if last.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def fmt_counts(downloaded: int, skipped: int, missing: int, failed: int,
               unrecognized: int | None = None) -> str:
    """The outcome of a job in one line, the same in the CLI summary and the TUI notice."""
    parts = [f"{downloaded:,} downloaded", f"{skipped:,} already present", f"{missing:,} missing",
             f"{failed:,} failed"]
    text = ", ".join(parts)
    if unrecognized is not None:
        text += f", {plural(unrecognized, 'unrecognized file')} skipped"
    return text


def mask_token(token: str | None) -> str:
    """A token is never shown: only whether one is set, and its kind."""
    if not token:
        return "no token"
    return "token hf_…" if token.startswith("hf_") else "token set"


ERROR_LIMIT = 500  # characters of an error message shown in a panel, a toast or a table cell


def error_text(exc: BaseException, token: str | None = None) -> str:
    """One line for a user: the engine's own message, or the exception's type and text.

    Engine errors never hold a token; anything else is scrubbed of it all the same. Messages
    quote remote names, so the line is escaped (``pools.text.shown``) and bounded.
    """

    words = network_words(type(exc).__name__, None)
    if isinstance(exc, PoolError):
        text = str(exc)
    elif words is not None:  # no Python class names for a network failure
        text = f"{words} ({exc})" if str(exc) else words
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    if token:
        text = text.replace(token, "***")
    return shown(text, ERROR_LIMIT)


def display_path(path: str) -> str:
    """A destination as the user typed it: relative to the working folder when inside it."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    if rel == "." or rel.startswith(".."):
        home = os.path.expanduser("~")
        return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path
    return rel
