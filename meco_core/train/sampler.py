"""Resumable, rank-aware data order: batch `step` is a pure function of (seed, step).

Why not RandomSampler/DistributedSampler: their order depends on how many batches were
drawn from a live iterator, so a run restarted at step s cannot reproduce batch s without
replaying everything before it. Here:

- an epoch's order is a permutation seeded by (seed, epoch); several sources are mixed
  by weight (weight w = round(w * len) samples of that source per epoch, drawn without
  replacement, re-shuffled every epoch; w > 1 repeats the source);
- global batch b of an epoch is items [b*B*W, (b+1)*B*W) of that order; rank r takes the
  r-th slice of B (the DistributedSampler equivalent; the last incomplete batch is
  dropped so every rank gets the same number of full batches);
- every item carries its own augmentation seed from (seed, epoch, position), applied by
  `SeededDataset` inside a forked torch RNG, so augmentation does not depend on workers,
  prefetching or the global RNG used by the model.
Resuming at step s is therefore just `start_step=s`: nothing is replayed.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def _mix(*values: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python versions."""
    return int(np.random.SeedSequence([int(v) % (1 << 63) for v in values]).generate_state(1, np.uint64)[0]) >> 1


class ResumableBatchSampler:
    """Yields lists of (dataset index, augmentation seed) for steps start_step..total_steps-1."""

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, start_step: int = 0, total_steps: int | None = None) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("need one weight per source and at least one source")
        if any(n <= 0 for n in sizes):
            raise ValueError(f"every source needs samples, got sizes {list(sizes)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.sizes, self.weights = [int(n) for n in sizes], [float(w) for w in weights]
        self.offsets = np.cumsum([0] + self.sizes[:-1]).tolist()
        self.counts = [max(1, round(w * n)) for n, w in zip(self.sizes, self.weights)]
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.start_step, self.total_steps = start_step, total_steps
        self.epoch_len = sum(self.counts)
        self.batches_per_epoch = self.epoch_len // (batch_size * world_size)
        if self.batches_per_epoch < 1:
            raise ValueError(f"an epoch has {self.epoch_len} samples, fewer than one global batch "
                             f"({batch_size} x {world_size} ranks)")
        self._cache: tuple[int, torch.Tensor] | None = None

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """Global dataset indices of one epoch, in order."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        g = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5A3))
        parts = []
        for n, c, off in zip(self.sizes, self.counts, self.offsets):
            reps = [torch.randperm(n, generator=g) for _ in range(-(-c // n))]
            parts.append(torch.cat(reps)[:c] + off)
        order = torch.cat(parts)
        order = order[torch.randperm(len(order), generator=g)]
        self._cache = (epoch, order)
        return order

    def batch(self, step: int) -> list[tuple[int, int]]:
        """This rank's share of global batch `step`."""
        epoch, b = divmod(step, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        start = (b * self.world_size + self.rank) * self.batch_size
        return [(int(order[p]), _mix(self.seed, epoch, p, 0xA06)) for p in range(start, start + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("infinite sampler has no length")
        return max(0, self.total_steps - self.start_step)


class SeededDataset(Dataset):
    """Wraps a dataset whose augmentation draws from torch's global RNG; item = (index, seed).

    The seed is applied inside `torch.random.fork_rng`, so the caller's RNG (used by the
    model: router noise, VQ restarts) is left untouched in the main process.
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.base[index]
