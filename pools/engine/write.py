"""The write stage: bytes of a ranged GET split into files, each hashed as it streams, written to
a temporary file under ``<dst>/.cheesechaser-partial/`` and renamed into place only once its sha256
matched; a cancel or a failure removes the temporary file. Also: the resume check (a file already
present and verified), clean-up after a killed process, and metainfo JSON files.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import string
import time
from typing import TYPE_CHECKING, Any, Callable

from pools.archive.index import IndexEntry
from pools.errors import DestinationError
from pools.files import (
    OutsideError,
    inside,
    open_exclusive,
    owner_of,
    pid_alive,
    process_tag,
    real_dir_inside,
    remove_empty_dir,
    unlink_quiet,
    unpredictable_name,
    write_atomic,
)
from pools.text import is_unsafe_text, shown

if TYPE_CHECKING:
    from pools.engine.job import Job, Resource

PARTIAL_DIR = ".cheesechaser-partial"
# A temporary file of this pid older than this process was left by an earlier process that had
# the same pid.
_STARTED = time.time()


class RunWriter:
    """Splits the bytes of one ranged GET into files: hash as they stream, rename when verified.

    ``on_progress(name, written, size)`` is told how far the file being written is.
    """

    def __init__(self, job: Job, items: list[tuple[IndexEntry, Resource]],
                 on_progress: Callable[[str, int, int], None]):
        self.job = job
        self.on_progress = on_progress
        self.items = items
        self.start = items[0][0].offset
        self.end = max(e.offset + e.size for e, _ in items)
        self.pos = self.start
        self.i = 0
        self.completed: set[int] = set()
        self.mismatched: list[tuple[IndexEntry, Resource]] = []
        self._file = None
        self._tmp: str | None = None
        self._hash = None
        self._written = 0
        self._counted = 0  # bytes added to the job's progress by this attempt
        self._kept = 0  # of which belong to files verified and renamed into place

    def _open(self, entry: IndexEntry) -> None:
        self.job.file_opening()  # raises Cancelled once the job may end
        self._hash = hashlib.sha256()
        self._written = 0
        if self.job.sink is not None:  # read into memory
            self._file = io.BytesIO()
            return
        self._tmp = tmp_path(self.job.dst_dir, os.path.basename(entry.basename))
        try:
            self._file = create_tmp(self._tmp)
        except BaseException:
            self._tmp = None
            self._closed_file()
            raise

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view.nbytes and self.i < len(self.items):
            entry, res = self.items[self.i]
            if self.pos < entry.offset:  # the gap between two wanted files
                skip = min(entry.offset - self.pos, view.nbytes)
                view = view[skip:]
                self.pos += skip
                continue
            if self._file is None:
                self._open(entry)
            take = min(entry.offset + entry.size - self.pos, view.nbytes)
            part = view[:take]
            self._file.write(part)
            self._hash.update(part)
            self._written += take
            self.pos += take
            view = view[take:]
            self.job.add_bytes(take)
            self._counted += take
            self.on_progress(entry.basename, self._written, entry.size)
            if self._written == entry.size:
                self._finish_entry(entry, res)
                self.i += 1

    def _closed_file(self) -> None:
        self.job.file_closed()

    def _finish_entry(self, entry: IndexEntry, res: Resource) -> None:
        """The file's last byte arrived: verify it, rename it into place or drop it."""
        tmp, self._tmp = self._tmp, None
        placed = False
        data = None
        try:
            if tmp is None:
                data = self._file.getvalue()
            self._file.close()
            self._file = None
            if entry.sha256 and self._hash.hexdigest() != entry.sha256:
                if tmp is not None:
                    unlink_quiet(tmp)
                self.mismatched.append((entry, res))
                return
            if tmp is not None:
                why = place_in(tmp, self.job.dst_dir, entry.basename, self.job.real_dst)
                self.completed.add(id(entry))  # settled either way: a name that cannot be taken is not retried
                if why is not None:
                    self.job.file_failed(res, why)
                    return
            else:  # in memory: verified, kept
                self.completed.add(id(entry))
            placed = True
            self._kept += entry.size
        except BaseException:
            if tmp is not None:
                unlink_quiet(tmp)
            raise
        finally:
            self._file = None
            self._closed_file()  # only now: a cancel may end the job once no temporary file is left
        if placed:
            self.job.file_done(res, entry, data)

    def abort(self) -> None:
        # bytes of files that were not kept come off the progress, so a retry does not count them
        # twice and the job's bytes end equal to the bytes of the files it wrote
        if self._counted != self._kept:
            self.job.add_bytes(self._kept - self._counted)
            self._counted = self._kept
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
            self._closed_file()
        if self._tmp is not None:
            unlink_quiet(self._tmp)
            self._tmp = None


