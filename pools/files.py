"""Small file-system helpers shared by the engine: atomic writes and quiet clean-up."""

from __future__ import annotations

import os
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


def write_atomic(path: str, data: bytes, *, tmp_dir: str | None = None, prefix: str = ".incoming-",
                 suffix: str = "") -> str:
    """Write ``data`` to ``path`` through a temporary file in ``tmp_dir`` (same filesystem),
    renamed into place once complete; the temporary file never stays behind."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=tmp_dir or os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        unlink_quiet(tmp)
        raise
    return path
