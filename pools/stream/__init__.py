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

from typing import Any

from pools.engine.memory import MemoryReader
from pools.stream.captions import Captions
from pools.stream.samples import Sample, SampleStream, sample_metadata

__all__ = ["Sample", "SampleStream", "iter_samples", "TorchDataset", "sample_metadata"]


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

