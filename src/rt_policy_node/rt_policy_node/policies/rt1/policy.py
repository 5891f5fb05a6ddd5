"""Streaming RT-1 behind the `Policy` interface: one image-encoder pass per control tick.

The window of the last `time_steps` frames is kept as their image tokens (8 per frame), so each tick
encodes only the new frame and runs the Transformer once over the window. As in the reference's
single-step path: after `reset`, frame s < time_steps goes into slot s and the action is read at slot
s, the empty slots after it being invisible under causal attention (so the Transformer runs on slots
0..s only, the same numbers in fewer operations); once the window is full it shifts left by one
slot per tick and the newest frame takes the last slot.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from rt_policy_node.policies.policy import Action
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.text import TextEncoder, default_text_encoder


class RT1Policy:
    """Implements `Policy` for an `RT1` model; `text_encoder` defaults to the shared Universal Sentence Encoder.
    The process's thread count and allocator are its starter's (rt_policy_node.process_settings)."""

    def __init__(self, model: RT1, text_encoder: TextEncoder | None = None) -> None:
        self.model = model.eval()
        self.config = model.config
        self.tokenizer = self.config.tokenizer()
        self.device = next(model.parameters()).device
        self.model.image_encoder.to(memory_format=torch.channels_last)
        self._text_encoder = text_encoder
        self._window = self._empty_window()
        self._frames = 0
        self._text: torch.Tensor | None = None
        self.instruction: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str = "cpu",
        text_encoder: TextEncoder | None = None,
    ) -> RT1Policy:
        """Loads a checkpoint directory written by `save_pretrained` (or `rt-convert`)."""
        return cls(RT1.from_pretrained(path, device=device), text_encoder)

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(path)

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = default_text_encoder()
        return self._text_encoder

    def reset(self, instruction: str) -> None:
        """Embeds the instruction and empties the window."""
        embedding = np.asarray(self.text_encoder.embed(instruction), dtype=np.float32).reshape(-1)
        if embedding.shape != (self.config.text_dim,):
            raise ValueError(f"text encoder gave a {embedding.shape} embedding, the model needs {self.config.text_dim}")
        self._text = torch.from_numpy(embedding).to(self.device)[None]
        self.instruction = instruction
        self._window = self._empty_window()
        self._frames = 0

    @property
    def window(self) -> torch.Tensor:
        """The image tokens of the frames seen so far, `[frames, image_tokens, token_dim]` (at most time_steps)."""
        return self._window[0, : self._frames]

    def _empty_window(self) -> torch.Tensor:
        cfg = self.config
        return torch.zeros(1, cfg.time_steps, cfg.image_tokens, cfg.token_dim, device=self.device)

    def act(self, image: np.ndarray, stamp: float) -> Action:
        """One action for the newest frame (HxWx3 uint8 RGB). `stamp` is not used: RT-1 sees frames, not times."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {shape} {dtype}")
        start = time.perf_counter()
        tokens, _ = self.step(image)
        return Action.from_tokens(tokens, self.tokenizer, inference_ms=(time.perf_counter() - start) * 1000)

    def step(
        self, frame: np.ndarray | torch.Tensor, text_embedding: torch.Tensor | None = None
    ) -> tuple[np.ndarray, torch.Tensor]:
        """Adds one frame (HxWx3, uint8 or float in [0, 1]) to the window; returns the step's tokens `[11]`
        and raw logits `[11, vocab]`. The frame is conditioned on `text_embedding` `[text_dim]` if given
        (the reference feeds one per frame), else on the instruction's embedding."""
        if self._text is None:
            raise RuntimeError("call reset(instruction) before the first frame")
        if isinstance(frame, np.ndarray) and not frame.flags.writeable:  # a bag's buffer, a read-only memmap
            frame = frame.copy()
        frame = torch.as_tensor(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 frame, got shape {tuple(frame.shape)}")
        text = self._text if text_embedding is None else text_embedding.reshape(1, -1).to(self.device)
        steps = self.config.time_steps
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda):
            tokens = self.model.encode_images(frame.to(self.device)[None, None], text)
            if self._frames == steps:
                self._window = self._window.roll(-1, dims=1)
            slot = min(self._frames, steps - 1)
            self._window[:, slot] = tokens[:, 0]
            self._frames = min(self._frames + 1, steps)
            action_tokens, logits = self.model.decode_last_step(self._window[:, : slot + 1], text)
        return action_tokens[0].cpu().numpy(), logits[0].float().cpu()
