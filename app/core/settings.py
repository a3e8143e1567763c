"""What the TUI is asked to open, typed once for the CLI, the tests and the app.

No Textual and no argparse here: :mod:`app.cli` builds an :class:`AppSettings` from its arguments
and only then pays for importing the app (``run_tui``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from app.core.datasets import DatasetSpec

DEFAULT_WORKERS = 12  # the engine's and the command line's default too
DEFAULT_DEST = "downloads"


def default_token() -> str | None:
    """The token huggingface_hub would use: ``HF_TOKEN`` first, then the stored login."""
    token = os.environ.get("HF_TOKEN") or None
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token() or None
    except Exception:  # a broken token file must not stop the app from starting
        return None


def parse_base_level(text: str | int | list[int]) -> int | list[int]:
    """``"3"`` -> 3, ``"3,4"`` or ``"[3,4]"`` -> [3, 4] (try level 3, then 4)."""
    if isinstance(text, int):
        return text
    if isinstance(text, list):
        return text[0] if len(text) == 1 else list(text)
    parts = [p.strip() for p in str(text).strip().strip("[]").split(",") if p.strip()]
    if not parts:
        raise ValueError("base level is empty")
    levels: list[int] = []
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= 9:
            raise ValueError(f"base level must be a number from 1 to 9, got {part!r}")
        levels.append(int(part))
    return levels[0] if len(levels) == 1 else levels


def check_repo_id(repo: str | None, label: str = "repo id") -> str | None:
    """``repo`` if it is a valid dataset repo id (``owner/name``); ValueError with one line if not."""
    if repo is None:
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
        if "/" not in repo:
            raise HFValidationError("expected owner/name")
    except HFValidationError:
        raise ValueError(f"{label} {repo!r} is not valid: expected 'owner/name'") from None
    return repo


def format_base_level(level: int | list[int]) -> str:
    return ",".join(str(x) for x in level) if isinstance(level, list) else str(level)


@dataclass
class AppSettings:
    """Everything the app needs to start; the token never shows in ``repr``."""

    repo: str | None = None
    idx_repo: str | None = None
    revision: str = "main"
    idx_revision: str | None = None
    base_dir: str = "images"
    base_level: int | list[int] = 3
    token: str | None = field(default=None, repr=False)
    demo: bool = False
    endpoint: str | None = None
    dst_dir: str = DEFAULT_DEST
    workers: int = DEFAULT_WORKERS
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    demo_root: Path | None = None
    """Where ``--demo`` writes its dataset; None means ``app.hub.demo.demo_cache_dir()``."""
    endpoint_label: str | None = None
    """How the endpoint is shown; lets snapshots hide a random loopback port."""
    retry: Any = field(default=None, repr=False, compare=False)
    """A ``pools.RetryPolicy`` for the pool and the downloader (None: the engine's default)."""
    layout: str = "increment-id"
    """``"increment-id"`` (``id % 10**L``) or ``"data-XYZ"`` (``archive_templates`` name the archives)."""
    archive_templates: tuple[str, ...] = ()
    """For ``data-XYZ`` layouts: archive paths from ``{residue}`` = id % 1000, tried in order."""
    presets: tuple = field(default=(), compare=False)
    """Custom dataset presets from the config file (``app.core.config``), shown in the picker."""
    data_dir: Path | None = None
    """Where the session store lives (``app.core.sessions``); None: ``$CHEESECHASER_DATA_DIR`` or the
    user data dir."""
    extra_layers: tuple[tuple[int, str], ...] = ()
    """Further ``(modulus, template)`` layers tried after ``archive_templates`` (danbooru2023's updates)."""
    cluster: str | None = None
    """A Dask cluster the queue dialog can send jobs to (``defaults.cluster`` in the config)."""
    dataset_class: str | None = None
    """One of cheesechaser's dataset classes (a preset's): its layout instead of the fields above."""

    @property
    def can_queue(self) -> bool:
        return self.layout == "increment-id" or bool(self.archive_templates) or bool(self.dataset_class)

    def dataset(self) -> DatasetSpec:
        """The repo and layout these settings open (see :mod:`app.core.datasets`)."""
        if not self.repo:
            raise ValueError("no repo id")
        return DatasetSpec(
            repo=self.repo, idx_repo=self.idx_repo or None, revision=self.revision or "main",
            idx_revision=self.idx_revision, base_dir=self.base_dir, base_level=self.base_level,
            archive_templates=tuple(self.archive_templates), extra_layers=tuple(self.extra_layers),
            endpoint=self.endpoint or None, dataset_class=self.dataset_class, token=self.token or None,
            retry=self.retry)

    def make_pool(self):
        """The engine pool for this repo (no network yet). Raises ValueError for a bad level."""
        return self.dataset().make_pool()

    def with_repo(self, **changes) -> AppSettings:
        return replace(self, **changes)

    @property
    def hub_label(self) -> str:
        if self.endpoint_label:
            return self.endpoint_label
        if self.demo:
            return "demo hub (loopback)"
        return self.endpoint or os.environ.get("HF_ENDPOINT") or "huggingface.co"
