"""Loose files resized on the way: ``write_resized_files(pool, ids, dst, resize)``.

Each id's files are read in memory (sha256-verified), its image resized or re-encoded, and every
file written atomically into ``dst`` under its own name (the image with the extension of its new
format). A rerun skips the ids whose image is already there (a resized image cannot be checked
against the index's sha256: its presence is what says it was done).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pools.engine.memory import MemoryReader
from pools.engine.write import PARTIAL_DIR, clean_stale_partials
from pools.errors import DestinationError, ResourceNotFoundError
from pools.files import OutsideError, path_inside, real_dir_inside, remove_empty_dir, write_atomic
from pools.ranges import parse_ids
from pools.shards.resize import ImageError, Resize, apply
from pools.shards.samples import is_image


@dataclass
class FilesReport:
    written: int = 0
    skipped: int = 0
    missing: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def _done_ids(dst: str) -> set[int]:
    """Ids with a file named ``ID.*`` in ``dst`` (read once, not per id)."""
    out = set()
    for entry in os.scandir(dst):
        head = entry.name.partition(".")[0]
        if head.isdigit() and entry.is_file(follow_symlinks=False):
            out.add(int(head))
    return out


def write_resized_files(pool, ids, dst: str, resize: Resize, *, workers: int = 12) -> FilesReport:
    try:
        os.makedirs(dst, exist_ok=True)
        clean_stale_partials(os.path.join(dst, PARTIAL_DIR))
        partial = real_dir_inside(dst, [PARTIAL_DIR])
    except (OSError, OutsideError) as err:
        raise DestinationError(f"cannot write to {dst}: {getattr(err, 'strerror', None) or err}") from None
    report = FilesReport()
    done = _done_ids(dst)

    def todo():
        for rid in (parse_ids(ids) if isinstance(ids, str) else ids):
            if int(rid) in done:
                report.skipped += 1
            else:
                yield int(rid)

    reader = MemoryReader(pool, todo(), workers=workers, missing=True)
    for outcome in reader:
        if outcome.error is not None:
            if isinstance(outcome.error, ResourceNotFoundError):
                report.missing += 1
            else:
                report.failed[outcome.id] = str(outcome.error)
            continue
        try:
            out = []
            for name in sorted(outcome.value):
                data = outcome.value[name]
                if is_image(name):
                    stem, _, ext = name.rpartition(".")
                    data, ext, _, _ = apply(data, resize, ext)
                    name = f"{stem}.{ext}"
                out.append((path_inside(dst, name), data))
        except ImageError as err:
            report.failed[outcome.id] = f"decode: {err}"
            continue
        except (ValueError, OutsideError) as err:  # a name that would not stay inside the destination
            report.failed[outcome.id] = str(err)
            continue
        for path, data in out:
            write_atomic(path, data, tmp_dir=partial, prefix=".resized.", suffix=".part")
        report.written += 1
    if reader.error is not None:
        raise reader.error
    remove_empty_dir(partial)
    return report
