"""What the TUI is asked to open, typed once for the CLI, the tests and the app.

No Textual import here: the lead's CLI builds an :class:`AppSettings` from its arguments and only
then pays for importing the app (``run_tui``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

DEFAULT_WORKERS = 8
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
    """Custom dataset presets from the config file (``app.config``), shown in the picker."""
    data_dir: Path | None = None
    """Where the session store lives (``app.sessions``); None: ``$CHEESECHASER_DATA_DIR`` or the
    user data dir."""
    extra_layers: tuple[tuple[int, str], ...] = ()
    """Further ``(modulus, template)`` layers tried after ``archive_templates`` (danbooru2023's updates)."""
    cluster: str | None = None
    """A Dask cluster the queue dialog can send jobs to (``defaults.cluster`` in the config)."""

    @property
    def can_queue(self) -> bool:
        return self.layout == "increment-id" or bool(self.archive_templates)

    def make_pool(self):
        """The engine pool for this repo (no network yet). Raises ValueError for a bad level."""
        from pools import ArchiveTemplateDataPool, IncrementIDDataPool

        if not self.repo:
            raise ValueError("no repo id")
        if self.extra_layers:
            from pools.combined import CombinedLayoutDataPool
            return CombinedLayoutDataPool(
                self.repo, data_revision=self.revision or "main", idx_repo_id=self.idx_repo or None,
                idx_revision=self.idx_revision or "main", hf_token=self.token or None,
                layers=tuple((1000, t) for t in self.archive_templates) + tuple(self.extra_layers),
                endpoint=self.endpoint or None, retry=self.retry)
        if self.archive_templates:
            return ArchiveTemplateDataPool(
                self.repo, data_revision=self.revision or "main", idx_repo_id=self.idx_repo or None,
                idx_revision=self.idx_revision or "main", archive_templates=self.archive_templates,
                hf_token=self.token or None, endpoint=self.endpoint or None, retry=self.retry)
        return IncrementIDDataPool(
            self.repo,
            data_revision=self.revision or "main",
            idx_repo_id=self.idx_repo or None,
            idx_revision=self.idx_revision or (self.revision if not self.idx_repo else "main") or "main",
            base_level=self.base_level,
            base_dir=self.base_dir,
            hf_token=self.token or None,
            endpoint=self.endpoint or None,
            retry=self.retry,
        )

    def with_repo(self, **changes) -> AppSettings:
        return replace(self, **changes)

    @property
    def hub_label(self) -> str:
        if self.endpoint_label:
            return self.endpoint_label
        if self.demo:
            return "demo hub (loopback)"
        return self.endpoint or os.environ.get("HF_ENDPOINT") or "huggingface.co"


def add_tui_arguments(parser: argparse.ArgumentParser) -> None:
    """The TUI's options, shared with the lead's CLI (``cheesechaser-tui`` without subcommand)."""
    group = parser.add_argument_group("open a dataset")
    group.add_argument("--demo", action="store_true",
                       help="open the embedded demo dataset on a loopback Hub (works offline)")
    group.add_argument("--repo", help="dataset repo id, e.g. deepghs/danbooru_newest")
    group.add_argument("--idx-repo", help="repo holding the indexes, if not the data repo")
    group.add_argument("--revision", default="main", help="revision of the data repo (default main)")
    group.add_argument("--idx-revision", default=None, help="revision of the index repo")
    group.add_argument("--base-dir", default="images", help="folder of the archives (default images)")
    group.add_argument("--base-level", default="3",
                       help="digits of the id that pick the archive: 3, or 3,4 to try 3 then 4")
    group.add_argument("--token", default=None,
                       help="Hugging Face token (default: HF_TOKEN or the huggingface_hub login)")
    group.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or the Hub)")
    group.add_argument("--dest", default=None,
                       help=f"destination folder for downloads (default: the config's, else {DEFAULT_DEST})")
    group.add_argument("--workers", type=int, default=None,
                       help=f"download workers (default: the config's, else {DEFAULT_WORKERS})")


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    from app.config import load_config

    config = load_config()  # ConfigError (a ValueError): one line naming the file and key
    demo = bool(getattr(args, "demo", False))
    token = getattr(args, "token", None)
    if token is None and not demo:
        token = default_token()
    return AppSettings(
        repo=check_repo_id(getattr(args, "repo", None)),
        idx_repo=check_repo_id(getattr(args, "idx_repo", None), "index repo id"),
        revision=getattr(args, "revision", None) or "main",
        idx_revision=getattr(args, "idx_revision", None),
        base_dir=getattr(args, "base_dir", None) or "images",
        base_level=parse_base_level(getattr(args, "base_level", None) or "3"),
        token=token,
        demo=demo,
        endpoint=getattr(args, "endpoint", None) or config.endpoint,
        dst_dir=getattr(args, "dest", None) or config.destination or DEFAULT_DEST,
        workers=max(1, int(getattr(args, "workers", None) or config.workers or DEFAULT_WORKERS)),
        presets=tuple(config.presets),
        cluster=config.cluster,
    )


def run_tui(args: argparse.Namespace) -> int:
    """Run the app until the user quits; the return value is the process exit code."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        from pools.text import shown

        print(f"cheesechaser-tui: error: {shown(exc, 500)}", file=sys.stderr)
        return 2
    from app.app import make_app  # Textual is imported only when the TUI really starts
    from app.widgets.graphics import detect_graphics

    detect_graphics()  # asks the terminal for Kitty / Sixel graphics: only possible before run()
    app = make_app(settings)
    app.run()
    return int(app.return_code or 0)
