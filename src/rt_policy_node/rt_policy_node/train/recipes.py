"""What the training loop needs from each kind of policy: how to build or load the model, its dataset, how
its examples become batches, and its loss. The loop itself (train.py) knows none of it, so another policy kind
is one more entry."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.mixture import MixtureDataset, WeightedBatchSampler, open_sources, parse_sources
from rt_policy_node.data.paraphrase import embed_paraphrases
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import spec_to_json
from rt_policy_node.policies.rt1.config import RT1Config, rt1_preset
from rt_policy_node.policies.rt1.image import augment
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.text import default_text_encoder
from rt_policy_node.train.config import TrainConfig
from rt_policy_node.train.validation import RT1Validator, Validator

Batch = dict[str, torch.Tensor]
PARAPHRASES_FILE = "paraphrases.npz"


@dataclass(frozen=True)
class Recipe:
    """A policy kind's training hooks. The model must have `save_pretrained(dir)`, which writes a
    checkpoint `load_policy` opens; `load_model` reads such a directory back (to resume, or to start from one)."""

    build_model: Callable[[TrainConfig], nn.Module]
    load_model: Callable[[Path], nn.Module]
    # (config, model) -> a Dataset whose items the collate below batches; it may have `set_epoch(epoch)`.
    make_dataset: Callable[[TrainConfig, nn.Module], Dataset]
    # (model as called, possibly DDP-wrapped; the bare model; a batch on the device) -> (loss, metrics).
    compute_loss: Callable[[nn.Module, nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    # model -> the DataLoader's collate_fn; None: torch's default_collate.
    make_collate: Callable[[nn.Module], Callable] | None = None
    # (config, dataset, rank, world_size) -> the DataLoader's batch_sampler, with `set_epoch(epoch, skip=samples)`
    # and `num_samples` (per epoch on this rank) like ResumableSampler; None (as the hook or its result): shuffled
    # full batches of the dataset.
    make_batch_sampler: Callable[[TrainConfig, Dataset, int, int], Iterable[list[int]] | None] | None = None
    # (config, model) -> a function of the model that returns its `val_*` metrics on `config.val_data`; None: this
    # policy kind has no validation (rt-train refuses --val-data).
    make_validator: Callable[[TrainConfig, nn.Module], Validator] | None = None


def _rt1_build(config: TrainConfig) -> RT1:
    if config.model_config:
        return RT1(RT1Config.from_dict(json.loads(Path(config.model_config).read_text())))
    return RT1(rt1_preset(config.preset))


def _rt1_dataset(config: TrainConfig, model: RT1) -> Dataset:
    """One window dataset per `--data` source; several make a `MixtureDataset` drawn at the sources' weights."""
    model_config = model.config
    sources = parse_sources(config.data)
    mixed = len(sources) > 1
    stored = open_sources(sources, model_config.image_size if mixed else None, model_config.action_spec)
    for data in stored:
        if data.index.image_size != (model_config.image_size, model_config.image_size):
            warnings.warn(
                f"{data.directory}: frames are {data.index.image_size}, the model resizes them to"
                f" {model_config.image_size}: rebuild the dataset with the model's size to train on what the"
                " policy sees",
                stacklevel=2,
            )
        if data.index.rounding != model_config.action_rounding:
            warnings.warn(
                f"{data.directory}: labels use {data.index.rounding!r} rounding, the model"
                f" {model_config.action_rounding!r}",
                stacklevel=2,
            )

    def window_augment(window: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment(window[None], model_config.augmentation, model_config.crop_size, generator)[0]

    augmented = model_config.augmentation != "none"
    variants = _instruction_variants(config, stored) if config.paraphrases else None
    parts = [
        WindowDataset(
            data,
            model_config.time_steps,
            augment=window_augment if augmented else None,
            seed=config.seed + i,
            instruction_variants=[variants[text] for text in data.index.instructions] if variants else None,
            variant_prob=config.paraphrase_prob,
        )
        for i, data in enumerate(stored)
    ]
    if not mixed:
        return parts[0]
    return MixtureDataset(parts, [s.weight for s in sources], names=[s.path for s in sources])


def _rt1_batch_sampler(
    config: TrainConfig, dataset: Dataset, rank: int, world_size: int
) -> WeightedBatchSampler | None:
    """A mixture's batches are split between its sources by weight; one dataset is shuffled as usual (None)."""
    if not isinstance(dataset, MixtureDataset):
        return None
    return WeightedBatchSampler.for_dataset(
        dataset, config.batch_size, seed=config.seed, rank=rank, world_size=world_size
    )


def _instruction_variants(config: TrainConfig, datasets: Sequence[StoredDataset]) -> dict[str, np.ndarray]:
    """Embedded paraphrases of every instruction of `datasets`, kept in RUN/paraphrases.npz (texts too) so a
    resumed run reuses them and anyone can read what the policy was trained on."""
    encoder = default_text_encoder()
    for data in datasets:
        if data.index.text_encoder != encoder.name:
            raise ValueError(
                f"--paraphrases: {data.directory} holds {data.index.text_encoder} embeddings; paraphrases are"
                f" embedded with {encoder.name}, so they would not be comparable"
            )
    instructions = list(dict.fromkeys(text for data in datasets for text in data.index.instructions))
    cache = Path(config.out) / PARAPHRASES_FILE
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            same = stored["instructions"].tolist() == instructions and int(stored["count"]) == config.paraphrases
            if same and int(stored["seed"]) == config.seed:
                owner, embeddings = stored["owner"], stored["embeddings"]
                return {text: embeddings[owner == i] for i, text in enumerate(instructions)}
    texts, embeddings = embed_paraphrases(instructions, encoder, config.paraphrases, config.seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        instructions=np.array(instructions),
        count=config.paraphrases,
        seed=config.seed,
        owner=np.repeat(np.arange(len(instructions)), [len(group) for group in texts]),
        texts=np.array([text for group in texts for text in group], dtype=str),
        embeddings=np.concatenate(embeddings),
    )
    return dict(zip(instructions, embeddings, strict=True))


def _rt1_validator(config: TrainConfig, model: RT1) -> Validator:
    windows = WindowDataset(StoredDataset(config.val_data), model.config.time_steps)
    if windows.data.index.action_spec != spec_to_json(model.config.action_spec):
        raise ValueError(f"--val-data {config.val_data}: the dataset's action spec differs from the model's")
    return RT1Validator(windows, config.val_steps, model.config.action_spec, config.batch_size)


def _rt1_loss(model: nn.Module, bare: RT1, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    logits = model(batch["images"], batch["text_embedding"], batch["action_tokens"])
    return bare.loss(logits, batch["action_tokens"], batch["step_mask"])


# The RT-2 hooks import its modules when called: transformers takes seconds to import, and RT-1 runs do without.


def _rt2_build(config: TrainConfig) -> nn.Module:
    raise ValueError(
        "--policy rt2 starts from a checkpoint and keeps its config: give --init DIR (write an untrained one with"
        " rt2-init) and no --model-config"
    )


def _rt2_load(path: Path) -> nn.Module:
    from rt_policy_node.policies.rt2.modeling import RT2Model

    return RT2Model.from_pretrained(path)


def _rt2_dataset(config: TrainConfig, model: nn.Module) -> ConcatDataset:
    """Robot steps first, then the vision-language pairs of every --vl-data file."""
    from rt_policy_node.data.vl_jsonl import VLJsonlDataset
    from rt_policy_node.policies.rt2.processing import RobotSteps

    if config.paraphrases:
        raise ValueError("--paraphrases augments RT-1's instruction embeddings; RT-2 reads the instruction's text")
    if config.robot_fraction < 1.0 and not config.vl_data:
        raise ValueError(
            f"--robot-fraction {config.robot_fraction} mixes in vision-language examples: give --vl-data FILE.jsonl,"
            " or --robot-fraction 1 to train on robot data alone"
        )
    if len(config.data) != 1:
        raise ValueError(
            f"--policy rt2 trains on one robot dataset (got {len(config.data)}); mix robot datasets with RT-1, or"
            " build them into one with rt-dataset build"
        )
    robot = RobotSteps(config.data[0], model.config.action_spec)
    if robot.data.index.rounding != model.config.rounding:
        warnings.warn(
            f"dataset labels use {robot.data.index.rounding!r} rounding, the model {model.config.rounding!r}",
            stacklevel=2,
        )
    return ConcatDataset([robot, *(VLJsonlDataset(path) for path in config.vl_data)])


def _rt2_batch_sampler(config: TrainConfig, dataset: ConcatDataset, rank: int, world_size: int) -> Iterable[list[int]]:
    """Co-fine-tuning: every batch holds `config.robot_fraction` robot steps (dataset 0), the rest vision-language."""
    from rt_policy_node.data.cofinetuning import CoFineTuningBatchSampler

    num_robot = len(dataset.datasets[0])
    return CoFineTuningBatchSampler(
        num_robot, len(dataset) - num_robot, config.batch_size, config.robot_fraction, config.seed, rank, world_size
    )


def _rt2_loss(model: nn.Module, bare: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return model(batch)


RECIPES: dict[str, Recipe] = {
    "rt1": Recipe(
        build_model=_rt1_build,
        load_model=RT1.from_pretrained,
        make_dataset=_rt1_dataset,
        compute_loss=_rt1_loss,
        make_batch_sampler=_rt1_batch_sampler,
        make_validator=_rt1_validator,
    ),
    "rt2": Recipe(
        build_model=_rt2_build,
        load_model=_rt2_load,
        make_dataset=_rt2_dataset,
        compute_loss=_rt2_loss,
        make_collate=lambda model: model.collator(),
        make_batch_sampler=_rt2_batch_sampler,
    ),
}
