"""The ROS side shared by the teleop nodes: rt/action at the policy rate from a `TeleopState`."""

from __future__ import annotations

import math

from rclpy.node import Node
from std_msgs.msg import String

from rt_msgs.msg import RTAction
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.params import declare
from rt_policy_node.ros.qos import LATCHED, RELIABLE
from rt_policy_node.teleop_state import TeleopScales, TeleopState


class TeleopNode(Node):
    """Publishes the operator's action each tick; subclasses supply the input through `read_axes`."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        rate = declare(
            self, "rate_hz", 3.0, "Actions per second (the policy's control rate)", low=0.1, high=100.0, read_only=True
        )
        scales = TeleopScales(
            world_vector=declare(
                self, "scale.world_vector", 1.0, "world_vector at full deflection", low=0.0, high=1.0, read_only=True
            ),
            rotation_delta=declare(
                self,
                "scale.rotation_delta",
                0.25,
                "rotation_delta (rad) at full deflection",
                low=0.0,
                high=math.pi / 2,
                read_only=True,
            ),
            base_displacement=declare(
                self,
                "scale.base_displacement",
                1.0,
                "base_displacement at full deflection",
                low=0.0,
                high=1.0,
                read_only=True,
            ),
            base_rotation=declare(
                self,
                "scale.base_rotation",
                0.4,
                "base_rotation (rad) at full deflection",
                low=0.0,
                high=math.pi,
                read_only=True,
            ),
        )
        self.frame_id = declare(self, "frame_id", "base_link", "header.frame_id of published actions", read_only=True)
        self.state = TeleopState(scales)
        self.instruction = ""
        self.action_pub = self.create_publisher(RTAction, "rt/action", RELIABLE)
        self.create_subscription(String, "rt/instruction", self.on_instruction, LATCHED)
        self.create_timer(1.0 / rate, self.on_tick)

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
