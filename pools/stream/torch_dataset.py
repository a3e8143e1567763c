"""A PyTorch ``IterableDataset`` over a pool's ids: split by archive across ranks and ``DataLoader``
workers, shuffled with a seed, resumable with ``state_dict()`` / ``load_state_dict()``.

Each reader (one ``DataLoader`` worker of one rank) takes every ``slots``-th archive of the epoch's
seeded archive order and reads its ids through the planned downloader; its place is the archives
it finished and the ids it handed out of the ones under way, so a state saved mid-epoch resumes
with no sample repeated or skipped. With torchdata's ``StatefulDataLoader`` the state of every
worker is saved and restored for you (see the README).
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info

from pools.engine.memory import MemoryReader
from pools.errors import ResourceNotFoundError
from pools.stream.samples import sample_metadata
from pools.stream.captions import Captions
from pools.stream.split import ArchiveGroups, Progress, share


class TorchDataset(IterableDataset):
    """Items are dicts ``{"id", "files", "caption", "metadata"}`` (``files``: name -> bytes); a
    ``DataLoader`` over it needs a ``collate_fn`` that keeps them (``lambda batch: batch``) or one
    that decodes.

    ``rank``/``world_size``: this process's place among the ranks (default: ``torch.distributed``
    when it is initialised, else 0 of 1). ``shuffle``: archives in a seeded order (``seed`` +
    the epoch, :meth:`set_epoch`) and samples through a ``buffer`` of that many. ``workers``:
    reader threads per ``DataLoader`` worker. ``captions``: as :func:`pools.stream.iter_samples`.
    """

    def __init__(self, pool, ids, *, shuffle: bool = False, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, workers: int = 8, captions: Any = None, buffer: int = 1000,
                 prefetch: int | None = None):
        super().__init__()
        self.pool = pool
        self.groups = ArchiveGroups(pool, ids)
        self.shuffle, self.seed = shuffle, int(seed)
        self.rank, self.world_size = rank, world_size
        self.workers, self.buffer, self.prefetch = workers, max(1, int(buffer)), prefetch
        self.captions = captions
        self.epoch = 0
        self._loaded: dict | None = None
        self._progress: Progress | None = None
        self.missing = 0
        self.failed: dict[int, str] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Ids asked for in all (over every rank): the samples are at most that many."""
        return len(self.groups)

    def _slot(self) -> tuple[int, int]:
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank = dist.get_rank() if rank is None else rank
                world = dist.get_world_size() if world is None else world
        rank, world = int(rank or 0), int(world or 1)
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world - 1}")
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def state_dict(self) -> dict:
        if self._progress is not None:
            return self._progress.as_dict()
        return dict(self._loaded) if self._loaded else {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self._loaded = dict(state)
        if "epoch" in state:
            self.epoch = int(state["epoch"])

    def __iter__(self) -> Iterator[dict]:
        slot, slots = self._slot()
        progress = self._progress = Progress.of(self._loaded, self.epoch, slot, slots)
        self._loaded = None
        keys = [k for k in share(self.groups.keys(), slot, slots, self.shuffle, self.seed, self.epoch)
                if k not in progress.done]
        totals = {k: self.groups.count(k) for k in keys}

        def wanted() -> Iterator[tuple[int, str]]:
            for key in keys:
                skip = progress.partial.get(key, ())
                for rid in self.groups.ids(key):
                    if rid not in skip:
                        yield rid, key

        reader = MemoryReader(self.pool, wanted(), workers=self.workers, prefetch=self.prefetch, missing=True)
        captions = Captions.of(self.captions)
        rng = random.Random(self.seed * 7919 + self.epoch * 31 + slot)
        held: list = []
        try:
            for outcome in reader:
                key = outcome.info
                if outcome.error is not None:
                    # an id no archive holds is settled; one that failed is not, so that a resumed
                    # run tries it again (and a job that failed as a whole settles nothing)
                    if isinstance(outcome.error, ResourceNotFoundError):
                        self.missing += 1
                        progress.settle(key, outcome.id, totals[key])
                    else:
                        self.failed[outcome.id] = str(outcome.error)
                    continue
                held.append(outcome)
                if len(held) >= (self.buffer if self.shuffle else 1):
                    yield self._hand_out(held, rng, captions, progress, totals)
            while held:
                yield self._hand_out(held, rng, captions, progress, totals)
            if reader.error is not None:
                raise reader.error
        finally:
            reader.close()

    def _hand_out(self, held: list, rng: random.Random, captions, progress: Progress, totals: dict) -> dict:
        i = rng.randrange(len(held)) if self.shuffle else 0
        held[i], held[-1] = held[-1], held[i]
        outcome = held.pop()
        caption, row = (None, None)
        if captions is not None:
            caption, row = captions.lookup([outcome.id]).get(outcome.id, (None, None))
        progress.settle(outcome.info, outcome.id, totals[outcome.info])
        return {"id": outcome.id, "files": outcome.value, "caption": caption,
                "metadata": sample_metadata(outcome, row)}
