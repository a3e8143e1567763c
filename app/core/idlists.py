"""Id lists in files: import (range expressions or one id per line) and export, for CLI and TUI.

A file may mix both forms: ``1-500`` on one line, ``1000`` on the next, ``7000, 7002`` on a third;
blank lines and ``#`` comments are skipped. Reading is bounded (a file is remote-ish input: a
script may pipe anything into ``--ids-from -``), and every error names the line it is on.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Iterable

from pools import IdRanges, RangeError, parse_ids
from pools.text import shown

MAX_BYTES = 256 * 1024 * 1024  # ~25 million ids one per line; past it the file is refused


class IdFileError(ValueError):
    """A file of ids that cannot be read or parsed; the message is one line."""


def parse_id_lines(lines: Iterable[str], source: str = "ids") -> IdRanges:
    ranges: list[tuple[int, int]] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ranges.extend(parse_ids(text).ranges)
        except RangeError as err:
            raise IdFileError(f"{source}, line {number}: {shown(err, 200)}") from None
    return IdRanges(ranges)


def read_ids(path: str, stdin: IO[str] | None = None) -> IdRanges:
    """The ids of ``path`` (``-`` reads standard input). Raises IdFileError with one line."""
    if path == "-":
        stream = stdin or sys.stdin
        text = stream.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise IdFileError(f"standard input holds more than {MAX_BYTES // 2**20} MiB of ids")
        return parse_id_lines(text.splitlines(), "standard input")
    try:
        if os.path.isdir(path):
            raise IdFileError(f"cannot read ids from {shown(path)}: it is a folder")
        if os.path.getsize(path) > MAX_BYTES:
            raise IdFileError(f"{shown(path)} holds more than {MAX_BYTES // 2**20} MiB of ids")
        with open(path, encoding="utf-8", errors="strict") as f:
            return parse_id_lines(f, shown(path))
    except UnicodeDecodeError:
        raise IdFileError(f"{shown(path)} is not a UTF-8 text file of ids") from None
    except OSError as err:
        raise IdFileError(f"cannot read ids from {shown(path)}: {err.strerror or err}") from None


def format_ids(ids: IdRanges | Iterable[int], one_per_line: bool = False) -> str:
    """``ids`` as a file's text: one range expression per line (``1-500``), or one id per line."""
    ranges = ids if isinstance(ids, IdRanges) else IdRanges.of(ids)
    if one_per_line:
        return "".join(f"{i}\n" for i in ranges)
    return "".join(f"{lo}\n" if lo == hi else f"{lo}-{hi}\n" for lo, hi in ranges.ranges)


def write_ids(path: str, ids: IdRanges | Iterable[int], one_per_line: bool = False) -> int:
    """Write ``ids`` to ``path`` atomically; returns how many ids. Raises OSError."""
    ranges = ids if isinstance(ids, IdRanges) else IdRanges.of(ids)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.part")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(format_ids(ranges, one_per_line))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(ranges)
