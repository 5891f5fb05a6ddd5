"""rt_expert: the scripted expert as a ROS node, publishing rt_msgs/RTAction like a policy does.

An instruction on rt/instruction starts an episode; every control period (the robot profile's, 3 Hz for
the sim) the node reads the privileged state from sim/task_state, runs the current task's plan
(rt_sim.tasks) and publishes one RTAction through the same rt_action_executor a learned policy drives,
until the plan terminates. The action scales come from that executor's robot profile.

With `action_noise` > 0 (DART-style demonstrations) the node also publishes a perturbed copy of each action
on rt/action_executed, for an executor remapped to follow it, while rt/action (what the recorder stores as
the label) keeps the expert's own action.
"""

from __future__ import annotations

import json

import numpy as np
from ament_index_python.packages import get_package_share_directory
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rt_msgs.msg import RTAction
from rt_policy_node.parameters import Parameter
from rt_policy_node.policies.policy import Mode
from rt_policy_node.robot.profile import load_profile
from rt_policy_node.ros.conversions import action_to_msg, seconds_to_stamp
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import LATCHED, RELIABLE
from rt_sim.expert import Expert, Scales, perturb
from rt_sim.tasks import make_task

WARN_THROTTLE_S = 5.0
# What the robot executes when it does not follow the labels on rt/action: DART's noisy copy, DAgger's policy.
EXECUTED_ACTIONS = "rt/action_executed"

PARAMETERS = (
    Parameter(
        "profile",
        "package://rt_description/profiles/sim.yaml",
        "The executor's robot profile YAML (path or package:// URI): action scales and control period",
        read_only=True,
    ),
    Parameter(
        "action_noise",
        0.0,
        "Std of the noise on the executed copy (rt/action_executed) of each action; 0: none, no copy",
        low=0.0,
        high=1.0,
        read_only=True,
    ),
    Parameter("noise_seed", 0, "Seed of the action noise", low=0, high=2**31 - 1, read_only=True),
    Parameter(
        "label_after",
        "",
        "DAgger: label nothing in an episode until an action appears on this topic (what the robot follows),"
        " so a policy's slow first inference leaves no idle steps; '' = act from the instruction on",
        read_only=True,
    ),
)


class ExpertNode(Node):
    """Instruction in, one scripted RTAction per control period out, until the plan terminates."""

    def __init__(self) -> None:
        super().__init__("rt_expert")
        p = declare_all(self, PARAMETERS)
        profile = load_profile(p["profile"], get_package_share_directory)
        self.scales = Scales.from_profile(profile)
        self.base_frame = profile.base_frame
        self.expert: Expert | None = None
        self.instruction = ""
        self.pending = False  # an instruction arrived; the next tick starts its episode
        self.busy = False
        self.client = self.create_client(Trigger, "sim/task_state")
        self.action_pub = self.create_publisher(RTAction, "rt/action", RELIABLE)
        self.noise = p["action_noise"]
        self.rng = np.random.default_rng(p["noise_seed"])
        self.executed_pub = self.create_publisher(RTAction, EXECUTED_ACTIONS, RELIABLE) if self.noise else None
        follow = p["label_after"]
        self.following = bool(follow)
        self.waiting = False  # for the followed controller's first action of the episode
        if follow:
            self.create_subscription(RTAction, follow, self.on_followed, RELIABLE)
        self.create_subscription(String, "rt/instruction", self.on_instruction, LATCHED)
        self.create_timer(profile.control_period_s, self.on_tick)

    def on_instruction(self, msg: String) -> None:
        self.instruction = msg.data.strip()
        self.pending = bool(self.instruction)
        self.waiting = self.following
        self.expert = None

    def on_followed(self, msg: RTAction) -> None:
        self.waiting = False

    def on_tick(self) -> None:
        if self.busy or self.waiting or not (self.pending or self.expert):
            return
        if not self.client.service_is_ready():
            self.get_logger().warning("waiting for sim/task_state", throttle_duration_sec=WARN_THROTTLE_S)
            return
        self.busy = True
        self.client.call_async(Trigger.Request()).add_done_callback(self.on_state)

    def on_state(self, future) -> None:
        """Acts on the sim's privileged state: the next expert action for this control step."""
        self.busy = False
        state = json.loads(future.result().message)
        if self.pending:
            self.pending = False
            if state["instruction"] != self.instruction:
                self.get_logger().warning(
                    f"instruction {self.instruction!r} is not the sim task's {state['instruction']!r}; "
                    "the expert follows the sim task"
                )
            task = make_task(state["task"])
            self.expert = Expert(task.plan(state["params"]), self.scales)
        if self.expert is None:
            return
        action = self.expert.act(state)
        stamp = seconds_to_stamp(state["camera_stamp"])
        if self.executed_pub is not None:
            executed = perturb(action, self.noise, self.scales, self.rng)
            self.executed_pub.publish(action_to_msg(executed, stamp, self.instruction, self.base_frame))
        self.action_pub.publish(action_to_msg(action, stamp, self.instruction, self.base_frame))
        if action.mode == Mode.TERMINATE:
            self.get_logger().info(f"episode done: {self.instruction!r}")
            self.expert = None


def main(args: list[str] | None = None) -> int:
    return run_node(ExpertNode, args)
