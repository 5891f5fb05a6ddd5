"""The limit helpers and the robot profile: clamping arithmetic, the gripper mapping, and refused profiles."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest
from conftest import SIM_PROFILE, URDF, find_share

from rt_policy_node.robot.limits import (
    clamp_norm,
    joint_step_fraction,
    keep_inside_box,
    largest_fraction,
    rate_limit,
    rotation_step,
)
from rt_policy_node.robot.profile import load_profile


def test_limits():
    np.testing.assert_allclose(clamp_norm([3.0, 4.0], 1.0), [0.6, 0.8])
    np.testing.assert_allclose(clamp_norm([0.3, 0.4], 1.0), [0.3, 0.4])
    np.testing.assert_allclose(rate_limit([1.0, 0.0], [0.0, 0.0], 0.25), [0.25, 0.0])
    # On the box's x face nothing goes further out, below it in z only back in; inside, 0.1 s ahead stays inside.
    np.testing.assert_allclose(
        keep_inside_box(np.array([1.0, 0.5, 0.4]), [0.2, -0.1, -0.3], [0, 0, 0.5], [1, 1, 1], 0.1), [0, -0.1, 0]
    )
    np.testing.assert_allclose(
        keep_inside_box(np.array([0.95, 0.5, 0.7]), [1.0, 0, 0], [0, 0, 0.5], [1, 1, 1], 0.1), [0.5, 0, 0]
    )
    assert joint_step_fraction([0.4, -0.1, 0.0], [-0.1] * 3, [0.1] * 3) == pytest.approx(0.25)
    assert joint_step_fraction([0.4, -0.1, 0.0], [-0.05, -0.05, 0.0], [0.5, 0.0, 0.0]) == pytest.approx(0.5)
    assert joint_step_fraction([0.01, 0.0, 0.0], [-0.1] * 3, [0.1] * 3) == 1.0
    assert joint_step_fraction([np.nan, 0.5, 0.0], [-0.1] * 3, [0.1] * 3) == 0.0
    assert joint_step_fraction([0.5, 0.5, 0.0], [-0.1] * 3, [np.nan] * 3) == 0.0
    assert largest_fraction(lambda s: s <= 0.3, 1.0, 12) == pytest.approx(0.3, abs=2**-12)
    assert largest_fraction(lambda s: s <= 0.3, 1.0, 12) <= 0.3
    assert largest_fraction(lambda s: True, 0.7, 12) == 0.7
    assert np.linalg.norm(pin.log3(rotation_step([0.0, 0.0, 1.0], 0.25))) == pytest.approx(0.25)


def test_profile_gripper_mapping_and_validation(profile, tmp_path):
    assert profile.urdf == URDF
    assert profile.gripper_position(-1.0) == pytest.approx(0.04)
    assert profile.gripper_position(1.0) == pytest.approx(0.0)
    assert profile.gripper_position(0.0) == pytest.approx(0.02)
    assert profile.gripper_position(7.0) == pytest.approx(0.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SIM_PROFILE.read_text().replace("  joint_velocity:", "  joint_speed:"))
    with pytest.raises(ValueError, match="unknown keys"):
        load_profile(bad, find_share)
    bad.write_text(SIM_PROFILE.read_text().replace("workspace_max: [1.1, 0.8, 1.7]", "workspace_max: [1.1, 0.8, 0.1]"))
    with pytest.raises(ValueError, match="workspace"):
        load_profile(bad, find_share)
