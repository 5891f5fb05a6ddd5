"""Validation of an RT-1 on a held-out dataset, the way streaming inference acts.

Each sampled step is predicted from the window that ends at it, and only that last slot is scored, as the
policy node reads it. Reported: the loss, token accuracy overall and per action field (the mode's among them), and the
precision and recall of TERMINATE (a policy that stops too early fails its task; one that never stops runs
out its step budget).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import ActionDim
from rt_policy_node.policies.policy import Mode
from rt_policy_node.policies.rt1.model import RT1


class Validator(Protocol):
    """Called with the model being trained, returns its `val_*` metrics; `names` lists them in advance."""

    names: tuple[str, ...]

    def __call__(self, model: torch.nn.Module) -> dict[str, float]: ...


class RT1Validator:
    """`validate_rt1` over `val_steps` steps spread evenly through a held-out dataset."""

    def __init__(self, windows: WindowDataset, val_steps: int, spec: tuple[ActionDim, ...], batch_size: int) -> None:
        self.windows, self.batch_size = windows, batch_size
        self.indices = evenly_spaced(len(windows), val_steps)
        self.names = (
            "val_loss",
            "val_token_accuracy",
            *(f"val_accuracy/{dim.name}" for dim in spec),
            *(("val_terminate_precision", "val_terminate_recall") if any(d.name == "mode" for d in spec) else ()),
        )

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        return validate_rt1(model, self.windows, self.indices, self.batch_size)


def evenly_spaced(total: int, count: int) -> np.ndarray:
    """`count` indices spread evenly over `range(total)` (all of them when `count >= total`)."""
    if count >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, count).round().astype(np.int64)


@torch.no_grad()
def validate_rt1(model: RT1, windows: WindowDataset, indices: np.ndarray, batch_size: int = 16) -> dict[str, float]:
    """Metrics (`val_*`) of `model` on the windows ending at `indices`; the model is left in the mode it had."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predicted, labels, losses = [], [], []
    try:
        for start in range(0, len(indices), batch_size):
            items = [windows[int(i)] for i in indices[start : start + batch_size]]
            batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
            logits = model(batch["images"], batch["text_embedding"], batch["action_tokens"])
            last = batch["step_mask"].long().sum(1) - 1
            only_last = torch.nn.functional.one_hot(last, batch["step_mask"].shape[1]).bool()
            loss, _ = model.loss(logits, batch["action_tokens"], only_last)
            rows = torch.arange(len(items), device=device)
            predicted.append(model.constrain(logits[rows, last].float()).argmax(-1).cpu())
            labels.append(batch["action_tokens"][rows, last].cpu())
            losses.append(float(loss) * len(items))
    finally:
        model.train(was_training)
    return rt1_metrics(torch.cat(predicted), torch.cat(labels), model.config.action_spec, sum(losses) / len(indices))


def rt1_metrics(
    predicted: torch.Tensor, labels: torch.Tensor, spec: tuple[ActionDim, ...], loss: float
) -> dict[str, float]:
    """`val_*` metrics from predicted and label tokens `[N, tokens]` in `spec`'s order; the terminate figures
    when the spec has RT-1's `mode` field."""
    correct = predicted == labels
    metrics = {"val_loss": loss, "val_token_accuracy": float(correct.float().mean())}
    start = 0
    for dim in spec:
        metrics[f"val_accuracy/{dim.name}"] = float(correct[:, start : start + dim.size].float().mean())
        if dim.name == "mode":
            said, meant = predicted[:, start] == Mode.TERMINATE, labels[:, start] == Mode.TERMINATE
            hits = float((said & meant).sum())
            metrics["val_terminate_precision"] = hits / float(said.sum()) if said.any() else 0.0
            metrics["val_terminate_recall"] = hits / float(meant.sum()) if meant.any() else 0.0
        start += dim.size
    return metrics


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better (everything but losses)."""
    return not metric.endswith("loss")
