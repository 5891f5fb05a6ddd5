"""A policy that answers every frame with the same configured action: for bring-up and timing checks.

Pointing `rt_policy` at one checks the camera -> policy -> executor -> robot wiring with a known, safe
motion (e.g. a slow base turn, or all zeros to exercise the loop without moving), and `latency_ms`
emulates a model's inference time to see how the control loop copes before a real model is deployed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rt_policy_node.policies.checkpoint import read_json
from rt_policy_node.policies.policy import Action, Mode


@dataclass
class ConstantPolicyConfig:
    """config.json of a constant policy checkpoint directory (no weights)."""

    policy: str = "constant"
    mode: int = int(Mode.ARM)
    world_vector: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rotation_delta: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    gripper_closedness: float = 0.0
    base_displacement: list[float] = field(default_factory=lambda: [0.0, 0.0])
    base_rotation: float = 0.0
    # Steps per episode before answering TERMINATE; 0 never terminates.
    steps: int = 0
    # Emulated inference time per step, in milliseconds.
    latency_ms: float = 0.0


class ConstantPolicy:
    """Implements `Policy`: the configured action every step, TERMINATE after `steps` steps."""

    def __init__(self, config: ConstantPolicyConfig) -> None:
        if config.steps < 0 or config.latency_ms < 0:
            raise ValueError(f"steps and latency_ms must be >= 0, got {config.steps} and {config.latency_ms}")
        self.config = config
        self.action = Action(
            world_vector=np.asarray(config.world_vector, np.float32).reshape(3),
            rotation_delta=np.asarray(config.rotation_delta, np.float32).reshape(3),
            gripper_closedness=float(config.gripper_closedness),
            base_displacement=np.asarray(config.base_displacement, np.float32).reshape(2),
            base_rotation=float(config.base_rotation),
            mode=Mode(config.mode),
        )
        self.step = 0

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> ConstantPolicy:
        """Loads `path/config.json`; `device` is accepted for the loader's signature and unused."""
        config_file = Path(path) / "config.json"
        try:
            return cls(ConstantPolicyConfig(**read_json(config_file)))
        except TypeError as err:
            raise ValueError(f"{config_file}: {err}") from None

    def save_pretrained(self, path: str | Path) -> None:
        """Writes the checkpoint directory `path` (config.json only)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(asdict(self.config), indent=2))

    def reset(self, instruction: str) -> None:
        self.step = 0

    def act(self, image: np.ndarray, stamp: float) -> Action:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
        start = time.perf_counter()
        time.sleep(self.config.latency_ms / 1000)
        self.step += 1
        done = self.config.steps and self.step >= self.config.steps
        action = Action(mode=Mode.TERMINATE) if done else Action(**vars(self.action))
        action.inference_ms = (time.perf_counter() - start) * 1000
        return action
