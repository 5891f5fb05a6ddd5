"""Closed-loop episodes in the simulator with real node processes: the plumbing rt-collect and rt-eval share.

The graph is the one rt_bringup's `sim.launch.xml` describes (`sim_graph`: lockstep, every node on sim time,
the recorder on, the controller rt_policy or, with `expert:=true`, rt_sim's scripted expert), started with
the commands `ros2 launch` would run (rt_launch.node_commands), each node a process with its output in
`<log_dir>/<node>.log` (rt_bringup.processes). `EpisodeRunner` is the driving node: it waits until the
graph is connected, then per episode sets the sim's `task` and `seed`, calls sim/reset, publishes the
instruction and counts RTActions until TERMINATE or the step budget. An episode that ends on the budget
leaves its controller running, so the next one starts under rt/estop (the policy and the executor hold)
and releases it once the new instruction is in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from rt_bringup.launch_substitutions import LaunchError
from rt_bringup.launch_xml import NodeSpec, load_launch
from rt_bringup.processes import Child, ProcessGroup
from rt_bringup.rt_launch import node_commands, resolve_launch_file
from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.data.bag_io import EPISODE_FILE, list_episodes, update_episode_extra
from rt_policy_node.policies.policy import Mode
from rt_policy_node.ros.qos import LATCHED, RELIABLE
from rt_sim.evaluation import EpisodeResult
from rt_sim.ros.expert_node import EXECUTED_ACTIONS

# Node names as sim.launch.xml gives them.
SIM_NODE = "rt_sim"
RECORDER_NODE = "rt_episode_recorder"
POLICY_NODE = "rt_policy"
EXPERT_NODE = "rt_expert"
# How long a TERMINATE on EXECUTED_ACTIONS waits for the labels' own TERMINATE, sent at the same time in DART.
EXECUTED_GRACE_S = 1.0
# Wall-clock allowance per control step before an episode is abandoned (sim time normally runs faster).
WALL_S_PER_STEP = 3.0
STARTUP_TIMEOUT_S = 90.0
SIDECAR_TIMEOUT_S = 20.0
# SIGINT to every node (the recorder closes its bag), then SIGTERM and SIGKILL to what is left.
EPISODE_STOP = ((signal.SIGINT, 10.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, None))
INSTRUCTION_ACK_TIMEOUT_S = 10.0
# The ready checks see the graph as the runner sees it; other pairs (the controller's rt/action writer and the
# recorder's reader) may not have matched yet. Fast DDS re-announces every participant every 3 s, so after one
# such period every pair has; before it, a loaded machine lost the first episode's first actions from its bag.
DISCOVERY_SETTLE_S = 3.5


def add_sim_arguments(parser: argparse.ArgumentParser, image_size: tuple[int, int] = (320, 256)) -> None:
    """The simulator and robot options rt-collect and rt-eval share."""
    parser.add_argument("--real-time-factor", type=float, default=0.0, help="0 = lockstep, as fast as possible")
    parser.add_argument("--image-width", type=int, default=image_size[0])
    parser.add_argument("--image-height", type=int, default=image_size[1])
    parser.add_argument(
        "--profile",
        default="",
        help="robot profile of the sim, the executor and the expert (default: sim.launch.xml's)",
    )
    parser.add_argument("--max-steps", type=int, default=0, help="step budget per episode (default: the task's)")


def sim_graph(
    args: argparse.Namespace, task: str, seed: int, bag_dir: Path, expert: bool, policy: Path | None = None
) -> dict[str, NodeSpec]:
    """The nodes of sim.launch.xml, by name, for `add_sim_arguments`' options: the sim (`task`, `seed`), the
    executor, the recorder writing into `bag_dir`, and rt_policy serving `policy` or, with `expert`, rt_expert."""
    arguments = {
        "task": task,
        "seed": str(seed),
        "real_time_factor": str(float(args.real_time_factor)),
        "image_width": str(args.image_width),
        "image_height": str(args.image_height),
        "expert": str(expert).lower(),
        "record": "true",
        "bag_dir": str(bag_dir.resolve()),
        # Nothing in an episode reads TF: the tools have never started it, installed or not.
        "robot_state_publisher": "false",
    }
    if policy is not None:
        arguments["policy_path"] = str(policy.resolve())
    if args.profile:
        arguments["profile"] = args.profile
    try:
        plan = load_launch(resolve_launch_file("sim"), arguments)
    except LaunchError as err:
        raise SystemExit(f"sim.launch.xml: {err}") from err
    for warning in plan.warnings:
        print(f"sim.launch.xml: WARNING: {warning}", file=sys.stderr)
    return {spec.label: spec for spec in plan.nodes}


def start_nodes(nodes: dict[str, NodeSpec], log_dir: Path, parameters_dir: Path) -> ProcessGroup:
    """Each node as a process with the command `ros2 launch` would run, its output in `<log_dir>/<name>.log`."""
    try:
        commands = node_commands(list(nodes.values()), parameters_dir)
    except LaunchError as err:
        raise SystemExit(f"{err}; build and source the workspace (make setup)") from err
    group = ProcessGroup(log_dir)
    for spec, command in zip(nodes.values(), commands, strict=True):
        group.start(spec.label, command, spec.env)
    return group


@contextlib.contextmanager
def episode_session(tool: str, nodes: dict[str, NodeSpec], log_dir: Path, controller: str) -> Iterator[EpisodeRunner]:
    """Starts `nodes` and a driving EpisodeRunner, waits until `controller` is connected, and yields the runner.

    On leaving, by the end of the work, an error or Ctrl-C, ROS is shut down and every process stopped; a stop
    (a failed episode, an interruption) is reported on stderr rather than raised, so the caller still writes
    what it measured so far.
    """
    with tempfile.TemporaryDirectory(prefix=f"{tool}-") as parameters_dir:
        group = start_nodes(nodes, log_dir, Path(parameters_dir))
        rclpy.init()
        runner = EpisodeRunner(tool.replace("-", "_"), list(group.children.values()))
        try:
            runner.wait_until_ready(controller)
            yield runner
        except (RuntimeError, KeyboardInterrupt, ExternalShutdownException) as err:
            print(f"{tool}: stopped: {str(err) or 'interrupted'}", file=sys.stderr)
        except Exception as err:
            if rclpy.ok():
                raise
            print(f"{tool}: interrupted ({err})", file=sys.stderr)
        finally:
            runner.destroy_node()
            rclpy.try_shutdown()
            group.stop(EPISODE_STOP)


def check_children(children: list[Child]) -> None:
    """Raises with the tail of its log if any child has exited."""
    for child in children:
        if not child.running():
            raise RuntimeError(f"{child.label} exited with status {child.process.returncode}:\n{child.log_tail()}")


def parameter(name: str, value: str | int | float) -> Parameter:
    """A string, integer or double parameter for a SetParameters request."""
    if isinstance(value, str):
        typed = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    elif isinstance(value, int):
        typed = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    else:
        typed = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
    return Parameter(name=name, value=typed)


class EpisodeRunner(Node):
    """Drives episodes: sim parameters and reset, the instruction, the controller's actions, the recorder."""

    def __init__(self, name: str, children: list[Child]) -> None:
        super().__init__(name)
        self.children = children
        self.recording = any(child.label == RECORDER_NODE for child in children)
        self.set_sim_parameters = self.create_client(SetParameters, f"/{SIM_NODE}/set_parameters")
        self.reset_sim = self.create_client(Trigger, "sim/reset")
        self.task_state = self.create_client(Trigger, "sim/task_state")
        self.stop_episode = self.create_client(Trigger, f"/{RECORDER_NODE}/stop_episode")
        self.instruction_pub = self.create_publisher(String, "rt/instruction", LATCHED)
        self.estop_pub = self.create_publisher(Bool, "rt/estop", RELIABLE)
        self.create_subscription(RTAction, "rt/action", self.on_action, RELIABLE)
        # Where the robot follows another stream than the labels (DART, DAgger): its TERMINATE ends the episode too.
        self.create_subscription(RTAction, EXECUTED_ACTIONS, self.on_executed, RELIABLE)
        self.executed_terminated = False
        self.create_subscription(PolicyStatus, "rt/status", self.on_status, LATCHED)
        self.modes: list[int] = []
        self.inference_ms: list[float] = []
        self.status: PolicyStatus | None = None
        self.controller_running = False

    def on_action(self, msg: RTAction) -> None:
        self.modes.append(msg.mode)
        self.inference_ms.append(float(msg.inference_ms))

    def on_executed(self, msg: RTAction) -> None:
        self.executed_terminated = self.executed_terminated or msg.mode == Mode.TERMINATE

    def on_status(self, msg: PolicyStatus) -> None:
        self.status = msg

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def call(self, client, request, timeout_s: float = 30.0):
        """A service call that fails fast when a child process dies or the service does not answer."""
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"service {client.srv_name} is not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            check_children(self.children)
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {client.srv_name} did not answer within {timeout_s} s")
            rclpy.spin_once(self, timeout_sec=0.05)
        return future.result()

    def wait_until_ready(self, controller: str) -> None:
        """Until every node is up and the topics between them are connected (`controller` names the actor)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        checks = {
            "the executor's joint_states subscription": lambda: self.count_subscribers("joint_states") >= 2,
            "the executor's arm trajectories": lambda: self.count_publishers("arm_controller/joint_trajectory") >= 1,
            f"{controller}'s rt/action": lambda: self.count_publishers("rt/action") >= 1,
            "the sim's services": lambda: self.reset_sim.service_is_ready() and self.task_state.service_is_ready(),
        }
        if self.recording:
            checks["the recorder's stop_episode service"] = lambda: self.stop_episode.service_is_ready()
            # An action sent before the recorder subscribes is lost to the first episode's bag.
            checks["the recorder's rt/action subscription"] = lambda: any(
                info.node_name == RECORDER_NODE for info in self.get_subscriptions_info_by_topic("/rt/action")
            )
        while True:
            check_children(self.children)
            waiting = [what for what, ready in checks.items() if not ready()]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {STARTUP_TIMEOUT_S} s: waiting for {', '.join(waiting)}")
            self.spin_for(0.2)
        # Discovery is not yet delivery: let every pair of nodes match, and the first joint_states and /clock through.
        self.spin_for(DISCOVERY_SETTLE_S)

    def run_episode(
        self,
        task: str,
        seed: int,
        max_steps: int,
        colour: str = "",
        instruction: str = "",
        sim_parameters: dict[str, str | int | float] | None = None,
    ) -> EpisodeResult:
        """One episode from reset to TERMINATE or `max_steps` actions (or their wall-clock allowance).

        `colour` asks for that target in the seed's layout ("" = the seed's own); `instruction` is said instead
        of the task's own wording of the episode (which the result keeps as `task_instruction`);
        `sim_parameters` are set on the sim with the episode's (e.g. its third-person view's rate).
        """
        values = {"task": task, "seed": seed, "colour": colour, **(sim_parameters or {})}
        request = SetParameters.Request(parameters=[parameter(name, value) for name, value in values.items()])
        results = self.call(self.set_sim_parameters, request).results
        if not all(r.successful for r in results):
            raise RuntimeError(f"cannot set the sim's {', '.join(values)}: {[r.reason for r in results]}")
        held = self.controller_running
        if held:
            self.estop_pub.publish(Bool(data=True))
            self.spin_for(0.2)
        reset = self.call(self.reset_sim, Trigger.Request())
        if not reset.success:
            raise RuntimeError(f"sim/reset failed: {reset.message}")
        episode = json.loads(reset.message)
        if instruction:
            episode.update(task_instruction=episode["instruction"], instruction=instruction)
        self.modes, self.inference_ms = [], []
        self.executed_terminated = False
        previous_episode = self.status.episode_id if self.status else 0
        self.instruction_pub.publish(String(data=episode["instruction"]))
        if held:
            self.wait_for_instruction(previous_episode)
            self.estop_pub.publish(Bool(data=False))
        deadline = time.monotonic() + WALL_S_PER_STEP * (max_steps + 5)
        while not (self.modes and self.modes[-1] == Mode.TERMINATE) and len(self.modes) < max_steps:
            if self.executed_terminated:
                self.spin_for(EXECUTED_GRACE_S)
                break
            check_children(self.children)
            if time.monotonic() > deadline:
                break
            rclpy.spin_once(self, timeout_sec=0.05)
        modes, inference_ms = self.modes[:max_steps], self.inference_ms[:max_steps]
        result = EpisodeResult(episode, modes, inference_ms, self.current_state(), self.executed_terminated)
        self.controller_running = not result.terminated
        if self.controller_running and self.recording:
            self.call(self.stop_episode, Trigger.Request())
        return result

    def wait_for_instruction(self, previous_episode: int) -> None:
        """Until rt_policy reports the new episode (a controller without rt/status gets a short grace)."""
        if self.count_publishers("rt/status") == 0:
            self.spin_for(0.3)
            return
        deadline = time.monotonic() + INSTRUCTION_ACK_TIMEOUT_S
        while (self.status is None or self.status.episode_id == previous_episode) and time.monotonic() < deadline:
            check_children(self.children)
            rclpy.spin_once(self, timeout_sec=0.05)

    def current_state(self) -> dict[str, Any]:
        """sim/task_state: the privileged state, the episode and its success."""
        return json.loads(self.call(self.task_state, Trigger.Request()).message)


def closed_episodes(out: Path) -> set[Path]:
    return {p for p in list_episodes(out) if (p / EPISODE_FILE).is_file()}


def mark_episode(out: Path, known: set[Path], extra: dict, node: EpisodeRunner) -> Path | None:
    """Adds `extra` to the sidecar of the episode the recorder has just closed; None if none appeared."""
    deadline = time.monotonic() + SIDECAR_TIMEOUT_S
    while time.monotonic() < deadline:
        new = sorted(closed_episodes(out) - known)
        if new:
            update_episode_extra(new[-1], **extra)
            return new[-1]
        node.spin_for(0.1)
    return None
