"""`sim.launch.xml` under upstream ROS 2 launch, run by ros2launch's launch_a_launch_file as `ros2 launch`
runs it: the stack comes up in lockstep (real_time_factor:=0, a float parameter), a constant policy ends
its episode with TERMINATE, and Ctrl-C leaves no process behind. Skipped where the launch wheels are absent."""

import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory
from harness import Probe, wait_for

from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.ros.qos import LATCHED, RELIABLE

SIM = Path(get_package_share_directory("rt_bringup")) / "launch" / "sim.launch.xml"
STEPS = 5


@pytest.fixture
def terminating_policy(tmp_path: Path) -> Path:
    """A constant policy that turns the base slowly and answers TERMINATE after STEPS steps."""
    path = tmp_path / "policy"
    path.mkdir()
    config = {"policy": "constant", "mode": RTAction.BASE, "base_rotation": 0.1, "steps": STEPS}
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_real_launch_runs_sim_until_the_policy_terminates_and_stops_cleanly(real_launch, terminating_policy, tmp_path):
    argv = [
        f"policy_path:={terminating_policy}",
        "instruction:=turn around",
        "real_time_factor:=0",
        "robot_state_publisher:=false",
    ]
    launch = subprocess.Popen(
        real_launch.command(SIM, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=real_launch.env(),
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launch.stdout), daemon=True)
    reader.start()
    probe = Probe("real_launch_probe")
    try:
        statuses = probe.collect(PolicyStatus, "rt/status", LATCHED)
        actions = probe.collect(RTAction, "rt/action", RELIABLE)
        wait_for(lambda: any(s.state == PolicyStatus.TERMINATED for s in statuses), 180, "the episode's TERMINATE")
        terminated = next(s for s in statuses if s.state == PolicyStatus.TERMINATED)
        assert terminated.instruction == "turn around" and terminated.step == STEPS
        assert all(a.mode in (RTAction.BASE, RTAction.TERMINATE) for a in actions)
    finally:
        probe.close()
        launch.send_signal(signal.SIGINT)
        try:
            code = launch.wait(timeout=60)
        finally:
            if launch.poll() is None:
                os.killpg(launch.pid, signal.SIGKILL)
            reader.join(timeout=5)
    output = "".join(lines)
    pids = {
        name: int(pid)
        for name, pid in re.findall(r"\[INFO\] \[(\w+)-\d+\]: process started with pid \[(\d+)\]", output)
    }
    assert set(pids) == {"rt_sim", "rt_policy", "rt_action_executor"}, output
    assert code == 0, output
    survivors = [name for name, pid in pids.items() if os.path.exists(f"/proc/{pid}") and not _is_zombie(pid)]
    assert not survivors, f"still running after Ctrl-C: {survivors}\n{output}"


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"
