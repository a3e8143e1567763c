"""The shared partial folder of a cluster job's destination, held while tasks write in it."""

from __future__ import annotations

import os
import uuid

from pools.engine.write import PARTIAL_DIR
from pools.files import real_dir_inside

KEEP = ".keep"


def _hold_partial_dir(dst_dir: str) -> str | None:
    """Keep the shared partial folder from being removed while this task writes in it.

    Every task's engine removes the partial folder when it finds it empty; tasks of one job on
    other workers write into the same folder, so each holds a marker file in it (never a
    ``.part``: the stale-file sweep leaves it alone) until its engine is done.
    """

    name = f".task-{os.getpid()}-{uuid.uuid4().hex}{KEEP}"
    for _ in range(5):  # another task may remove the empty folder between our two steps
        try:
            os.makedirs(dst_dir, exist_ok=True)
            folder = real_dir_inside(os.path.abspath(dst_dir), [PARTIAL_DIR])
            path = os.path.join(folder, name)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
            return path
        except FileNotFoundError:
            continue
        except OSError:
            return None  # the engine reports what is wrong with the destination
    return None


def _release_partial_dir(keeper: str | None) -> None:
    if keeper is None:
        return
    try:
        os.unlink(keeper)
    except OSError:
        pass
    try:
        os.rmdir(os.path.dirname(keeper))  # only when empty: another task may still hold it
    except OSError:
        pass


def _sweep_keepers(dst_dir: str) -> None:
    """After the job, from the client when it sees the destination: markers of dead workers."""
    folder = os.path.join(os.path.abspath(dst_dir), PARTIAL_DIR)
    if os.path.islink(folder) or not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(".task-") and name.endswith(KEEP) and not os.path.islink(path):
            try:
                os.unlink(path)
            except OSError:
                pass
    try:
        os.rmdir(folder)
    except OSError:
        pass
