"""Constrained decoding: at action position k the model may emit only the ids of dimension k's bins.

`ActionConstraint` is a transformers `LogitsProcessor`, so `generate` keeps its KV cache and greedy or sampled
decoding. Without a plan the answer is exactly the action. With a plan, text is free until the action marker
(" Action:"), which is forced when the plan budget runs out; then come the action ids, then end of sequence.
Every decode therefore ends in a valid action: there is no failure path and no fallback action.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from transformers import LogitsProcessor


class ActionConstraint(LogitsProcessor):
    """Masks scores so that the generated continuation of a `prompt_length` prompt is a valid answer."""

    def __init__(
        self,
        allowed: torch.Tensor,
        prompt_length: int,
        eos_id: int,
        marker: Sequence[int] | None = None,
        max_plan_tokens: int = 0,
        special_ids: Iterable[int] = (),
    ) -> None:
        self.allowed = allowed
        self.prompt_length = prompt_length
        self.eos_id = eos_id
        self.marker = list(marker or [])
        self.max_plan_tokens = max_plan_tokens
        self.num_positions = allowed.shape[0]
        # Plan text is ordinary text: no end of sequence, no image or other special tokens.
        self.free_text = torch.ones_like(allowed[0])
        self.free_text[[i for i in (eos_id, *special_ids) if i < len(self.free_text)]] = False

    @property
    def max_new_tokens(self) -> int:
        """Enough new tokens for the longest answer this constraint admits."""
        if not self.marker:
            return self.num_positions
        return self.max_plan_tokens + len(self.marker) + self.num_positions + 1

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.allowed.device != scores.device:
            self.allowed, self.free_text = self.allowed.to(scores.device), self.free_text.to(scores.device)
        generated = input_ids[:, self.prompt_length :]
        if self.marker:
            admit = torch.stack([self._plan_row(row) for row in generated.tolist()])
        elif generated.shape[1] < self.num_positions:
            admit = self.allowed[generated.shape[1]].expand_as(scores)
        else:
            admit = self._only(self.eos_id).expand_as(scores)
        lowest = torch.finfo(scores.dtype).min
        # Admitted scores stay finite, so the best admitted id always wins even if the model gave it -inf or NaN.
        finite = scores.nan_to_num(nan=lowest, posinf=torch.finfo(scores.dtype).max, neginf=lowest)
        return torch.where(admit, finite, torch.full_like(scores, -float("inf")))

    def _plan_row(self, row: list[int]) -> torch.Tensor:
        end = find_marker(row, self.marker)
        if end is not None:
            k = len(row) - end
            return self.allowed[k] if k < self.num_positions else self._only(self.eos_id)
        if len(row) >= self.max_plan_tokens:
            forced = self.marker[min(len(row) - self.max_plan_tokens, len(self.marker) - 1)]
            return self._only(forced)
        return self.free_text

    def _only(self, token_id: int) -> torch.Tensor:
        admit = torch.zeros_like(self.allowed[0])
        admit[token_id] = True
        return admit


def find_marker(row: list[int], marker: list[int]) -> int | None:
    """Index just past the first occurrence of `marker` in `row`, or None."""
    n = len(marker)
    for start in range(len(row) - n + 1):
        if row[start : start + n] == marker:
            return start + n
    return None
