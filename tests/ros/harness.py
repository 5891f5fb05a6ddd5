"""Test-side ROS plumbing: a probe node spinning in a background thread, node processes, a driven /clock."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock

from rt_bringup import processes
from rt_bringup.launch_xml import NodeSpec
from rt_bringup.rt_launch import find_executable, node_command
from rt_policy_node.ros.conversions import seconds_to_stamp

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "src" / "rt_bringup" / "config"
DESCRIPTION = REPO / "src" / "rt_description"
URDF = DESCRIPTION / "urdf" / "rt_mobile_manipulator.urdf"


class Probe:
    """An rclpy node in its own context, spun by a background thread: publish, collect, wait."""

    def __init__(self, name: str = "probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                if self.context.ok():
                    raise

    def collect(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> list:
        """Every message arriving on `topic`, appended in order."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | int = 10):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 20.0) -> None:
        wait_for(
            lambda: publisher.get_subscription_count() >= count, timeout, f"a subscriber on {publisher.topic_name}"
        )

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Polls `predicate` until it returns something truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class NodeProcess:
    """One of the package's executables in its own process, with parameter files and overrides, started as
    rt-launch starts a node (rt_bringup.processes), its output in `<log_dir>/<node_name>.log`."""

    def __init__(
        self,
        executable: str,
        node_name: str,
        log_dir: Path,
        params: dict[str, Any] | None = None,
        config: str | None = None,
        ros_args: tuple[str, ...] = (),
    ) -> None:
        # The command a launch file's <node exec="executable" ros_args="..."> with <param from="config"/> and
        # <param name> elements for `params` gets: `ros_args` come first, so `params` win over them.
        self.node_name = node_name
        parameters: list[str | dict[str, object]] = [str(CONFIG / config)] if config else []
        parameters += [params] if params else []
        spec = NodeSpec(None, executable, parameters=parameters, ros_args=list(ros_args) or None)
        log_dir.mkdir(parents=True, exist_ok=True)
        command = node_command(spec, find_executable(spec), log_dir)
        self.child = processes.start(node_name, command, log=log_dir / f"{node_name}.log")
        self.process = self.child.process
        self.log_path = self.child.log

    def alive(self) -> bool:
        return self.child.running()

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Sends `sig` and waits; a process that does not exit in time is killed and the test fails."""
        if processes.stop([self.child], ((sig, timeout), (signal.SIGKILL, None))):
            raise AssertionError(f"{self.node_name} ignored signal {sig}:\n{self.output()}")
        return self.process.returncode


class SimClock:
    """Publishes /clock; `advance` moves simulated time forward in small steps at about real-time pace."""

    def __init__(self, probe: Probe, start: float = 1.0) -> None:
        self.now = start
        self.publisher = probe.publisher(Clock, "/clock", 10)
        self.publish()

    def publish(self) -> None:
        self.publisher.publish(Clock(clock=seconds_to_stamp(self.now)))

    def advance(self, seconds: float, step: float = 0.01, every_step: Callable[[float], None] | None = None) -> None:
        """Advances by `seconds` in `step`s, calling `every_step(now)` after each one."""
        for _ in range(round(seconds / step)):
            self.now += step
            self.publish()
            if every_step is not None:
                every_step(self.now)
            time.sleep(step)
