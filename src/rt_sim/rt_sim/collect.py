"""rt-collect: scripted-expert demonstrations in the simulator, one rosbag2 (MCAP) episode per run.

    rt-collect --task pick_cube --episodes 50 --out data/pick_cube [--seed 0]

Starts the sim (rt_sim), the executor (rt_action_executor), the expert (rt_expert) and the episode
recorder (rt_episode_recorder) as separate processes on sim time, then for each episode: sets the sim's
`task` and `seed` parameters, calls sim/reset, publishes the instruction on rt/instruction and waits for
the expert to terminate (or for the task's step budget to run out, which stops the recording). The
recorder leaves `<out>/episode_<stamp>_<NNNN>/` with the .mcap and episode.json; rt-collect adds to that
sidecar's `extra`: expert_success, task, seed, steps. Failed episodes are kept and marked. Process logs go
to `<out>/logs/`; a summary with the success rate and episodes per minute is printed and written to
`<out>/collection.json`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tqdm import tqdm

from rt_msgs.msg import RTAction
from rt_policy_node.data.bag_io import EPISODE_FILE, list_episodes, update_episode_extra
from rt_policy_node.policies.policy import Mode
from rt_policy_node.ros.qos import LATCHED, RELIABLE
from rt_sim.tasks import make_task, task_names

SIM_NODE = "rt_sim"
RECORDER_NODE = "rt_episode_recorder"
# Wall-clock allowance per control step before an episode is abandoned (sim time normally runs faster).
WALL_S_PER_STEP = 3.0
STARTUP_TIMEOUT_S = 60.0
SIDECAR_TIMEOUT_S = 20.0
SHUTDOWN_GRACE_S = 10.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


def executable(package: str, name: str) -> str:
    """Where `ros2 run package name` would find the executable."""
    try:
        path = Path(get_package_prefix(package)) / "lib" / package / name
    except PackageNotFoundError as err:
        raise SystemExit(f"rt-collect: package {package!r} is not installed; build and source the workspace") from err
    if not path.is_file():
        raise SystemExit(f"rt-collect: {path} does not exist; run `make setup`")
    return str(path)


def config_file(name: str) -> list[str]:
    """`--params-file` for rt_bringup's config/<name> when it exists."""
    path = Path(get_package_share_directory("rt_bringup")) / "config" / name
    return ["--params-file", str(path)] if path.is_file() else []


def ros_params(**values: object) -> list[str]:
    """`-p name:=value` command-line arguments (booleans as true/false)."""
    arguments = []
    for name, value in values.items():
        arguments += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    return arguments


def start_children(args: argparse.Namespace, log_dir: Path) -> list[Child]:
    """The four processes of a collection run, each with its log file and rt_bringup's parameter file."""
    profile = {"profile": args.profile} if args.profile else {}
    sim = {
        "real_time_factor": float(args.real_time_factor),
        "image_width": args.image_width,
        "image_height": args.image_height,
        "task": args.task,
        "seed": args.seed,
        **profile,
    }
    commands = {
        SIM_NODE: ("rt_sim", "rt_sim", "sim.yaml", sim),
        "rt_action_executor": ("rt_policy_node", "rt_action_executor", "executor.yaml", {"autostart": True, **profile}),
        "rt_expert": ("rt_sim", "rt_expert", None, profile),
        RECORDER_NODE: ("rt_policy_node", "rt_episode_recorder", "recorder.yaml", {"output_dir": args.out.resolve()}),
    }
    children = []
    for name, (package, program, config, params) in commands.items():
        command = [executable(package, program), "--ros-args", *(config_file(config) if config else [])]
        command += ros_params(use_sim_time=True, **params)
        log = log_dir / f"{name}.log"
        with log.open("w") as stream:
            process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        children.append(Child(name, process, log))
    return children


