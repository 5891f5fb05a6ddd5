"""The last command arrives (#21 finding 2): executors stopped by SIGINT/SIGTERM while actions flow leave the robot
with a zero twist and a held arm every time, and exit 0 without a traceback.

Several executors run at once, each in its own namespace, so 50 stops take a few rounds of process starts; they are
stopped one after another.
"""

from __future__ import annotations

import random
import signal
import time

import numpy as np
from geometry_msgs.msg import Twist
from harness import DESCRIPTION, NodeProcess
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.ros.conversions import action_to_msg, stamp_to_seconds
from rt_policy_node.ros.qos import RELIABLE

ROUNDS = 5
PER_ROUND = 10
TRAFFIC_HZ = 30.0
ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))
Q0 = [-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1]
KEEP = QoSProfile(depth=1000)


class Robot:
    """One executor in namespace `ns` and what it sent; the probe feeds it joint states and actions."""

    def __init__(self, probe, ns: str, log_dir) -> None:
        self.ns = ns
        self.process = NodeProcess(
            "rt_action_executor",
            "rt_action_executor",
            log_dir,
            ros_args=(
                "-r",
                f"__ns:=/{ns}",
                "-p",
                f"profile:={DESCRIPTION / 'profiles' / 'sim.yaml'}",
                "-p",
                "autostart:=true",
            ),
        )
        self.twists = probe.collect(Twist, f"/{ns}/cmd_vel", KEEP)
        self.arm = probe.collect(JointTrajectory, f"/{ns}/arm_controller/joint_trajectory", KEEP)
        self.actions = probe.publisher(RTAction, f"/{ns}/rt/action", RELIABLE)
        self.joint_states = probe.publisher(JointState, f"/{ns}/joint_states", 10)
        self.step = 0

    def feed(self) -> None:
        """One tick of traffic: joint states, and an action that alternates between driving and moving the arm."""
        self.joint_states.publish(JointState(name=list(ARM), position=Q0))
        self.step += 1
        if self.step % 2:
            action = Action(base_displacement=np.array([0.8, 0.3], np.float32), base_rotation=0.5, mode=Mode.BASE)
        else:
            action = Action(world_vector=np.array([0.3, -0.2, 0.1], np.float32), mode=Mode.ARM)
        self.actions.publish(action_to_msg(action))

    def moving(self) -> bool:
        return bool(self.arm) and any(abs(t.linear.x) > 0 for t in self.twists[-3:])


def settle(lists: list[list], quiet_s: float = 0.3, timeout: float = 10.0) -> None:
    """Waits until none of `lists` has grown for `quiet_s`: their senders are gone and what they sent is in."""
    deadline = time.monotonic() + timeout
    sizes = [len(messages) for messages in lists]
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        assert time.monotonic() < deadline, "messages kept arriving from stopped executors"
        time.sleep(0.05)
        now = [len(messages) for messages in lists]
        if now != sizes:
            sizes, quiet_since = now, time.monotonic()


def test_every_stop_under_traffic_delivers_a_zero_twist_and_exits_0(probe, tmp_path):
    rng = random.Random(0)
    stops = 0
    for round_index in range(ROUNDS):
        robots = [Robot(probe, f"stop{round_index}_{i}", tmp_path / f"{round_index}_{i}") for i in range(PER_ROUND)]
        try:
            deadline = time.monotonic() + 60.0
            while not all(r.moving() for r in robots):
                assert time.monotonic() < deadline, "the executors did not all start moving within 60 s"
                for r in robots:
                    r.feed()
                time.sleep(1 / TRAFFIC_HZ)
            # One at a time, at a random moment, while actions keep flowing to all: teardowns that overlap can
            # deadlock inside Fast DDS (node_main.TEARDOWN_LIMIT_S), which benchmarks/stop_delivery.py measures.
            order = list(enumerate(robots))
            rng.shuffle(order)
            for i, r in order:
                signalled = False
                deadline = time.monotonic() + 20.0
                while r.process.alive():
                    assert time.monotonic() < deadline, f"{r.ns} did not exit:\n{r.process.output()}"
                    for other in robots:
                        other.feed()
                    if not signalled and rng.random() < 0.5:
                        r.process.process.send_signal(signal.SIGINT if i % 2 else signal.SIGTERM)
                        signalled = True
                    time.sleep(rng.uniform(0, 2 / TRAFFIC_HZ))
            for r in robots:
                code = r.process.stop(timeout=20.0)
                output = r.process.output()
                assert code == 0 and "Traceback" not in output, f"{r.ns} exited {code}:\n{output}"
            # Everything an executor sent was acknowledged before it exited: once it is gone, its last command is here.
            settle([r.twists for r in robots] + [r.arm for r in robots])
            for r in robots:
                twist = r.twists[-1]
                where = f"{r.ns}, whose log says:\n{r.process.output()}"
                assert (twist.linear.x, twist.linear.y, twist.angular.z) == (0.0, 0.0, 0.0), f"{twist} from {where}"
                last = r.arm[-1].points[0]
                assert np.allclose(last.positions, Q0), f"the last arm command moves ({last}) from {where}"
                assert stamp_to_seconds(last.time_from_start) < 0.1, f"the last arm command is not a hold from {where}"
                stops += 1
        finally:
            for r in robots:
                r.process.stop()
    assert stops >= 50
