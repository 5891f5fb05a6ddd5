"""Training on several stored datasets at once, each drawn at its own weight (e.g. fractal 0.5, your bags 0.5).

`parse_sources(["datasets/fractal:0.5", "datasets/mine:0.5"])` reads `PATH[:WEIGHT]` arguments; `open_sources`
opens them as `StoredDataset`s and checks they can be mixed: one action spec (the model's), one text encoder
(embeddings of two encoders are unrelated spaces: mixing them is refused unless asked for), and one frame size.
Datasets stored at another size than the model's are resized on read with the model's own resize
(`ResizedDataset`): that costs time on every window, and a frame resized twice (camera -> stored size -> model
size) is not exactly the frame one resize gives, so rebuilding (or re-importing) at the model's size is better.

`MixtureDataset` concatenates one window dataset per source. `WeightedBatchSampler` is its batch sampler: every
batch takes from each source its weight's share of the batch, the shares' rounding carried from batch to batch
so the counts over any run of batches stay within one sample of the weights; each source's windows come from its
own reshuffled stream (a small source repeats, a large one is subsampled). An epoch is as many samples as the
sources hold together (or `samples_per_epoch`); the order depends only on (seed, epoch), ranks of a distributed
run take alternate batches, and `set_epoch(epoch, skip=samples)` starts part-way, as the training loop's
`ResumableSampler` does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.policies.action_tokenizer import ActionDim, spec_to_json
from rt_policy_node.policies.rt1.image import preprocess


@dataclass(frozen=True)
class MixtureSource:
    """One dataset of a mixture and its weight (weights are normalised over the mixture)."""

    path: str
    weight: float = 1.0


def parse_sources(specs: Sequence[str]) -> list[MixtureSource]:
    """`PATH[:WEIGHT]` arguments -> sources with weights summing to 1 (a missing weight counts 1).

    A suffix after the last `:` that is not a number belongs to the path. Raises ValueError for a weight that is
    not positive and finite, or for no sources.
    """
    if not specs:
        raise ValueError("no datasets given")
    sources = []
    for spec in specs:
        path, _, tail = str(spec).rpartition(":")
        try:
            weight = float(tail) if path else 1.0
        except ValueError:
            path, weight = str(spec), 1.0
        if not path:
            path = str(spec)
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"{spec}: a dataset's weight must be a positive number, got {tail}")
        sources.append(MixtureSource(path, weight))
    total = sum(s.weight for s in sources)
    return [MixtureSource(s.path, s.weight / total) for s in sources]


class ResizedFrames:
    """A dataset's frames array as another square size: indexing returns frames resized with the model's resize."""

    def __init__(self, frames: np.ndarray, size: int) -> None:
        self.frames = frames
        self.size = size
        self.shape = (len(frames), size, size, 3)
        self.dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, key: Any) -> np.ndarray:
        frames = np.array(self.frames[key])
        resized = preprocess(torch.from_numpy(frames), self.size).round().clamp(0, 255).to(torch.uint8)
        resized = resized.permute(0, 2, 3, 1).numpy()
        return resized if frames.ndim == 4 else resized[0]


class ResizedDataset(StoredDataset):
    """A stored dataset whose frames are served at `size` x `size` (its index says so too)."""

    def __init__(self, directory: str | Path, size: int) -> None:
        super().__init__(directory)
        self.size = size
        self.stored_size = self.index.image_size
        self.frames = ResizedFrames(self.frames, size)
        self.index.image_size = (size, size)

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["size"])


def open_sources(
    sources: Sequence[MixtureSource],
    image_size: int | None = None,
    action_spec: tuple[ActionDim, ...] | None = None,
    allow_mixed_text_encoders: bool = False,
) -> list[StoredDataset]:
    """Opens every source and checks the mixture; datasets of another frame size than `image_size` are resized
    on read (None: all must have one size).

    Raises ValueError naming the dataset for another action spec (than `action_spec`, else the first dataset's),
    another text encoder (unless `allow_mixed_text_encoders`) or another frame size (when `image_size` is None).
    Different label rounding is only a warning (labels differ by at most one bin).
    """
    opened: list[StoredDataset] = [StoredDataset(s.path) for s in sources]
    first = opened[0]
    spec = spec_to_json(action_spec) if action_spec is not None else first.index.action_spec
    for data in opened:
        if data.index.action_spec != spec:
            raise ValueError(f"{data.directory}: its action spec differs from the model's ({first.directory}'s)")
        if data.index.text_encoder != first.index.text_encoder and not allow_mixed_text_encoders:
            raise ValueError(
                f"{data.directory} embeds instructions with {data.index.text_encoder}, {first.directory} with"
                f" {first.index.text_encoder}: the two are unrelated embedding spaces, so one model would be told"
                " the same instruction two ways. Build both with one encoder (rt-dataset build --text-embeddings)"
            )
        if data.index.rounding != first.index.rounding:
            warnings.warn(
                f"{data.directory} labels use {data.index.rounding!r} rounding, {first.directory}"
                f" {first.index.rounding!r}",
                stacklevel=2,
            )
    sizes = {tuple(d.index.image_size) for d in opened}
    if image_size is None:
        if len(sizes) > 1:
            listed = ", ".join(f"{d.directory}: {d.index.image_size[0]}" for d in opened)
            raise ValueError(f"datasets of different frame sizes ({listed}): give the size to resize them to")
        return opened
    return [
        d if tuple(d.index.image_size) == (image_size, image_size) else ResizedDataset(d.directory, image_size)
        for d in opened
    ]


class MixtureDataset(ConcatDataset):
    """One dataset per source, end to end (`ConcatDataset`), with the sources' weights and names."""

    def __init__(self, parts: Sequence[Dataset], weights: Sequence[float], names: Sequence[str] | None = None) -> None:
        if len(parts) != len(weights):
            raise ValueError(f"{len(parts)} datasets but {len(weights)} weights")
        if not all(math.isfinite(w) and w > 0 for w in weights):
            raise ValueError(f"weights must be positive, got {list(weights)}")
        super().__init__(parts)
        total = float(sum(weights))
        self.weights = [w / total for w in weights]
        self.names = list(names) if names is not None else [str(i) for i in range(len(parts))]
        self.lengths = [len(p) for p in parts]
        empty = [name for name, length in zip(self.names, self.lengths, strict=True) if length == 0]
        if empty:
            raise ValueError(f"empty datasets in the mixture: {', '.join(empty)}")

    def set_epoch(self, epoch: int) -> None:
        """Passes the epoch on to every part that draws augmentations by epoch."""
        for part in self.datasets:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)


