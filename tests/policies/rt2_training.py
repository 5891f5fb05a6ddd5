"""A small training loop for the RT-2 tests (`from rt2_training import train_steps`); `rt-train` is the
project's one training loop."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rt_policy_node.policies.rt2.modeling import RT2Model


def train_steps(
    model: RT2Model,
    batches: Iterator[dict[str, torch.Tensor]],
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
) -> list[dict[str, float]]:
    """Runs `steps` AdamW steps on batches from `batches` and returns each step's loss and metrics."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    model.train()
    history = []
    for _ in range(steps):
        loss, metrics = model(next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        history.append({"loss": loss.item(), **{name: value.item() for name, value in metrics.items()}})
    model.eval()
    return history
