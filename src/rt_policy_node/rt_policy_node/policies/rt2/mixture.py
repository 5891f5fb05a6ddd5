"""Co-fine-tuning mixture: every batch holds a fixed share of robot examples, the rest vision-language.

`MixtureBatchSampler` is a `batch_sampler` over `ConcatDataset([robot, vision_language])`: indices below
`num_robot` are robot examples, the others vision-language ones. An epoch visits every robot example once
(the last batch is topped up from the next shuffle so its share is exact too); vision-language examples
are drawn from their own reshuffled stream. A robot fraction of 0 (pre-training on vision-language data
alone) makes an epoch visit every vision-language example once instead. The order depends only on
(seed, epoch), and ranks of a distributed run take alternate batches. Like the training loop's
`ResumableSampler`, it can start an epoch part-way (`set_epoch(epoch, skip=samples)`) and reports
`num_samples` per epoch on this rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


class MixtureBatchSampler:
    """Batches of `batch_size` indices with `round(batch_size * robot_fraction)` robot examples in each."""

    def __init__(
        self,
        num_robot: int,
        num_vl: int,
        batch_size: int,
        robot_fraction: float,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0.0 <= robot_fraction <= 1.0:
            raise ValueError(f"robot_fraction must be in [0, 1], got {robot_fraction}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        # Any share above 0 puts at least one robot example in every batch.
        self.robot_per_batch = max(1, round(batch_size * robot_fraction)) if robot_fraction > 0 else 0
        self.vl_per_batch = batch_size - self.robot_per_batch
        if self.robot_per_batch and num_robot < 1:
            raise ValueError(f"robot_fraction {robot_fraction} needs robot examples but there are none")
        if self.vl_per_batch and num_vl < 1:
            raise ValueError(
                f"robot_fraction {robot_fraction} leaves {self.vl_per_batch} vision-language examples "
                "per batch but there are none"
            )
        self.num_robot, self.num_vl = num_robot, num_vl
        self.batch_size = batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.skip_batches = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Reshuffles for `epoch`, starting after its first `skip` samples on this rank (whole batches)."""
        if skip % self.batch_size:
            raise ValueError(f"skip {skip} is not a whole number of batches of {self.batch_size}")
        self.epoch = epoch
        self.skip_batches = skip // self.batch_size

    @property
    def total_batches(self) -> int:
        """Batches per epoch over all ranks: enough for every robot example (every vision-language one when
        the batches hold no robot examples), a multiple of world_size."""
        if self.robot_per_batch:
            batches = math.ceil(self.num_robot / self.robot_per_batch)
        else:
            batches = math.ceil(self.num_vl / self.vl_per_batch)
        return math.ceil(batches / self.world_size) * self.world_size

    @property
    def num_samples(self) -> int:
        """Samples per epoch on this rank."""
        return self.total_batches // self.world_size * self.batch_size

    def __len__(self) -> int:
        return self.total_batches // self.world_size - self.skip_batches

    def __iter__(self) -> Iterator[list[int]]:
        # One generator per source, so either stream's order does not depend on how much of the other is drawn.
        robot = _stream([self.seed, self.epoch, 0], self.num_robot, self.total_batches * self.robot_per_batch)
        vl = self.num_robot + _stream([self.seed, self.epoch, 1], self.num_vl, self.total_batches * self.vl_per_batch)
        first = self.rank + self.skip_batches * self.world_size
        for i in range(first, self.total_batches, self.world_size):
            robot_part = robot[i * self.robot_per_batch : (i + 1) * self.robot_per_batch]
            vl_part = vl[i * self.vl_per_batch : (i + 1) * self.vl_per_batch]
            yield [*robot_part.tolist(), *vl_part.tolist()]


def _stream(seed: list[int], size: int, count: int) -> np.ndarray:
    """`count` indices from back-to-back shuffles of range(size)."""
    if count == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(size) for _ in range(math.ceil(count / size))])[:count]
