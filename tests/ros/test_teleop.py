"""Teleop: the shared state machine, the joystick node over DDS, and the keyboard node through a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time

import numpy as np
import pytest
from harness import CONFIG, wait_for
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Joy
from std_msgs.msg import String

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Mode
from rt_policy_node.ros.qos import LATCHED
from rt_policy_node.teleop_state import TeleopScales, TeleopState

KEEP = QoSProfile(depth=1000)


def test_state_machine_modes_gripper_and_terminate():
    state = TeleopState(TeleopScales(world_vector=0.5, rotation_delta=0.2, base_displacement=1.0, base_rotation=0.4))
    arm = state.action({"x": 1.0, "y": -0.5, "z": 2.0, "yaw": -1.0})
    assert arm.mode == Mode.ARM and arm.gripper_closedness == -1.0
    np.testing.assert_allclose(arm.world_vector, [0.5, -0.25, 0.5])
    np.testing.assert_allclose(arm.rotation_delta, [0.0, 0.0, -0.2])
    state.press("base_mode")
    state.press("gripper_close")
    base = state.action({"x": 0.5, "y": 1.0, "z": 1.0, "yaw": 1.0})
    assert base.mode == Mode.BASE and base.gripper_closedness == 1.0
    np.testing.assert_allclose(base.base_displacement, [0.5, 1.0])
    assert base.base_rotation == pytest.approx(0.4) and not base.world_vector.any()
    state.press("terminate")
    assert state.action({"x": 1.0}).mode == Mode.TERMINATE
    assert state.action({"x": 1.0}) is None, "nothing after terminate until a mode is chosen"
    state.press("terminate")
    assert state.action({}) is None
    state.press("arm_mode")
    assert state.action({}).mode == Mode.ARM
    with pytest.raises(ValueError, match="unknown teleop event"):
        state.press("jump")


def joy(axes: dict[int, float] | None = None, buttons: tuple[int, ...] = ()) -> Joy:
    msg = Joy(axes=[0.0] * 8, buttons=[0] * 11)
    for index, value in (axes or {}).items():
        msg.axes[index] = value
    for index in buttons:
        msg.buttons[index] = 1
    return msg


def test_joystick_teleop_publishes_actions_only_with_the_dead_man_button(probe, launch):
    node = launch("rt_teleop_joy", "rt_teleop_joy", config="teleop.yaml", params={"rate_hz": 10.0})
    actions = probe.collect(RTAction, "rt/action", KEEP)
    joy_pub = probe.publisher(Joy, "joy", 10)
    probe.publisher(String, "rt/instruction", LATCHED).publish(String(data="wave"))
    probe.wait_for_subscribers(joy_pub)

    def hold(msg: Joy, seconds: float = 0.5) -> None:
        for _ in range(round(seconds / 0.05)):
            joy_pub.publish(msg)
            time.sleep(0.05)

    hold(joy({1: 1.0}))
    assert not actions, "no dead-man button, no actions"
    hold(joy({1: 1.0, 0: -0.05, 3: 0.5}, buttons=(4,)))
    arm = wait_for(lambda: actions and actions[-1], what="an arm action")
    assert arm.mode == RTAction.ARM and arm.instruction == "wave" and arm.header.frame_id == "base_link"
    np.testing.assert_allclose(arm.world_vector, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(arm.rotation_delta, [0.0, 0.0, 0.125])
    hold(joy(buttons=(4, 1)), 0.2)
    hold(joy({1: -0.5}, buttons=(4, 3)))
    base = actions[-1]
    assert base.mode == RTAction.BASE and base.gripper_closedness == 1.0
    np.testing.assert_allclose(base.base_displacement, [-0.5, 0.0])
    hold(joy(buttons=(4, 7)), 0.3)
    count = len(actions)
    assert actions[-1].mode == RTAction.TERMINATE
    hold(joy({1: 1.0}, buttons=(4,)))
    assert len(actions) == count, "nothing after terminate until a mode button"
    assert node.alive()


def test_keyboard_teleop_reads_keys_from_a_terminal(probe, tmp_path):
    actions = probe.collect(RTAction, "rt/action", KEEP)
    leader, follower = pty.openpty()
    log = (tmp_path / "keyboard.log").open("w")
    process = subprocess.Popen(
        ["rt_teleop_keyboard", "--ros-args", "--params-file", str(CONFIG / "teleop.yaml"), "-p", "rate_hz:=10.0"],
        stdin=follower,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: actions, what="zero actions while no key is held")
        assert actions[-1].mode == RTAction.ARM and not np.any(actions[-1].world_vector)
        os.write(leader, b"w")
        wait_for(lambda: actions[-1].world_vector[0] > 0, what="x from the w key")
        np.testing.assert_allclose(actions[-1].world_vector, [0.5, 0.0, 0.0])
        os.write(leader, b"2c")
        os.write(leader, b"d")
        wait_for(lambda: actions[-1].mode == RTAction.BASE and actions[-1].base_displacement[1] < 0, what="base y")
        assert actions[-1].gripper_closedness == 1.0
        os.write(leader, b"t")
        wait_for(lambda: actions[-1].mode == RTAction.TERMINATE, what="terminate")
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        os.close(leader)
        os.close(follower)
        log.close()
    assert process.returncode == 0, (tmp_path / "keyboard.log").read_text()


def test_keyboard_teleop_needs_a_terminal(tmp_path):
    result = subprocess.run(
        ["rt_teleop_keyboard"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "stdin is not one" in result.stdout + result.stderr
