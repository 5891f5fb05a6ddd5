"""RT-2 behind the `Policy` interface: one constrained answer per camera frame, decoded into an `Action`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from rt_policy_node.policies.policy import Action
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.prompts import action_prompt


class RT2Policy:
    """Asks the model "what action should the robot take to {instruction}?" about each frame."""

    def __init__(self, model: RT2Model) -> None:
        self.model = model.eval()
        self.prompt: str | None = None
        self.last_plan: str | None = None

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> RT2Policy:
        return cls(RT2Model.from_pretrained(path, device=device))

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(path)

    def reset(self, instruction: str) -> None:
        self.prompt = action_prompt(instruction)
        self.last_plan = None

    @torch.inference_mode()
    def act(self, image: np.ndarray, stamp: float) -> Action:
        if self.prompt is None:
            raise RuntimeError("RT2Policy.act called before reset(instruction)")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {_describe(image)}")
        if min(image.shape[:2]) < 1:
            raise ValueError(f"expected a non-empty image, got shape {image.shape}")
        start = time.perf_counter()
        answer = self.model.answer(image, self.prompt)
        self.last_plan = answer.plan
        inference_ms = (time.perf_counter() - start) * 1000.0
        return Action.from_tokens(answer.tokens, self.model.action_tokenizer, inference_ms=inference_ms)


def _describe(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"array of shape {image.shape} and dtype {image.dtype}"
    return type(image).__name__
