"""Where a metadata table comes from: a local path, an ``hf://`` URL, or found in the data repo.

``hf://datasets/OWNER/NAME/PATH[@REVISION]`` (also HfFileSystem's ``NAME@REVISION/PATH``, with a
revision such as ``refs%2Fconvert%2Fparquet`` quoted) names a file, or a glob such as
``meta/*.parquet``, in a dataset repo. Hub files are fetched once into the huggingface_hub cache,
keyed by commit, through the engine's :class:`~pools.transport.client.HubClient`.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import threading
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import unquote

from pools.errors import PoolError, TooLargeError
from pools.metadata.table import MetadataTable, format_of
from pools.transport import HubClient, with_retries

REPO_TYPE = "dataset"
#: file names a data repo's table is found under, tried in order
REPO_TABLES = ("metadata.parquet", "meta/*.parquet")
MAX_FILES = 256

Progress = Callable[[int, "int | None"], None]


class TableNotFoundError(PoolError):
    """No table at the given place, or none found in the repo."""


@dataclass(frozen=True)
class HubTable:
    repo_id: str
    path: str
    revision: str = "main"

    def __str__(self) -> str:
        rev = "" if self.revision == "main" else f"@{self.revision}"
        return f"hf://datasets/{self.repo_id}/{self.path}{rev}"


MAX_TABLE_BYTES = 16 * 1024 ** 3  # a metadata table's files, in all: the largest public ones hold a few GB


def parse_table_url(text: str) -> HubTable | None:
    """The :class:`HubTable` an ``hf://`` URL names, or None for a local path."""
    if not text.startswith("hf://"):
        return None
    rest = text[len("hf://"):]
    if not rest.startswith("datasets/"):
        raise ValueError(f"{text!r}: only dataset repos are supported: hf://datasets/OWNER/NAME/PATH")
    parts = rest[len("datasets/"):].split("/", 2)
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{text!r} must look like hf://datasets/OWNER/NAME/PATH[@REVISION]")
    owner, name, path = parts
    revision = "main"
    if "@" in name:
        name, revision = name.split("@", 1)
    elif "@" in path:
        path, revision = path.rsplit("@", 1)
    revision = unquote(revision)
    if not revision or not path or not _safe_repo_path(path):
        raise ValueError(f"{text!r} must name a file inside the repo, like hf://datasets/OWNER/NAME/metadata.parquet")
    return HubTable(f"{owner}/{name}", path, revision)


def _safe_repo_path(path: str) -> bool:
    return not path.startswith("/") and "\\" not in path and "\0" not in path and \
        all(seg not in ("", ".", "..") for seg in path.split("/"))


def download_file(client: HubClient, repo_id: str, path: str, sha: str, cancel: threading.Event | None = None,
                  on_progress: Progress | None = None, max_bytes: int | None = None) -> str:
    """A repo file into the huggingface_hub cache; its local path.

    The one place to switch to the transport's ``HubClient.download_file`` (agreed in TEAM.md):
    until a client has it, ``hf_hub_download`` does the same job (same cache layout, resumable).
    """
    own = getattr(client, "download_file", None)
    if own is not None:
        return own(repo_id, path, sha, cancel=cancel, on_progress=on_progress, max_bytes=max_bytes)
    cached = client.cached_path(repo_id, path, sha)
    if isinstance(cached, str):
        return cached
    from huggingface_hub import hf_hub_download

    def call() -> str:
        return hf_hub_download(repo_id, path, repo_type=REPO_TYPE, revision=sha, endpoint=client.endpoint,
                               token=client._token, tqdm_class=_progress_class(on_progress))
    return with_retries(call, f"{repo_id}/{path}", client.policy, cancel)


def _progress_class(on_progress: Progress | None):
    if on_progress is None:
        return None
    from tqdm.auto import tqdm

    class _Reporting(tqdm):  # silent: the caller draws the progress
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._got = 0

        def update(self, n=1):
            self._got += n or 0
            on_progress(self._got, self.total)

    return _Reporting


