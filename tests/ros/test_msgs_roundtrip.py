"""rt_msgs over real DDS: an RTAction published here arrives whole in another process."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy

from rt_msgs.msg import PolicyStatus, RTAction

ECHO = Path(__file__).with_name("echo_once.py")


def make_action() -> RTAction:
    msg = RTAction()
    msg.header.stamp.sec = 12
    msg.header.stamp.nanosec = 345_000_000
    msg.header.frame_id = "base_link"
    msg.world_vector = [0.25, -0.5, 1.0]
    msg.rotation_delta = [0.125, -1.5, 0.75]
    msg.gripper_closedness = -1.0
    msg.base_displacement = [0.5, -0.25]
    msg.base_rotation = 3.0
    msg.mode = RTAction.BASE
    msg.tokens = [0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8]
    msg.instruction = "pick up the red cube — 赤いキューブ"
    msg.inference_ms = 42.5
    return msg


def test_mode_constants_match_design():
    assert (RTAction.TERMINATE, RTAction.ARM, RTAction.BASE) == (0, 1, 2)
    states = {"idle", "running", "terminated", "stopped_stale_input", "estopped", "error"}
    assert {
        PolicyStatus.IDLE,
        PolicyStatus.RUNNING,
        PolicyStatus.TERMINATED,
        PolicyStatus.STOPPED_STALE_INPUT,
        PolicyStatus.ESTOPPED,
        PolicyStatus.ERROR,
    } == states


@pytest.fixture
def node():
    rclpy.init()
    node = rclpy.create_node("roundtrip_publisher")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def test_rtaction_roundtrip_between_processes(node):
    echo = subprocess.Popen(
        [sys.executable, str(ECHO), "rt/action", "rt_msgs/msg/RTAction"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout.readline().strip() == "ready"
        publisher = node.create_publisher(RTAction, "rt/action", 10)
        sent = make_action()
        deadline = time.monotonic() + 30
        while echo.poll() is None and time.monotonic() < deadline:
            publisher.publish(sent)
            time.sleep(0.1)
        out, _ = echo.communicate(timeout=10)
    finally:
        echo.kill()
    got = json.loads(out)
    assert got["header"] == {"stamp": {"sec": 12, "nanosec": 345_000_000}, "frame_id": "base_link"}
    for field in ("world_vector", "rotation_delta", "base_displacement"):
        np.testing.assert_array_equal(got[field], getattr(sent, field))
    assert got["gripper_closedness"] == sent.gripper_closedness
    assert got["base_rotation"] == sent.base_rotation
    assert got["mode"] == RTAction.BASE
    assert list(got["tokens"]) == list(sent.tokens)
    assert got["instruction"] == sent.instruction
    assert got["inference_ms"] == sent.inference_ms
