"""`rt-train`: train a policy on a dataset built by `rt-dataset`, on one process or many.

    rt-train --preset rt1_small --data DATA --out RUN
    torchrun --nproc_per_node N -m rt_policy_node.train.train --preset rt1 --data DATA --out RUN
    rt-train --policy rt2 --init RT2_INIT --data DATA --vl-data VL/vl.jsonl --robot-fraction 0.5 --out RUN

AdamW with linear warmup and cosine decay, gradient clipping, bf16 autocast on GPU, DistributedDataParallel
with one data shard per process under torchrun. RUN/checkpoints/step_N/ holds resumable checkpoints (each
one a policy directory `load_policy` opens); at the end RUN itself holds the final policy, RUN/log.csv the
metrics and RUN/loss.png their plot. RT-2 starts from a checkpoint (`--init`, e.g. from rt2-init) and
co-fine-tunes: every batch holds `--robot-fraction` robot steps, the rest vision-language pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from rt_policy_node.data.windows import make_loader
from rt_policy_node.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    step_dir,
)
from rt_policy_node.train.config import TrainConfig
from rt_policy_node.train.recipes import RECIPES, Recipe
from rt_policy_node.train.schedule import make_schedule
from rt_policy_node.train.training_log import TrainingLog, plot_loss
from rt_policy_node.train.validation import Validator, higher_is_better

BEST_DIR = "best"
VALIDATION_FILE = "validation.json"


@dataclasses.dataclass(frozen=True)
class Process:
    """This process's place in the (possibly one-process) job."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_process(device: str) -> Process:
    """Joins the torchrun process group when launched by torchrun (gloo on CPU, NCCL on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world_size > 1:
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
        return Process(dist.get_rank(), world_size, target)
    return Process(0, 1, target)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters, with weight decay on matrices and kernels only (not on biases and norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def _mean_across(values: dict[str, torch.Tensor], proc: Process) -> dict[str, float]:
    stacked = torch.stack([v.detach().float() for v in values.values()])
    if proc.world_size > 1:
        dist.all_reduce(stacked)
        stacked /= proc.world_size
    return dict(zip(values, stacked.tolist(), strict=True))


def _make_loader(
    recipe: Recipe, config: TrainConfig, dataset: Dataset, model: nn.Module, proc: Process
) -> tuple[DataLoader, Any]:
    """The loader of this process's batches and the sampler to start each epoch with (`set_epoch(epoch, skip)`)."""
    collate = recipe.make_collate(model) if recipe.make_collate else None
    pin_memory = proc.device.type == "cuda"
    sampler = (
        recipe.make_batch_sampler(config, dataset, proc.rank, proc.world_size) if recipe.make_batch_sampler else None
    )
    if sampler is None:
        return make_loader(
            dataset,
            config.batch_size,
            config.num_workers,
            proc.rank,
            proc.world_size,
            seed=config.seed,
            pin_memory=pin_memory,
            collate_fn=collate,
        )
    # Its own generator, as make_loader's: worker seeds draw nothing from torch's global RNG.
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(config.seed),
    )
    return loader, sampler


def train(config: TrainConfig, resume: str | Path | None = None) -> nn.Module:
    """Runs training to `config.steps` optimizer steps and returns the (bare) model.

    `resume`: a checkpoint directory, or "latest" for the newest one under `config.out`; the run then
    continues from that step with the same data order, augmentation and RNG state.
    """
    proc = start_process(config.device)
    try:
        model = _train(config, resume, proc)
        if proc.world_size > 1:
            dist.barrier()  # no rank tears the process group down while another still uses it
        return model
    finally:
        if proc.world_size > 1:
            dist.destroy_process_group()


def _initial_model(recipe: Recipe, config: TrainConfig, checkpoint: Path | None) -> nn.Module:
    """The model to train: the resumed checkpoint's, `--init`'s, or a new one. `--init` with `--model-config`
    puts the init weights under another config whose parameters have the same shapes (an output stride, dropout,
    augmentation or label smoothing of its own), to fine-tune a variant of a trained model."""
    if checkpoint is not None:
        return recipe.load_model(checkpoint)
    if not config.init:
        return recipe.build_model(config)
    model = recipe.load_model(Path(config.init))
    if not config.model_config:
        return model
    variant = recipe.build_model(config)
    try:
        variant.load_state_dict(model.state_dict())
    except RuntimeError as err:
        message = f"--init {config.init}: its weights do not fit --model-config {config.model_config}: {err}"
        raise ValueError(message) from err
    return variant


