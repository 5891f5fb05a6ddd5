"""`rt-status`: prints the policy's rt_msgs/PolicyStatus whenever its state or message changes."""

from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from rt_msgs.msg import PolicyStatus
from rt_policy_node.ros.qos import LATCHED


def format_status(msg: PolicyStatus) -> str:
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    line = (
        f"[{stamp:.2f}] {msg.state:<20} episode {msg.episode_id} step {msg.step} "
        f"{msg.control_rate_hz:.1f} Hz, inference {msg.last_inference_ms:.0f} ms"
    )
    if msg.instruction:
        line += f", {msg.instruction!r}"
    return line + (f": {msg.message}" if msg.message else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-status", description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="rt/status")
    parser.add_argument("--all", action="store_true", help="print every status message, not only changes")
    parser.add_argument("--count", type=int, default=0, help="exit after printing this many lines (0: run forever)")
    options, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=["rt_status", *ros_args])
    node = rclpy.create_node("rt_status")
    last = [None]
    printed = [0]

    def on_status(msg: PolicyStatus) -> None:
        key = (msg.state, msg.message, msg.episode_id)
        if options.all or key != last[0]:
            print(format_status(msg), flush=True)
            printed[0] += 1
        last[0] = key

    node.create_subscription(PolicyStatus, options.topic, on_status, LATCHED)
    try:
        while rclpy.ok() and not (options.count and printed[0] >= options.count):
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
