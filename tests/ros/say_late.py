"""Publishes one latched instruction from a new process at once, prints "sent", then lingers until it is delivered.

A new participant is discovered after its first publish, so what others publish next reaches subscribers
first: the overtaking a recorder must handle. Usage: python say_late.py INSTRUCTION
"""

import sys
import time

import rclpy
from std_msgs.msg import String

from rt_policy_node.ros.qos import LATCHED


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("say_late")
    publisher = node.create_publisher(String, "rt/instruction", LATCHED)
    publisher.publish(String(data=sys.argv[1]))
    print("sent", flush=True)
    deadline = time.monotonic() + 5.0
    while rclpy.ok() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()


if __name__ == "__main__":
    main()
