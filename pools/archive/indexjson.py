"""The JSON of an archive's index, read as ``json`` reads it, at a fraction of its cost.

A real index is ~1.3 MB of JSON for ~10,000 files, and a sparse job wants one or two of them. So
:func:`loads_lazy` decodes the document's frame and its ``files`` table's *names* with msgspec and
keeps every entry as its raw JSON text (a ``msgspec.Raw``: a slice of the document, not an object),
decoded by :func:`entry` only when someone looks that name up. That is about 4x cheaper than a whole
parse, and leaves ~10,000 small dicts fewer for the garbage collector to walk every collection.

Whatever the fast paths cannot read exactly as ``json`` would falls back to ``json``: a document
that is not ASCII (msgspec does not check the UTF-8 of a skipped value), a BOM, UTF-16, ``NaN``,
lone surrogates, numbers past a float, deep nesting. :func:`loads` is the whole parse (the TUI's
full list, and the fallback), msgspec first, ``json`` for what msgspec refuses.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:
    import msgspec
except ImportError:  # pragma: no cover - an optional speed-up
    msgspec = None

__all__ = ["loads", "loads_lazy", "entry", "is_raw", "PARSER_THREAD_BYTES"]

# a big document decoded whole is decoded on one parser thread: its dicts' tables are large
# ``malloc`` blocks, and made from the pool's dozen workers they spread over a dozen glibc arenas
# (+25 MiB of peak RSS on the sparse-real benchmark, measured with orjson). The lazy decode makes
# one table per index and no RSS difference; the hop would cost it ~1 ms of its ~2.5 ms.
PARSER_THREAD_BYTES = 256 * 1024
_REFUSED = object()
_parser_lock = threading.Lock()
_parser_pool: ThreadPoolExecutor | None = None

if msgspec is not None:
    class _Frame(msgspec.Struct):
        """An index with its entries left undecoded; other top-level keys are ignored, as a dict's are."""

        files: dict[str, msgspec.Raw]
        filesize: Any = None
        hash: Any = None
        hash_lfs: Any = None

    _RAW = msgspec.Raw
    _LAZY = msgspec.json.Decoder(_Frame)
    _GENERIC = msgspec.json.Decoder()
    _MSGSPEC_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError)
else:  # pragma: no cover
    _RAW = None


def loads(raw: bytes | str) -> Any:
    """The whole document, as ``json.loads`` gives it (``ValueError``/``RecursionError`` as it raises)."""
    if msgspec is not None:
        data = _on_parser(_GENERIC, raw)
        if data is not _REFUSED:
            return data
    return json.loads(raw)


def loads_lazy(raw: bytes | str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(frame, files)`` of an index whose entries stay raw until :func:`entry`, or None when the
    document needs the whole parse (not ASCII, no ``files`` object, anything msgspec refuses):
    ``frame`` holds ``filesize``, ``hash`` and ``hash_lfs`` as decoded."""
    if msgspec is None or not isinstance(raw, (bytes, str)) or not raw.isascii():
        return None
    got = _try(_LAZY, raw)
    if got is _REFUSED:
        return None
    return {"filesize": got.filesize, "hash": got.hash, "hash_lfs": got.hash_lfs}, got.files


def is_raw(value: Any) -> bool:
    """True for an entry :func:`loads_lazy` left undecoded."""
    return _RAW is not None and type(value) is _RAW


def entry(value: Any) -> Any:
    """An entry's value decoded (``json``'s reading where msgspec refuses it); others as they are."""
    if not is_raw(value):
        return value
    try:
        return _GENERIC.decode(value)
    except _MSGSPEC_ERRORS:
        try:
            return json.loads(bytes(value))
        except (ValueError, RecursionError):  # pragma: no cover - a part of a valid document
            return None


def _try(decoder, raw):
    try:
        return decoder.decode(raw)
    except _MSGSPEC_ERRORS:
        return _REFUSED


def _on_parser(decoder, raw):
    if len(raw) < PARSER_THREAD_BYTES:
        return _try(decoder, raw)
    return _parser().submit(_try, decoder, raw).result()


def _parser() -> ThreadPoolExecutor:
    global _parser_pool
    with _parser_lock:
        if _parser_pool is None:
            _parser_pool = ThreadPoolExecutor(1, thread_name_prefix="cheesechaser-index-parser")
        return _parser_pool
