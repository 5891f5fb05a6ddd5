"""The rt1_sim preset: explicit EfficientNet coefficients override the variant's and survive config.json."""

from __future__ import annotations

import pytest
import torch

from rt_policy_node.policies.rt1.config import RT1Config, rt1_preset
from rt_policy_node.policies.rt1.model import RT1


def test_explicit_coefficients_override_the_variant_and_round_trip():
    config = rt1_preset("rt1_sim")
    assert (config.width_coefficient, config.depth_coefficient) == (0.35, 0.35)
    assert RT1Config.from_dict(config.to_dict()) == config
    assert (RT1Config(efficientnet="b3").width_coefficient, RT1Config(efficientnet="b3").depth_coefficient) == (
        1.2,
        1.4,
    )
    with pytest.raises(ValueError, match="efficientnet_width"):
        RT1Config(efficientnet_width=-1.0)


def test_rt1_sim_is_small_and_predicts_every_action_token():
    config = rt1_preset("rt1_sim")
    model = RT1(config).eval()
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    images = torch.randint(0, 256, (2, config.time_steps, 128, 160, 3), dtype=torch.uint8).float()
    with torch.no_grad():
        logits = model(images, torch.randn(2, config.time_steps, config.text_dim))
    assert logits.shape == (2, config.time_steps, config.action_tokens, config.vocab_size)
