"""rt_action_executor driving the MuJoCo robot (rt_sim) over real DDS: the commanded deltas happen in physics."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from harness import URDF, wait_for
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.qos import RELIABLE

pytestmark = pytest.mark.skipif(shutil.which("rt_sim") is None, reason="rt_sim is not built")
ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))


def test_arm_and_base_actions_move_the_simulated_robot(probe, launch):
    launch("rt_sim", "rt_sim", params={"use_sim_time": True})
    launch(
        "rt_action_executor",
        "rt_action_executor",
        config="executor.yaml",
        params={"use_sim_time": True, "autostart": True},
    )
    states = probe.collect(JointState, "joint_states", 10)
    trajectories = probe.collect(JointTrajectory, "arm_controller/joint_trajectory", 10)
    twists = probe.collect(Twist, "cmd_vel", 100)
    actions = probe.publisher(RTAction, "rt/action", RELIABLE)
    wait_for(lambda: states, timeout=60, what="joint_states from the simulation")
    probe.wait_for_subscribers(actions, count=2, timeout=60)
    kinematics = ArmKinematics(URDF, ARM, "base_link", "ee_link")

    def joints() -> dict[str, float]:
        return dict(zip(states[-1].name, states[-1].position, strict=True))

    def settle() -> dict[str, float]:
        """Joint positions once the robot has stopped moving (real-time sim)."""
        time.sleep(0.5)
        previous = joints()
        while True:
            time.sleep(0.3)
            current = joints()
            if max(abs(current[k] - previous[k]) for k in current) < 1e-4:
                return current
            previous = current

    before = settle()
    ee_before = kinematics.fk(np.array([before[j] for j in ARM])).translation
    actions.publish(
        action_to_msg(
            Action(world_vector=np.array([0.4, -0.4, 0.2], np.float32), gripper_closedness=1.0, mode=Mode.ARM)
        )
    )
    wait_for(lambda: trajectories, what="the arm trajectory")
    after = settle()
    ee_after = kinematics.fk(np.array([after[j] for j in ARM])).translation
    # The profile's scale: 0.05 m per unit of world_vector.
    np.testing.assert_allclose(ee_after - ee_before, [0.02, -0.02, 0.01], atol=2e-3)
    assert after["gripper_left_finger_joint"] < 0.005, "the gripper closed"

    actions.publish(action_to_msg(Action(base_displacement=np.array([1.0, 0.0], np.float32), mode=Mode.BASE)))
    wait_for(lambda: any(t.linear.x > 0 for t in twists), what="a base twist")
    wait_for(lambda: twists[-1].linear.x == 0.0, what="the base twist back to zero")
    moved = settle()
    # 0.1 m per unit, streamed over one period with acceleration ramps at both ends, along the base's heading.
    # The real-time sim keeps moving while a loaded machine delays the executor's stream ticks: a loose bound.
    yaw = after["base_yaw_joint"]
    dx, dy = moved["base_x_joint"] - after["base_x_joint"], moved["base_y_joint"] - after["base_y_joint"]
    assert np.cos(yaw) * dx + np.sin(yaw) * dy == pytest.approx(0.1, abs=0.04)
    assert abs(-np.sin(yaw) * dx + np.cos(yaw) * dy) < 0.005
