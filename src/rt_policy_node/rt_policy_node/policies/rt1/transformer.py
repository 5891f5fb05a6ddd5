"""RT-1's decoder-only Transformer: pre-LayerNorm blocks over token embeddings plus learned positions.

As in the reference: a Dense token embedding, a learned absolute position embedding (the reference's
Dense over one-hot positions is a lookup plus a bias), LayerNorm eps 1e-6, multi-head attention with
biased q/k/v (here one fused projection) and output projections, a feed-forward that is one linear
layer without activation ("linear", the published model) or a SwiGLU ("swiglu"), dropout on attention
weights and on the feed-forward output, no final norm, and a Dense to the 256 token logits. Attention
takes an optional KV cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

LN_EPS = 1e-6
KV = tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.dropout = dropout
        self.to_qkv = nn.Linear(dim, inner * 3)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KV | None) -> tuple[torch.Tensor, KV]:
        q, k, v = rearrange(self.to_qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)")), (k, v)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, hidden_dim * 2, bias=False)
        self.proj_out = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(x * F.silu(gate))


class Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, head_dim: int, feed_forward: str, swiglu_hidden_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ff = nn.Linear(dim, dim) if feed_forward == "linear" else SwiGLU(dim, swiglu_hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KV | None) -> tuple[torch.Tensor, KV]:
        attended, kv = self.attn(self.norm1(x), mask, cache)
        x = x + attended
        return x + self.dropout(self.ff(self.norm2(x))), kv


class Transformer(nn.Module):
    """Tokens `[B, N, input_dim]` at `positions` `[N]` -> logits `[B, N, vocab_size]` and each layer's K/V."""

    def __init__(
        self,
        input_dim: int,
        dim: int,
        depth: int,
        heads: int,
        head_dim: int,
        max_positions: int,
        vocab_size: int,
        feed_forward: str = "linear",
        swiglu_hidden_dim: int = 1365,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.token_emb = nn.Linear(input_dim, dim)
        self.pos_emb = nn.Embedding(max_positions, dim)
        self.layers = nn.ModuleList(
            Block(dim, heads, head_dim, feed_forward, swiglu_hidden_dim, dropout) for _ in range(depth)
        )
        self.to_logits = nn.Linear(dim, vocab_size)

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: list[KV] | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """`mask` `[N, N_keys]` (True = attend) covers the cached keys first, then the new ones."""
        x = self.token_emb(tokens) + self.pos_emb(positions)
        new_cache = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, mask, cache[i] if cache is not None else None)
            new_cache.append(kv)
        return self.to_logits(x), new_cache