def _list_files(client: HubClient, table: HubTable, sha: str) -> list[tuple[str, int | None]]:
    """The repo files ``table.path`` names (a glob is matched against the tree listing), with
    the size the listing gives (None for a single named file)."""
    if not any(ch in table.path for ch in "*?["):
        return [(table.path, None)]
    folder = table.path.rsplit("/", 1)[0] if "/" in table.path else None
    if folder is not None and any(ch in folder for ch in "*?["):
        raise ValueError(f"{table}: a glob may only be in the file name, like meta/*.parquet")
    from huggingface_hub.errors import EntryNotFoundError

    def listing() -> list[str]:
        try:
            # the transport's listing follows next pages on the endpoint's origin only (the token stays)
            entries = client.list_tree(table.repo_id, sha, folder, recursive=False)
            return [(e.path, e.size) for e in entries if getattr(e, "size", None) is not None]
        except EntryNotFoundError:
            return []
    names = with_retries(listing, f"{table.repo_id} tree", client.policy)
    found = sorted((p, n) for p, n in names if fnmatch.fnmatchcase(p, table.path) and _safe_repo_path(p))
    return found[:MAX_FILES]


def fetch_hub_table(client: HubClient, table: HubTable, cancel: threading.Event | None = None,
                    on_progress: Progress | None = None, max_bytes: int | None = None) -> list[str]:
    """Local paths of the table's files, fetched into the cache unless already there.
    ``max_bytes`` (default :data:`MAX_TABLE_BYTES`): the most the table's files may hold in all,
    checked against the listing's sizes before anything is fetched and against the bytes as they
    come (a server that does not say, or lies): TooLargeError, never retried."""
    limit = MAX_TABLE_BYTES if max_bytes is None else max_bytes
    sha = client.resolve(table.repo_id, table.revision, cancel)
    files = _list_files(client, table, sha)
    if not files:
        raise TableNotFoundError(f"no file matches {table}")
    declared = sum(n or 0 for _, n in files)
    if declared > limit:
        raise TooLargeError(f"{table} is {declared:,} bytes, more than the {limit:,} allowed for a metadata "
                            f"table (--max-table-gb raises it)")
    local = []
    left = limit
    for path, _ in files:
        try:
            got = download_file(client, table.repo_id, path, sha, cancel, on_progress, max_bytes=left)
            left -= os.path.getsize(got)
            local.append(got)
        except Exception as err:  # noqa: BLE001 - mapped to one line below
            from huggingface_hub.errors import EntryNotFoundError
            if isinstance(err, EntryNotFoundError):
                raise TableNotFoundError(f"no such file: {table}") from None
            raise
    return local


def find_repo_table(client: HubClient, repo_id: str, revision: str = "main",
                    cancel: threading.Event | None = None) -> HubTable | None:
    """The table a data repo holds at its root (``metadata.parquet``, else ``meta/*.parquet``)."""
    sha = client.resolve(repo_id, revision, cancel)
    for pattern in REPO_TABLES:
        table = HubTable(repo_id, pattern, revision)
        if "*" in pattern:
            if _list_files(client, table, sha):
                return table
            continue

        def exists(path=pattern) -> bool:
            return bool(client.api().get_paths_info(repo_id, [path], revision=sha, repo_type=REPO_TYPE))
        if with_retries(exists, f"{repo_id}/{pattern}", client.policy, cancel):
            return table
    return None


def open_table(source: str, *, client: HubClient | None = None, columns: Mapping[str, str] | None = None,
               fmt: str | None = None, cancel: threading.Event | None = None,
               on_progress: Progress | None = None, max_bytes: int | None = None, **options) -> MetadataTable:
    """Open a table by local path (a glob is fine) or ``hf://`` URL.

    ``client`` carries the endpoint, token and retry policy for a Hub table (a pool's
    ``pool.client``); a new default one is used when not given. ``max_bytes``: the most a Hub
    table may hold (default :data:`MAX_TABLE_BYTES`).
    """
    hub = parse_table_url(source)
    if hub is not None:
        files = fetch_hub_table(client or HubClient(), hub, cancel, on_progress, max_bytes=max_bytes)
    else:
        path = os.path.expanduser(source)
        files = sorted(glob.glob(path)) if any(ch in path for ch in "*?[") else [path]
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise TableNotFoundError(f"no such table file: {source}")
    return MetadataTable(files, fmt or format_of(files[0]), columns, source=str(hub or source), cancel=cancel,
                         **options)