def batch_shares(weights: Sequence[float], batch_size: int, batches: int) -> np.ndarray:
    """int [batches, sources]: how many samples each batch takes from each source. Each row sums to batch_size;
    the rounding left by one batch is carried into the next, so every prefix of batches is within one sample of
    the weights per source."""
    weights = np.asarray(weights, np.float64) / np.sum(weights)
    shares = np.zeros((batches, len(weights)), np.int64)
    carry = np.zeros(len(weights))
    for b in range(batches):
        target = weights * batch_size + carry
        counts = np.floor(target).astype(np.int64)
        short = batch_size - int(counts.sum())
        if short:
            counts[np.argsort(-(target - counts), kind="stable")[:short]] += 1
        shares[b] = counts
        carry = target - counts
    return shares


def _stream(seed: list[int], size: int, count: int) -> np.ndarray:
    """`count` indices from back-to-back shuffles of range(size)."""
    if count == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(size) for _ in range(math.ceil(count / size))])[:count]


class WeightedBatchSampler:
    """A `batch_sampler` over a `MixtureDataset` (indices into the concatenation) with every batch split between
    the sources by weight; `set_epoch(epoch, skip=samples)` and `num_samples` as the training loop expects. A source
    of weight 0 is never drawn and may be empty (`data.cofinetuning` with a robot fraction of 0 or 1)."""

    def __init__(
        self,
        lengths: Sequence[int],
        weights: Sequence[float],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        samples_per_epoch: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        if len(lengths) != len(weights) or not lengths:
            raise ValueError(f"{len(lengths)} dataset lengths but {len(weights)} weights")
        if any(n < 1 and w > 0 for n, w in zip(lengths, weights, strict=True)):
            raise ValueError(f"every weighted dataset of a mixture needs samples, got lengths {list(lengths)}")
        self.lengths = [int(n) for n in lengths]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.batch_size = batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        samples = samples_per_epoch if samples_per_epoch is not None else sum(self.lengths)
        batches = max(1, math.ceil(samples / batch_size))
        self.total_batches = math.ceil(batches / world_size) * world_size
        self.shares = batch_shares(weights, batch_size, self.total_batches)
        self.epoch = 0
        self.skip_batches = 0

    @classmethod
    def for_dataset(cls, dataset: MixtureDataset, batch_size: int, **kwargs: Any) -> WeightedBatchSampler:
        """The sampler of `dataset`'s sources and weights."""
        return cls(dataset.lengths, dataset.weights, batch_size, **kwargs)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Reshuffles for `epoch`, starting after its first `skip` samples on this rank (whole batches)."""
        if skip % self.batch_size:
            raise ValueError(f"skip {skip} is not a whole number of batches of {self.batch_size}")
        self.epoch = epoch
        self.skip_batches = skip // self.batch_size

    @property
    def num_samples(self) -> int:
        """Samples per epoch on this rank."""
        return self.total_batches // self.world_size * self.batch_size

    def __len__(self) -> int:
        return self.total_batches // self.world_size - self.skip_batches

    def __iter__(self) -> Iterator[list[int]]:
        # One stream per source, so a source's order does not depend on how much of the others is drawn.
        streams = [
            offset + _stream([self.seed, self.epoch, source], length, int(self.shares[:, source].sum()))
            for source, (offset, length) in enumerate(zip(self.offsets, self.lengths, strict=True))
        ]
        ends = np.cumsum(self.shares, axis=0)
        for b in range(self.rank + self.skip_batches * self.world_size, self.total_batches, self.world_size):
            batch = []
            for source, stream in enumerate(streams):
                batch.extend(stream[ends[b, source] - self.shares[b, source] : ends[b, source]].tolist())
            yield batch


def make_mixture_loader(
    dataset: MixtureDataset,
    batch_size: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable | None = None,
    samples_per_epoch: int | None = None,
) -> tuple[DataLoader, WeightedBatchSampler]:
    """A DataLoader of weighted batches of `dataset` and its sampler (`data/windows.make_loader`'s counterpart);
    call `sampler.set_epoch(epoch, skip)` and `dataset.set_epoch(epoch)` before each epoch."""
    sampler = WeightedBatchSampler.for_dataset(
        dataset, batch_size, seed=seed, rank=rank, world_size=world_size, samples_per_epoch=samples_per_epoch
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler
