"""`rt-launch sim` end to end: the stack comes up, an instruction makes actions and robot commands
flow, and Ctrl-C leaves no process behind."""

import json
import os
import re
import signal
import subprocess
import threading

import pytest
from geometry_msgs.msg import Twist
from harness import Probe, wait_for
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.ros.qos import LATCHED, RELIABLE


@pytest.fixture
def arm_policy(tmp_path):
    """A constant policy that nudges the end effector forward and closes the gripper every step."""
    path = tmp_path / "policy"
    path.mkdir()
    config = {"policy": "constant", "mode": RTAction.ARM, "world_vector": [0.2, 0.0, 0.0], "gripper_closedness": 1.0}
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_rt_launch_sim_runs_the_stack_and_stops_cleanly(arm_policy, tmp_path):
    launch = subprocess.Popen(
        ["rt-launch", "sim", f"policy_path:={arm_policy}", "real_time_factor:=1.0", "robot_state_publisher:=false"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launch.stdout), daemon=True)
    reader.start()
    probe = Probe("rt_launch_probe")
    try:
        actions = probe.collect(RTAction, "rt/action", RELIABLE)
        arm = probe.collect(JointTrajectory, "arm_controller/joint_trajectory", RELIABLE)
        gripper = probe.collect(JointTrajectory, "gripper_controller/joint_trajectory", RELIABLE)
        twists = probe.collect(Twist, "cmd_vel", RELIABLE)
        statuses = probe.collect(PolicyStatus, "rt/status", LATCHED)
        instruction = probe.publisher(String, "rt/instruction", LATCHED)
        probe.wait_for_subscribers(instruction, timeout=60)
        instruction.publish(String(data="pick up the red cube"))

        wait_for(lambda: len(actions) >= 3, 60, "three RTActions")
        wait_for(lambda: arm and gripper, 30, "arm and gripper trajectories")
        wait_for(lambda: twists, 30, "cmd_vel")
        assert all(a.mode == RTAction.ARM and a.instruction == "pick up the red cube" for a in actions)
        assert {"running"} <= {s.state for s in statuses}
        assert all(t.linear.x == 0.0 and t.angular.z == 0.0 for t in twists), "the base holds still in ARM mode"
        assert arm[-1].joint_names[0] == "arm_joint_1"
    finally:
        probe.close()
        launch.send_signal(signal.SIGINT)
        code = launch.wait(timeout=60)
        reader.join(timeout=5)
    output = "".join(lines)
    pids = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", output)]
    assert len(pids) == 3, output  # rt_sim, rt_policy, rt_action_executor (robot_state_publisher left out)
    assert "[rt_policy]" in output and "all nodes stopped" in output
    assert code == 0, output
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"process {pid} survived Ctrl-C"


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"