def write_whole(job: Job, entry: IndexEntry, res: Resource, data: bytes) -> None:
    if entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
        job.file_failed(res, f"sha256 mismatch for {entry.basename}")
        return
    if job.sink is not None:
        job.file_done(res, entry, bytes(data))
        return
    tmp = tmp_path(job.dst_dir, os.path.basename(entry.basename))
    with create_tmp(tmp) as f:
        f.write(data)
    why = place_in(tmp, job.dst_dir, entry.basename, job.real_dst)
    if why is not None:
        job.file_failed(res, why)
        return
    job.file_done(res, entry)


def tmp_dir(dst_dir: str) -> str:
    """The destination's partial folder: a real folder inside it, never a link followed."""
    try:
        return real_dir_inside(dst_dir, [PARTIAL_DIR])
    except OutsideError as err:
        raise DestinationError(f"cannot use {err.strerror}; remove it and run again") from None


def place_in(tmp: str, dst_dir: str, name: str, root_real: str) -> str | None:
    """:func:`place` under ``name`` in ``dst_dir``: a basename, or a relative path a pool gave,
    whose folders are made, each a real folder inside (else why not, and the file is dropped)."""
    if "/" not in name:
        return place(tmp, os.path.join(dst_dir, name), root_real)
    parts = name.split("/")
    try:
        folder = real_dir_inside(dst_dir, parts[:-1])
    except OutsideError as err:
        unlink_quiet(tmp)
        return f"cannot save {shown(name, 200)}: {err.strerror}"
    return place(tmp, os.path.join(folder, parts[-1]), root_real)


def tmp_path(dst_dir: str, basename: str) -> str:
    return os.path.join(tmp_dir(dst_dir), unpredictable_name(basename))


