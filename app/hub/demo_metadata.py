"""``metadata.parquet`` of the demo dataset: one row per post with the Danbooru columns.

Consistent with the archives: a post with a sidecar ``<id>.json`` has the sidecar's rating, score,
tags and date; every post has the width, height and extension of its picture (the same seeded
posts :mod:`app.hub.demo_posts` draws once for the archives too). The table also lists posts this partial
mirror does not hold (ids ending in 48..99), as a real metadata table lists every post of a site,
so a query can match ids that no archive has. Written with DuckDB; no pyarrow needed.
"""

from __future__ import annotations

import json
import os
import random
import tempfile

import duckdb

from app.hub.demo_posts import (
    DEMO_BASE_LEVEL,
    DEMO_MAX_ID,
    DEMO_RESIDUES,
    DEMO_SEED,
    DemoPost,
    demo_ids,
    demo_post,
)
from app.hub.images import image_extension

__all__ = ["demo_metadata_files", "demo_posts", "METADATA_NAME"]

METADATA_NAME = "metadata.parquet"
_ARTISTS = ("pillow_artist", "gradient_painter", "shape_maker", "number_drawer", "demo_artist")
_NOT_HELD_SHARE = 0.5

_SCHEMA = ("id BIGINT, md5 VARCHAR, created_at TIMESTAMP, score INTEGER, rating VARCHAR, image_width INTEGER, "
           "image_height INTEGER, file_ext VARCHAR, tag_string_general VARCHAR, tag_string_character VARCHAR, "
           "tag_string_copyright VARCHAR, tag_string_artist VARCHAR, tag_string_meta VARCHAR")


def _post_row(post: DemoPost, seed: int) -> dict:
    rid = post.rid
    return {
        "id": rid, "md5": f"{random.Random(f'{seed}:md5:{rid}').getrandbits(128):032x}",
        "created_at": f"{post.created} 12:00:00", "score": post.score, "rating": post.rating[0],
        "image_width": post.width, "image_height": post.height, "file_ext": image_extension(post.fmt)[1:],
        "tag_string_general": " ".join(post.tags), "tag_string_character": "",
        "tag_string_copyright": "original", "tag_string_artist": _ARTISTS[rid % len(_ARTISTS)],
        "tag_string_meta": "",
    }


def demo_posts(seed: int = DEMO_SEED) -> list[dict]:
    """Every row of the table: the posts the archives hold and some they do not, by id."""
    held = set(demo_ids(seed))
    rng = random.Random(f"{seed}:not-held")
    ids = [i for i in range(1, DEMO_MAX_ID + 1)
           if i in held or (i % 10**DEMO_BASE_LEVEL not in DEMO_RESIDUES and rng.random() < _NOT_HELD_SHARE)]
    return [_post_row(demo_post(rid, seed), seed) for rid in ids]


def demo_metadata_files(seed: int = DEMO_SEED) -> dict[str, bytes]:
    """``{"metadata.parquet": bytes}`` for the demo repo's root (the same bytes every time)."""
    with tempfile.TemporaryDirectory(prefix="demo-metadata-") as tmp:
        rows = os.path.join(tmp, "rows.jsonl")
        with open(rows, "w", encoding="utf-8") as f:
            for row in demo_posts(seed):
                f.write(json.dumps(row) + "\n")
        out = os.path.join(tmp, METADATA_NAME)
        con = duckdb.connect(":memory:", config={"threads": 1})
        try:
            columns = ", ".join(f"'{name}': '{kind}'" for name, kind in
                                (part.split(" ") for part in _SCHEMA.split(", ")))
            con.execute(f"COPY (SELECT * FROM read_json(?, format='newline_delimited', columns={{{columns}}}) "
                        f"ORDER BY id) TO '{out}' (FORMAT parquet, COMPRESSION zstd)", [rows])
        finally:
            con.close()
        with open(out, "rb") as f:
            return {METADATA_NAME: f.read()}
