"""RT-1's action space as tokens: a spec of named dimensions, each cut into 256 uniform bins.

Shared by RT-1 (one logit head per token) and RT-2 (actions as text tokens), so both read and write
exactly the same 11 tokens per step. Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

VOCAB_SIZE = 256


@dataclass(frozen=True)
class ActionDim:
    """One named action field: `size` tokens, uniform bins over [low, high], or `classes` classes."""

    name: str
    size: int
    low: float = 0.0
    high: float = 0.0
    classes: int = 0

    @property
    def discrete(self) -> bool:
        return self.classes > 0


# The released RT-1 policy spec in the TF reference's token order (tests/policies/test_rt1_parity.py):
# the mode (terminate_episode) first, then arm, then base. Bounds are float32 as in the spec.
RT1_ACTION_SPEC: tuple[ActionDim, ...] = (
    ActionDim("mode", 1, classes=3),
    ActionDim("world_vector", 3, -1.0, 1.0),
    ActionDim("rotation_delta", 3, -float(np.float32(math.pi / 2)), float(np.float32(math.pi / 2))),
    ActionDim("gripper_closedness", 1, -1.0, 1.0),
    ActionDim("base_rotation", 1, -float(np.float32(math.pi)), float(np.float32(math.pi))),
    ActionDim("base_displacement", 2, -1.0, 1.0),
)


def spec_to_json(spec: tuple[ActionDim, ...]) -> list[dict[str, Any]]:
    return [asdict(d) for d in spec]


def spec_from_json(items: list[dict[str, Any]]) -> tuple[ActionDim, ...]:
    return tuple(ActionDim(**item) for item in items)


class ActionTokenizer:
    """Encodes named action arrays to `[..., num_tokens]` integer tokens and back.

    Continuous values are clipped to their bounds and mapped to `t = (a - low) / (high - low) * 255`,
    rounded to the nearest integer (`rounding="round"`, round trip within half a bin) or truncated
    (`rounding="floor"`, exactly what the original RT-1 code does to make labels). Tokens decode to
    `t / 255 * (high - low) + low`. A discrete field is one token whose value is the class.
    """

    def __init__(
        self,
        spec: tuple[ActionDim, ...] = RT1_ACTION_SPEC,
        rounding: Literal["round", "floor"] = "round",
        vocab_size: int = VOCAB_SIZE,
    ) -> None:
        if rounding not in ("round", "floor"):
            raise ValueError(f"rounding must be 'round' or 'floor', got {rounding!r}")
        for dim in spec:
            if dim.discrete and not (dim.size == 1 and dim.classes <= vocab_size):
                raise ValueError(f"discrete action {dim.name!r} must be one token of <= {vocab_size} classes")
            if not dim.discrete and not dim.high > dim.low:
                raise ValueError(f"action {dim.name!r} needs high > low, got [{dim.low}, {dim.high}]")
        self.spec = tuple(spec)
        self.rounding = rounding
        self.vocab_size = vocab_size
        self.num_tokens = sum(d.size for d in self.spec)
        self.slices = {}
        start = 0
        for dim in self.spec:
            self.slices[dim.name] = slice(start, start + dim.size)
            start += dim.size

    def valid_token_mask(self) -> np.ndarray:
        """`[num_tokens, vocab_size]` booleans: which token values each position may take."""
        mask = np.ones((self.num_tokens, self.vocab_size), dtype=bool)
        for dim in self.spec:
            if dim.discrete:
                mask[self.slices[dim.name], dim.classes :] = False
        return mask

    def encode(self, action: dict[str, Any]) -> Any:
        """Named arrays `[..., size]` (discrete fields `[...]` or `[..., 1]`) -> tokens `[..., num_tokens]`."""
        parts = []
        for dim in self.spec:
            value = action[dim.name]
            if dim.discrete:
                value = _reshape_trailing(value, 1)
                parts.append(_clip(_round(value, "floor"), 0, dim.classes - 1))
                continue
            value = _reshape_trailing(value, dim.size)
            scaled = (_clip(value, dim.low, dim.high) - dim.low) / (dim.high - dim.low) * (self.vocab_size - 1)
            parts.append(_clip(_round(scaled, self.rounding), 0, self.vocab_size - 1))
        return _to_int(_concat(parts))

    def decode(self, tokens: Any) -> dict[str, Any]:
        """Tokens `[..., num_tokens]` -> named arrays `[..., size]`; a discrete field comes back `[...]`.

        A discrete token outside its classes (an untrained head can emit one) decodes to class 0, which
        for RT-1's mode is TERMINATE: stopping is the safe reading of an invalid mode.
        """
        if tokens.shape[-1] != self.num_tokens:
            raise ValueError(f"expected {self.num_tokens} tokens in the last axis, got shape {tuple(tokens.shape)}")
        out = {}
        for dim in self.spec:
            tok = tokens[..., self.slices[dim.name]]
            if dim.discrete:
                tok = tok[..., 0]
                out[dim.name] = tok * ((tok >= 0) & (tok < dim.classes))
                continue
            out[dim.name] = _to_float(tok) / (self.vocab_size - 1) * (dim.high - dim.low) + dim.low
        return out

    def bin_width(self, name: str) -> float:
        """Distance between two neighbouring decoded values of a continuous field."""
        dim = next(d for d in self.spec if d.name == name)
        return (dim.high - dim.low) / (self.vocab_size - 1)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _reshape_trailing(value: Any, size: int) -> Any:
    if not _is_torch(value):
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
    if size == 1 and (value.ndim == 0 or value.shape[-1] != 1):
        return value[..., None]
    if value.shape[-1] != size:
        raise ValueError(f"expected {size} values in the last axis, got shape {tuple(value.shape)}")
    return value


def _clip(x: Any, low: float, high: float) -> Any:
    return x.clamp(low, high) if _is_torch(x) else np.clip(x, low, high)


def _round(x: Any, rounding: str) -> Any:
    if rounding == "floor":
        return x.floor() if _is_torch(x) else np.floor(x)
    # Half away from zero on non-negative values, so 0.5 steps go up in numpy and torch alike.
    return (x + 0.5).floor() if _is_torch(x) else np.floor(x + 0.5)


def _concat(parts: list[Any]) -> Any:
    if _is_torch(parts[0]):
        import torch

        return torch.cat([p.to(parts[0].dtype) for p in parts], dim=-1)
    return np.concatenate(parts, axis=-1)


def _to_int(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return x.to(torch.long)
    return x.astype(np.int64)


def _to_float(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return x.to(torch.float32)
    return x.astype(np.float32)
