"""Every command the motion core sends holds every limit of the profile, under adversarial actions (finding 1 of
issue #21: the end effector overshot its speed and the workspace where IK fell short of a clamped target)."""

from __future__ import annotations

import numpy as np
import pytest

from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.limit_audit import CommandAudit, adversarial_actions, run_campaign
from rt_policy_node.robot.limits import box_excursion
from rt_policy_node.robot.motion import NS, ArmCommand, MotionController

# Near the sim robot's home; stretched straight up (a singular, hard to move pose); and one near the workspace's edge.
STARTS = {
    "home": np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1]),
    "stretched": np.array([0.0, 0.05, 0.0, -0.05, 0.0, 0.05, 0.0]),
    "reaching": np.array([-1.2, 1.2, 1.0, 0.6, -1.0, 1.2, 0.3]),
}


@pytest.mark.parametrize("profile_name", ["profile", "generic_profile"])
@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize(("servo", "follow"), [(False, 1.0), (False, 0.3), (True, 1.0)])
def test_adversarial_actions_never_break_a_limit(request, kinematics, profile_name, start, servo, follow):
    profile = request.getfixturevalue(profile_name)
    controller = MotionController(profile, kinematics, servo=servo, stream_period_s=0.05)
    seed = sorted(STARTS).index(start) * 10 + int(follow * 10) + servo
    actions = adversarial_actions(np.random.default_rng(seed), 150, profile.control_period_s)
    audit = run_campaign(controller, STARTS[start], actions, follow=follow)
    assert not audit.violations, "\n".join(audit.violations[:20])
    assert audit.counts["twist"] > 100 and audit.counts["gripper"] > 20
    assert audit.counts["servo" if servo else "arm"] > 20


# Poses of the generic profile's arm and actions whose IK solution (best effort towards a clamped target) overshot:
# 0.56 m/s of end-effector speed against 0.25, 30 mm outside the workspace.
OVERSHOOTS = [
    ([-0.663, -2.113, -2.425, -1.474, -0.495, -0.191, 2.23], [-0.83, -0.06, 0.09], [-1.5, 0.0, 1.5]),
    ([-0.37, 1.351, -1.539, 1.818, 1.228, -1.555, 0.764], [0.16, 0.82, 0.78], [1.5, 1.5, -1.5]),
    ([-1.139, -1.433, -0.086, -0.643, 0.714, -0.008, -2.686], [0.83, 0.81, 0.92], [-1.5, -1.5, 0.0]),
]


@pytest.mark.parametrize(("q", "world_vector", "rotation_delta"), OVERSHOOTS)
def test_an_ik_overshoot_is_scaled_back_inside_every_limit(
    generic_profile, kinematics, q, world_vector, rotation_delta
):
    controller = MotionController(generic_profile, kinematics)
    controller.update_joints(list(generic_profile.arm_joints), q, NS)
    action = Action(
        world_vector=np.array(world_vector, np.float32),
        rotation_delta=np.array(rotation_delta, np.float32),
        mode=Mode.ARM,
    )
    commands = controller.act(action, NS)
    audit = CommandAudit(generic_profile, kinematics, 0.05)
    audit.record(NS, np.array(q), commands)
    assert not audit.violations, audit.violations
    assert np.abs(commands.arm.positions - q).max() > 1e-3, "scaled back, not frozen"


def test_the_audit_sees_a_broken_limit(profile, kinematics):
    """The audit is not vacuous: a hand-made command beyond each arm limit is reported."""
    q = STARTS["home"]
    audit = CommandAudit(profile, kinematics, 0.05)
    audit.arm(NS, q, ArmCommand(q + 1.0, profile.control_period_s))
    names = " ".join(audit.violations)
    for limit in ("ee_linear_velocity", "joint_velocity_ratio", "joint_acceleration"):
        assert limit in names
    audit.twist(NS, np.array([1.0, 0.0, 0.0]))
    assert "base_linear_velocity" in audit.violations[-1]
    low, high = np.zeros(3), np.ones(3)
    assert box_excursion(np.array([0.5, 0.5, 0.5]), low, high) == 0.0
    assert box_excursion(np.array([1.003, 0.5, -0.004]), low, high) == pytest.approx(0.005)
