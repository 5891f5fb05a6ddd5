"""`rt-launch`: runs a launch file's nodes as separate processes where `ros2 launch` is missing.

    rt-launch sim|robot|record|PATH.launch.xml [name:=value ...] [--show]

The launch files are read as `ros2 launch` reads them (`launch_xml`); every node is resolved, its
package and executable found, before anything starts. Each node gets the command `ros2 launch` would
run; its output is forwarded line by line with a `[node]` prefix. A node with `on_exit="shutdown"` stops
everything when it exits; any other node may exit while the rest keeps running. Ctrl-C or SIGTERM stops
everything (SIGINT, then SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from rt_bringup.launch_substitutions import (
    LaunchError,
    ament_package_prefix,
    describe,
    executable_in_package,
)
from rt_bringup.launch_xml import DeclaredArgument, LaunchPlan, NodeSpec, launch_arguments, load_launch

SHUTDOWN_GRACE_S = 10.0


def find_executable(spec: NodeSpec) -> Path:
    """Where `ros2 launch` finds the node's executable (`<prefix>/lib/<package>/`, or PATH without a package)."""
    # LaunchError with the real launch's message when it is not there.
    if spec.package is None:
        found = shutil.which(spec.executable)
        if found is None:
            raise LaunchError(f"executable '{spec.executable}' not found on the PATH")
        return Path(found)
    prefix = spec.package_prefix or ament_package_prefix(spec.package)
    return Path(executable_in_package(spec.executable, spec.package, prefix))


def parameter_file(values: dict[str, object], spec: NodeSpec, directory: Path) -> Path:
    """One `<param name>` element's values as the parameter file `ros2 launch` writes for it."""
    handle, path = tempfile.mkstemp(prefix="launch_params_", suffix=".yaml", dir=directory)
    with os.fdopen(handle, "w") as stream:
        yaml.safe_dump({spec.qualified_name or "/**": {"ros__parameters": values}}, stream, default_flow_style=False)
    return Path(path)


def node_command(spec: NodeSpec, executable: Path, parameters_dir: Path) -> list[str]:
    """The command line `ros2 launch` runs for `spec`; `<param name>` values are written to `parameters_dir`."""
    command = [str(executable), *spec.args]
    if spec.ros_args is not None:
        command += ["--ros-args", *spec.ros_args]
    command.append("--ros-args")
    if spec.name is not None:
        command += ["-r", f"__node:={spec.name}"]
    if spec.namespace is not None:
        command += ["-r", f"__ns:={spec.namespace}"]
    for entry in spec.parameters:
        path = entry if isinstance(entry, str) else parameter_file(entry, spec, parameters_dir)
        command += ["--params-file", str(path)]
    for source, target in spec.remaps:
        command += ["-r", f"{source}:={target}"]
    return command


def resolve_launch_file(name: str) -> Path:
    """`sim`, `robot`, `record` name rt_bringup's launch files; anything ending in .xml is a path."""
    path = Path(name)
    if path.suffix == ".xml":
        return path
    return Path(ament_package_prefix("rt_bringup")) / "share" / "rt_bringup" / "launch" / f"{name}.launch.xml"


def parse_arguments(items: list[str]) -> dict[str, str]:
    """`name:=value` items as `ros2 launch` reads them: the last of a name wins, `name:=` alone is refused."""
    arguments: dict[str, str] = {}
    for item in items:
        count = item.count(":=")
        if count == 0 or item.startswith(":=") or (count == 1 and item.endswith(":=")):
            raise LaunchError(f"malformed launch argument '{item}', expected format '<name>:=<value>'")
        name, value = item.split(":=", 1)
        arguments[name] = value
    return arguments


def describe_arguments(arguments: list[DeclaredArgument]) -> str:
    """The argument list exactly as `ros2 launch --show-args` prints it."""
    lines = ["Arguments (pass arguments as '<name>:=<value>'):"]
    for argument in arguments:
        lines += ["", f"    '{argument.name}':{'*' if argument.conditional else ''}", f"        {argument.description}"]
        if argument.default is not None:
            lines.append(f"        (default: {describe(argument.default)})")
    if not arguments:
        lines += ["", "  No arguments."]
    elif any(argument.conditional for argument in arguments):
        lines += ["", "* argument(s) which are only used if specific conditions occur"]
    return "\n".join(lines)


def describe_nodes(plan: LaunchPlan) -> str:
    """The nodes the plan starts, for `--show`."""
    lines = ["Nodes:"]
    for spec in plan.nodes:
        shutdown = "  (on_exit: shutdown)" if spec.shutdown_on_exit else ""
        lines.append(f"  {spec.label}: {spec.package or ''}/{spec.executable}{shutdown}")
    return "\n".join(lines)


