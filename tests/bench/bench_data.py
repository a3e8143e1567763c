"""Datasets for the benchmarks, written straight to disk one archive at a time.

Not a test module (pytest collects only ``test_*.py``); imported by ``tests/bench_*.py``.

Every archive is a plain GNU tar with an hfutils index next to it (``images/0123.tar`` and
``images/0123.json``): ``filesize``, ``hash`` (git blob sha1), ``hash_lfs`` (sha256) and a
``files`` table of ``{offset, size, sha256}`` in tar order, the dict ``hfutils.index.
tar_get_index_info`` returns for the same tar (``tests/bench/test_bench_data.py`` checks it).

Real datasets hold about 10,000 files per archive (an index of ~1.3 MB). Writing 10,000 real
members into each of 300 archives would cost gigabytes of disk for nothing the benchmark reads,
so :func:`write_archive` can *pad* the index: ``pad_to=N`` adds entries, named like the real ones
(``<id>.webp`` with ids of the archive's residue), that point at the archive's small filler
members with their real offset, size and sha256. Every entry is well formed and downloading any of
them gives verified bytes; the index has the real size and shape, the tar stays small.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pools.archive.layout import archive_path, index_path

_MTIME = 1_700_000_000  # fixed member mtime: the same input always gives the same bytes
_POOL = random.Random(20261201).randbytes(1 << 22)  # 4 MiB of noise that file bodies are cut from
FILLERS = 8  # small real members per padded archive, the targets of the padding entries


def body(rid: int, size: int) -> bytes:
    """``size`` bytes that differ from id to id and are the same in every run (fast to make)."""
    rng = random.Random(rid)
    out = bytearray(rid.to_bytes(8, "big"))
    while len(out) < size:
        start = rng.randrange(len(_POOL) - 4096)
        out += _POOL[start:start + min(size - len(out), len(_POOL) - start)]
    return bytes(out[:size])


def repo_dir(root: Path, repo: str) -> Path:
    owner, name = repo.split("/")
    return root / "datasets" / owner / name


def write_archive(repo_root: Path, archive: str, members: Iterable[tuple[str, bytes]],
                  pad_to: int = 0, pad_names: Iterable[str] = ()) -> dict:
    """Write ``archive`` (a tar of ``members``) and its index under ``repo_root``; return the index.

    ``pad_to``: add entries taken from ``pad_names`` (skipping names already present) until the
    index lists that many files; each points at one of the archive's members other than the
    largest (the wanted file), in turn.
    """
    path = repo_root / archive
    path.parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    with open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
            header = info.tobuf(tar.format, tar.encoding, tar.errors)
            files[name] = {"offset": tar.offset + len(header), "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}
            tar.addfile(info, io.BytesIO(data))
    size = path.stat().st_size
    git, lfs = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            git.update(chunk)
            lfs.update(chunk)
    if pad_to > len(files):
        biggest = max(files, key=lambda n: files[n]["size"])
        targets = [files[n] for n in files if n != biggest] or [files[biggest]]
        names = (n for n in pad_names if n not in files)
        for k, name in zip(range(pad_to - len(files)), names):
            files[name] = dict(targets[k % len(targets)])
    index = {"filesize": size, "hash": git.hexdigest(), "hash_lfs": lfs.hexdigest(), "files": files}
    (repo_root / index_path(archive)).write_bytes(json.dumps(index).encode())
    return index


@dataclass
class Dataset:
    """A repo written for a benchmark: which ids to ask for, and what their files must hash to."""

    root: Path  # the loopback Hub's root
    repo: str
    base_level: int
    ids: dict[str, list[int]] = field(default_factory=dict)  # named id sets
    files: dict[int, dict[str, str]] = field(default_factory=dict)  # id -> {basename: sha256}
    archives: int = 0
    nbytes: int = 0  # bytes of the archives
    index_bytes: int = 0  # bytes of the indexes

    def tasks(self, ids: Iterable[int]) -> list[tuple[str, str]]:
        """(archive, member name) per file of ``ids``: what a client without our planner fetches."""
        return [(archive_path(rid, self.base_level), name) for rid in ids for name in self.files[rid]]

    def expected(self, ids: Iterable[int]) -> dict[str, str]:
        return {name: sha for rid in ids for name, sha in self.files[rid].items()}

    def _add(self, archive: str, index: dict) -> None:
        self.archives += 1
        self.nbytes += index["filesize"]
        self.index_bytes += (repo_dir(self.root, self.repo) / index_path(archive)).stat().st_size


def build_small(root: Path, repo: str = "bench/booru", sparse_archives: int = 300) -> Dataset:
    """Dense archives (residues 0-11, 40 files of 50-500 KB, 25 wanted) and sparse ones (residues
    100.., one wanted file of 50-500 KB and three of 20 KB): the original benchmark's repo."""
    ds = Dataset(root, repo, 3, {"dense": [], "sparse": []})
    top = repo_dir(root, repo)
    rng = random.Random(0)
    for residue in range(12):
        members = []
        for k in range(1, 41):
            rid = 1000 * k + residue
            data = body(rid, rng.randint(50_000, 500_000))
            members.append((f"{rid}.webp", data))
            if k <= 25:
                ds.ids["dense"].append(rid)
                ds.files[rid] = {f"{rid}.webp": hashlib.sha256(data).hexdigest()}
        ds._add(archive_path(residue, 3), write_archive(top, archive_path(residue, 3), members))
    for residue in range(100, 100 + sparse_archives):
        members = []
        for k in range(1, 5):
            rid = 1000 * k + residue
            data = body(rid, rng.randint(50_000, 500_000) if k == 3 else 20_000)
            members.append((f"{rid}.webp", data))
            if k == 3:
                ds.ids["sparse"].append(rid)
                ds.files[rid] = {f"{rid}.webp": hashlib.sha256(data).hexdigest()}
        ds._add(archive_path(residue, 3), write_archive(top, archive_path(residue, 3), members))
    return ds


