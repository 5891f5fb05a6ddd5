"""Training checkpoints without pickle: the policy checkpoint (config.json + model.safetensors, loadable
by `load_policy`) plus the optimizer's and RNGs' tensors in safetensors and everything else in JSON."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def step_dir(out: str | Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS_DIR / f"step_{step:08d}"


def latest_checkpoint(out: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under `out`, or None."""
    root = Path(out) / CHECKPOINTS_DIR
    found = [
        (int(m.group(1)), d)
        for d in (root.iterdir() if root.is_dir() else [])
        if (m := _STEP_DIR.match(d.name)) and (d / STATE_JSON).is_file()
    ]
    return max(found)[1] if found else None


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
) -> None:
    """Writes the checkpoint to a temporary sibling and renames it, so `directory` is always whole."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    opt = optimizer.state_dict()
    tensors = {f"optimizer.{pid}.{name}": value for pid, slots in opt["state"].items() for name, value in slots.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / STATE_TENSORS))
    meta = {**state, "optimizer_param_groups": opt["param_groups"], "scheduler": scheduler.state_dict()}
    (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def load_checkpoint(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restores optimizer, scheduler and RNG state from `directory` (the model is loaded by the caller)
    and returns the rest of the saved state (step, epoch, ...)."""
    meta = json.loads((directory / STATE_JSON).read_text())
    tensors = load_file(str(directory / STATE_TENSORS))
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            slots.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta.pop("optimizer_param_groups")})
    scheduler.load_state_dict(meta.pop("scheduler"))
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return meta


def prune_checkpoints(out: str | Path, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints under `out`."""
    root = Path(out) / CHECKPOINTS_DIR
    dirs = sorted(d for d in root.iterdir() if _STEP_DIR.match(d.name)) if root.is_dir() else []
    for d in dirs[: max(0, len(dirs) - keep)]:
        shutil.rmtree(d)
