"""TokenLearner V1.1: a few learned spatial attention maps pool a frame's feature map into a few tokens."""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

LN_EPS = 1e-6


class TokenLearner(nn.Module):
    """`[N, P, D]` positions (81 for RT-1's 9x9 map) -> `[N, num_tokens, D]`.

    An MLP on the layer-normed positions scores each position for each output token; a softmax over the
    positions turns the scores into maps that average the (un-normalised) positions into tokens.
    """

    def __init__(self, dim: int, num_tokens: int = 8, hidden_dim: int = 64) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.hidden = nn.Linear(dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, num_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.out(nn.functional.gelu(self.hidden(self.norm(x)), approximate="tanh"))
        maps = scores.softmax(dim=1)
        return einsum(maps, x, "n p k, n p d -> n k d")
