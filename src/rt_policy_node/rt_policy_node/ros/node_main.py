"""The `main` every node executable shares: init, build the node, spin, shut down cleanly on SIGINT/SIGTERM.

A signal never raises into running code: once the node is built, the handler only records the request, and
a small thread woken by the signal (through `signal.set_wakeup_fd`) triggers a guard condition so the spin
returns at once. The node is then destroyed from the main loop, with its context still up, so it can
publish its last messages (the executor's zero twist and arm hold) and wait for them to be delivered.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

SIGNAL_POLL_S = 0.5  # a bounded wait even so, so a missed wake-up costs at most this
# How long destroying the node and the DDS participant may take before the process is ended regardless (exit status
# 1, with faulthandler's dump of where it hung on stderr). Fast DDS can deadlock in its participant's teardown when
# other participants leave at the same moment (many nodes stopped at once); by then the node's last messages are out.
TEARDOWN_LIMIT_S = 10.0


class StopRequest:
    """What SIGINT and SIGTERM do: while the node is being built they interrupt (a model that takes long to load
    can be given up on); afterwards they only ask the spin to end, and wake it."""

    def __init__(self) -> None:
        self.requested = False
        self.starting = True
        self._read_fd, self._write_fd = os.pipe()
        self._wake: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        # Both explicitly: a process started in the background by a non-interactive shell inherits SIGINT ignored.
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)

    def on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.starting:
            raise KeyboardInterrupt

    def wake_with(self, wake: Callable[[], None]) -> None:
        """From now on a signal calls `wake` (from a helper thread) as soon as it arrives."""
        self._wake = wake
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._relay, name="signal_wakeup", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while os.read(self._read_fd, 64):
            wake = self._wake
            if wake is None:
                return
            wake()

    def ignore(self) -> None:
        """From now on signals are ignored: the node is gone, and Python's finalization would otherwise restore the
        default handlers, so that a second Ctrl-C or a launcher's SIGTERM during teardown killed the process."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def close(self) -> None:
        """Stops waking; a signal from now on is only recorded."""
        signal.set_wakeup_fd(-1)
        self._wake = None
        os.close(self._write_fd)  # ends the relay's read
        if self._thread is not None:
            self._thread.join()
        os.close(self._read_fd)


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Spins the node `factory()` builds until SIGINT/SIGTERM (exit status 0); a node that fails to build exits
    with status 1 after one line naming the problem.

    rclpy's own signal handlers would shut the context down first; here a signal only ends the spin, so the
    node can still publish while it is destroyed (the executor's last zero twist, the recorder's last write).
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopRequest()
    stop.install()
    try:
        node = factory()
    except (KeyboardInterrupt, Exception) as err:
        stop.starting = False
        if not stop.requested:
            rclpy.logging.get_logger("rt_policy_node").fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        stop.close()
        stop.ignore()
        return 0 if stop.requested else 1
    stop.starting = False
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    wake = node.create_guard_condition(lambda: None)
    stop.wake_with(wake.trigger)
    try:
        while rclpy.ok() and not stop.requested:
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    except ExternalShutdownException:
        pass
    finally:
        stop.close()
        # A C thread, so it ends a teardown stuck in native code that holds the GIL.
        faulthandler.dump_traceback_later(TEARDOWN_LIMIT_S, exit=True)
        node.destroy_guard_condition(wake)
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
        stop.ignore()
    return 0
