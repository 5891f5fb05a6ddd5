"""The ROS side shared by the teleop nodes: rt/action at the policy rate from a `TeleopState`."""

from __future__ import annotations

import math
from dataclasses import fields

from rclpy.node import Node
from std_msgs.msg import String

from rt_msgs.msg import RTAction
from rt_policy_node.parameters import Parameter
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import LATCHED, RELIABLE
from rt_policy_node.teleop_state import TeleopScales, TeleopState


def teleop_parameters(scales: TeleopScales) -> tuple[Parameter, ...]:
    """The parameters every teleop node declares; `scales` are the defaults of its `scale.*` parameters."""
    return (
        Parameter(
            "rate_hz", 3.0, "Actions per second (the policy's control rate)", low=0.1, high=100.0, read_only=True
        ),
        Parameter(
            "scale.world_vector",
            scales.world_vector,
            "world_vector at full deflection",
            low=0.0,
            high=1.0,
            read_only=True,
        ),
        Parameter(
            "scale.rotation_delta",
            scales.rotation_delta,
            "rotation_delta (rad) at full deflection",
            low=0.0,
            high=math.pi / 2,
            read_only=True,
        ),
        Parameter(
            "scale.base_displacement",
            scales.base_displacement,
            "base_displacement at full deflection",
            low=0.0,
            high=1.0,
            read_only=True,
        ),
        Parameter(
            "scale.base_rotation",
            scales.base_rotation,
            "base_rotation (rad) at full deflection",
            low=0.0,
            high=math.pi,
            read_only=True,
        ),
        Parameter("frame_id", "base_link", "header.frame_id of published actions", read_only=True),
    )


class TeleopNode(Node):
    """Publishes the operator's action each tick; subclasses supply the input through `read_axes`."""

    def __init__(self, name: str, parameters: tuple[Parameter, ...]) -> None:
        """Declares `parameters` (`teleop_parameters` and the subclass's own); their values are in `self.values`."""
        super().__init__(name)
        self.values = p = declare_all(self, parameters)
        self.frame_id = p["frame_id"]
        self.state = TeleopState(TeleopScales(**{f.name: p[f"scale.{f.name}"] for f in fields(TeleopScales)}))
        self.instruction = ""
        self.action_pub = self.create_publisher(RTAction, "rt/action", RELIABLE)
        self.create_subscription(String, "rt/instruction", self.on_instruction, LATCHED)
        self.create_timer(1.0 / p["rate_hz"], self.on_tick)

    def on_instruction(self, msg: String) -> None:
        self.instruction = msg.data.strip()

    def read_axes(self) -> dict[str, float] | None:
        """Axis values in [-1, 1] by name (teleop_state.AXES), or None to publish nothing this tick."""
        raise NotImplementedError

    def on_tick(self) -> None:
        axes = self.read_axes()
        if axes is None:
            return
        action = self.state.action(axes)
        if action is not None:
            stamp = self.get_clock().now().to_msg()
            self.action_pub.publish(action_to_msg(action, stamp, self.instruction, self.frame_id))
