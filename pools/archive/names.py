"""Which names of an index stand for which resource id, each name checked once.

The common shapes (``ID.ext``, ``./ID.ext``, ``dir/ID.ext``) take a fast path; every other name
gets the full checks (:func:`classify_name`: no ``..``, no absolute path, no control, C1, DEL or
bidi character, an integer stem). A job wants a few ids of an archive of ~10,000 files, so
:class:`NameTable` does not even map every name at first: it finds an id's names by searching the
joined names for its digits (every name of id ``X`` holds ``X``'s digits), and maps the whole
index only once many ids were asked for. The names the fast path does not take are found in one
pass over the names' character-class shapes (:func:`odd_lines`) and checked in full at once: they
are what a job reports as unrecognized.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable

from pools.archive.layout import MAX_ID_DIGITS, resource_id_of, safe_basename
from pools.text import is_unsafe_text

UNSAFE_NAME = "unsafe name (absolute, '..', control, C1, DEL or bidi characters)"
NO_ID = "name has no integer resource id"
_SIMPLE_DIR = re.compile(r"[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*")
# a line of the joined names that is not of a fast-path shape (same rules as fast_id)
_ODD_LINE = re.compile(r"^(?!(?:\./)?(?:[A-Za-z0-9_\-]+/)*[0-9]{1,%d}(?:\.[A-Za-z0-9]+)?$).*$" % MAX_ID_DIGITS,
                       re.M)
# the same shapes over a name's character classes (digit 0, letter a, "_" or "-" as _, else itself;
# anything else !): an index's names have a handful of distinct class shapes, each tested once
_CLASSES = bytes.maketrans(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
    b"0" * 10 + b"a" * 52 + b"__")
_CLASSES = bytes(c if c in b"0a_./\n" else ord("!") for c in _CLASSES)
_FAST_SHAPE = re.compile(rb"(?:\./)?(?:[0a_]+/)*0{1,%d}(?:\.[0a]+)?" % MAX_ID_DIGITS)
PROBES_BEFORE_MAP = 32  # ids looked up by search before the whole index is mapped
HITS_BEFORE_MAP = 256  # names holding an id's digits before a search gives up for the map


def fast_id(name: str) -> int | None:
    """The id of a name of a common shape (``ID.ext``, ``./ID.ext``, ``dir/ID.ext``), or None when
    the name needs the full checks. Never disagrees with them: a name it accepts is safe, and its
    id is the one :func:`classify_name` gives."""
    if name.startswith("./"):
        name = name[2:]
    head, slash, base = name.rpartition("/")
    if slash and not _SIMPLE_DIR.fullmatch(head):
        return None
    stem, dot, ext = base.partition(".")
    if not (stem.isascii() and stem.isdigit()) or len(stem) > MAX_ID_DIGITS:
        return None
    if dot and not (ext.isascii() and ext.isalnum()):
        return None
    return int(stem)


def classify_name(name: str, id_of: Callable[[str], int | None] = resource_id_of) -> tuple[int | None, str | None]:
    """``(resource id, None)`` for a usable name, ``(None, reason)`` otherwise: the full checks."""
    if not isinstance(name, str) or safe_basename(name) is None or is_unsafe_text(name):
        return None, UNSAFE_NAME
    try:
        rid = id_of(name)
    except ValueError:
        rid = None
    if rid is None or not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
        return None, NO_ID
    return rid, None


class NameTable:
    """``resource id -> names`` (in the index's order) for one index's ``files`` table."""

    def __init__(self, files: dict[str, Any], id_of: Callable[[str], int | None] | None):
        self._files = files
        self._id_of = id_of
        self._lock = threading.Lock()
        self._map: dict[int, Any] | None = None
        self._found: dict[int, list[str]] = {}
        self._probes = 0
        self._odd: dict[int, list[tuple[int, str]]] = {}
        self._text: str | None = None
        self.problems: list[tuple[str, str]] = []
        text = "\n".join(files) if id_of is None and files else None
        if text is None or text.count("\n") != len(files) - 1:  # a name holds a newline: map it all
            self._map, self.problems = scan(files, id_of)
            return
        self._text = text
        for start, name in odd_lines(text):
            rid, reason = classify_name(name)
            if rid is None:
                self.problems.append((name, reason))
            else:
                self._odd.setdefault(rid, []).append((start, name))

    def get(self, rid: int) -> list[str] | None:
        """The names of ``rid`` in the index's order, or None."""
        if self._map is None:
            found = self._found.get(rid)
            if found is not None:
                return found or None
            with self._lock:  # one search at a time: the map may replace the text meanwhile
                self._probes += 1
                found = self._search(rid) if self._map is None and self._probes <= PROBES_BEFORE_MAP else None
                if found is not None:
                    self._found[rid] = found
            if found is not None:
                return found or None
            self._build_map()
        got = self._map.get(rid)
        return None if got is None else ([got] if isinstance(got, str) else got)

    def ids(self):
        """Every id some name stands for, in the index's order."""
        self._build_map()
        return self._map.keys()

    def id_of_name(self, name: str) -> int | None:
        """The id ``name`` stands for, or None when it is set aside: the verdict of :func:`scan`."""
        rid = fast_id(name) if self._id_of is None else None
        if rid is None:
            rid, _ = classify_name(name, self._id_of or resource_id_of)
        return rid

    def items(self):
        """``(id, name or [names])`` for every id, in the index's order (the whole map)."""
        self._build_map()
        return self._map.items()

    def _search(self, rid: int) -> list[str] | None:
        """The names of ``rid`` found by searching the joined names for its digits; None when
        too many names hold them (a short id): the map is cheaper then."""
        text, digits = self._text, str(rid)
        hits = list(self._odd.get(rid, ()))
        pos = text.find(digits)
        seen = 0
        while pos != -1:
            seen += 1
            if seen > HITS_BEFORE_MAP:
                return None
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end == -1 else end
            name = text[start:end]
            if fast_id(name) == rid:
                hits.append((start, name))
            pos = text.find(digits, end)
        hits.sort()
        return [name for _, name in hits]

    def _build_map(self) -> None:
        with self._lock:
            if self._map is None:
                self._map, _ = scan(self._files, self._id_of)
                self._text, self._found, self._odd = None, {}, {}


def odd_lines(text: str) -> list[tuple[int, str]]:
    """``(offset, line)`` of the lines of ``text`` (names joined by newlines) that are not of a
    fast-path shape: those need the full checks. An ASCII text is read by its lines' class
    shapes, each distinct shape matched once (~10x faster than a regular expression per line)."""
    if not text.isascii():
        return [(m.start(), m.group(0)) for m in _ODD_LINE.finditer(text)]
    shapes = text.encode("ascii").translate(_CLASSES).split(b"\n")
    odd = {shape for shape in set(shapes) if not _FAST_SHAPE.fullmatch(shape)}
    if not odd:
        return []
    out, start = [], 0
    for shape, line in zip(shapes, text.split("\n")):
        if shape in odd:
            out.append((start, line))
        start += len(line) + 1
    return out


def scan(files: dict[str, Any], id_of: Callable[[str], int | None] | None):
    """Each name checked once: ``{id: name or [names]}`` and the ``(name, reason)`` set aside."""
    names: dict[int, Any] = {}
    problems: list[tuple[str, str]] = []
    setdefault = names.setdefault
    for name in files:
        rid = None
        if id_of is None:
            # inline fast path for the commonest shape, "ID.ext" at the top level
            stem, dot, ext = name.partition(".")
            if stem.isdigit() and stem.isascii() and len(stem) <= MAX_ID_DIGITS and \
                    (not dot or (ext.isalnum() and ext.isascii())):
                rid = int(stem)
            else:
                rid = fast_id(name)
        if rid is None:
            rid, reason = classify_name(name, id_of or resource_id_of)
            if rid is None:
                problems.append((name, reason))
                continue
        got = setdefault(rid, name)
        if got is not name:
            if isinstance(got, str):
                names[rid] = [got, name]
            else:
                got.append(name)
    return names, problems


