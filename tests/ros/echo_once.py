"""Prints the first message on a topic as JSON, then exits: a separate-process subscriber for tests.

Usage: python echo_once.py TOPIC PKG/msg/Type
"""

import importlib
import json
import sys

import numpy as np
import rclpy


def message_class(type_name: str):
    """'pkg/msg/Type' -> the generated message class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def to_plain(msg):
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, np.ndarray):
        return msg.tolist()
    if isinstance(msg, (list, tuple)) or type(msg).__name__ == "array":
        return [to_plain(v) for v in msg]
    return msg


def main() -> None:
    topic, type_name = sys.argv[1], sys.argv[2]
    rclpy.init()
    node = rclpy.create_node("echo_once")
    received = []
    node.create_subscription(message_class(type_name), topic, received.append, 10)
    print("ready", flush=True)
    while rclpy.ok() and not received:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(to_plain(received[0])), flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