def build_padded(root: Path, repo: str, archives: int, entries: int, wanted_k: int | None = None,
                 base_level: int = 3, wanted_size: tuple[int, int] = (50_000, 500_000),
                 first_residue: int = 0) -> Dataset:
    """``archives`` archives whose indexes list ``entries`` files each (ids ``residue + M*k``,
    ``k = 1..entries``, ``M = 10**base_level``); one real wanted file (id ``k = wanted_k``, default
    the middle) and :data:`FILLERS` small real members per archive; the rest pads the index."""
    mod = 10 ** base_level
    wanted_k = wanted_k or entries // 2 + 1
    ds = Dataset(root, repo, base_level, {"sparse": []})
    top = repo_dir(root, repo)
    rng = random.Random(1)
    for residue in range(first_residue, first_residue + archives):
        rid = residue + mod * wanted_k
        data = body(rid, rng.randint(*wanted_size))
        members = [(f"{residue + mod * k}.webp", body(residue + mod * k, rng.randint(1_000, 4_000)))
                   for k in range(1, FILLERS + 1) if k != wanted_k]
        members.insert(len(members) // 2, (f"{rid}.webp", data))
        ds.ids["sparse"].append(rid)
        ds.files[rid] = {f"{rid}.webp": hashlib.sha256(data).hexdigest()}
        names = (f"{residue + mod * k}.webp" for k in range(1, entries + 1))
        archive = archive_path(residue, base_level)
        ds._add(archive, write_archive(top, archive, members, pad_to=entries, pad_names=names))
    return ds


def build_big(root: Path, repo: str = "bench/big", files: int = 200, archives: int = 20,
              sizes: tuple[int, int] = (5 << 20, 20 << 20)) -> Dataset:
    """``files`` files of 5-20 MiB over ``archives`` archives, every one wanted."""
    ds = Dataset(root, repo, 3, {"all": []})
    top = repo_dir(root, repo)
    rng = random.Random(2)
    per = -(-files // archives)
    for residue in range(archives):
        members = []
        for k in range(1, per + 1):
            if len(ds.ids["all"]) >= files:
                break
            rid = 1000 * k + residue
            data = body(rid, rng.randint(*sizes))
            members.append((f"{rid}.bin", data))
            ds.ids["all"].append(rid)
            ds.files[rid] = {f"{rid}.bin": hashlib.sha256(data).hexdigest()}
        if members:
            ds._add(archive_path(residue, 3), write_archive(top, archive_path(residue, 3), members))
    return ds


def build_plan_repo(root: Path, repo: str = "bench/plan", archives: int = 1000,
                    per_archive: int = 2) -> Dataset:
    """``archives`` archives (base level 3), ``per_archive`` tiny files each, ids ``1000*k + r``."""
    ds = Dataset(root, repo, 3, {"all": []})
    top = repo_dir(root, repo)
    for residue in range(archives):
        members = []
        for k in range(1, per_archive + 1):
            rid = 1000 * k + residue
            data = body(rid, 200)
            members.append((f"{rid}.bin", data))
            ds.ids["all"].append(rid)
            ds.files[rid] = {f"{rid}.bin": hashlib.sha256(data).hexdigest()}
        ds._add(archive_path(residue, 3), write_archive(top, archive_path(residue, 3), members))
    return ds