def _train(config: TrainConfig, resume: str | Path | None, proc: Process) -> nn.Module:
    out = Path(config.out)
    recipe = RECIPES[config.policy]
    checkpoint = None
    if resume is not None:
        checkpoint = latest_checkpoint(out) if str(resume) == "latest" else Path(resume)
        if checkpoint is None:
            raise FileNotFoundError(f"nothing to resume: no checkpoint under {out}")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    model = _initial_model(recipe, config, checkpoint)
    model.to(proc.device).train()
    dataset = recipe.make_dataset(config, model)
    loader, sampler = _make_loader(recipe, config, dataset, model, proc)
    steps_per_epoch = sampler.num_samples // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} samples make no full batch of {config.batch_size} on each of {proc.world_size} processes"
        )
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)
    schedule = make_schedule(min(config.warmup_steps, config.steps - 1), config.steps, config.min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step = load_checkpoint(checkpoint, optimizer, scheduler)["step"] if checkpoint else 0
    wrapped = model
    if proc.world_size > 1:
        # Channels-last convolutions give a [C, 1, k, k] depthwise kernel's gradient other strides than its
        # parameter along the size-1 axis: the same memory layout, which DDP still reports as a mismatch.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        wrapped = DistributedDataParallel(model, device_ids=[proc.device] if proc.device.type == "cuda" else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if proc.device.type == "cuda" else contextlib.nullcontext()
    log = None
    validator = _validator(recipe, config, model) if proc.main else None
    best = BestCheckpoint(out, config.val_metric)
    if proc.main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
        log = TrainingLog(out, extra_fields=validator.names if validator else ())
        log.truncate_after(step)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    bar = tqdm(total=config.steps, initial=step, desc="train", unit="step", disable=not proc.main)
    samples, tick = 0, time.perf_counter()
    while step < config.steps:
        epoch, done = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch, skip=done * config.batch_size)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(proc.device, non_blocking=True) for k, v in batch.items()}
            with autocast:
                loss, metrics = recipe.compute_loss(wrapped, model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            samples += config.batch_size * proc.world_size
            bar.update(1)
            validating = config.val_data is not None and (step % config.val_every == 0 or step == config.steps)
            if step % config.log_every == 0 or step == config.steps or validating:
                values = _mean_across({"loss": loss, **metrics, "grad_norm": grad_norm}, proc)
                now = time.perf_counter()
                values.update(lr=scheduler.get_last_lr()[0], epoch=epoch, samples_per_s=samples / (now - tick))
                if validator is not None and validating:
                    values.update(best.consider(step, validator(model), model))
                samples, tick = 0, time.perf_counter()
                if log is not None:
                    log.log(step, values)
                    bar.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['token_accuracy']:.3f}")
            if proc.main and (step % config.save_every == 0 or step == config.steps):
                save_checkpoint(
                    step_dir(out, step),
                    model,
                    optimizer,
                    scheduler,
                    {"step": step, "epoch": epoch, "train_config": dataclasses.asdict(config)},
                )
                prune_checkpoints(out, config.keep_checkpoints)
            if step == config.steps:
                break
    bar.close()
    if proc.world_size > 1:
        # DDP copies rank 0's buffers (BatchNorm statistics) to every rank before each forward; once more
        # here, so all ranks end with the weights rank 0 saves.
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    if log is not None:
        log.close()
        model.save_pretrained(out)
        plot_loss(out)
    return model


def _validator(recipe: Recipe, config: TrainConfig, model: nn.Module) -> Validator | None:
    if config.val_data is None:
        return None
    if recipe.make_validator is None:
        raise ValueError(f"--val-data: policy {config.policy!r} has no validation")
    validator = recipe.make_validator(config, model)
    if config.val_metric not in validator.names:
        raise ValueError(f"--val-metric {config.val_metric!r} is not one of {', '.join(validator.names)}")
    return validator


