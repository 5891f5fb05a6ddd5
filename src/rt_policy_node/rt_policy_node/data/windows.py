"""Training windows over a stored dataset: for every step, the T-step window that ends at it.

Padding follows streaming inference (docs/reference/rt1-model.md, "Streaming inference"): at step
s < T of an episode the policy's window holds frames 0..s in slots 0..s, later slots empty, and the
action is read at slot s. So a window that would reach before the episode's first frame starts at
that frame instead, left-aligned: real steps fill slots 0..n-1 and slots n..T-1 are padding, with
`step_mask` False and zero action tokens. Causal attention keeps padded slots invisible to the real
ones and the loss skips them, so their frames could hold anything; they repeat the last real frame
rather than black images, which would skew BatchNorm's batch statistics in training (the streaming
policy's empty slots hold zero tokens, which no frame could produce). A window never crosses into
another episode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from rt_policy_node.data.dataset import StoredDataset

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class WindowDataset(Dataset):
    """Item i = the window ending at step i: images uint8 [T, H, W, 3], text_embedding [512],
    action_tokens int64 [T, 11], step_mask bool [T] (True for real steps).

    With `instruction_variants` (per instruction id, other embeddings of the same command `[K, 512]`, e.g.
    paraphrases), a window's embedding is one of its instruction's variants with probability `variant_prob`:
    training-time instruction augmentation, drawn like the image augmentation from (seed, epoch, index).
    """

    def __init__(
        self,
        data: StoredDataset | str | Path,
        window: int,
        augment: Augment | None = None,
        seed: int = 0,
        instruction_variants: list[np.ndarray] | None = None,
        variant_prob: float = 0.0,
    ) -> None:
        self.data = data if isinstance(data, StoredDataset) else StoredDataset(data)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 0.0 <= variant_prob <= 1.0:
            raise ValueError(f"variant_prob must be in [0, 1], got {variant_prob}")
        if instruction_variants is not None and len(instruction_variants) != len(self.data.embeddings):
            raise ValueError(
                f"instruction_variants has {len(instruction_variants)} entries for"
                f" {len(self.data.embeddings)} instructions"
            )
        self.window = window
        self.augment = augment
        self.seed = seed
        self.instruction_variants = instruction_variants
        self.variant_prob = variant_prob if instruction_variants is not None else 0.0
        self.epoch = 0
        episodes = self.data.index.episodes
        lengths = [e.length for e in episodes]
        self.episode_start = np.repeat([e.start for e in episodes], lengths).astype(np.int64)
        self.instruction_id = np.repeat([e.instruction_id for e in episodes], lengths).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Selects the augmentation draws of `epoch` (each item's draw depends on seed, epoch and index only)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data)

    def window_bounds(self, index: int) -> tuple[int, int]:
        """(first step, number of real steps) of the window ending at step `index`."""
        first = max(int(self.episode_start[index]), index - self.window + 1)
        return first, index - first + 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        first, n = self.window_bounds(index)
        frames = np.empty((self.window, *self.data.frames.shape[1:]), np.uint8)
        frames[:n] = self.data.frames[first : index + 1]
        frames[n:] = frames[n - 1]
        tokens = np.zeros((self.window, self.data.tokens.shape[1]), np.int64)
        tokens[:n] = self.data.tokens[first : index + 1]
        images = torch.from_numpy(frames)
        draw = np.random.SeedSequence([self.seed, self.epoch, index])
        if self.augment is not None:
            images = self.augment(images, torch.Generator().manual_seed(int(draw.generate_state(1)[0])))
        return {
            "images": images,
            "text_embedding": torch.from_numpy(self._embedding(index, np.random.default_rng(draw))),
            "action_tokens": torch.from_numpy(tokens),
            "step_mask": torch.arange(self.window) < n,
        }

    def _embedding(self, index: int, rng: np.random.Generator) -> np.ndarray:
        instruction = self.instruction_id[index]
        variants = self.instruction_variants[instruction] if self.variant_prob > 0 else ()
        if len(variants) and rng.random() < self.variant_prob:
            return np.array(variants[rng.integers(len(variants))], np.float32)
        return self.data.embeddings[instruction].copy()


class ResumableSampler(DistributedSampler):
    """DistributedSampler (one shard per rank; a single process is rank 0 of 1) that can start part-way
    through an epoch, so a resumed run sees exactly the batches it had not yet seen."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Starts epoch `epoch` at its `skip`-th index (of this rank's shard)."""
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable | None = None,
) -> tuple[DataLoader, ResumableSampler]:
    """A DataLoader of batches over this rank's shard (full batches only), and its sampler; call
    `sampler.set_epoch` and `dataset.set_epoch` before each epoch.

    The loader has its own generator, so starting an epoch draws nothing from torch's global RNG and a
    resumed run's RNG stream matches an uninterrupted one.
    """
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=True,
        pin_memory=pin_memory,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler
