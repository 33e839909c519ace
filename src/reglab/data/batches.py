"""Mini-batches sliced from tensors already in memory (or on the GPU).

No Dataset, no DataLoader workers, no per-sample Python: a batch is one gather
``images[idx]``. Lightning treats :class:`TensorBatches` like a DataLoader: it calls the
sampler's ``set_epoch`` before each epoch (as for a ``DistributedSampler``) and saves
``state_dict()`` in checkpoints, so a run resumed mid-epoch sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from reglab.seeding import Stream, generator


class EpochPermutation:
    """Indices of one epoch: a fresh permutation from (seed, epoch), sharded by rank."""

    def __init__(self, n: int, seed: int | None, rank: int = 0, world_size: int = 1) -> None:
        self.n = n
        self.seed = seed  # None: sequential order (evaluation)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))

    def indices(self) -> torch.Tensor:
        if self.seed is None:
            order = torch.arange(self.n)
        else:
            order = torch.randperm(self.n, generator=generator(self.seed, Stream.ORDER, self.epoch))
        return order[self.rank :: self.world_size]


class TensorBatches:
    """An iterable of (images, labels) batches over in-memory tensors."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        sampler: EpochPermutation,
    ) -> None:
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.sampler = sampler
        self.batch_sampler = None  # DataLoader's attribute, which Lightning inspects
        self._resume_at = 0  # batches of the current epoch already trained on (resumption)
        self._served = 0

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices().to(self.images.device)
        start, self._resume_at = self._resume_at, 0
        for i in range(start, len(self)):
            # Counted before handing the batch out: when Lightning saves a checkpoint after
            # training on batch i, the state says "resume at i + 1". (Lightning does not
            # prefetch from loaders that have a length.)
            self._served = i + 1
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            # index_select: a fast path for uint8 rows that indexing with [idx] lacks
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_served": self._served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        served = state["batches_served"]
        self._resume_at = served if served < len(self) else 0  # a finished epoch: start anew
