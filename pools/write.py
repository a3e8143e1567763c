"""The write stage: bytes of a ranged GET split into files, each hashed as it streams, written to
a temporary file under ``<dst>/.cheesechaser-partial/`` and renamed into place only once its sha256
matched; a cancel or a failure removes the temporary file. Also: the resume check (a file already
present and verified), clean-up after a killed process, and metainfo JSON files.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from .files import remove_empty_dir, unlink_quiet, write_atomic
from .index import IndexEntry
from .transport import Cancelled

if TYPE_CHECKING:
    from .downloader import Downloader
    from .jobs import Job, Resource

PARTIAL_DIR = ".cheesechaser-partial"
# Temporary names are unique in the process (all downloaders, all jobs), and a temporary file of
# this pid older than this process was left by an earlier process that had the same pid.
_TMP_NAMES = itertools.count()
_STARTED = time.time()


class RunWriter:
    """Splits the bytes of one ranged GET into files: hash as they stream, rename when verified."""

    def __init__(self, dl: Downloader, wid: int, job: Job, archive: str,
                 items: list[tuple[IndexEntry, Resource]]):
        self.dl, self.wid, self.job, self.archive = dl, wid, job, archive
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
        with self.job._lock:  # decided together with cancel(): no file opens once a job may end
            if self.job.cancel_event.is_set():
                raise Cancelled()
            self.job._writing += 1
        self._tmp = tmp_path(self.job, entry.basename)
        try:
            self._file = create_tmp(self._tmp)
        except BaseException:
            self._tmp = None
            self._closed_file()
            raise
        self._hash = hashlib.sha256()
        self._written = 0

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
            self.job._add_bytes(take)
            self._counted += take
            self.dl._worker(self.wid, "download", self.job, self.archive, entry.basename,
                            self._written, entry.size, throttle=True)
            if self._written == entry.size:
                self._finish_entry(entry, res)
                self.i += 1

    def _closed_file(self) -> None:
        with self.job._lock:
            self.job._writing -= 1

    def _finish_entry(self, entry: IndexEntry, res: Resource) -> None:
        """The file's last byte arrived: verify it, rename it into place or drop it."""
        tmp, self._tmp = self._tmp, None
        placed = False
        try:
            self._file.close()
            self._file = None
            if entry.sha256 and self._hash.hexdigest() != entry.sha256:
                unlink_quiet(tmp)
                self.mismatched.append((entry, res))
                return
            why = place(tmp, os.path.join(self.job.dst_dir, entry.basename))
            self.completed.add(id(entry))  # settled either way: a name that cannot be taken is not retried
            if why is not None:
                self.job._file_failed(res, why)
                return
            placed = True
            self._kept += entry.size
        except BaseException:
            unlink_quiet(tmp)
            raise
        finally:
            self._file = None
            self._closed_file()  # only now: a cancel may end the job once no temporary file is left
        if placed:
            self.job._file_done(res, entry)

    def abort(self) -> None:
        # bytes of files that were not kept come off the progress, so a retry does not count them
        # twice and the job's bytes end equal to the bytes of the files it wrote
        if self._counted != self._kept:
            self.job._add_bytes(self._kept - self._counted)
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
        job._file_failed(res, f"sha256 mismatch for {entry.basename}")
        return
    tmp = tmp_path(job, entry.basename)
    with create_tmp(tmp) as f:
        f.write(data)
    why = place(tmp, os.path.join(job.dst_dir, entry.basename))
    if why is not None:
        job._file_failed(res, why)
        return
    job._file_done(res, entry)


def tmp_dir(job: Job) -> str:
    os.makedirs(job.partial_dir, exist_ok=True)
    return job.partial_dir

def tmp_path(job: Job, basename: str) -> str:
    os.makedirs(job.partial_dir, exist_ok=True)
    return os.path.join(job.partial_dir, f"{basename}.{os.getpid()}.{next(_TMP_NAMES)}.part")


def verified(path: str, entry: IndexEntry, on_hash: Callable[[], None]) -> bool:
    """True when ``path`` already holds exactly the bytes the index describes."""
    try:
        if os.path.getsize(path) != entry.size or not os.path.isfile(path):
            return False
    except OSError:
        return False
    if not entry.sha256:
        return False
    on_hash()
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return False
    return h.hexdigest() == entry.sha256


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
        if len(parts) == 4 and parts[3] == "part" and parts[1].isdigit():
            pid = int(parts[1])
            if pid == os.getpid():
                try:
                    if os.stat(path).st_mtime >= _STARTED:
                        continue  # another job of this process is writing it, into the same folder
                except OSError:
                    continue
            elif _pid_alive(pid):
                continue
        unlink_quiet(path)
    remove_empty_dir(partial_dir)


def place(tmp: str, final: str) -> str | None:
    """Rename a verified temporary file into place: None, or why this one name cannot be taken
    (a folder or a non-empty directory stands there). The temporary file never stays behind."""
    try:
        os.replace(tmp, final)
        return None
    except OSError as err:
        unlink_quiet(tmp)
        if err.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
            return f"cannot save {os.path.basename(final)}: {err.strerror}"
        raise


def create_tmp(path: str):
    """A new temporary file; its folder may have just been removed by a job that ended."""
    for _ in range(3):
        try:
            return open(path, "wb")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "wb")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metainfo_path(dst_dir: str, metainfo_fmt: str, resource_id) -> str:
    name = metainfo_fmt.format(resource_id=resource_id)
    path = os.path.abspath(os.path.join(dst_dir, name))
    root = os.path.abspath(dst_dir)
    if os.path.commonpath([path, root]) != root or path == root:
        raise ValueError(f"metainfo name {name!r} leaves the destination folder")
    return path


def write_json_atomic(path: str, data: Any, tmp_dir: str | None = None) -> None:
    """Write JSON to ``path`` through a temporary file (in ``tmp_dir``, on the same filesystem)."""
    body = json.dumps(data, indent=4, sort_keys=True, ensure_ascii=False).encode("utf-8")
    write_atomic(path, body, tmp_dir=tmp_dir, prefix=f"metainfo.{os.getpid()}.", suffix=".part")
