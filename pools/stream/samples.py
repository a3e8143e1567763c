"""A sample of the stream, and the metadata every sample carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from pools.engine.memory import MemoryReader, Outcome
from pools.errors import ResourceNotFoundError
from pools.stream.captions import Captions


@dataclass
class Sample:
    """One id's files (name -> bytes: the image and the dataset's own sidecars), its caption (None
    without one) and metadata (id, archive, each file's original name, sha256 and size; the
    metadata table's row when one was given)."""

    id: int
    files: dict[str, bytes]
    caption: str | None = None
    metadata: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"id": self.id, "files": self.files, "caption": self.caption, "metadata": self.metadata}


def sample_metadata(outcome: Outcome, row: Mapping | None = None) -> dict:
    out: dict[str, Any] = {
        "id": outcome.id, "archive": outcome.archive,
        "files": {e.basename: {"name": e.name, "sha256": e.sha256, "size": e.size} for e in outcome.entries},
    }
    if row:
        out["row"] = dict(row)
    return out


class SampleStream:
    """What :func:`iter_samples` returns: iterate it for samples; afterwards ``missing`` (how many
    ids no archive held) and ``failed`` (id -> why) say what was not yielded. Stopping early
    (``close()``, ``break`` then garbage collection, a ``with`` block) cancels the reads."""

    def __init__(self, reader: MemoryReader, captions: Captions | None, batch: int = 64):
        self.reader = reader
        self.captions = captions
        self.batch = batch
        self.missing = 0
        self.failed: dict[int, str] = {}
        self.yielded = 0

    def __iter__(self) -> Iterator[Sample]:
        try:
            pending: list[Outcome] = []
            for outcome in self.reader:
                if outcome.error is not None:
                    self._note_error(outcome)
                    continue
                pending.append(outcome)
                if len(pending) >= self.batch or not self._more_ready():
                    yield from self._samples(pending)
                    pending = []
            yield from self._samples(pending)
            if self.reader.error is not None:
                raise self.reader.error
        finally:
            self.reader.close()

    def _more_ready(self) -> bool:
        return bool(self.reader.sink._items)

    def _note_error(self, outcome: Outcome) -> None:
        if isinstance(outcome.error, ResourceNotFoundError):
            self.missing += 1
        else:
            self.failed[outcome.id] = str(outcome.error)

    def _samples(self, outcomes: list[Outcome]) -> Iterator[Sample]:
        if not outcomes:
            return
        found = self.captions.lookup([o.id for o in outcomes]) if self.captions is not None else {}
        for outcome in outcomes:
            caption, row = found.get(outcome.id, (None, None))
            self.yielded += 1
            yield Sample(outcome.id, outcome.value, caption, sample_metadata(outcome, row))

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "SampleStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
