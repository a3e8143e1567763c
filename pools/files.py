"""Small file-system helpers shared by the engine: atomic writes, quiet clean-up, and writing
only inside a destination (exclusive temporary files, real folders, ``realpath`` checks)."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import socket
import stat
import tempfile


def unlink_quiet(path: str) -> None:
    """Remove ``path`` if it is there; a file already gone is not an error."""
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_empty_dir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _read_umask() -> int:
    """The process's umask, read once at import (Linux says it in /proc; elsewhere it is set and
    restored here, while importing, before any thread of ours writes a file)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()  # never os.umask() while threads create files: it is process-wide


def write_atomic(path: str, data: bytes, *, tmp_dir: str | None = None, prefix: str = ".incoming-",
                 suffix: str = "", mode: int | None = None) -> str:
    """Write ``data`` to ``path`` through a temporary file in ``tmp_dir`` (same filesystem),
    renamed into place once complete; the temporary file never stays behind. ``mode``: the
    file's permissions before the umask (None: mkstemp's 0600)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=tmp_dir or os.path.dirname(path))
    try:
        if mode is not None:
            os.fchmod(fd, mode & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        unlink_quiet(tmp)
        raise
    return path


# -- writing inside a destination that someone else may have prepared
EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class OutsideError(OSError):
    """A path we were about to write leads outside the destination (a link, '..', a swapped folder)."""


def host_tag() -> str:
    """This machine, as a short name part: the first 8 hex digits of its hostname's sha256.

    Destinations may be shared (a cluster's workers write into one NFS folder): a pid means
    something only on the host that has it.
    """
    global _HOST
    if _HOST is None:
        _HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
    return _HOST


_HOST: str | None = None


def process_tag() -> str:
    """``<pid>@<host>``: whose a temporary file is (see :func:`owner_of`)."""
    return f"{os.getpid()}@{host_tag()}"


def owner_of(tag: str) -> tuple[int, bool] | None:
    """``(pid, on this host)`` of a :func:`process_tag` (a bare pid is this host's, as older
    runs wrote it); None when ``tag`` is neither."""
    pid, _, host = tag.partition("@")
    if not pid.isdigit() or len(pid) > 10:
        return None
    return int(pid), host in ("", host_tag())


def unpredictable_name(prefix: str, limit: int = 120) -> str:
    """``<prefix>.<pid>@<host>.<random>.part``: nobody can plant a link at it in advance; the pid
    and host let a later run tell a dead process's leftovers from a live one's, and leave
    another host's alone."""
    return f"{prefix[:limit]}.{process_tag()}.{secrets.token_hex(8)}.part"


def open_exclusive(path: str, opener=open):
    """A new file at ``path``, opened for writing: never an existing file, never through a link."""
    fd = os.open(path, EXCLUSIVE, 0o666)
    try:
        return opener(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def inside(root_real: str, path: str) -> bool:
    """True when ``path``, every link followed, is ``root_real`` or below it."""
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def relative_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file's path relative to a destination (absolute, climbing out with
    ``..``, empty parts, a NUL), or None."""
    text = str(name)
    parts = text.split("/")
    if not text or text.startswith("/") or "\\" in text or "\0" in text or any(p in ("", ".", "..") for p in parts):
        return f"{text[:200]!r} is not a file name inside the destination"
    return None


def path_inside(root: str, name: str) -> str:
    """``root/name`` with its folders made, each a real folder inside ``root``; ValueError for a
    name that is absolute or climbs out, OutsideError for a folder that leads outside."""
    problem = relative_name_problem(name)
    if problem:
        raise ValueError(problem)
    parts = name.split("/")
    return os.path.join(real_dir_inside(root, parts[:-1]), parts[-1])


def real_dir_inside(root: str, rel_parts: list[str] | tuple[str, ...], *, create: bool = True) -> str:
    """``root/part/part...`` as real folders (made when missing), each checked not to be a link,
    and the result checked with ``realpath`` to be inside ``root``; raises OutsideError otherwise."""
    root_real = os.path.realpath(root)
    path = root
    for part in rel_parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part:
            raise OutsideError(errno.EINVAL, f"{part!r} is not a folder name")
        path = os.path.join(path, part)
        if create:
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise OutsideError(errno.ENOTDIR, f"{path} is not a real folder (a link or a file stands there)")
    if not inside(root_real, path):
        raise OutsideError(errno.EXDEV, f"{path} leads outside {root}")
    return path


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (one we may not signal counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