class ProcessGroup:
    """The launched nodes: start, forward output with a prefix, stop them all together."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.selector = selectors.DefaultSelector()
        self.partial: dict[str, bytes] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> str:
        """Starts `command`; returns the label its output is prefixed with (`name`, numbered if taken)."""
        label, number = name, 1
        while label in self.processes:
            number += 1
            label = f"{name}-{number}"
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.processes[label] = process
        # Non-blocking reads of whatever is there: a node's half-written line never stalls the others.
        os.set_blocking(process.stdout.fileno(), False)
        self.selector.register(process.stdout, selectors.EVENT_READ, label)
        self.partial[label] = b""
        print(f"[rt-launch] started {label} (pid {process.pid})", flush=True)
        return label

    def forward_output(self, timeout: float) -> None:
        """Prints each complete line the nodes wrote, prefixed with the node's label."""
        for key, _ in self.selector.select(timeout):
            name = key.data
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.selector.unregister(key.fileobj)
                chunk = b"\n" if self.partial[name] else b""
            *lines, self.partial[name] = (self.partial[name] + chunk).split(b"\n")
            for line in lines:
                sys.stdout.write(f"[{name}] {line.decode(errors='replace')}\n")
            sys.stdout.flush()

    def all_exited(self) -> bool:
        """Whether every node has exited."""
        return all(p.poll() is not None for p in self.processes.values())

    def stop(self) -> None:
        """SIGINT to every node (what Ctrl-C in ros2 launch does), then SIGTERM, then SIGKILL."""
        for sig, grace in ((signal.SIGINT, SHUTDOWN_GRACE_S), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            running = [p for p in self.processes.values() if p.poll() is None]
            if not running:
                break
            for process in running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(p.poll() is None for p in running):
                self.forward_output(0.05)
        deadline = time.monotonic() + 5.0
        while self.selector.get_map() and time.monotonic() < deadline:
            self.forward_output(0.05)


def run(plan: LaunchPlan) -> int:
    """Runs the plan until Ctrl-C, SIGTERM, an `on_exit="shutdown"` node's exit, or every node's exit."""
    # Returns 0 like `ros2 launch`, whose exit status does not reflect its nodes'; 1 when a node's executable
    # cannot be found (then nothing is started).
    try:
        executables = [find_executable(spec) for spec in plan.nodes]
    except LaunchError as exc:
        print(f"rt-launch: {exc}", file=sys.stderr, flush=True)
        return 1
    for warning in plan.warnings:
        print(f"[rt-launch] WARNING: {warning}", flush=True)
    stop_requested = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
    group = ProcessGroup()
    with tempfile.TemporaryDirectory(prefix="rt-launch-") as parameters_dir:
        try:
            shutdown_on_exit = {}
            for spec, executable in zip(plan.nodes, executables, strict=True):
                label = group.start(spec.label, node_command(spec, executable, Path(parameters_dir)), spec.env)
                shutdown_on_exit[label] = spec.shutdown_on_exit
            reported: set[str] = set()
            while not stop_requested and not _report_exits(group, reported, shutdown_on_exit):
                group.forward_output(0.1)
        finally:
            group.stop()
    print("[rt-launch] all nodes stopped", flush=True)
    return 0


def _report_exits(group: ProcessGroup, reported: set[str], shutdown_on_exit: dict[str, bool]) -> bool:
    """Names each node that has exited since the last call; True when it is time to stop everything."""
    for label, process in group.processes.items():
        if label in reported or process.poll() is None:
            continue
        reported.add(label)
        code = process.returncode
        state = "finished cleanly" if code == 0 else f"died with exit code {code}"
        print(f"[rt-launch] {label} (pid {process.pid}) {state}", flush=True)
        if shutdown_on_exit[label]:
            print(f'[rt-launch] {label} has on_exit="shutdown": shutting everything down', flush=True)
            return True
    return group.all_exited()


def main(argv: list[str] | None = None) -> int:
    """The command line: reads the launch file, then shows it or runs it."""
    parser = argparse.ArgumentParser(prog="rt-launch", description=__doc__.splitlines()[0])
    parser.add_argument("launch", help="sim, robot, record, or a path to a .launch.xml file")
    parser.add_argument("arguments", nargs="*", help="launch arguments as name:=value")
    parser.add_argument("--show", action="store_true", help="print the arguments and nodes, start nothing")
    options = parser.parse_intermixed_args(argv)
    try:
        path = resolve_launch_file(options.launch)
        if options.show:
            print(describe_arguments(launch_arguments(path)))
            print()
        plan = load_launch(path, parse_arguments(options.arguments))
    except LaunchError as exc:
        print(f"rt-launch: {exc}", file=sys.stderr)
        return 1
    if options.show:
        print(describe_nodes(plan))
        return 0
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
