"""What the training loop needs from each kind of policy: how to build or load the model, its dataset
and its loss. The loop itself (train.py) knows none of it, so another policy kind is one more entry."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import spec_to_json
from rt_policy_node.policies.rt1.config import RT1Config, rt1_preset
from rt_policy_node.policies.rt1.image import augment
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.train.config import TrainConfig

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Recipe:
    """A policy kind's training hooks. The model must have `save_pretrained(dir)`, which writes a
    checkpoint `load_policy` opens; `load_model` reads such a directory back for resuming."""

    build_model: Callable[[TrainConfig], nn.Module]
    load_model: Callable[[Path], nn.Module]
    # (config, model) -> a Dataset whose items default_collate batches; it may have `set_epoch(epoch)`.
    make_dataset: Callable[[TrainConfig, nn.Module], Dataset]
    # (model as called, possibly DDP-wrapped; the bare model; a batch on the device) -> (loss, metrics).
    compute_loss: Callable[[nn.Module, nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    collate: Callable | None = None


def _rt1_build(config: TrainConfig) -> RT1:
    if config.model_config:
        return RT1(RT1Config.from_dict(json.loads(Path(config.model_config).read_text())))
    return RT1(rt1_preset(config.preset))


def _rt1_dataset(config: TrainConfig, model: RT1) -> WindowDataset:
    model_config = model.config
    data = StoredDataset(config.data)
    if data.index.action_spec != spec_to_json(model_config.action_spec):
        raise ValueError(f"{config.data}: the dataset's action spec differs from the model's")
    if data.index.image_size != (model_config.image_size, model_config.image_size):
        warnings.warn(
            f"dataset frames are {data.index.image_size}, the model resizes them to {model_config.image_size}:"
            " rebuild the dataset with the model's size to train on what the policy sees",
            stacklevel=2,
        )
    if data.index.rounding != model_config.action_rounding:
        warnings.warn(
            f"dataset labels use {data.index.rounding!r} rounding, the model {model_config.action_rounding!r}",
            stacklevel=2,
        )

    def window_augment(window: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment(window[None], model_config.augmentation, model_config.crop_size, generator)[0]

    return WindowDataset(data, model_config.time_steps, augment=window_augment, seed=config.seed)


def _rt1_loss(model: nn.Module, bare: RT1, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    logits = model(batch["images"], batch["text_embedding"], batch["action_tokens"])
    return bare.loss(logits, batch["action_tokens"], batch["step_mask"])


RECIPES: dict[str, Recipe] = {
    "rt1": Recipe(
        build_model=_rt1_build, load_model=RT1.from_pretrained, make_dataset=_rt1_dataset, compute_loss=_rt1_loss
    ),
}
