"""Captions beside downloaded images: ``<id>.txt`` (comma-separated tags, as LoRA trainers read
them) or ``<id>.tags.json``, from the metadata table the ids were chosen from.

A :class:`CaptionWriter` listens to the downloader's ``ResourceDone`` events (a worker thread
calls it), queues the ids, and a thread of its own looks their tags up in batches (one table scan
per batch, not per image) and writes each caption atomically, only inside the destination.
"""

from __future__ import annotations

import json
import os
import queue
import threading

from pools.events import JobState, ResourceDone
from pools.files import write_atomic
from pools.text import plain_text
from pools.metadata.table import MetadataTable

CAPTION_FORMATS = ("txt", "json")
#: the order tag categories are written in: who and what first, then the rest
CATEGORY_ORDER = ("artist", "character", "copyright", "general", "meta", "tags")
_BATCH = 512


def caption_text(tags: dict[str, list[str]]) -> str:
    """The tags, who and what first, comma-separated; a table's control, bidi and invisible
    characters (an ESC that would clear a terminal on ``cat``) are removed."""
    out: list[str] = []
    seen: set[str] = set()
    for category in CATEGORY_ORDER:
        for tag in tags.get(category, ()):
            tag = plain_text(str(tag)).strip()
            if tag and tag not in seen:
                seen.add(tag)
                out.append(tag)
    return ", ".join(out) + "\n"


class CaptionWriter:
    """Write a caption for every resource a job completes (downloaded or already present)."""

    def __init__(self, table: MetadataTable, dst_dir: str, fmt: str = "txt", *, bound: bool = True,
                 on_end=None):
        if fmt not in CAPTION_FORMATS:
            raise ValueError(f"captions are txt or json, not {fmt!r}")
        self.table = table
        self.fmt = fmt
        self.root = os.path.realpath(dst_dir)
        self.written = 0
        self.errors: list[str] = []
        self.job_id: int | None = None  # None once bound: every job's events (a downloader of one job)
        self._on_end = on_end
        self._bound = threading.Event()
        if bound:
            self._bound.set()
        self._queue: "queue.Queue[ResourceDone | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="captions", daemon=True)
        self._thread.start()

    def bind(self, job_id: int | None) -> None:
        """Write captions for this job only (a downloader shared by several jobs); None: it was
        never queued, so stop."""
        self.job_id = job_id
        if job_id is None:
            self._queue.put(None)
        self._bound.set()

    def on_event(self, event) -> None:
        """The downloader's ``on_event`` (or a part of it): cheap, never blocks the worker."""
        if isinstance(event, ResourceDone):
            self._queue.put(event)
        elif isinstance(event, JobState) and event.state in ("done", "cancelled", "failed") and \
                self._bound.is_set() and self.job_id is not None and event.job_id == self.job_id:
            self._queue.put(None)  # its job ended: write what is queued, then stop

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._bound.set()
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        self._bound.wait()
        try:
            self._loop()
        finally:
            if self._on_end is not None:
                self._on_end(self)

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stop = True
                batch = [e for e in batch if e is not None]
            if self.job_id is not None:
                batch = [e for e in batch if e.job_id == self.job_id]
            if batch:
                try:
                    self._write(batch)
                except Exception as err:  # noqa: BLE001 - reported at the end, never kills the job
                    self.errors.append(f"captions: {err}")

    def _write(self, batch: list[ResourceDone]) -> None:
        ids = [e.resource_id for e in batch]
        if self.fmt == "txt":
            found = self.table.tags_of(ids)
        else:
            found = {rid: row for rid, row in self.table.info_of(ids).items()}
            tags = self.table.tags_of(ids)
        for event in batch:
            rid = event.resource_id
            if rid not in found:
                continue
            name = f"{rid}.txt" if self.fmt == "txt" else f"{rid}.tags.json"
            folder = self._folder_of(event)
            path = os.path.join(folder, name)
            if os.path.commonpath([os.path.realpath(path), self.root]) != self.root:
                self.errors.append(f"caption of {rid}: {name} would leave the destination; not written")
                continue
            if any(os.path.basename(f) == name for f in event.files):
                self.errors.append(f"caption of {rid}: the dataset has its own {name}; kept it")
                continue
            if self.fmt == "txt":
                body = caption_text(found[rid]).encode("utf-8")
            else:
                row = found[rid]
                clean = {k: [plain_text(str(t)) for t in v] for k, v in tags.get(rid, {}).items()}
                body = json.dumps({"id": rid, "rating": _plain(row.rating), "score": row.score, "width": row.width,
                                   "height": row.height, "tags": clean,
                                   "caption": caption_text(tags.get(rid, {})).strip()},
                                  ensure_ascii=False, indent=1, default=str).encode("utf-8")
            write_atomic(path, body, prefix=".caption.", suffix=".part", mode=0o644)  # as the images are
            self.written += 1

    def _folder_of(self, event: ResourceDone) -> str:
        """The folder of the resource's image (the destination itself for flat downloads)."""
        for name in event.files:
            folder = os.path.dirname(os.path.join(self.root, name))
            real = os.path.realpath(folder)
            if os.path.commonpath([real, self.root]) == self.root:
                return real
        return self.root


def _plain(value):
    return plain_text(value) if isinstance(value, str) else value
