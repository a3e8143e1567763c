"""The config file: defaults (destination, workers, endpoint) and custom dataset presets.

TOML, read with ``tomllib``, at ``$CHEESECHASER_CONFIG`` or
``platformdirs.user_config_dir("cheesechaser-tui")/config.toml``; a missing file is no config.
Anything wrong is one line naming the file and the key (:class:`ConfigError`)::

    [defaults]
    destination = "~/datasets/pulled"
    workers = 12
    endpoint = "https://hf-mirror.example"
    cluster = "local:2"          # or "tcp://scheduler:8786": the queue dialog can send jobs there

    [[presets]]
    name = "team-mirror"
    repo = "team/danbooru-mirror"
    base_level = [3, 4]          # or 3
    base_dir = "images"
    idx_repo = "team/danbooru-mirror-index"   # optional
    notes = "our copy"

    [[presets]]
    name = "old-layout"
    repo = "team/old"
    layout = "data-XYZ"
    templates = ["original/data-0{residue:03d}.tar"]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from app.core.catalogue import DEMO, PRESETS, Preset
from app.core.settings import check_repo_id, parse_base_level
from pools.archive.layout import archive_template_problem
from pools.text import shown

APP_NAME = "cheesechaser-tui"
CONFIG_ENV = "CHEESECHASER_CONFIG"
MAX_WORKERS = 64
MAX_BYTES = 1024 * 1024
_DEFAULT_KEYS = {"destination", "workers", "endpoint", "cluster"}
_PRESET_KEYS = {"name", "repo", "base_level", "base_dir", "idx_repo", "layout", "templates", "notes",
                "access"}


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the file and the key."""


@dataclass
class Config:
    path: Path | None = None
    destination: str | None = None
    workers: int | None = None
    endpoint: str | None = None
    cluster: str | None = None  # a Dask cluster for the queue dialog: local:N or tcp://...
    presets: list = field(default_factory=list)  # app.core.catalogue.Preset

    def preset_for(self, repo: str):
        return next((p for p in self.presets if p.repo == repo), None)


