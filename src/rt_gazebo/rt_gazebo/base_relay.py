"""rt_gz_base_relay: drives Gazebo's planar base joints from cmd_vel and reports them as odometry.

In Gazebo the base moves on three joints (x, y in odom, yaw), driven by a ros2_control
JointGroupVelocityController that takes [vx, vy, wz] in the odom frame. This node turns the base-frame
cmd_vel every robot driver accepts into that command, rotated by the current base yaw and re-sent at a
fixed rate (the yaw changes while the base turns), stops the base when cmd_vel goes quiet, and publishes
the joints' pose and velocity as nav_msgs/Odometry on `odom`, as the MuJoCo simulation does.
"""

from __future__ import annotations

import math

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from rt_policy_node.parameters import Parameter
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import RELIABLE

JOINT_STATES_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
WARN_THROTTLE_S = 5.0

PARAMETERS = (
    Parameter(
        "base_joints",
        ["base_x_joint", "base_y_joint", "base_yaw_joint"],
        "The planar base joints: x and y (prismatic, in odom) and yaw (continuous)",
        read_only=True,
    ),
    Parameter("odom_frame", "odom", "header.frame_id of odom", read_only=True),
    Parameter("base_frame", "base_link", "child_frame_id of odom", read_only=True),
    Parameter("rate_hz", 50.0, "Base commands per second", low=1.0, high=1000.0, read_only=True),
    Parameter("cmd_vel_timeout_s", 0.5, "No cmd_vel for this long stops the base", low=0.01, high=10.0),
)


def rotate(x: float, y: float, yaw: float) -> tuple[float, float]:
    """The planar vector (x, y) rotated by `yaw` radians."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * x - s * y, s * x + c * y


class BaseRelay(Node):
    """cmd_vel (base frame) -> base_controller/commands (odom frame); base joint states -> odom."""

    def __init__(self) -> None:
        super().__init__("rt_gz_base_relay")
        p = declare_all(self, PARAMETERS)
        self.joints = p["base_joints"]
        if len(self.joints) != 3:
            raise ValueError(f"parameter 'base_joints' needs 3 names (x, y, yaw), got {self.joints}")
        self.odom_frame, self.base_frame = p["odom_frame"], p["base_frame"]
        self.timeout_ns = int(p["cmd_vel_timeout_s"] * 1e9)
        self._twist: Twist | None = None
        self._twist_ns = 0
        self._yaw: float | None = None
        self.command_pub = self.create_publisher(Float64MultiArray, "base_controller/commands", RELIABLE)
        self.odom_pub = self.create_publisher(Odometry, "odom", 10)
        self.create_subscription(Twist, "cmd_vel", self.on_cmd_vel, RELIABLE)
        self.create_subscription(JointState, "joint_states", self.on_joint_states, JOINT_STATES_QOS)
        self.create_timer(1.0 / p["rate_hz"], self.on_tick)

    def on_cmd_vel(self, msg: Twist) -> None:
        if not all(math.isfinite(v) for v in (msg.linear.x, msg.linear.y, msg.angular.z)):
            self.get_logger().warn(
                "non-finite cmd_vel dropped; stopping the base", throttle_duration_sec=WARN_THROTTLE_S
            )
            self._twist = None
            return
        self._twist, self._twist_ns = msg, self.get_clock().now().nanoseconds

    def on_joint_states(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if not all(name in index for name in self.joints) or len(msg.position) != len(msg.name):
            return
        x, y, yaw = (msg.position[index[name]] for name in self.joints)
        self._yaw = yaw
        odom = Odometry(child_frame_id=self.base_frame)
        odom.header.stamp, odom.header.frame_id = msg.header.stamp, self.odom_frame
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        if len(msg.velocity) == len(msg.name):
            vx, vy, wz = (msg.velocity[index[name]] for name in self.joints)
            twist = odom.twist.twist
            twist.linear.x, twist.linear.y = rotate(vx, vy, -yaw)
            twist.angular.z = wz
        self.odom_pub.publish(odom)

    def on_tick(self) -> None:
        """The latest cmd_vel in the odom frame; zero until the yaw is known or when cmd_vel is stale."""
        fresh = self._twist is not None and self.get_clock().now().nanoseconds - self._twist_ns <= self.timeout_ns
        command = [0.0, 0.0, 0.0]
        if fresh and self._yaw is not None:
            vx, vy = rotate(self._twist.linear.x, self._twist.linear.y, self._yaw)
            command = [vx, vy, self._twist.angular.z]
        self.command_pub.publish(Float64MultiArray(data=command))


def main(args: list[str] | None = None) -> int:
    return run_node(BaseRelay, args)
