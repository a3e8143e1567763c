"""Which column of a metadata table holds what: mapped, not assumed.

The Danbooru schema (``id``, ``rating``, ``score``, ``image_width``, ``image_height``, ``file_ext``,
``created_at``, ``tag_string_general|character|copyright|artist|meta``) works out of the box; other
schemas name their columns through a small mapping (``{"width": "w", "tags": "tag_list"}``), from a
preset or the command line. Tag columns may hold space-separated strings or lists of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

#: query fields -> column names tried in order when the mapping does not name one
FIELD_CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "post_id"),
    "rating": ("rating",),
    "score": ("score", "fav_count"),
    "width": ("image_width", "width"),
    "height": ("image_height", "height"),
    "ext": ("file_ext", "ext", "format"),
    "date": ("created_at", "date", "created"),
}

#: tag categories -> column names tried in order
TAG_CANDIDATES: dict[str, tuple[str, ...]] = {
    "general": ("tag_string_general", "tags_general", "general_tags"),
    "character": ("tag_string_character", "tags_character", "character_tags"),
    "copyright": ("tag_string_copyright", "tags_copyright", "copyright_tags"),
    "artist": ("tag_string_artist", "tags_artist", "artist_tags"),
    "meta": ("tag_string_meta", "tags_meta", "meta_tags"),
}
#: a single column holding every tag, used when no category column exists
ALL_TAGS_CANDIDATES = ("tag_string", "tags")

CATEGORIES = tuple(TAG_CANDIDATES)
MAPPABLE = (*FIELD_CANDIDATES, *CATEGORIES, "tags")


@dataclass(frozen=True)
class TagColumn:
    name: str
    is_list: bool


@dataclass(frozen=True)
class Columns:
    """The columns a query can use in one opened table (``None`` where the table has none)."""

    id: str
    fields: dict[str, str | None]
    field_types: dict[str, str]
    tags: dict[str, TagColumn] = field(default_factory=dict)  # category (or "tags") -> column

    def field(self, name: str) -> str | None:
        return self.fields.get(name)

    def tag_columns(self, category: str | None = None) -> list[TagColumn]:
        if category is None:
            return list(self.tags.values())
        col = self.tags.get(category)
        return [col] if col is not None else []


class MappingError(ValueError):
    """A column mapping names a field or a column that does not exist."""


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"width=w,height=h,tags=tag_list"`` (the command-line form) as a dict."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise MappingError(f"bad column mapping {part.strip()!r}: write FIELD=COLUMN, e.g. width=image_width")
        out[key] = value
    return out


def resolve_columns(schema: Mapping[str, str], mapping: Mapping[str, str] | None = None) -> Columns:
    """The :class:`Columns` of a table with this ``schema`` (column name -> DuckDB type)."""
    mapping = dict(mapping or {})
    for key, column in mapping.items():
        if key not in MAPPABLE:
            raise MappingError(f"unknown field {key!r} in the column mapping; fields are {', '.join(MAPPABLE)}")
        if column not in schema:
            raise MappingError(f"the column mapping names {column!r} for {key}, but the table has no such column")
    lower = {name.lower(): name for name in schema}

    def pick(key: str, candidates: tuple[str, ...]) -> str | None:
        if key in mapping:
            return mapping[key]
        for name in candidates:
            if name in lower:
                return lower[name]
        return None

    fields = {key: pick(key, names) for key, names in FIELD_CANDIDATES.items()}
    if fields["id"] is None:
        raise MappingError("the table has no id column; name it with a mapping such as id=post_id")
    tags: dict[str, TagColumn] = {}
    for category, names in TAG_CANDIDATES.items():
        column = pick(category, names)
        if column is not None:
            tags[category] = TagColumn(column, schema[column].endswith("[]"))
    all_tags = pick("tags", ALL_TAGS_CANDIDATES) if "tags" in mapping or not tags else None
    if all_tags is not None:
        tags["tags"] = TagColumn(all_tags, schema[all_tags].endswith("[]"))
    types = {key: schema[col].upper() for key, col in fields.items() if col is not None}
    return Columns(id=fields["id"], fields=fields, field_types=types, tags=tags)


def quote_ident(name: str) -> str:
    """A column name as a DuckDB identifier (never spliced raw into SQL)."""
    return '"' + name.replace('"', '""') + '"'
