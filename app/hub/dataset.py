"""Build indexed-tar dataset repos on disk for the loopback Hub, the tests and the demo.

A repo lives at ``ROOT/datasets/<owner>/<name>/``; each archive is a plain tar with an hfutils
index (same path, ``.json``) next to it or in a separate index repo.  The index is computed here
from the tar's own headers and bytes: it is the dict ``hfutils.index.tar_get_index_info`` returns
(a test proves they are equal) without that function's extract-every-member-to-a-temp-dir cost.

The helpers at the bottom break a built repo on purpose (rewritten index, flipped member bytes)
for the adversarial tests; unsafe member names are only ever written into index JSON, never into
a tar, so nothing here extracts an unsafe path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from pools.archive.layout import (  # one rule for the builder and the engine
    archive_path,
    index_path,
    resource_id_of,
)

__all__ = [
    "RepoManifest",
    "archive_path",
    "index_path",
    "build_repo",
    "repo_dir",
    "tar_index_info",
    "update_access",
    "rewrite_index",
    "corrupt_member",
]

Resources = Union[Mapping[int, Mapping[str, bytes]], Iterable[tuple[int, Mapping[str, bytes]]]]
ArchiveChooser = Union[Callable[[int], str], Mapping[int, str]]

# tar member mtime: fixed, so the same input always gives the same tar bytes (and commit sha).
_MTIME = 1_700_000_000


def repo_dir(root: str | os.PathLike, repo_id: str) -> Path:
    """``ROOT/datasets/<owner>/<name>`` for ``repo_id`` (``owner/name``)."""
    owner, sep, name = repo_id.partition("/")
    if not sep or not owner or not name or "/" in name or ".." in (owner, name):
        raise ValueError(f"repo_id must look like 'owner/name', got {repo_id!r}")
    return Path(root) / "datasets" / owner / name


@dataclass
class RepoManifest:
    """What :func:`build_repo` wrote, for tests to assert against.

    ``archives`` maps each archive path (in the data repo) to its member names in tar order;
    ``files[id][basename]`` is the sha256 of that file and ``sizes[id][basename]`` its size;
    ``locations[id]`` is the archive holding the id; ``members[id][basename]`` the exact member
    name (with any ``./`` prefix or subfolder); ``unrecognized[archive]`` lists members whose
    basename does not start with an integer id (e.g. ``README.txt``).
    """

    repo_id: str
    idx_repo_id: str | None
    base_level: int
    base_dir: str
    root: Path
    archives: dict[str, list[str]] = field(default_factory=dict)
    files: dict[int, dict[str, str]] = field(default_factory=dict)
    sizes: dict[int, dict[str, int]] = field(default_factory=dict)
    members: dict[int, dict[str, str]] = field(default_factory=dict)
    locations: dict[int, str] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    unrecognized: dict[str, list[str]] = field(default_factory=dict)
    archive_sizes: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)
    repo_files: list[str] = field(default_factory=list)

    @property
    def repo_dir(self) -> Path:
        return repo_dir(self.root, self.repo_id)

    @property
    def idx_repo_dir(self) -> Path:
        return repo_dir(self.root, self.idx_repo_id or self.repo_id)

    @property
    def n_files(self) -> int:
        return sum(len(v) for v in self.files.values())

    @property
    def total_bytes(self) -> int:
        """Bytes of all archives and indexes written."""
        total = sum(self.archive_sizes.values())
        for idx in self.indexes.values():
            total += (self.idx_repo_dir / idx).stat().st_size
        return total

    def archive_file(self, archive: str) -> Path:
        return self.repo_dir / archive

    def index_file(self, archive: str) -> Path:
        return self.idx_repo_dir / self.indexes.get(archive, index_path(archive))

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id, "idx_repo_id": self.idx_repo_id, "base_level": self.base_level,
            "base_dir": self.base_dir, "archives": self.archives,
            "files": {str(k): v for k, v in self.files.items()},
            "sizes": {str(k): v for k, v in self.sizes.items()},
            "members": {str(k): v for k, v in self.members.items()},
            "locations": {str(k): v for k, v in self.locations.items()},
            "unrecognized": self.unrecognized, "archive_sizes": self.archive_sizes,
            "indexes": self.indexes, "repo_files": self.repo_files,
        }

    @classmethod
    def from_dict(cls, root: str | os.PathLike, data: Mapping[str, Any]) -> RepoManifest:
        def by_id(d: Mapping[str, Any]) -> dict[int, Any]:
            return {int(k): v for k, v in d.items()}

        files = by_id(data["files"])
        return cls(
            repo_id=data["repo_id"], idx_repo_id=data["idx_repo_id"], base_level=data["base_level"],
            base_dir=data["base_dir"], root=Path(root), archives=dict(data["archives"]), files=files,
            sizes=by_id(data["sizes"]), members=by_id(data["members"]),
            locations=by_id(data["locations"]), ids=sorted(files),
            unrecognized=dict(data["unrecognized"]), archive_sizes=dict(data["archive_sizes"]),
            indexes=dict(data["indexes"]), repo_files=list(data["repo_files"]),
        )


def tar_index_info(tar_bytes: bytes) -> dict[str, Any]:
    """The hfutils index dict (``filesize``, ``hash``, ``hash_lfs``, ``files``) of a tar in memory.

    Same keys, order and values as ``hfutils.index.tar_get_index_info`` on the same bytes.
    """
    blob = hashlib.sha1(f"blob {len(tar_bytes)}\0".encode())
    blob.update(tar_bytes)
    files: dict[str, dict[str, Any]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r|") as tar:
        for info in tar:
            if info.isreg():
                data = tar_bytes[info.offset_data:info.offset_data + info.size]
                files[info.name] = {"offset": info.offset_data, "size": info.size,
                                    "sha256": hashlib.sha256(data).hexdigest()}
    return {"filesize": len(tar_bytes), "hash": blob.hexdigest(),
            "hash_lfs": hashlib.sha256(tar_bytes).hexdigest(), "files": files}


def _tar_bytes(members: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _iter_resources(resources: Resources) -> Iterable[tuple[int, Mapping[str, bytes]]]:
    if isinstance(resources, Mapping):
        return resources.items()
    return resources


def build_repo(
    root: str | os.PathLike,
    repo_id: str,
    resources: Resources,
    *,
    base_level: int = 3,
    base_dir: str = "images",
    idx_repo_id: str | None = None,
    name_prefix: str = "",
    subfolder: str | None = None,
    extra_members: Mapping[str, Mapping[str, bytes]] | None = None,
    archives: ArchiveChooser | None = None,
    private: bool = False,
    gated: bool = False,
    tokens: Iterable[str] = (),
    repo_files: Mapping[str, bytes] | None = None,
    skip_index: Iterable[str] = (),
    clean: bool = True,
) -> RepoManifest:
    """Write ``resources`` (id -> {basename: bytes}) as indexed tars of dataset ``repo_id``.

    Each id goes to ``archive_path(id, base_level, base_dir)`` unless ``archives`` (a callable or a
    mapping id -> archive path) says otherwise.  Member names are ``name_prefix + subfolder/ +
    basename`` (``name_prefix="./"`` gives ``./1000.png``).  ``extra_members`` adds members to the
    named archives (creating them if needed), after the resources.  Indexes go next to the
    archives, or into ``idx_repo_id`` at the same paths; archives in ``skip_index`` get none.
    ``repo_files`` are extra plain files at the data repo root (e.g. ``README.md``).
    ``private``/``gated``/``tokens`` set this repo's entry in ``ROOT/access.json`` (removed when all
    are default).  ``clean`` first removes an existing data repo folder.
    """
    root = Path(root)
    data_dir = repo_dir(root, repo_id)
    idx_dir = repo_dir(root, idx_repo_id) if idx_repo_id else data_dir
    if idx_repo_id == repo_id:
        idx_repo_id = None
    if clean and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    if archives is None:
        def choose(rid: int) -> str:
            return archive_path(rid, base_level, base_dir)
    elif callable(archives):
        choose = archives
    else:
        chooser_map = archives

        def choose(rid: int) -> str:
            return chooser_map.get(rid) or archive_path(rid, base_level, base_dir)

    prefix = name_prefix + (subfolder.strip("/") + "/" if subfolder else "")
    manifest = RepoManifest(repo_id=repo_id, idx_repo_id=idx_repo_id, base_level=base_level,
                            base_dir=base_dir, root=root)
    plan: dict[str, list[tuple[str, bytes]]] = {}
    for rid, files in _iter_resources(resources):
        rid = int(rid)
        archive = choose(rid)
        manifest.locations[rid] = archive
        entries = plan.setdefault(archive, [])
        hashes = manifest.files.setdefault(rid, {})
        sizes = manifest.sizes.setdefault(rid, {})
        names = manifest.members.setdefault(rid, {})
        for basename, data in files.items():
            data = bytes(data)
            member = prefix + basename
            entries.append((member, data))
            hashes[basename] = hashlib.sha256(data).hexdigest()
            sizes[basename] = len(data)
            names[basename] = member
    for archive, extra in (extra_members or {}).items():
        plan.setdefault(archive, []).extend((name, bytes(data)) for name, data in extra.items())

    no_index = set(skip_index)
    for archive in sorted(plan):
        members = plan[archive]
        tar = _tar_bytes(members)
        _write_atomic(data_dir / archive, tar)
        manifest.archives[archive] = [name for name, _ in members]
        manifest.archive_sizes[archive] = len(tar)
        odd = [name for name, _ in members if resource_id_of(name) is None]
        if odd:
            manifest.unrecognized[archive] = odd
        if archive not in no_index:
            idx = index_path(archive)
            _write_atomic(idx_dir / idx, json.dumps(tar_index_info(tar)).encode())
            manifest.indexes[archive] = idx

    for path, data in (repo_files or {}).items():
        _write_atomic(data_dir / path, bytes(data))
        manifest.repo_files.append(path)

    manifest.ids = sorted(manifest.files)
    tokens = list(tokens)
    update_access(root, repo_id, private=private, gated=gated, tokens=tokens)
    if idx_repo_id:
        update_access(root, idx_repo_id, private=private, gated=gated, tokens=tokens)
    return manifest


def update_access(root: str | os.PathLike, repo_id: str, *, private: bool = False,
                  gated: bool = False, tokens: Iterable[str] = ()) -> None:
    """Set ``repo_id``'s entry in ``ROOT/access.json``, keeping the other repos' entries."""
    path = Path(root) / "access.json"
    tokens = list(tokens)
    try:
        current = json.loads(path.read_text())
    except FileNotFoundError:
        current = {}
    if private or gated or tokens:
        current[repo_id] = {"private": bool(private), "gated": bool(gated), "tokens": tokens}
    elif repo_id in current:
        del current[repo_id]
    else:
        return
    _write_atomic(path, json.dumps(current, indent=2, sort_keys=True).encode())


# --- breaking a repo on purpose ---------------------------------------------------------------

def rewrite_index(root: str | os.PathLike, repo_id: str, archive: str,
                  mutate: Callable[[dict], dict | str | bytes | None] | dict | str | bytes) -> Path:
    """Replace the index of ``archive`` held by ``repo_id`` (the index repo when separate).

    ``mutate`` gets the parsed index dict and returns the new dict (or mutates it in place and
    returns None), or returns ``str``/``bytes`` written verbatim (for not-JSON cases).  A plain
    dict/str/bytes instead of a callable is written as is.  Returns the index file path.
    """
    path = repo_dir(root, repo_id) / index_path(archive)
    if callable(mutate):
        data = json.loads(path.read_text())
        result = mutate(data)
        new = data if result is None else result
    else:
        new = mutate
    if isinstance(new, str):
        raw = new.encode()
    elif isinstance(new, (bytes, bytearray)):
        raw = bytes(new)
    else:
        raw = json.dumps(new).encode()
    _write_atomic(path, raw)
    return path


def corrupt_member(root: str | os.PathLike, repo_id: str, archive: str, name: str,
                   nbytes: int = 16) -> int:
    """Flip the first ``nbytes`` bytes of member ``name`` inside the tar, leaving the index alone.

    The tar keeps its size, so the index offsets still point at the member, but its sha256 (and
    the tar's hashes) no longer match.  Returns the member's data offset.
    """
    path = repo_dir(root, repo_id) / archive
    with tarfile.open(path, mode="r:") as tar:
        # exact match: getmember() may normalise names like "./1.png"
        info = next((m for m in tar if m.name == name and m.isreg()), None)
    if info is None:
        raise KeyError(f"{name!r} is not a member of {archive!r}")
    n = min(nbytes, info.size)
    if n == 0:
        raise ValueError(f"member {name!r} is empty; nothing to corrupt")
    with open(path, "r+b") as f:
        f.seek(info.offset_data)
        chunk = f.read(n)
        f.seek(info.offset_data)
        f.write(bytes(b ^ 0xFF for b in chunk))
    return info.offset_data