def stop_children(children: list[Child]) -> None:
    """SIGINT each child (the recorder closes its bag), then SIGTERM and SIGKILL stragglers."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for child in children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.send_signal(sig)
        deadline = time.monotonic() + 3.0
    for child in children:
        child.process.wait()


def check_children(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is not None:
            tail = child.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{child.name} exited with status {child.process.returncode}:\n" + "\n".join(tail))


def string_parameter(name: str, value: str) -> Parameter:
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))


def integer_parameter(name: str, value: int) -> Parameter:
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value))


class Collector(Node):
    """Drives episodes: sim parameters and reset, the instruction, the expert's actions, the recorder."""

    def __init__(self, children: list[Child]) -> None:
        super().__init__("rt_collect")
        self.children = children
        self.set_sim_parameters = self.create_client(SetParameters, f"/{SIM_NODE}/set_parameters")
        self.reset_sim = self.create_client(Trigger, "sim/reset")
        self.task_state = self.create_client(Trigger, "sim/task_state")
        self.stop_episode = self.create_client(Trigger, f"/{RECORDER_NODE}/stop_episode")
        self.instruction_pub = self.create_publisher(String, "rt/instruction", LATCHED)
        self.create_subscription(RTAction, "rt/action", self.on_action, RELIABLE)
        self.actions: list[int] = []

    def on_action(self, msg: RTAction) -> None:
        self.actions.append(msg.mode)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def call(self, client, request, timeout_s: float = 30.0):
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

    def wait_until_ready(self) -> None:
        """Until every node is up and the topics between them are connected."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        checks = {
            "the executor's joint_states subscription": lambda: self.count_subscribers("joint_states") >= 2,
            "the executor's arm trajectories": lambda: self.count_publishers("arm_controller/joint_trajectory") >= 1,
            "the expert's rt/action": lambda: self.count_publishers("rt/action") >= 1,
            "the expert's sim/task_state client": lambda: self.task_state.service_is_ready(),
            "the recorder's stop_episode service": lambda: self.stop_episode.service_is_ready(),
        }
        while True:
            check_children(self.children)
            waiting = [what for what, ready in checks.items() if not ready()]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {STARTUP_TIMEOUT_S} s: waiting for {', '.join(waiting)}")
            self.spin_for(0.2)
        # Discovery is not yet delivery: let the first joint_states and /clock messages through.
        self.spin_for(1.0)

    def run_episode(self, task: str, seed: int, max_steps: int) -> dict:
        """One episode: returns what rt-collect adds to the sidecar's `extra`."""
        request = SetParameters.Request(parameters=[string_parameter("task", task), integer_parameter("seed", seed)])
        results = self.call(self.set_sim_parameters, request).results
        if not all(r.successful for r in results):
            raise RuntimeError(f"cannot set the sim's task/seed: {[r.reason for r in results]}")
        reset = self.call(self.reset_sim, Trigger.Request())
        if not reset.success:
            raise RuntimeError(f"sim/reset failed: {reset.message}")
        episode = json.loads(reset.message)
        self.actions = []
        self.instruction_pub.publish(String(data=episode["instruction"]))
        deadline = time.monotonic() + WALL_S_PER_STEP * (max_steps + 5)
        while not (self.actions and self.actions[-1] == Mode.TERMINATE) and len(self.actions) < max_steps:
            check_children(self.children)
            if time.monotonic() > deadline:
                break
            rclpy.spin_once(self, timeout_sec=0.05)
        terminated = bool(self.actions) and self.actions[-1] == Mode.TERMINATE
        state = json.loads(self.call(self.task_state, Trigger.Request()).message)
        if not terminated:
            self.call(self.stop_episode, Trigger.Request())
        return {
            "expert_success": bool(terminated and state["success"]),
            "expert_terminated": terminated,
            "task": task,
            "seed": seed,
            "steps": len(self.actions),
            "params": episode["params"],
        }


def closed_episodes(out: Path) -> set[Path]:
    return {p for p in list_episodes(out) if (p / EPISODE_FILE).is_file()}


def mark_episode(out: Path, known: set[Path], extra: dict, node: Collector) -> Path | None:
    """Adds `extra` to the sidecar of the episode the recorder has just closed; None if none appeared."""
    deadline = time.monotonic() + SIDECAR_TIMEOUT_S
    while time.monotonic() < deadline:
        new = sorted(closed_episodes(out) - known)
        if new:
            update_episode_extra(new[-1], **extra)
            return new[-1]
        node.spin_for(0.1)
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rt-collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, help=f"one of: {', '.join(task_names())}")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes")
    parser.add_argument("--out", type=Path, required=True, help="output directory (episode_* directories)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed + i")
    parser.add_argument("--real-time-factor", type=float, default=0.0, help="0 = lockstep, as fast as possible")
    parser.add_argument("--image-width", type=int, default=320)
    parser.add_argument("--image-height", type=int, default=256)
    parser.add_argument("--profile", default="", help="robot profile for executor and expert (default: theirs)")
    parser.add_argument("--max-steps", type=int, default=0, help="step budget per episode (default: the task's)")
    args = parser.parse_args(argv)
    if args.task not in task_names():
        parser.error(f"unknown task {args.task!r}; choose from {', '.join(task_names())}")
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    max_steps = args.max_steps or make_task(args.task).max_steps
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children = start_children(args, log_dir)
    rclpy.init()
    node = Collector(children)
    results: list[dict] = []
    started = time.monotonic()
    try:
        node.wait_until_ready()
        started = time.monotonic()
        progress = tqdm(range(args.episodes), desc=f"{args.task}", unit="episode")
        for index in progress:
            known = closed_episodes(args.out)
            extra = node.run_episode(args.task, args.seed + index, max_steps)
            directory = mark_episode(args.out, known, extra, node)
            if directory is None:
                raise RuntimeError(f"the recorder wrote no episode for seed {args.seed + index} (see {log_dir})")
            results.append({**extra, "directory": directory.name})
            progress.set_postfix(success=f"{sum(r['expert_success'] for r in results)}/{len(results)}")
    except (RuntimeError, KeyboardInterrupt, ExternalShutdownException) as err:
        print(f"rt-collect: stopped: {str(err) or 'interrupted'}", file=sys.stderr)
    except Exception as err:
        if rclpy.ok():
            raise
        print(f"rt-collect: interrupted ({err})", file=sys.stderr)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop_children(children)
    minutes = (time.monotonic() - started) / 60.0
    successes = sum(r["expert_success"] for r in results)
    summary = {
        "task": args.task,
        "episodes": len(results),
        "expert_successes": successes,
        "success_rate": successes / len(results) if results else 0.0,
        "episodes_per_minute": len(results) / minutes if minutes > 0 else 0.0,
        "failed_seeds": [r["seed"] for r in results if not r["expert_success"]],
        "episodes_list": results,
    }
    (args.out / "collection.json").write_text(json.dumps(summary, indent=2))
    print(
        f"rt-collect: {args.task}: {successes}/{len(results)} expert successes "
        f"({100 * summary['success_rate']:.0f}%), {summary['episodes_per_minute']:.1f} episodes/min -> {args.out}"
    )
    return 0 if len(results) == args.episodes else 1
