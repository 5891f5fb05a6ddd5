"""FiLM: a feature map modulated per channel by the instruction embedding."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class FiLM(nn.Module):
    """`(1 + gamma(ctx)) * x + beta(ctx)` over NCHW maps; gamma and beta start at zero, so FiLM starts as identity."""

    def __init__(self, context_dim: int, channels: int) -> None:
        super().__init__()
        self.add = nn.Linear(context_dim, channels)
        self.mult = nn.Linear(context_dim, channels)
        for layer in (self.add, self.mult):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        scale = rearrange(1 + self.mult(context), "b c -> b c 1 1")
        shift = rearrange(self.add(context), "b c -> b c 1 1")
        return torch.addcmul(shift, x, scale)
