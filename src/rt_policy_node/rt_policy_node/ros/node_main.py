"""The `main` every node executable shares: init, build the node, spin, shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Spins the node `factory()` builds until shutdown; a node that fails to build exits with status 1."""
    rclpy.init(args=args)
    try:
        node = factory()
    except Exception as err:
        rclpy.logging.get_logger("rt_policy_node").fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
