"""Short, stable renderings of sizes, rates, durations and hashes for tables and status lines."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def fmt_bytes(n: int | float | None) -> str:
    if n is None:
        return "–"
    n = float(n)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if abs(n) < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def fmt_rate(bps: float | None) -> str:
    if not bps or bps <= 0:
        return "–"
    return f"{fmt_bytes(bps)}/s"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or seconds != seconds:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_count(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def fmt_short(n: int) -> str:
    """A count in at most ~6 cells: 999,999 stays exact, then 1.51M, 10.0M, 1.20G."""
    if n < 1_000_000:
        return f"{n:,}" if n < 100_000 else f"{n // 1000}k"
    for div, unit in ((10**9, "G"), (10**6, "M")):
        if n >= div:
            value = n / div
            for digits, limit in ((2, 10), (1, 100)):
                if round(value, digits) < limit:
                    return f"{value:.{digits}f}{unit}"
            return f"{value:.0f}{unit}"
    return str(n)  # pragma: no cover


def fmt_hash(h: str | None, width: int = 12) -> str:
    if not h:
        return "–"
    return h if len(h) <= width else h[:width]


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


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
    from pools import PoolError
    from pools.text import shown

    text = str(exc) if isinstance(exc, PoolError) else f"{type(exc).__name__}: {exc}"
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
