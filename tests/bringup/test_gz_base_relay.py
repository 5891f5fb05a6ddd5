"""rt_gz_base_relay as a real process over real DDS: cmd_vel in the base frame -> base command in odom."""

from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import Twist
from harness import NodeProcess, Probe, wait_for
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from rt_gazebo.base_relay import rotate

BASE_JOINTS = ["base_x_joint", "base_y_joint", "base_yaw_joint"]


@pytest.fixture
def rig(tmp_path):
    probe = Probe()
    relay = NodeProcess(
        "rt_gz_base_relay", "rt_gz_base_relay", tmp_path / "logs", params={"rate_hz": 50.0, "cmd_vel_timeout_s": 0.3}
    )
    yield probe, relay
    relay.stop()
    probe.close()


def joint_state(x: float, y: float, yaw: float, velocities: tuple[float, float, float]) -> JointState:
    return JointState(name=["arm_joint_1", *BASE_JOINTS], position=[0.5, x, y, yaw], velocity=[0.0, *velocities])


def test_rotate_turns_the_body_frame_into_odom():
    assert rotate(1.0, 0.0, math.pi / 2) == pytest.approx((0.0, 1.0))
    assert rotate(*rotate(0.3, -0.2, 0.7), -0.7) == pytest.approx((0.3, -0.2))


def test_cmd_vel_is_rotated_by_the_base_yaw_and_stops_when_stale(rig):
    probe, relay = rig
    commands = probe.collect(Float64MultiArray, "base_controller/commands", 100)
    odom = probe.collect(Odometry, "odom", 100)
    cmd_vel = probe.publisher(Twist, "cmd_vel")
    joints = probe.publisher(JointState, "joint_states")
    probe.wait_for_subscribers(cmd_vel)
    probe.wait_for_subscribers(joints)
    wait_for(lambda: commands, what="base commands")
    assert list(commands[-1].data) == [0.0, 0.0, 0.0], "no yaw and no cmd_vel yet: the base must stand still"

    yaw = math.pi / 2

    def odometry():
        joints.publish(joint_state(1.0, 2.0, yaw, (0.0, 0.3, 0.1)))
        return odom and odom[-1]

    pose = wait_for(odometry, what="odometry").pose.pose
    assert (pose.position.x, pose.position.y) == (1.0, 2.0)
    assert 2 * math.atan2(pose.orientation.z, pose.orientation.w) == pytest.approx(yaw)
    assert odom[-1].twist.twist.linear.x == pytest.approx(0.3), "odom-frame +y is the base's forward at yaw pi/2"

    twist = Twist()
    twist.linear.x, twist.angular.z = 0.2, 0.1

    def moving():
        cmd_vel.publish(twist)
        return commands and list(commands[-1].data) != [0.0, 0.0, 0.0] and commands[-1]

    command = wait_for(moving, what="a non-zero base command")
    assert list(command.data) == pytest.approx([0.0, 0.2, 0.1], abs=1e-9)

    wait_for(lambda: list(commands[-1].data) == [0.0, 0.0, 0.0], timeout=5.0, what="the stop after the timeout")
    assert relay.alive(), relay.output()


def test_non_finite_cmd_vel_stops_the_base(rig):
    probe, relay = rig
    commands = probe.collect(Float64MultiArray, "base_controller/commands", 100)
    cmd_vel = probe.publisher(Twist, "cmd_vel")
    joints = probe.publisher(JointState, "joint_states")
    probe.wait_for_subscribers(cmd_vel)
    probe.wait_for_subscribers(joints)
    good, bad = Twist(), Twist()
    good.linear.x, bad.linear.x = 0.2, math.nan

    def moving():
        joints.publish(joint_state(0.0, 0.0, 0.0, (0.0, 0.0, 0.0)))
        cmd_vel.publish(good)
        return commands and commands[-1].data[0] == pytest.approx(0.2)

    wait_for(moving, what="the base moving")
    cmd_vel.publish(bad)
    wait_for(lambda: list(commands[-1].data) == [0.0, 0.0, 0.0], timeout=1.0, what="the stop on a NaN cmd_vel")
    assert relay.alive()
    assert "non-finite cmd_vel dropped" in relay.output()
