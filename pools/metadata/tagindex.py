"""A DuckDB-native copy of a big metadata table, with its tags in a form that is cheap to test.

Counting ``1girl solo -comic`` over millions of posts by searching tag *strings* re-parses every
string each time. The copy is built once per (files, sizes, mtimes, column mapping) into the cache
directory and opened read-only afterwards:

* table ``posts``: every original column as is (``--sql``, rows, captions and order use them), plus
* ``__cc_b0 .. __cc_bK`` (UBIGINT): one bit for each of the most frequent tags (chosen from the
  first batch): a term on such a tag is a bit test over 8 bytes a post;
* ``__cc_r0 .. __cc_rN`` (INTEGER[]): per tag column, the ids of the post's other tags;
* table ``__cc_dict(id, cat, tag, n, bit)``: every (category, tag) once, sorted by tag (a lookup
  reads one row group); a wildcard is a LIKE over it; ``__cc_meta``: how the copy was made.

The build streams the source in batches (Arrow, split and dictionary-encoded in C++), writes to a
temporary name and renames it into place, so an interrupted build never leaves a corrupt copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from typing import Any, Callable, Sequence

import duckdb
import numpy as np

from pools.files import pid_alive
from pools.metadata.columns import Columns, quote_ident
from pools.metadata.language import Compiled, QueryError

INDEX_VERSION = 1
PREFIX = "__cc_"
#: tags tested as bits (the most frequent ones of the first batch), 64 to a column
INDEX_BITS = 256
BUILD_BATCH = 65_536
#: tables whose files are smaller than this are queried directly (no copy)
MIN_INDEX_BYTES = 64 * 2**20
MAX_LISTED_TAG_IDS = 1_000_000
#: up to this many ids of one column are tested with list_has_any; more with a semi-join
MAX_LIST_TEST = 64

BuildProgress = Callable[[int, "int | None"], None]


class IndexBuildCancelled(Exception):
    """The build was cancelled; nothing was left behind."""


def cache_root() -> str:
    """``$XDG_CACHE_HOME/cheesechaser-tui/tables`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cheesechaser-tui", "tables")


def index_path(files: Sequence[str], fmt: str, mapping: dict | None, bits: int, cache_dir: str | None) -> str:
    """Where the copy of these files (as they are now) lives; a changed file gets a new name."""
    stamp = []
    for f in files:
        st = os.stat(f)
        stamp.append([st.st_size, st.st_mtime_ns])
    which = json.dumps({"v": INDEX_VERSION, "files": [os.path.realpath(f) for f in files], "fmt": fmt,
                        "map": sorted((mapping or {}).items()), "bits": bits}, sort_keys=True)
    key = names_key()
    return os.path.join(cache_dir or cache_root(), f"{_digest(which, key)}-{_digest(json.dumps(stamp), key)}.duckdb")


def _digest(text: str, key: bytes = b"") -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:20]


_KEYS: dict[str, bytes] = {}


def names_key() -> bytes:
    """This user's secret that copies are named with: nobody else can tell the name a table's copy
    will have, so a file planted in a shared folder for copies is never taken for one. Made once
    in the user's cache (0600); without a writable cache, names are plain digests (and a copy not
    the user's own is still refused: ``pools.metadata.faults.check_owner``)."""
    path = os.path.join(os.path.dirname(cache_root()), "copy-names.key")  # beside the copies' folder
    if path not in _KEYS:
        _KEYS[path] = _read_or_make_key(path)
    return _KEYS[path]


def _read_or_make_key(path: str) -> bytes:
    for _ in range(3):
        try:
            st = os.stat(path)
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                return b""  # not this user's private key: plain names
            with open(path, "rb") as f:
                key = f.read(64)
            if len(key) == 32:
                return key
        except FileNotFoundError:
            pass
        except OSError:
            return b""
        tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
            os.link(tmp, path)  # atomic, and never over a key another process made first
        except FileExistsError:
            pass  # another process made it: read theirs
        except OSError:
            return b""
        finally:
            try:
                os.remove(tmp)
            except OSError:
                pass
    return b""


#: a copy nobody opened for this long is removed when another copy is built (copies of a big
#: table are GBs; the tables they were made from may be long gone or moved)
UNUSED_DAYS = 30


def mark_used(dest: str) -> None:
    """Note that the copy at ``dest`` was just opened (its mtime: what :func:`_prune` reads)."""
    try:
        os.utime(dest)
    except OSError:  # a read-only cache: the copy just ages, and is rebuilt if ever removed
        pass


def _prune(dest: str, now: float | None = None) -> None:
    """Remove the other copies in ``dest``'s folder that it supersedes (the same files as they were
    before: another size or mtime) or that nobody opened for :data:`UNUSED_DAYS`."""
    folder, name = os.path.split(dest)
    which = name.split("-", 1)[0] + "-"
    cutoff = (time.time() if now is None else now) - UNUSED_DAYS * 86400
    for entry in os.listdir(folder):
        if entry == name or not _OURS.fullmatch(entry):
            continue  # only copies this module made (builds in progress end in .building: _clean_stale's)
        path = os.path.join(folder, entry)
        try:
            if entry.startswith(which) or os.lstat(path).st_mtime < cutoff:
                remove_copy(path)
        except OSError:
            continue


def remove_copy(path: str) -> None:
    """A copy (or a build's temporary file) and its ``.wal``; gone already is fine."""
    for p in (path, path + ".wal"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


_OURS = re.compile(r"[0-9a-f]{20}-[0-9a-f]{20}\.duckdb")  # a copy's name (index_path)
_BUILDING = re.compile(r"([0-9a-f]{20}-[0-9a-f]{20}\.duckdb)\.(\d+)\.[0-9a-f]{8}\.building(\.wal)?")


def _clean_stale(dest: str) -> None:
    """Temporary files of builds whose process is gone (a kill -9 mid-build leaves GBs), of any
    copy in the folder, not only this one; never a file this module did not name."""
    folder = os.path.dirname(dest)
    for entry in os.listdir(folder):
        found = _BUILDING.fullmatch(entry)
        if found and not pid_alive(int(found[2])):
            remove_copy(os.path.join(folder, entry.removesuffix(".wal")))


class _Builder:
    def __init__(self, columns: Columns, bits: int):
        self.cats = list(columns.tags.items())  # [(category, TagColumn)]
        self.bits = max(0, int(bits))
        self.words = (self.bits + 63) // 64
        self.ids: dict[tuple[int, str], int] = {}
        self.names: list[tuple[int, str]] = []
        self.counts = np.zeros(1024, dtype=np.int64)
        self.bitpos = np.full(1024, -1, dtype=np.int32)
        self.chosen = False

    def _grow(self, n: int) -> None:
        if n > len(self.counts):
            size = max(n, 2 * len(self.counts))
            self.counts = np.concatenate([self.counts, np.zeros(size - len(self.counts), dtype=np.int64)])
            self.bitpos = np.concatenate([self.bitpos, np.full(size - len(self.bitpos), -1, dtype=np.int32)])

    def _tokens(self, ci: int, array) -> tuple[np.ndarray, np.ndarray]:
        """(global tag id, row) of every tag in one column of a batch (-1: an empty token)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        is_list = self.cats[ci][1].is_list
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        lists = array if is_list else pc.split_pattern(array.cast(pa.large_string()), " ")
        if is_list and not pa.types.is_string(lists.type.value_type) and not pa.types.is_large_string(lists.type.value_type):
            lists = lists.cast(pa.large_list(pa.large_string()))
        flat = pc.list_flatten(lists)
        rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        enc = pc.dictionary_encode(flat)
        local = enc.dictionary.to_pylist()
        lut = np.empty(len(local) + 1, dtype=np.int64)
        for i, tag in enumerate(local):
            if not tag:
                lut[i] = -1
                continue
            key = (ci, tag)
            gid = self.ids.get(key)
            if gid is None:
                gid = self.ids[key] = len(self.names)
                self.names.append(key)
            lut[i] = gid
        lut[len(local)] = -1  # a null item of a list column
        idx = pc.fill_null(enc.indices, len(local)).to_numpy(zero_copy_only=False)
        return lut[idx], rows

    def batch(self, batch) -> Any:
        """The batch with its index columns added."""
        import pyarrow as pa

        n = batch.num_rows
        per_col = [self._tokens(ci, batch.column(col.name)) for ci, (_, col) in enumerate(self.cats)]
        self._grow(len(self.names))
        for g, _ in per_col:
            self.counts[: len(self.names)] += np.bincount(g[g >= 0], minlength=len(self.names))
        if not self.chosen:  # the bit tags: the most frequent of the first batch
            self.chosen = True
            top = np.argsort(-self.counts[: len(self.names)], kind="stable")[: self.bits]
            self.bitpos[top] = np.arange(len(top), dtype=np.int32)
        words = [np.zeros(n, dtype=np.uint64) for _ in range(self.words)]
        table = pa.Table.from_batches([batch])
        rare_cols = []
        for g, rows in per_col:
            valid = g >= 0
            pos = np.full(len(g), -1, dtype=np.int32)
            pos[valid] = self.bitpos[g[valid]]
            is_bit = pos >= 0
            bp, br = pos[is_bit], rows[is_bit]
            for k in range(self.words):
                m = (bp >> 6) == k
                np.bitwise_or.at(words[k], br[m], np.left_shift(np.uint64(1), (bp[m] & 63).astype(np.uint64)))
            keep = valid & ~is_bit
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(np.bincount(rows[keep], minlength=n), out=offsets[1:])
            rare_cols.append(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                                      pa.array(g[keep].astype(np.int32), pa.int32())))
        for k, w in enumerate(words):
            table = table.append_column(f"{PREFIX}b{k}", pa.array(w, pa.uint64()))
        for ci, arr in enumerate(rare_cols):
            table = table.append_column(f"{PREFIX}r{ci}", arr)
        return table

    def dictionary(self):
        import pyarrow as pa

        n = len(self.names)
        return pa.table({"id": pa.array(np.arange(n, dtype=np.int32)),
                         "cat": pa.array([c for c, _ in self.names], pa.int32()),
                         "tag": pa.array([t for _, t in self.names], pa.string()),
                         "n": pa.array(self.counts[:n]),
                         "bit": pa.array(self.bitpos[:n])})


def build_index(source: duckdb.DuckDBPyConnection, select_sql: str, columns: Columns, dest: str, *,
                bits: int = INDEX_BITS, total_rows: int | None = None, on_progress: BuildProgress | None = None,
                cancel: threading.Event | None = None, memory_limit: str = "1GB", threads: int | None = None,
                batch_rows: int | None = None) -> dict:
    """Build the copy of ``select_sql`` (run on ``source``) at ``dest``; its ``__cc_meta`` as a dict."""
    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    _clean_stale(dest)
    tmp = f"{dest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building"
    config: dict[str, Any] = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = threads
    started = time.perf_counter()
    builder = _Builder(columns, bits)
    out = duckdb.connect(tmp, config=config)
    done = 0
    try:
        rel = source.sql(select_sql)
        to_reader = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader  # duckdb 2 / 1.x
        reader = to_reader(batch_rows or BUILD_BATCH)
        created = False
        for batch in reader:
            if cancel is not None and cancel.is_set():
                raise IndexBuildCancelled("the table copy was cancelled")
            out.register("__cc_part", builder.batch(batch))
            out.execute("INSERT INTO posts SELECT * FROM __cc_part" if created
                        else "CREATE TABLE posts AS SELECT * FROM __cc_part")
            out.unregister("__cc_part")
            created = True
            done += batch.num_rows
            if on_progress is not None:
                on_progress(done, total_rows)
        if not created:
            raise ValueError("the table has no rows")
        out.register("__cc_tags", builder.dictionary())
        out.execute("CREATE TABLE __cc_dict AS SELECT * FROM __cc_tags ORDER BY tag, cat")
        out.unregister("__cc_tags")
        meta = {"version": INDEX_VERSION, "rows": done, "words": builder.words,
                "categories": [[cat, col.name, f"{PREFIX}r{ci}"] for ci, (cat, col) in enumerate(builder.cats)],
                "tags": len(builder.names), "seconds": round(time.perf_counter() - started, 2)}
        out.execute("CREATE TABLE __cc_meta AS SELECT ? AS meta", [json.dumps(meta)])
        out.execute("CHECKPOINT")
        out.close()
        os.replace(tmp, dest)
        _prune(dest)
        return meta
    except BaseException:
        out.close()
        remove_copy(tmp)
        raise


class TagIndex:
    """Resolves a tag term against ``__cc_dict`` into bit tests and list lookups."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lock: threading.Lock):
        self._con = con
        self._lock = lock
        self.meta = json.loads(con.execute("SELECT meta FROM __cc_meta").fetchone()[0])
        self._cat_index = {cat: ci for ci, (cat, _, _) in enumerate(self.meta["categories"])}
        self._rare = {ci: rare for ci, (_, _, rare) in enumerate(self.meta["categories"])}

    def predicate(self, tag: str, categories: Sequence[str]) -> Compiled:
        cats = [self._cat_index[c] for c in categories if c in self._cat_index]
        if not cats:
            return Compiled("FALSE")
        marks = ", ".join("?" * len(cats))
        if "*" in tag:
            like = "".join("%" if ch == "*" else ("\\" + ch if ch in "%_\\" else ch) for ch in tag)
            sql = f"SELECT id, cat, bit FROM __cc_dict WHERE cat IN ({marks}) AND tag LIKE ? ESCAPE '\\'"
        else:
            like = tag
            sql = f"SELECT id, cat, bit FROM __cc_dict WHERE cat IN ({marks}) AND tag = ?"
        with self._lock:
            cur = self._con.cursor()
        found = cur.execute(sql + f" LIMIT {MAX_LISTED_TAG_IDS + 1}", [*cats, like]).fetchall()
        cur.close()
        if len(found) > MAX_LISTED_TAG_IDS:
            raise QueryError(f"the wildcard {tag!r} matches more than {MAX_LISTED_TAG_IDS:,} tags")
        masks: dict[int, int] = {}
        rare: dict[int, list[int]] = {}
        for tid, ci, bit in found:
            if bit >= 0:
                masks[bit >> 6] = masks.get(bit >> 6, 0) | (1 << (bit & 63))
            else:
                rare.setdefault(ci, []).append(tid)
        parts: list[str] = []
        params: list[Any] = []
        for word, mask in sorted(masks.items()):
            parts.append(f"({quote_ident(f'{PREFIX}b{word}')} & ?::UBIGINT) <> 0")
            params.append(mask)
        for ci, ids in sorted(rare.items()):
            col = quote_ident(self._rare[ci])
            if len(ids) == 1:
                parts.append(f"list_contains({col}, ?::INTEGER)")
                params.append(ids[0])
            elif len(ids) <= MAX_LIST_TEST:
                parts.append(f"list_has_any({col}, ?::INTEGER[])")
                params.append(sorted(ids))
            else:  # list_has_any is slow with long lists: a semi-join on the unnested ids instead
                parts.append(f"rowid IN (SELECT __p.rowid FROM (SELECT rowid, unnest({col}) AS __x FROM posts) __p "
                             f"WHERE __p.__x IN (SELECT unnest(?::INTEGER[])))")
                params.append(sorted(ids))
        if not parts:
            return Compiled("FALSE")
        return Compiled("(" + " OR ".join(parts) + ")", params)