def config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def load_config(path: str | os.PathLike | None = None) -> Config:
    """The config at ``path`` (default :func:`config_path`); an empty Config when there is none."""
    path = Path(path) if path is not None else config_path()
    where = shown(str(path))
    try:
        if path.is_dir():
            raise ConfigError(f"config {where}: is a folder, not a file")
        if not path.exists():
            return Config(path=None)
        if not path.is_file():  # a FIFO would hang start-up, a device has no end
            raise ConfigError(f"config {where}: not a regular file")
        with open(path, "rb") as f:  # whatever st_size says (a link to /dev/zero says 0)
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"config {where}: larger than {MAX_BYTES // 1024} KiB")
        data = tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ConfigError(f"config {where}: nested too deep to be a config") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config {where}: not valid TOML: {shown(err, 200)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {where}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"config {where}: cannot be read: {err.strerror or err}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    where = shown(str(path)) if path is not None else "config"
    fail = lambda key, problem: ConfigError(f"config {where}: {key} {problem}")  # noqa: E731
    unknown = set(data) - {"defaults", "presets"}
    if unknown:
        raise fail(sorted(unknown)[0], "is not a known section (defaults, presets)")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail("defaults", "must be a table ([defaults])")
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            raise fail(f"defaults.{key}", f"is not a known key ({', '.join(sorted(_DEFAULT_KEYS))})")
    config = Config(path=path)
    if "destination" in defaults:
        dest = defaults["destination"]
        if not isinstance(dest, str) or not dest.strip():
            raise fail("defaults.destination", "must be a folder path (a non-empty string)")
        config.destination = os.path.expanduser(dest)
    if "workers" in defaults:
        workers = defaults["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise fail("defaults.workers", f"must be a whole number from 1 to {MAX_WORKERS}, "
                                           f"got {shown(repr(workers), 40)}")
        config.workers = workers
    if "endpoint" in defaults:
        endpoint = defaults["endpoint"]
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise fail("defaults.endpoint", f"must be an http:// or https:// URL, got "
                                            f"{shown(repr(endpoint), 80)}")
        config.endpoint = endpoint.rstrip("/")
    if "cluster" in defaults:
        config.cluster = _cluster_address(defaults["cluster"], fail)
    presets = data.get("presets", [])
    if not isinstance(presets, list):
        raise fail("presets", "must be an array of tables ([[presets]])")
    names: set[str] = set()
    for i, raw in enumerate(presets):
        config.presets.append(_preset(raw, f"presets[{i}]", fail, names))
    return config


def _cluster_address(value: Any, fail) -> str:
    """``local:N`` (1 to 256) or a scheduler address (``tcp://``, ``tls://``, ``ucx://``)."""
    problem = "must be local:N (N from 1 to 256) or a scheduler address like tcp://host:8786"
    if not isinstance(value, str) or len(value) > 300:
        raise fail("defaults.cluster", problem)
    if value.startswith("local:"):
        n = value[len("local:"):]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise fail("defaults.cluster", f"{problem}, got {shown(repr(value), 80)}")
        return value
    if not value.startswith(("tcp://", "tls://", "ucx://")) or len(value) < 8:
        raise fail("defaults.cluster", f"{problem}, got {shown(repr(value), 80)}")
    return value


def _preset(raw: Any, key: str, fail, names: set[str]):

    if not isinstance(raw, dict):
        raise fail(key, "must be a table")
    for k in raw:
        if k not in _PRESET_KEYS:
            raise fail(f"{key}.{k}", f"is not a known key ({', '.join(sorted(_PRESET_KEYS))})")
    for k in ("name", "repo"):
        if not isinstance(raw.get(k), str) or not raw[k].strip():
            raise fail(f"{key}.{k}", "is required (a non-empty string)")
    name = raw["name"].strip()
    if name in names or name in {p.name for p in (DEMO, *PRESETS)}:
        raise fail(f"{key}.name", f"{shown(name, 60)!r} is already a preset")
    names.add(name)
    try:
        check_repo_id(raw["repo"])
        if raw.get("idx_repo") is not None:
            check_repo_id(raw["idx_repo"], "index repo id")
    except ValueError as err:
        raise fail(f"{key}.{'repo' if 'index' not in str(err) else 'idx_repo'}", f"is wrong: {err}") from None
    layout = raw.get("layout", "increment-id")
    if layout not in ("increment-id", "data-XYZ"):
        raise fail(f"{key}.layout", "must be \"increment-id\" or \"data-XYZ\"")
    templates = raw.get("templates", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise fail(f"{key}.templates", "must be a list of archive paths with {residue}")
    if layout == "data-XYZ":
        if not templates:
            raise fail(f"{key}.templates", "is required for the data-XYZ layout")
        for t in templates:
            problem = archive_template_problem(t)
            if problem:
                raise fail(f"{key}.templates", f"{shown(t, 80)!r} {problem}")
    base_level = raw.get("base_level", 3)
    try:
        if isinstance(base_level, bool) or not isinstance(base_level, (int, list)):
            raise ValueError("must be a number or a list of numbers")
        level = parse_base_level(str(base_level) if isinstance(base_level, int) else
                                 ",".join(str(x) for x in base_level))
    except ValueError as err:
        raise fail(f"{key}.base_level", f"is wrong: {err}") from None
    base_dir = raw.get("base_dir", "images")
    if not isinstance(base_dir, str):
        raise fail(f"{key}.base_dir", "must be a string")
    access = raw.get("access", "public")
    if access not in ("public", "gated", "private"):
        raise fail(f"{key}.access", "must be \"public\", \"gated\" or \"private\"")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise fail(f"{key}.notes", "must be a string")
    return Preset(name, raw["repo"], level if layout == "increment-id" else None,
                  idx_repo=raw.get("idx_repo"), base_dir=base_dir, layout=layout, access=access,
                  notes=notes or "from the config file", templates=tuple(templates))
