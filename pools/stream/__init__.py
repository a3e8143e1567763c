"""Samples for training loops, read in memory through the planned downloader.

``iter_samples(pool, ids)`` yields a :class:`Sample` per id found (its files as bytes, a caption,
its metadata), in the order they arrive; ``TorchDataset(pool, ids)`` is a PyTorch
``IterableDataset`` that splits the ids by archive across ranks and ``DataLoader`` workers, shuffles
with a seed, and saves and restores its place (``state_dict`` / ``load_state_dict``). torch is an
optional extra: ``pools.stream.TorchDataset`` imports it when first used.

Every file is checked against its index's sha256 before it is handed out; at most a bounded number
of samples is read ahead of the loop (the reader's workers wait for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from pools.engine.memory import MemoryReader, Outcome
from pools.errors import ResourceNotFoundError
from pools.stream.captions import Captions

__all__ = ["Sample", "SampleStream", "iter_samples", "TorchDataset", "sample_metadata"]


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


def iter_samples(pool, ids, *, workers: int = 12, captions: Any = None, prefetch: int | None = None,
                 downloader=None) -> SampleStream:
    """The samples of ``ids`` (a range expression, an :class:`~pools.IdRanges`, or any iterable of
    ids, e.g. a query's lazy ids) of ``pool``.

    ``captions``: a metadata table (:mod:`pools.metadata`: tags as comma-separated text, the row as
    metadata), a mapping id -> caption, or a callable id -> caption (None: no caption).
    ``workers``: reader threads; ``prefetch``: samples held ahead of the loop; ``downloader``: run
    on a shared :class:`~pools.Downloader` (its workers and the Hub's rate limit shared)."""
    reader = MemoryReader(pool, ids, workers=workers, prefetch=prefetch, downloader=downloader, missing=True)
    return SampleStream(reader, Captions.of(captions))


def __getattr__(name: str):
    if name == "TorchDataset":
        from pools.stream.torch_dataset import TorchDataset  # lazy: torch is an optional extra

        return TorchDataset
    raise AttributeError(name)

