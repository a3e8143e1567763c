"""The posts of the demo dataset ``demo/booru-mini``, drawn once: which ids exist, and each post's
picture format, tags, rating, score, size and date.

:mod:`app.hub.demo` writes the archives from these posts and :mod:`app.hub.demo_metadata` the
metadata table: both read the same :class:`DemoPost`, so the table agrees with the archives.
Deterministic: the same seed gives the same posts, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEMO_REPO = "demo/booru-mini"
DEMO_BASE_LEVEL = 2
DEMO_BASE_DIR = "images"
DEMO_VERSION = 2  # 2: metadata.parquet at the repo root
DEMO_MAX_ID = 4800
#: residues (id % 100) whose archive exists: images/000.tar .. images/047.tar
DEMO_RESIDUES = range(48)
DEMO_SEED = 20240601
DEMO_DELETED = 0.15
DEMO_SIDECAR = 0.20

_FORMATS = (("png", 0.40), ("jpeg", 0.35), ("webp", 0.25))
_TAGS = (
    "scenery", "no_humans", "sky", "cloud", "sunset", "night", "starry_sky", "ocean", "mountain",
    "forest", "flower", "cat", "bird", "abstract", "geometric", "circle", "triangle", "square",
    "gradient", "blue_theme", "red_theme", "green_theme", "purple_theme", "pastel_colors",
    "simple_background", "number", "original", "highres", "absurdres", "traditional_media",
)
_RATINGS = (("general", 0.7), ("sensitive", 0.2), ("questionable", 0.1))


@dataclass(frozen=True)
class DemoPost:
    """One post: ``sidecar`` says whether its archive holds a ``<id>.json`` beside the picture."""

    rid: int
    fmt: str
    sidecar: bool
    rating: str
    score: int
    tags: tuple[str, ...]
    width: int
    height: int
    created: str  # ``YYYY-MM-DD``


def demo_ids(seed: int = DEMO_SEED) -> list[int]:
    """Ids present in the demo, ascending (same list every time for the same seed)."""
    rng = random.Random(f"{seed}:deleted")
    return [i for i in range(1, DEMO_MAX_ID + 1)
            if i % 10**DEMO_BASE_LEVEL in DEMO_RESIDUES and rng.random() >= DEMO_DELETED]


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], weights=[w for _, w in weighted])[0]


def picture_size(rid: int, seed: int) -> tuple[int, int]:
    """The size :func:`app.hub.images.draw_image` gives the post's picture (its first two draws)."""
    rng = random.Random(f"{seed}:{rid}")
    return rng.randrange(96, 257, 8), rng.randrange(96, 257, 8)


def demo_post(rid: int, seed: int = DEMO_SEED) -> DemoPost:
    """The post ``rid``; a post without a sidecar still has tags (the table lists every post)."""
    rng = random.Random(f"{seed}:post:{rid}")
    fmt = _pick(rng, _FORMATS)
    sidecar = rng.random() < DEMO_SIDECAR
    draws = rng if sidecar else random.Random(f"{seed}:meta:{rid}")
    rating = _pick(draws, _RATINGS)
    score = draws.randrange(-3, 120)
    tags = tuple(sorted(draws.sample(_TAGS, draws.randrange(3, 9))))
    width, height = picture_size(rid, seed)
    created = f"2024-{1 + rid * 12 // (DEMO_MAX_ID + 1):02d}-{1 + rid % 28:02d}"
    return DemoPost(rid, fmt, sidecar, rating, score, tags, width, height, created)
