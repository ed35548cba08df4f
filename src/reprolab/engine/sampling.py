"""The order in which a run visits its samples: one permutation per epoch, split across ranks.

`EpochSampler` yields `(index, seed)` pairs. A training dataset reads `seed` to draw its
augmentation, so the data of step k of epoch e is a function of (run seed, e, k) only: the same
with 1 or 8 workers, with 1 or 8 ranks, and after a resume in the middle of the epoch.

Ranks take interleaved slices of each global batch (rank r takes positions r, r+W, r+2W, ... of
the permutation), so the union of the ranks' batch i is exactly batch i of a one-process run with
the same global batch size.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from reprolab.engine.seeding import sample_seed


class EpochSampler(Sampler[tuple[int, int]]):
    def __init__(
        self,
        num_samples: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        global_batch_size: int = 1,
        drop_last: bool = False,
    ):
        if global_batch_size % world_size:
            raise ValueError(
                f"batch size {global_batch_size} is not divisible by the world size {world_size}; "
                "choose optim.batch_size as a multiple of the number of processes"
            )
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.global_batch_size = global_batch_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Visit `epoch`'s permutation, skipping its first `start_batch` global batches (resume)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def epoch_positions(self) -> list[int]:
        """The sample indices of the whole epoch, in visiting order, for all ranks together."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        if self.drop_last:
            order = order[: self.global_batches() * self.global_batch_size]
        return order

    def global_batches(self) -> int:
        if self.drop_last:
            return self.num_samples // self.global_batch_size
        return -(-self.num_samples // self.global_batch_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.epoch_positions()[self.start_batch * self.global_batch_size :]
        for index in order[self.rank :: self.world_size]:
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        remaining = max(0, len(self.epoch_positions()) - self.start_batch * self.global_batch_size)
        return len(range(self.rank, remaining, self.world_size))
