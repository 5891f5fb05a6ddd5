"""Actions as text tokens: a table from the 256 action bins to 256 ids of a language model's vocabulary.

Two ways to choose the ids, as in RT-2: `integers` (PaLI-X) uses the vocabulary's own tokens for the numbers
"0".."255", which must each be one token; `least_frequent` (PaLM-E) takes the 256 ids least used in a text
corpus and reassigns them to the bins. Every position uses the same table; the mode position admits only the
first `classes` bins. The codec maps action tokens to ids and back and never goes through decoded strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from rt_policy_node.policies.action_tokenizer import ActionTokenizer

Strategy = Literal["integers", "least_frequent"]
STRATEGIES = ("integers", "least_frequent")


class ActionTextCodec:
    """Bin `b` of every action position is vocabulary id `ids[b]`."""

    def __init__(self, ids: Sequence[int], strategy: Strategy, action_tokenizer: ActionTokenizer | None = None) -> None:
        self.action_tokenizer = action_tokenizer or ActionTokenizer()
        bins = self.action_tokenizer.vocab_size
        if strategy not in STRATEGIES:
            raise ValueError(f"codec strategy must be one of {STRATEGIES}, got {strategy!r}")
        if len(ids) != bins or len(set(ids)) != bins or min(ids) < 0:
            raise ValueError(f"an action codec needs {bins} distinct non-negative ids, got {len(set(ids))} distinct")
        self.strategy = strategy
        self.ids = np.asarray(ids, np.int64)
        self._bins = np.full(int(self.ids.max()) + 1, -1, np.int64)
        self._bins[self.ids] = np.arange(bins)
        self.valid_bins = self.action_tokenizer.valid_token_mask()

    @property
    def num_positions(self) -> int:
        return self.action_tokenizer.num_tokens

    @classmethod
    def integers(cls, tokenizer: Any, action_tokenizer: ActionTokenizer | None = None) -> ActionTextCodec:
        """Uses the tokens for " 0".." 255" (or "0".."255"); fails if any number is not a single token."""
        bins = (action_tokenizer or ActionTokenizer()).vocab_size
        for form in (" {}", "{}"):
            pieces = [tokenizer(form.format(v), add_special_tokens=False)["input_ids"] for v in range(bins)]
            if all(len(p) == 1 for p in pieces) and len({p[0] for p in pieces}) == bins:
                return cls([p[0] for p in pieces], "integers", action_tokenizer)
        split = next(v for v, p in enumerate(pieces) if len(p) != 1)
        raise ValueError(
            f"the tokenizer does not have one token per number 0..{bins - 1} (e.g. {split!r} is {pieces[split]}); "
            "use the 'least_frequent' codec strategy"
        )

    @classmethod
    def least_frequent(
        cls,
        tokenizer: Any,
        corpus: Iterable[str],
        vocab_limit: int | None = None,
        exclude: Iterable[int] = (),
        action_tokenizer: ActionTokenizer | None = None,
    ) -> ActionTextCodec:
        """Takes the ids used least in `corpus` (ties: the higher id, a later and rarer merge).

        Special and added tokens, ids in `exclude` and ids at or above `vocab_limit` (the model's embedding
        rows) are never chosen.
        """
        size = len(tokenizer) if vocab_limit is None else min(len(tokenizer), vocab_limit)
        counts = np.zeros(len(tokenizer), np.int64)
        for text in corpus:
            np.add.at(counts, tokenizer(text, add_special_tokens=False)["input_ids"], 1)
        banned = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder) | set(exclude)
        candidates = [i for i in range(size) if i not in banned]
        bins = (action_tokenizer or ActionTokenizer()).vocab_size
        if len(candidates) < bins:
            raise ValueError(f"only {len(candidates)} ordinary tokens below id {size}; the codec needs {bins}")
        chosen = sorted(candidates, key=lambda i: (counts[i], -i))[:bins]
        return cls(chosen, "least_frequent", action_tokenizer)

    def encode(self, tokens: Any) -> np.ndarray:
        """Action tokens `[..., num_positions]` (bins) -> vocabulary ids of the same shape."""
        tokens = np.asarray(tokens, np.int64)
        self._check_shape(tokens)
        in_range = tokens.size == 0 or (tokens.min() >= 0 and tokens.max() < len(self.ids))
        if not in_range or not self.valid_bins[np.arange(self.num_positions), tokens].all():
            raise ValueError(f"action tokens out of range for their positions: {tokens.tolist()}")
        return self.ids[tokens]

    def decode(self, ids: Any) -> np.ndarray:
        """Vocabulary ids `[..., num_positions]` -> action tokens; raises on an id not valid at its position."""
        ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids, np.int64)
        self._check_shape(ids)
        inside = (ids >= 0) & (ids < len(self._bins))
        tokens = np.where(inside, self._bins[np.where(inside, ids, 0)], -1)
        positions = np.broadcast_to(np.arange(self.num_positions), tokens.shape)
        if (tokens < 0).any() or not self.valid_bins[positions, tokens].all():
            raise ValueError(f"ids {ids.tolist()} are not a valid action for this codec")
        return tokens

    def allowed_mask(self, vocab_size: int) -> torch.Tensor:
        """`[num_positions, vocab_size]` booleans: the ids each action position may take."""
        if self.ids.max() >= vocab_size:
            raise ValueError(f"codec id {int(self.ids.max())} is outside the model's vocabulary of {vocab_size}")
        mask = torch.zeros(self.num_positions, vocab_size, dtype=torch.bool)
        for position, valid in enumerate(self.valid_bins):
            mask[position, torch.from_numpy(self.ids[valid])] = True
        return mask

    def text(self, tokens: Any) -> str:
        """The action as PaLI-X writes it: its bins as space-separated integers, e.g. "1 128 91 ..."."""
        return " ".join(str(int(t)) for t in np.asarray(tokens).reshape(-1))

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "ids": self.ids.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any], action_tokenizer: ActionTokenizer | None = None) -> ActionTextCodec:
        return cls(data["ids"], data["strategy"], action_tokenizer)

    def _check_shape(self, array: np.ndarray) -> None:
        if array.ndim == 0 or array.shape[-1] != self.num_positions:
            raise ValueError(f"expected {self.num_positions} values in the last axis, got shape {array.shape}")
