"""Is a destination usable? One line saying why not, before any job is queued.

``/etc/passwd`` is "not a folder" (the engine's ``makedirs`` would say "File exists"); a path
under a file says which part is the file; a folder that cannot be written says so.
"""

from __future__ import annotations

import os

from app.core.format import display_path


def destination_problem(path: str) -> str | None:
    """None when ``path`` is (or can become) a writable folder; else why not, in one line."""
    if not path or not path.strip():
        return "give a destination folder"
    full = os.path.abspath(os.path.expanduser(path))
    shown_path = display_path(full)
    if os.path.exists(full) and not os.path.isdir(full):
        return f"cannot write to {shown_path}: it is not a folder"
    probe = full
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if probe != full and not os.path.isdir(probe):
        return f"cannot write to {shown_path}: {display_path(probe)} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"cannot write to {shown_path}: permission denied"
    return None
