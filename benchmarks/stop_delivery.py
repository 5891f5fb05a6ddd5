"""Stopping rt_action_executor while actions flow: does the last stop reach the robot, how fast, and how it exits.

Executors run as processes, `--batch` at a time, each in its own namespace; this process plays their robot
and policy (joint states at 30 Hz, actions alternating BASE and ARM at 30 Hz). Once every executor drives,
each is sent SIGINT or SIGTERM (alternately) at a random moment while the traffic goes on. Per stop: the
time from the signal to the zero twist (by the executor's stamp on it), the time to the process's exit, its
exit status and whether its output has a traceback, and once it is gone, whether the last cmd_vel received
is zero and the last arm command the hold at the current joint positions. Stops in a batch overlap, as when
a launch file is stopped: Fast DDS can then deadlock while a participant is torn down (after the stop is
delivered); node_main ends such a process after TEARDOWN_LIMIT_S, and the count of those is printed.

Run: scripts/with_env.sh python benchmarks/stop_delivery.py [--stops 100] [--batch 10]
Uses rt_bringup's Fast DDS profile (config/fastdds_large_data.xml) unless FASTDDS_DEFAULT_PROFILES_FILE is set.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ament_index_python.packages import get_package_share_directory

os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE", f"{get_package_share_directory('rt_bringup')}/config/fastdds_large_data.xml"
)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.qos import RELIABLE

TRAFFIC_HZ = 30.0
ARM = [f"arm_joint_{i}" for i in range(1, 8)]
Q = [-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1]
BASE = action_to_msg(Action(base_displacement=np.array([0.8, 0.3], np.float32), base_rotation=0.5, mode=Mode.BASE))
ARM_STEP = action_to_msg(Action(world_vector=np.array([0.3, -0.2, 0.1], np.float32), mode=Mode.ARM))


@dataclass
class Stopped:
    """One executor: its process, and what arrived from it (receive time, message)."""

    process: subprocess.Popen
    log: Path
    twists: list[TwistStamped] = field(default_factory=list)
    arm: list[JointTrajectory] = field(default_factory=list)
    signalled: float = 0.0
    exited: float = 0.0


def start(node, directory: Path, index: int) -> tuple[Stopped, object, object]:
    ns = f"stop_bench_{index}"
    log = directory / f"{ns}.log"
    profile = Path(get_package_share_directory("rt_description")) / "profiles" / "sim.yaml"
    process = subprocess.Popen(
        ["rt_action_executor", "--ros-args", "-r", f"__ns:=/{ns}", "-p", f"profile:={profile}",
         "-p", "autostart:=true", "-p", "joint_state_timeout_s:=5.0", "-p", "twist_stamped:=true"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stopped = Stopped(process, log)
    keep = QoSProfile(depth=1000)
    node.create_subscription(TwistStamped, f"/{ns}/cmd_vel", stopped.twists.append, keep)
    node.create_subscription(JointTrajectory, f"/{ns}/arm_controller/joint_trajectory", stopped.arm.append, keep)
    actions = node.create_publisher(RTAction, f"/{ns}/rt/action", RELIABLE)
    joints = node.create_publisher(JointState, f"/{ns}/joint_states", 10)
    return stopped, actions, joints


def run_batch(node, directory: Path, first: int, count: int, rng: random.Random) -> list[Stopped]:
    robots = [start(node, directory, first + i) for i in range(count)]
    step = 0

    def feed() -> None:
        nonlocal step
        step += 1
        for _, actions, joints in robots:
            joints.publish(JointState(name=ARM, position=Q))
            actions.publish(BASE if step % 2 else ARM_STEP)

    deadline = time.monotonic() + 120
    while not all(r.arm and any(m.twist.linear.x > 0 for m in r.twists[-3:]) for r, _, _ in robots):
        if time.monotonic() > deadline:
            raise RuntimeError("the executors did not all start driving within 120 s")
        feed()
        time.sleep(1 / TRAFFIC_HZ)
    pending = [r for r, _, _ in robots]
    rng.shuffle(pending)
    deadline = time.monotonic() + 60
    while pending or any(r.process.poll() is None for r, _, _ in robots):
        if time.monotonic() > deadline:  # past node_main.TEARDOWN_LIMIT_S: something hangs beyond it
            for r, _, _ in robots:
                if r.process.poll() is None:
                    r.process.kill()
            continue
        feed()
        if pending and rng.random() < 0.5:
            r = pending.pop()
            r.signalled = time.time()
            r.process.send_signal(signal.SIGINT if len(pending) % 2 else signal.SIGTERM)
        for r, _, _ in robots:
            if r.signalled and not r.exited and r.process.poll() is not None:
                r.exited = time.time()
        time.sleep(rng.uniform(0, 2 / TRAFFIC_HZ))
    settle([r for r, _, _ in robots])
    return [r for r, _, _ in robots]


def settle(robots: list[Stopped], quiet_s: float = 1.0) -> None:
    """Waits until nothing more arrives: what the executors sent was acknowledged by this process's DDS reader
    before they exited, but its callbacks may still be taking it in on a loaded machine."""
    sizes, quiet_since = None, time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        time.sleep(0.1)
        now = [(len(r.twists), len(r.arm)) for r in robots]
        if now != sizes:
            sizes, quiet_since = now, time.monotonic()


def moving(msg: TwistStamped) -> bool:
    return bool(msg.twist.linear.x or msg.twist.linear.y or msg.twist.angular.z)


def final_stop(robot: Stopped) -> float | None:
    """When (by its stamp: the executor's clock) the run of zero twists that ends what `robot` sent began."""
    last_moving = max((i for i, m in enumerate(robot.twists) if moving(m)), default=-1)
    if last_moving + 1 >= len(robot.twists):
        return None
    stamp = robot.twists[last_moving + 1].header.stamp
    seconds = stamp.sec + stamp.nanosec * 1e-9
    return seconds if seconds >= robot.signalled else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10, help="executors running at once")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("stop_delivery_benchmark")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    rng = random.Random(options.seed)
    results: list[Stopped] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            while len(results) < options.stops:
                count = min(options.batch, options.stops - len(results))
                results += run_batch(node, Path(tmp), len(results), count, rng)
            outputs = [r.log.read_text() for r in results]
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    latency = [1e3 * (final_stop(r) - r.signalled) for r in results if final_stop(r) is not None]
    exits = [1e3 * (r.exited - r.signalled) for r in results]
    zero = sum(not moving(r.twists[-1]) for r in results)
    hold = sum(bool(r.arm) and np.allclose(r.arm[-1].points[0].positions, Q) for r in results)
    unacknowledged = sum("was not acknowledged" in output for output in outputs)
    bounded = sum("Timeout (0:00:" in output for output in outputs)
    print(f"rt_action_executor stopped under traffic: {len(results)} stops, {options.batch} executors at a time")
    print(f"  exit status 0:                      {sum(r.process.returncode == 0 for r in results)}/{len(results)}")
    print(f"  traceback in the output:            {sum('Traceback' in output for output in outputs)}")
    print(f"  teardown hung, ended by its bound:  {bounded} (exit status 1, Fast DDS participant teardown)")
    print(f"  last cmd_vel received zero:         {zero}/{len(results)}")
    print(f"  last arm command the hold:          {hold}/{len(results)}")
    print(f"  stop not acknowledged within 2 s:   {unacknowledged}")
    print(f"  signal -> zero twist sent (ms):     median {np.median(latency):.1f}, p95 "
          f"{np.percentile(latency, 95):.1f}, max {max(latency):.1f} ({len(latency)} seen)")  # fmt: skip
    print(f"  signal -> process exited (ms):      median {np.median(exits):.0f}, p95 {np.percentile(exits, 95):.0f}, "
          f"max {max(exits):.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
