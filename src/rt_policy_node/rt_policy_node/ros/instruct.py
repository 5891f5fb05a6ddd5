"""`rt-instruct "pick up the red cube"`: publishes one instruction on rt/instruction.

The equivalent of `ros2 topic pub --once rt/instruction std_msgs/msg/String "{data: ...}"`, with the
topic's QoS (reliable, transient local, depth 1), waiting until a subscriber has matched so the
message is not lost on a fresh graph.
"""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from std_msgs.msg import String

from rt_policy_node.ros.qos import LATCHED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-instruct", description=__doc__.splitlines()[0])
    parser.add_argument("instruction", help="what the robot should do, e.g. 'pick up the red cube'")
    parser.add_argument("--topic", default="rt/instruction")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a subscriber")
    options, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=["rt_instruct", *ros_args])
    node = rclpy.create_node("rt_instruct")
    publisher = node.create_publisher(String, options.topic, LATCHED)
    deadline = time.monotonic() + options.wait
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    matched = publisher.get_subscription_count()
    publisher.publish(String(data=options.instruction))
    # Transient local keeps the sample for late joiners only while this publisher lives; give matched
    # readers a moment to receive it reliably before the process exits.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    if matched == 0:
        print(f"rt-instruct: published, but nothing subscribes to {options.topic}", file=sys.stderr)
        return 1
    print(f"rt-instruct: {options.instruction!r} -> {options.topic} ({matched} subscriber(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
