"""RT-1's hyperparameters as one dataclass that travels as config.json beside the weights, plus named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rt_policy_node.policies.action_tokenizer import (
    RT1_ACTION_SPEC,
    ActionDim,
    ActionTokenizer,
    spec_from_json,
    spec_to_json,
)

# EfficientNet (width, depth) scaling coefficients and native resolution, from the EfficientNet paper.
EFFICIENTNET_VARIANTS: dict[str, tuple[float, float, int]] = {
    "b0": (1.0, 1.0, 224),
    "b1": (1.0, 1.1, 240),
    "b2": (1.1, 1.2, 260),
    "b3": (1.2, 1.4, 300),
}
ATTENTION_KINDS = ("rt1", "prefix_lm")
FEED_FORWARDS = ("linear", "swiglu")
AUGMENTATIONS = ("pad_then_crop", "random_crop", "none")
PRESETS = ("rt1", "rt1_reference", "rt1_small", "rt1_sim")


@dataclass
class RT1Config:
    """Every shape and switch of an RT-1 model; the defaults are the published RT-1 (`rt1_preset("rt1")`)."""

    # Image encoder: FiLM-EfficientNet on a square resize of the camera image, then TokenLearner.
    efficientnet: str = "b3"
    # Explicit EfficientNet scaling that overrides the variant's (0: the variant's own coefficient).
    efficientnet_width: float = 0.0
    efficientnet_depth: float = 0.0
    image_size: int = 300
    # The encoder's feature map is image_size / output stride on a side (9x9 for RT-1); 16 or 8 keep a small
    # image's map fine enough to say where things are (96 px: 6x6 instead of 3x3).
    efficientnet_output_stride: int = 32
    drop_connect_rate: float = 0.2
    token_dim: int = 512
    image_tokens: int = 8
    token_learner_hidden: int = 64
    text_dim: int = 512
    # Training-time augmentation (policies/rt1/image.py): the reference's pad-then-crop, or a random
    # square crop of crop_size (centre crop at inference), the reference's other mode, or none (for tasks
    # whose actions depend on where things are in the frame, which a random shift would misstate).
    augmentation: str = "pad_then_crop"
    crop_size: int = 236
    # Transformer over time_steps x (image_tokens + one token per action dimension).
    time_steps: int = 6
    model_dim: int = 512
    num_layers: int = 8
    num_heads: int = 8
    head_dim: int = 128
    feed_forward: str = "linear"
    swiglu_hidden_dim: int = 1365
    dropout: float = 0.1
    vocab_size: int = 256
    # "rt1": parallel action prediction under RT-1's mask; "prefix_lm": autoregressive action tokens.
    attention: str = "rt1"
    instruction_token: bool = False
    loss_last_step_only: bool = False
    # Soft labels for the continuous dimensions: a Gaussian over neighbouring bins with this standard
    # deviation (in bins), so a near miss costs less than a far one (the "HL-Gauss" histogram loss); it
    # keeps the argmax at the label. 0: one-hot cross-entropy, as published.
    label_sigma_bins: float = 0.0
    # The action space in token order, and how continuous actions become tokens for training labels.
    action_spec: tuple[ActionDim, ...] = field(default=RT1_ACTION_SPEC)
    action_rounding: str = "round"

    def __post_init__(self) -> None:
        self.action_spec = tuple(self.action_spec)
        checks = {
            "efficientnet": self.efficientnet in EFFICIENTNET_VARIANTS,
            "efficientnet_width": self.efficientnet_width >= 0.0,
            "efficientnet_depth": self.efficientnet_depth >= 0.0,
            "attention": self.attention in ATTENTION_KINDS,
            "feed_forward": self.feed_forward in FEED_FORWARDS,
            "augmentation": self.augmentation in AUGMENTATIONS,
            "action_rounding": self.action_rounding in ("round", "floor"),
            "image_size": self.image_size >= 32,
            "efficientnet_output_stride": self.efficientnet_output_stride in (8, 16, 32),
            "crop_size": self.crop_size > 0,
            "time_steps": self.time_steps >= 1,
            "image_tokens": self.image_tokens >= 1,
            "label_sigma_bins": self.label_sigma_bins >= 0.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid RT1Config values: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        self.tokenizer()  # validates the action spec against the vocabulary

    @property
    def action_tokens(self) -> int:
        """Tokens per action: one per continuous dimension, one per discrete field (11 for RT-1)."""
        return sum(d.size for d in self.action_spec)

    @property
    def tokens_per_step(self) -> int:
        return self.image_tokens + self.action_tokens

    @property
    def sequence_length(self) -> int:
        """Transformer positions of a full window: 6 x 19 = 114 for RT-1 (+1 with an instruction token)."""
        return self.time_steps * self.tokens_per_step + int(self.instruction_token)

    @property
    def width_coefficient(self) -> float:
        return self.efficientnet_width or EFFICIENTNET_VARIANTS[self.efficientnet][0]

    @property
    def depth_coefficient(self) -> float:
        return self.efficientnet_depth or EFFICIENTNET_VARIANTS[self.efficientnet][1]

    def tokenizer(self) -> ActionTokenizer:
        """The action tokenizer that made (and decodes) this model's tokens."""
        return ActionTokenizer(self.action_spec, rounding=self.action_rounding, vocab_size=self.vocab_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with `"policy": "rt1"` so `load_policy` knows what loads it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["action_spec"] = spec_to_json(self.action_spec)
        return {"policy": "rt1", **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RT1Config:
        """Inverse of `to_dict`; unknown fields or another policy kind are errors, not silently dropped."""
        data = dict(data)
        kind = data.pop("policy", "rt1")
        if kind != "rt1":
            raise ValueError(f"config is for policy {kind!r}, not 'rt1'")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RT1Config fields: {unknown}")
        if "action_spec" in data:
            data["action_spec"] = spec_from_json(data["action_spec"])
        return cls(**data)


def rt1_preset(name: str) -> RT1Config:
    """Named configurations.

    - `rt1`: the published model (EfficientNet-B3 at 300x300, 8 layers of width 512; 35.3M parameters).
    - `rt1_reference`: `rt1` with 2 layers and the original's floor label rule, the shape of the TF
      reference data (tests/policies/test_rt1_parity.py).
    - `rt1_small`: EfficientNet-B0 at 128x128 and a 4-layer, 256-wide transformer, for simulation tasks:
      trains on a CPU in minutes and runs well above 30 Hz.
    - `rt1_sim`: EfficientNet-B0 scaled to 0.35 width and depth at 96x96 and a 2-layer, 128-wide
      transformer (1.2M parameters): ~20 samples/s on one CPU core, ~10x rt1_small (24k windows in 19 min).
      Trained with Gaussian soft labels (2 bins), which suit its few demonstrations, and without the random
      shift: where a marker sits in the frame says which way to drive (models/rt1_sim/MODEL_CARD.md).
    """
    if name == "rt1":
        return RT1Config()
    if name == "rt1_reference":
        return RT1Config(num_layers=2, action_rounding="floor")
    if name == "rt1_small":
        return RT1Config(
            efficientnet="b0",
            image_size=128,
            crop_size=112,
            token_dim=256,
            model_dim=256,
            num_layers=4,
            num_heads=4,
            head_dim=64,
            swiglu_hidden_dim=682,
        )
    if name == "rt1_sim":
        return RT1Config(
            efficientnet="b0",
            efficientnet_width=0.35,
            efficientnet_depth=0.35,
            image_size=96,
            crop_size=88,
            token_dim=128,
            model_dim=128,
            num_layers=2,
            num_heads=4,
            head_dim=32,
            swiglu_hidden_dim=341,
            augmentation="none",
            label_sigma_bins=2.0,
        )
    raise ValueError(f"unknown RT-1 preset {name!r}; choose one of {PRESETS}")