def verified(path: str, entry: IndexEntry, on_hash: Callable[[], None]) -> str | None:
    """``"verified"`` when ``path`` already holds exactly the bytes the index describes,
    ``"unverified"`` when the index gives no sha256 and the size matches (kept, not fetched
    again every run), None when the file must be fetched."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
        return None
    if not entry.sha256:
        return "unverified"
    on_hash()
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return "verified" if h.hexdigest() == entry.sha256 else None


def clean_stale_partials(partial_dir: str) -> None:
    """Remove temporary files left by a process that died (kill -9, power loss)."""
    if os.path.islink(partial_dir):
        return  # not ours: never follow a link out of the destination
    try:
        names = os.listdir(partial_dir)
    except OSError:
        return
    for name in names:
        parts = name.rsplit(".", 3)
        path = os.path.join(partial_dir, name)
        if not name.endswith(".part") or os.path.islink(path) or not os.path.isfile(path):
            continue
        owner = owner_of(parts[1]) if len(parts) == 4 and parts[3] == "part" else None
        if owner is not None:
            pid, here = owner
            if not here:
                continue  # another host's (a shared destination): its pids are not ours to judge
            if pid == os.getpid():
                try:
                    if os.stat(path).st_mtime >= _STARTED:
                        continue  # another job of this process is writing it, into the same folder
                except OSError:
                    continue
            elif pid_alive(pid):
                continue
        unlink_quiet(path)
    remove_empty_dir(partial_dir)


def place(tmp: str, final: str, root_real: str | None = None) -> str | None:
    """Rename a verified temporary file into place: None, or why this one name cannot be taken
    (a folder or a non-empty directory stands there, or its folder now leads outside the
    destination ``root_real``). The temporary file never stays behind."""
    if root_real is not None and not inside(root_real, os.path.dirname(final)):
        unlink_quiet(tmp)
        return f"cannot save {os.path.basename(final)}: its folder leads outside the destination"
    try:
        os.replace(tmp, final)
        return None
    except OSError as err:
        unlink_quiet(tmp)
        if err.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
            return f"cannot save {os.path.basename(final)}: {err.strerror}"
        raise


def create_tmp(path: str):
    """A new temporary file (``O_EXCL|O_NOFOLLOW``); its folder may have just been removed by a
    job that ended, and is then made again (a real folder, checked)."""
    for _ in range(3):
        try:
            return open_exclusive(path, open)
        except FileNotFoundError:
            folder = os.path.dirname(path)
            try:
                real_dir_inside(os.path.dirname(folder), [os.path.basename(folder)])
            except OutsideError as err:
                raise DestinationError(f"cannot use {err.strerror}; remove it and run again") from None
    return open_exclusive(path, open)


def metainfo_parts(metainfo_fmt: str, resource_id: int) -> list[str]:
    """The folders and file name ``metainfo_fmt`` gives for ``resource_id``; ValueError with the
    reason when it is not a plain relative name inside the destination."""
    for _, field_name, spec, conversion in string.Formatter().parse(metainfo_fmt):
        if field_name is not None and (field_name != "resource_id" or conversion or len(spec or "") > 8):
            raise ValueError("only {resource_id} (with a short format spec such as :08d) may be used")
    name = metainfo_fmt.format(resource_id=resource_id)
    if not name or name.startswith("/") or "\\" in name or is_unsafe_text(name):
        raise ValueError(f"{shown(name)!r} is not a relative file name")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{shown(name)!r} leaves the destination folder (or has an empty part)")
    if parts[0] == PARTIAL_DIR or any(len(p.encode()) > 255 for p in parts):
        raise ValueError(f"{shown(name)!r} is not a usable file name")
    return parts


def check_metainfo_fmt(metainfo_fmt: str, dst_dir: str) -> None:
    """Refuse a bad ``metainfo_fmt`` when a job is submitted: ValueError with the reason."""
    try:
        parts = metainfo_parts(metainfo_fmt, 0)
        metainfo_parts(metainfo_fmt, 2**62)
    except (KeyError, IndexError, AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"bad metainfo_fmt {metainfo_fmt!r}: {err}") from None
    folder, root_real = dst_dir, os.path.realpath(dst_dir)
    for part in parts[:-1]:  # the folders already there must be real folders inside
        folder = os.path.join(folder, part)
        if not os.path.lexists(folder):
            break
        if os.path.islink(folder) or not os.path.isdir(folder) or not inside(root_real, folder):
            raise ValueError(f"bad metainfo_fmt {metainfo_fmt!r}: {folder} is a link or not a folder")


def metainfo_path(dst_dir: str, metainfo_fmt: str, resource_id) -> str:
    """Where the metainfo of ``resource_id`` goes (its folders made, each a real folder inside
    ``dst_dir``); ValueError or OutsideError when it would lead outside."""
    parts = metainfo_parts(metainfo_fmt, resource_id)
    return os.path.join(real_dir_inside(dst_dir, parts[:-1]), parts[-1])


def write_json_atomic(path: str, data: Any, tmp_dir: str | None = None) -> None:
    """Write JSON to ``path`` through a temporary file (in ``tmp_dir``, on the same filesystem)."""
    body = json.dumps(data, indent=4, sort_keys=True, ensure_ascii=False).encode("utf-8")
    write_atomic(path, body, tmp_dir=tmp_dir, prefix=f"metainfo.{process_tag()}.", suffix=".part")
