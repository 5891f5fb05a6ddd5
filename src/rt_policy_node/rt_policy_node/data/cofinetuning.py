"""Co-fine-tuning mixture: every batch holds a fixed share of robot examples, the rest vision-language.

`CoFineTuningBatchSampler` is a `batch_sampler` over `ConcatDataset([robot, vision_language])`: indices below
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

from rt_policy_node.data.mixture import WeightedBatchSampler


class CoFineTuningBatchSampler(WeightedBatchSampler):
    """Batches of `batch_size` indices with `round(batch_size * robot_fraction)` robot examples in each.

    A `WeightedBatchSampler` of two sources whose weights are whole per-batch counts, so no rounding is carried:
    the robot count is the same in every batch, and the epoch is set by the robot examples, not by both sources.
    """

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
        # Enough batches for every robot example (every vision-language one when the batches hold no robot examples).
        if self.robot_per_batch:
            batches = math.ceil(num_robot / self.robot_per_batch)
        else:
            batches = math.ceil(num_vl / self.vl_per_batch)
        super().__init__(
            [num_robot, num_vl],
            [self.robot_per_batch, self.vl_per_batch],
            batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            samples_per_epoch=batches * batch_size,
        )
