"""The checkpoints shipped in models/ load by path alone and answer a camera frame with a valid action."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rt_policy_node.policies.policy import Mode, load_policy

MODELS = Path(__file__).resolve().parents[2] / "models"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["rt1_sim", "rt2_sim"])
def test_a_shipped_model_acts_on_a_frame(name):
    assert (MODELS / name / "MODEL_CARD.md").is_file(), "every shipped model carries its model card"
    policy = load_policy(MODELS / name)
    policy.reset("pick up the red cube")
    frame = np.random.default_rng(0).integers(0, 256, (128, 160, 3), dtype=np.uint8)
    action = policy.act(frame, 0.0)
    assert action.mode in (Mode.TERMINATE, Mode.ARM, Mode.BASE)
    fields = action.as_dict()
    assert all(np.isfinite(values).all() for values in fields.values())
    assert -1.0 <= fields["gripper_closedness"][0] <= 1.0
