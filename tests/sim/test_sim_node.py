"""rt_sim as a ROS 2 robot over real DDS: rates on sim time, trajectories, base twists, seeded resets."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from harness import NodeProcess, Probe, wait_for
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from sim_client import reset, task_state
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rt_policy_node.ros.conversions import stamp_to_seconds
from rt_policy_node.ros.qos import RELIABLE, SENSOR_DATA
from rt_sim.robot_model import ARM_JOINTS, HOME_ARM_JOINTS, JOINT_NAMES

pytestmark = pytest.mark.skipif(shutil.which("rt_sim") is None, reason="rt_sim is not built")
WIDTH, HEIGHT = 96, 80


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = NodeProcess(
        "rt_sim", "rt_sim", tmp_path_factory.mktemp("sim"), params={"image_width": WIDTH, "image_height": HEIGHT}
    )
    probe = Probe("sim_probe")
    yield probe, process
    probe.close()
    assert process.stop() == 0, process.output()


def stamps(messages) -> np.ndarray:
    return np.array([stamp_to_seconds(m.header.stamp) for m in messages])


def test_publishes_sensors_at_their_rates_on_sim_time(node):
    probe, process = node
    images = probe.collect(Image, "camera/image_raw", SENSOR_DATA)
    infos = probe.collect(CameraInfo, "camera/camera_info", SENSOR_DATA)
    joints = probe.collect(JointState, "joint_states", 50)
    odom = probe.collect(Odometry, "odom", 50)
    clock = probe.collect(Clock, "/clock", 50)
    success = probe.collect(Bool, "sim/success", RELIABLE)
    wait_for(lambda: len(images) >= 12 and len(joints) >= 60, 60, "camera frames and joint states")
    assert process.alive()

    image = images[-1]
    assert (image.width, image.height, image.encoding, image.step) == (WIDTH, HEIGHT, "rgb8", 3 * WIDTH)
    assert len(image.data) == WIDTH * HEIGHT * 3
    assert image.header.frame_id == "head_camera_optical_frame"
    # Best effort may drop a frame, never shift one: every gap is a whole number of camera periods.
    gaps = np.diff(stamps(images)) / 0.1
    np.testing.assert_allclose(gaps, np.round(gaps), atol=1e-6)
    assert np.median(gaps) == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(stamps(joints)), 1 / 60, atol=1e-6)
    assert list(joints[-1].name) == list(JOINT_NAMES)
    assert odom[-1].header.frame_id == "odom" and odom[-1].child_frame_id == "base_link"
    # The clock for a frame's instant is sent just after it, on another reader: it follows within moments.
    frame_time = stamp_to_seconds(image.header.stamp)
    wait_for(lambda: clock and stamp_to_seconds(clock[-1].clock) >= frame_time, 10, "the clock to reach the frame")
    assert infos[-1].k[0] > 0 and infos[-1].width == WIDTH
    assert success and success[-1].data is False


def test_follows_an_arm_trajectory_like_joint_trajectory_controller(node):
    probe, _ = node
    assert reset(probe, "pick_cube", 0).success
    joints = probe.collect(JointState, "joint_states", 50)
    publisher = probe.publisher(JointTrajectory, "arm_controller/joint_trajectory", RELIABLE)
    probe.wait_for_subscribers(publisher)
    goal = np.asarray(HOME_ARM_JOINTS) + np.array([0.2, 0.1, -0.2, 0.2, -0.3, 0.2, 0.5])
    point = JointTrajectoryPoint(positions=goal.tolist())
    point.time_from_start.sec = 1
    publisher.publish(JointTrajectory(joint_names=list(ARM_JOINTS), points=[point]))
    wait_for(lambda: joints and stamps(joints)[-1] - stamps(joints)[0] > 2.0, 30, "2 s of sim time")
    arm = [JOINT_NAMES.index(name) for name in ARM_JOINTS]
    received = list(joints)  # the subscription keeps appending: positions and stamps from one snapshot
    positions = np.array([np.asarray(m.position)[arm] for m in received])
    moving = np.abs(np.diff(positions, axis=0)).max(axis=1) > 1e-4
    start = stamps(received)[1:][moving][0]
    # Halfway through, the arm is halfway (linear interpolation of a positions-only trajectory) ...
    halfway = positions[np.searchsorted(stamps(received), start + 0.5)]
    np.testing.assert_allclose(halfway, (np.asarray(HOME_ARM_JOINTS) + goal) / 2, atol=0.04)
    # ... and it ends on the goal.
    np.testing.assert_allclose(positions[-1], goal, atol=0.005)


def test_rejects_a_malformed_trajectory_and_keeps_running(node):
    probe, process = node
    publisher = probe.publisher(JointTrajectory, "gripper_controller/joint_trajectory", RELIABLE)
    probe.wait_for_subscribers(publisher)
    point = JointTrajectoryPoint(positions=[0.0, 0.0])
    publisher.publish(JointTrajectory(joint_names=["gripper_left_finger_joint", "elbow"], points=[point]))
    joints = probe.collect(JointState, "joint_states", 50)
    wait_for(lambda: len(joints) > 30, 30, "joint states after the bad trajectory")
    assert process.alive()
    assert "gripper trajectory rejected" in process.output()


def test_base_twist_moves_the_base_by_the_commanded_amount(node):
    probe, _ = node
    assert reset(probe, "drive_to_marker", 1).success
    odom = probe.collect(Odometry, "odom", 50)
    publisher = probe.publisher(Twist, "cmd_vel", RELIABLE)
    probe.wait_for_subscribers(publisher)
    command = Twist()
    command.linear.x, command.linear.y, command.angular.z = 0.3, 0.1, 0.4

    def streamed_for(seconds: float) -> bool:
        publisher.publish(command)
        return len(odom) > 2 and stamps(odom)[-1] - stamps(odom)[0] > seconds

    wait_for(lambda: streamed_for(2.0), 30, "2 s of sim time under a streamed twist")
    steady = [m for m in odom if stamp_to_seconds(m.header.stamp) > stamps(odom)[0] + 0.7]
    first, last = steady[0], steady[-1]
    elapsed = stamp_to_seconds(last.header.stamp) - stamp_to_seconds(first.header.stamp)

    def yaw(message: Odometry) -> float:
        q = message.pose.pose.orientation
        return 2 * math.atan2(q.z, q.w)

    assert yaw(last) - yaw(first) == pytest.approx(0.4 * elapsed, abs=0.02)
    # A constant body twist traces an arc: its chord is the body velocity rotated by the mid heading.
    speed = math.hypot(0.3, 0.1)
    chord = 2 * speed / 0.4 * math.sin(0.4 * elapsed / 2)
    dx = last.pose.pose.position.x - first.pose.pose.position.x
    dy = last.pose.pose.position.y - first.pose.pose.position.y
    assert math.hypot(dx, dy) == pytest.approx(chord, abs=0.02)
    heading = (yaw(first) + yaw(last)) / 2 + math.atan2(0.1, 0.3)
    assert math.atan2(dy, dx) == pytest.approx(heading, abs=0.03)
    twist = last.twist.twist
    np.testing.assert_allclose([twist.linear.x, twist.linear.y, twist.angular.z], [0.3, 0.1, 0.4], atol=0.01)

    # Without fresh commands the base stops (cmd_vel_timeout_s), like a base controller.
    count = len(odom)
    wait_for(lambda: len(odom) > count + 90, 30, "1.5 s of sim time after the last command")
    assert abs(odom[-1].twist.twist.linear.x) < 1e-3 and abs(odom[-1].twist.twist.angular.z) < 1e-3


def test_reset_is_deterministic_for_a_seed(node):
    probe, _ = node
    first = reset(probe, "table_pick", 5)
    assert first.success
    episode = json.loads(first.message)
    state = task_state(probe)
    assert state["instruction"] == episode["instruction"] and state["task"] == "table_pick"
    assert state["success"] is False
    publisher = probe.publisher(Twist, "cmd_vel", RELIABLE)
    probe.wait_for_subscribers(publisher)
    command = Twist()
    command.linear.x = 0.5
    publisher.publish(command)
    wait_for(lambda: task_state(probe)["base"][0] > state["base"][0] + 0.05, 30, "the base to move")

    again = reset(probe, "table_pick", 5)
    assert json.loads(again.message) == episode
    replayed = task_state(probe)
    assert replayed["base"] == state["base"]
    for colour, cube in state["cubes"].items():
        # Equal up to the cubes settling onto the table in the sim time between reset and query.
        np.testing.assert_allclose(replayed["cubes"][colour]["position"], cube["position"], atol=1e-4)
    assert replayed["markers"] == state["markers"]

    other = json.loads(reset(probe, "table_pick", 6).message)
    assert other["layout"] != episode["layout"]


def test_reset_to_an_unknown_task_fails_cleanly(node):
    probe, process = node
    response = reset(probe, "no_such_task", 0)
    assert not response.success and "pick_cube" in response.message
    assert process.alive()
