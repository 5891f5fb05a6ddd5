"""ArmKinematics on the project's URDF: IK reaches commanded deltas, gets close to unreachable targets, uses the rest
posture, and refuses wrong names."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest
from conftest import URDF

from rt_policy_node.robot.kinematics import ArmKinematics

ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))
# Near the sim robot's home (its profile's ik.rest_posture), but not at it, so the rest posture still has work to do.
Q0 = np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1])


@pytest.mark.parametrize(
    ("translation", "rpy"),
    [
        ((0.03, -0.02, 0.01), (0.0, 0.0, 0.0)),
        ((-0.05, 0.0, 0.04), (0.1, -0.1, 0.2)),
        ((0.0, 0.06, -0.05), (0, 0, -0.3)),
    ],
)
def test_ik_moves_the_end_effector_by_the_commanded_delta(kinematics, translation, rpy):
    start = kinematics.fk(Q0)
    target = pin.SE3(pin.rpy.rpyToMatrix(*rpy) @ start.rotation, start.translation + np.array(translation))
    result = kinematics.solve(target, Q0)
    assert result.reached
    reached = kinematics.fk(result.q)
    np.testing.assert_allclose(reached.translation - start.translation, translation, atol=1e-4)
    assert np.linalg.norm(pin.log3(reached.rotation @ target.rotation.T)) < 1e-4
    assert np.all(result.q >= kinematics.lower) and np.all(result.q <= kinematics.upper)


def test_ik_of_an_unreachable_target_gets_as_close_as_it_can(kinematics):
    start = kinematics.fk(Q0)
    target = pin.SE3(start.rotation, np.array([3.0, 0.0, 1.0]))
    result = kinematics.solve(target, Q0)
    assert not result.reached
    reached = kinematics.fk(result.q).translation
    assert np.linalg.norm(reached - target.translation) < np.linalg.norm(start.translation - target.translation) - 0.3
    assert np.all(np.isfinite(result.q))
    assert np.all(result.q >= kinematics.lower) and np.all(result.q <= kinematics.upper)


def test_ik_spends_the_redundancy_on_the_rest_posture(kinematics, profile):
    rest = np.asarray(profile.ik.rest_posture)
    start = kinematics.fk(Q0)
    target = pin.SE3(start.rotation, start.translation + np.array([0.04, 0.03, -0.02]))
    plain = kinematics.solve(target, Q0)
    biased = kinematics.solve(target, Q0, rest=rest, rest_gain=profile.ik.rest_gain)
    assert plain.reached and biased.reached
    assert np.linalg.norm(biased.q - rest) < np.linalg.norm(plain.q - rest)
    np.testing.assert_allclose(kinematics.fk(biased.q).translation, target.translation, atol=1e-4)


def test_kinematics_refuses_wrong_joint_or_frame_names():
    with pytest.raises(ValueError, match="no joints named"):
        ArmKinematics(URDF, ("arm_joint_1", "elbow"), "base_link", "ee_link")
    with pytest.raises(ValueError, match="no frame named"):
        ArmKinematics(URDF, ARM, "base_link", "tool0")
