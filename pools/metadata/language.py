"""The booru query language, compiled to a parameterised DuckDB WHERE clause.

As users type it on the sites::

    cat_ears solo            all of these tags (in any tag column)
    -comic                   none of these
    ~hat ~ribbon             any of these (every ~term joins one group)
    cat_*  *_ears            wildcards
    artist:name character:name copyright:name general:name meta:name   a tag in one column
    rating:g,s               g s q e (or general sensitive questionable explicit)
    score:>=10  score:10..100  score:..5  score:7  id:1,5,9  width:>=1024  height:<2000
    ext:png,webp             file extension
    date:>=2023-01-01  date:2023-01-01..2023-06-30

Any term but ``~`` ones may be negated with ``-``. Values never reach the SQL text: every one is a
parameter. A bad term raises :class:`QueryError`, whose one-line message quotes the term and where
it starts.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

from pools.metadata.columns import CATEGORIES, Columns, TagColumn, quote_ident

MAX_QUERY = 4000
MAX_TERMS = 200

RATINGS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}
_RATING_ALIASES = {**{k: k for k in RATINGS}, **{v: k for k, v in RATINGS.items()}, "safe": "s",
                   "nsfw": None}
NUMERIC_FIELDS = ("id", "score", "width", "height")
FIELDS = (*NUMERIC_FIELDS, "rating", "ext", "date", *CATEGORIES)
_EXT_ALIASES = {"jpeg": ("jpg", "jpeg"), "jpg": ("jpg", "jpeg")}
_CMP = re.compile(r"^(>=|<=|>|<|=)?(.*)$")
_TAG_OK = re.compile(r"^[^\s,]+$")


class QueryError(ValueError):
    """A query that cannot be compiled; ``term`` and ``position`` say which part and where."""

    def __init__(self, message: str, term: str = "", position: int = -1):
        self.term = term
        self.position = position
        where = f" at {term!r} (column {position + 1})" if term else ""
        super().__init__(f"bad query{where}: {message}")


@dataclass
class Compiled:
    """``where`` (SQL text with ``?`` placeholders) and its ``params``, in order."""

    where: str
    params: list[Any] = field(default_factory=list)

    def and_(self, other: "Compiled") -> "Compiled":
        if self.where == "TRUE":
            return other
        if other.where == "TRUE":
            return self
        return Compiled(f"({self.where}) AND ({other.where})", [*self.params, *other.params])


def _terms(text: str):
    for m in re.finditer(r"\S+", text):
        yield m.group(0), m.start()


def compile_query(text: str, columns: Columns, tags: Any = None) -> Compiled:
    """Compile ``text`` for a table with these ``columns``; an empty query matches every row.

    ``tags``, when given (a :class:`~pools.metadata.tagindex.TagIndex`), turns each tag term into
    tests on the table's indexed tag columns instead of searching the tag strings.
    """
    text = text or ""
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is {len(text)} characters long; at most {MAX_QUERY}")
    all_of: list[Compiled] = []
    any_of: list[Compiled] = []
    n = 0
    for term, pos in _terms(text):
        n += 1
        if n > MAX_TERMS:
            raise QueryError(f"more than {MAX_TERMS} terms", term, pos)
        negate = term.startswith("-")
        either = term.startswith("~")
        body = term[1:] if negate or either else term
        if not body or body in ("-", "~"):
            raise QueryError("a term needs a tag or a field after its '-' or '~'", term, pos)
        if body.startswith(("-", "~")):
            raise QueryError("use one of '-' (none of) or '~' (any of), once", term, pos)
        piece = _compile_term(body, columns, term, pos, tags)
        predicate = Compiled(f"coalesce({piece.where}, FALSE)", piece.params)
        if negate:
            all_of.append(Compiled(f"NOT {predicate.where}", predicate.params))
        elif either:
            any_of.append(predicate)
        else:
            all_of.append(predicate)
    if any_of:
        all_of.append(Compiled("(" + " OR ".join(p.where for p in any_of) + ")",
                               [x for p in any_of for x in p.params]))
    if not all_of:
        return Compiled("TRUE")
    return Compiled(" AND ".join(p.where for p in all_of), [x for p in all_of for x in p.params])


def _compile_term(body: str, columns: Columns, term: str, pos: int, tags: Any = None) -> Compiled:
    name, sep, value = body.partition(":")
    name = name.lower()
    if sep and name in FIELDS:
        if not value:
            raise QueryError(f"{name}: needs a value, e.g. {_example(name)}", term, pos)
        if name in CATEGORIES:
            cols = columns.tag_columns(name) or columns.tag_columns("tags")
            if not columns.tag_columns(name):
                raise QueryError(f"this table has no {name} tag column", term, pos)
            return _tag(value, cols, term, pos, tags, [name])
        column = columns.field(name)
        if column is None:
            raise QueryError(f"this table has no {name} column (map one with --columns {name}=COLUMN)", term, pos)
        col = quote_ident(column)
        if name in NUMERIC_FIELDS:
            return _numeric(name, col, value, term, pos)
        if name == "rating":
            return _rating(col, value, term, pos)
        if name == "ext":
            return _ext(col, value, term, pos)
        return _date(col, columns.field_types.get("date", ""), value, term, pos)
    if sep and (value[:1] in "<>=" or ".." in value) and not name.startswith(("*",)):
        raise QueryError(f"unknown field {name!r}; fields are {', '.join(FIELDS)}", term, pos)
    cols = columns.tag_columns()
    if not cols:
        raise QueryError("this table has no tag column (map one with --columns tags=COLUMN)", term, pos)
    return _tag(body, cols, term, pos, tags, list(columns.tags))


def _example(name: str) -> str:
    return {"rating": "rating:g,s", "ext": "ext:png,webp", "date": "date:>=2023-01-01",
            "score": "score:>=10", "id": "id:1000..2000", "width": "width:>=1024",
            "height": "height:>=1024"}.get(name, f"{name}:some_name")


def _tag(tag: str, cols: list[TagColumn], term: str, pos: int, tags: Any = None,
         categories: list[str] | None = None) -> Compiled:
    tag = tag.lower()
    if not _TAG_OK.match(tag) or tag.strip("*") == "":
        raise QueryError("a tag cannot be empty, hold spaces or commas, or be only '*'", term, pos)
    if tags is not None:
        return tags.predicate(tag, categories or [])
    parts: list[str] = []
    params: list[Any] = []
    if "*" in tag:
        pattern = "(?:^|\\s)" + ".*".join(re.escape(p) for p in tag.split("*")).replace(".*", "\\S*") + "(?:\\s|$)"
        for col in cols:
            parts.append(f"regexp_matches({_as_text(col)}, ?)")
            params.append(pattern)
    else:
        for col in cols:
            if col.is_list:
                parts.append(f"list_contains({quote_ident(col.name)}, ?)")
                params.append(tag)
            else:
                # the cheap substring test first; the exact-token test only on rows that pass it
                c = quote_ident(col.name)
                parts.append(f"(contains({c}, ?) AND contains(' ' || {c} || ' ', ?))")
                params.extend([tag, f" {tag} "])
    return Compiled("(" + " OR ".join(parts) + ")", params)


def _as_text(col: TagColumn) -> str:
    c = quote_ident(col.name)
    return f"array_to_string({c}, ' ')" if col.is_list else c


def _values(value: str, term: str, pos: int) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        raise QueryError("empty item in a comma list", term, pos)
    return items


def _parse_int(text: str, name: str, term: str, pos: int) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise QueryError(f"{name} needs a whole number, like {_example(name)}, not {text!r}", term, pos)
    return int(text)


def _numeric(name: str, col: str, value: str, term: str, pos: int) -> Compiled:
    return _compare(name, col, value, lambda t: _parse_int(t, name, term, pos), term, pos)


def _parse_date(text: str, term: str, pos: int) -> _dt.date:
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"date needs a day as YYYY-MM-DD, like date:>=2023-01-01, not {text!r}", term, pos) from None


def _date(col: str, sql_type: str, value: str, term: str, pos: int) -> Compiled:
    expr = f"CAST({col} AS DATE)" if sql_type.startswith(("DATE", "TIMESTAMP")) else f"TRY_CAST({col} AS DATE)"
    return _compare("date", expr, value, lambda t: _parse_date(t, term, pos), term, pos)


def _compare(name: str, col: str, value: str, parse, term: str, pos: int) -> Compiled:
    """``>=x``, ``<x``, ``x``, ``a..b``, ``a..``, ``..b`` and comma lists of those."""
    ors: list[str] = []
    params: list[Any] = []
    items = _values(value, term, pos)
    if len(items) > 1 and any(i[:1] in "<>=" for i in items):
        raise QueryError(f"{name}: a comparison like >= cannot be part of a comma list", term, pos)
    for item in items:
        if ".." in item:
            lo_text, _, hi_text = item.partition("..")
            if not lo_text and not hi_text:
                raise QueryError(f"{name}: a range needs an end, like {_example(name)}", term, pos)
            lo = parse(lo_text) if lo_text else None
            hi = parse(hi_text) if hi_text else None
            if lo is not None and hi is not None:
                if lo > hi:
                    raise QueryError(f"{name}: the range {item} is reversed; write {hi_text}..{lo_text}", term, pos)
                ors.append(f"{col} BETWEEN ? AND ?")
                params.extend([lo, hi])
            elif lo is not None:
                ors.append(f"{col} >= ?")
                params.append(lo)
            else:
                ors.append(f"{col} <= ?")
                params.append(hi)
            continue
        op, rest = _CMP.match(item).groups()
        if not rest:
            raise QueryError(f"{name}: {op or ''} needs a value, like {_example(name)}", term, pos)
        ors.append(f"{col} {op or '='} ?")
        params.append(parse(rest))
    return Compiled("(" + " OR ".join(ors) + ")", params)


def _rating(col: str, value: str, term: str, pos: int) -> Compiled:
    letters: list[str] = []
    for item in _values(value.lower(), term, pos):
        letter = _RATING_ALIASES.get(item, "?")
        if letter is None:  # nsfw: questionable and explicit
            letters.extend(["q", "e"])
        elif letter == "?":
            raise QueryError(f"rating is one of g, s, q, e (general, sensitive, questionable, explicit), "
                             f"not {item!r}", term, pos)
        else:
            letters.append(letter)
    values = sorted({x for letter in letters for x in (letter, RATINGS[letter])})
    return Compiled(f"{col} IN ({', '.join('?' * len(values))})", values)


def _ext(col: str, value: str, term: str, pos: int) -> Compiled:
    exts: set[str] = set()
    for item in _values(value.lower(), term, pos):
        item = item.lstrip(".")
        if not re.fullmatch(r"[a-z0-9]{1,10}", item):
            raise QueryError(f"ext needs file extensions like ext:png,webp, not {item!r}", term, pos)
        exts.update(_EXT_ALIASES.get(item, (item,)))
    values = sorted(exts)
    return Compiled(f"lower(ltrim({col}, '.')) IN ({', '.join('?' * len(values))})", values)
