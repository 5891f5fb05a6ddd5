"""The `main` every node executable shares: init, build the node, spin, shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

SIGNAL_POLL_S = 0.1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Spins the node `factory()` builds until SIGINT/SIGTERM; a node that fails to build exits with status 1.

    rclpy's own signal handlers would shut the context down first; here a signal only ends the spin, so the
    node can still publish while it is destroyed (the executor's last zero twist, the recorder's last write).
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Both explicitly: a process started in the background by a non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        node = factory()
    except Exception as err:
        rclpy.logging.get_logger("rt_policy_node").fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # A bounded wait: Python runs signal handlers only between waits, and on sim time with /clock
        # stopped nothing else would wake an idle node.
        while rclpy.ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
