"""The contract between a policy and the nodes that run it: `Action`, `Policy`, `load_policy`.

Nodes know only this module; how a model is built stays behind `Policy`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Protocol

import numpy as np

from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.checkpoint import read_json


class Mode(IntEnum):
    """RT-1's mode token (terminate_episode): which action group the robot executes."""

    TERMINATE = 0
    ARM = 1
    BASE = 2


@dataclass
class Action:
    """One RT-1 action in physical units (docs/architecture.md's action table)."""

    world_vector: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    rotation_delta: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    gripper_closedness: float = 0.0
    base_displacement: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    base_rotation: float = 0.0
    mode: Mode = Mode.TERMINATE
    tokens: np.ndarray | None = None
    inference_ms: float = 0.0

    def as_dict(self) -> dict[str, np.ndarray]:
        """Named float arrays in the tokenizer's field names."""
        return {
            "mode": np.asarray([int(self.mode)], np.float32),
            "world_vector": np.asarray(self.world_vector, np.float32).reshape(3),
            "rotation_delta": np.asarray(self.rotation_delta, np.float32).reshape(3),
            "gripper_closedness": np.asarray([self.gripper_closedness], np.float32),
            "base_rotation": np.asarray([self.base_rotation], np.float32),
            "base_displacement": np.asarray(self.base_displacement, np.float32).reshape(2),
        }

    @classmethod
    def from_tokens(cls, tokens: np.ndarray, tokenizer: ActionTokenizer, inference_ms: float = 0.0) -> Action:
        """Decodes one step's tokens `[num_tokens]`; the tokens travel with the action."""
        values = tokenizer.decode(np.asarray(tokens))
        return cls(
            world_vector=values["world_vector"].astype(np.float32),
            rotation_delta=values["rotation_delta"].astype(np.float32),
            gripper_closedness=float(values["gripper_closedness"][0]),
            base_displacement=values["base_displacement"].astype(np.float32),
            base_rotation=float(values["base_rotation"][0]),
            mode=Mode(int(values["mode"])),
            tokens=np.asarray(tokens, np.int64),
            inference_ms=inference_ms,
        )


def action_is_finite(action: Action) -> bool:
    """True when every continuous field is a finite number (NaN/inf actions must be rejected)."""
    values = np.concatenate([v.reshape(-1) for k, v in action.as_dict().items() if k != "mode"])
    return bool(np.isfinite(values).all())


class Policy(Protocol):
    """What the policy node drives: one action per control tick from the newest camera frame."""

    def reset(self, instruction: str) -> None:
        """Starts a new episode for `instruction`, forgetting all history."""

    def act(self, image: np.ndarray, stamp: float) -> Action:
        """`image` is HxWx3 uint8 RGB taken at `stamp` seconds; returns the action for this tick."""


# config.json's "policy" field -> the class (module:attribute) that loads that checkpoint.
POLICY_LOADERS = {
    "rt1": "rt_policy_node.policies.rt1.policy:RT1Policy",
    "rt2": "rt_policy_node.policies.rt2.policy:RT2Policy",
    "constant": "rt_policy_node.policies.constant:ConstantPolicy",
}


def load_policy(path: str | Path, device: str = "cpu") -> Policy:
    """Loads the policy saved in checkpoint directory `path` (config.json + model.safetensors)."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no policy checkpoint at {path}: {config_file} is missing")
    kind = read_json(config_file).get("policy")
    if kind not in POLICY_LOADERS:
        raise ValueError(f"{config_file}: 'policy' is {kind!r}, expected one of {sorted(POLICY_LOADERS)}")
    module_name, attr = POLICY_LOADERS[kind].split(":")
    return getattr(importlib.import_module(module_name), attr).from_pretrained(path, device=device)