class BestCheckpoint:
    """RUN/best: the policy at the step with the best validation `metric` so far, with its metrics in
    validation.json (read back on resume, so a resumed run still knows what it has to beat)."""

    def __init__(self, out: Path, metric: str) -> None:
        self.directory = out / BEST_DIR
        self.metric = metric
        record = self.directory / VALIDATION_FILE
        self.value = json.loads(record.read_text())["metrics"][metric] if record.is_file() else None

    def consider(self, step: int, metrics: dict[str, float], model: nn.Module) -> dict[str, float]:
        """Keeps `model` if `metrics` beat the best so far; returns `metrics`."""
        value = metrics[self.metric]
        if self.value is None or (value > self.value if higher_is_better(self.metric) else value < self.value):
            self.value = value
            model.save_pretrained(self.directory)
            (self.directory / VALIDATION_FILE).write_text(json.dumps({"step": step, "metrics": metrics}, indent=1))
        return metrics


OPTION_HELP = {
    "robot_fraction": "RT-2: share of robot examples in each batch, the rest from --vl-data (0 to 1)",
    "steps": "optimizer steps in all",
    "batch_size": "samples (RT-1: windows) per step and process",
    "lr": "peak AdamW learning rate",
    "weight_decay": "AdamW weight decay (matrices and kernels only)",
    "warmup_steps": "linear warmup steps before the cosine decay",
    "min_lr_ratio": "final learning rate as a fraction of --lr",
    "grad_clip": "maximum gradient norm",
    "num_workers": "data loader worker processes",
    "seed": "model init, data order and augmentation seed",
    "log_every": "steps between log rows",
    "save_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept (the newest)",
    "device": "auto (GPU when present), cpu, cuda, cuda:N",
    "num_threads": "torch CPU threads per process (0: torch's default)",
    "paraphrases": "RT-1: paraphrases generated per instruction for instruction augmentation (0: none)",
    "paraphrase_prob": "RT-1: chance that a window trains on a paraphrase of its instruction",
    "val_every": "steps between validations on --val-data",
    "val_steps": "steps of --val-data scored per validation, spread evenly",
    "val_metric": "validation metric that picks RUN/best (higher is better; lower for val_loss)",
}


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, str | None]:
    defaults = TrainConfig(data=[], out="")
    parser = argparse.ArgumentParser(
        prog="rt-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="DIR[:WEIGHT]",
        help="dataset directory (rt-dataset build); several train on their mixture, each batch split by the weights"
        " (default 1 each)",
    )
    parser.add_argument("--out", required=True, help="run directory: checkpoints, log, final policy")
    parser.add_argument("--policy", default=defaults.policy, choices=sorted(RECIPES))
    parser.add_argument("--preset", default=defaults.preset, help=f"model preset (default: {defaults.preset})")
    parser.add_argument(
        "--model-config",
        help="JSON model config to use instead of --preset; with --init, the init weights under this config",
    )
    parser.add_argument(
        "--init", metavar="DIR", help="policy checkpoint to start from instead of a new model (RT-2: from rt2-init)"
    )
    parser.add_argument(
        "--vl-data", nargs="+", default=[], metavar="JSONL", help="RT-2: vision-language pairs to mix in"
    )
    parser.add_argument(
        "--val-data", metavar="DIR", help="held-out dataset (rt-dataset build) validated every --val-every steps"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        help="continue from this checkpoint, or with no value the newest in --out (the model comes from it)",
    )
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "out", "policy", "preset", "model_config", "init", "vl_data", "val_data", "betas"):
            continue
        value = getattr(defaults, field.name)
        help_text = f"{OPTION_HELP[field.name]} (default: {value})"
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(value), default=value, help=help_text)
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    return TrainConfig(**args), resume


def main(argv: list[str] | None = None) -> int:
    config, resume = parse_args(argv)
    try:
        train(config, resume)
    except (FileNotFoundError, ValueError) as err:
        print(f"rt-train: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
