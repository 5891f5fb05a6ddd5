"""`rt-launch`: runs a launch file's nodes as separate processes where `ros2 launch` is missing.

    rt-launch sim|robot|record|PATH.launch.xml [name:=value ...]

Each node gets the executable, parameter files, parameters and remappings its launch file names
(read by `launch_xml`), its output is forwarded line by line with a `[node]` prefix, and everything
is shut down on Ctrl-C, SIGTERM, or when one node exits with an error (that node is named).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from rt_bringup.launch_xml import LaunchError, LaunchPlan, NodeSpec, ament_package_share, load_launch

SHUTDOWN_GRACE_S = 10.0


def find_executable(spec: NodeSpec) -> Path | None:
    """Where `ros2 run` would find the node's executable, or None if its package is not installed."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = get_package_prefix(spec.package)
    except PackageNotFoundError:
        return None
    path = Path(prefix) / "lib" / spec.package / spec.executable
    return path if path.is_file() else None


def typed_value(text: str) -> object:
    """Launch's type inference for `<param value=...>`: YAML scalars and lists, else the string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float, str, list)) else text


def node_command(spec: NodeSpec, executable: Path, overrides_dir: Path) -> list[str]:
    """The command line `ros2 launch` would run for `spec`."""
    command = [str(executable), *spec.args, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace != "/":
        command += ["-r", f"__ns:={spec.namespace}"]
    for param_file in spec.param_files:
        command += ["--params-file", param_file]
    if spec.params:
        # One file per node started: nodes of the same name in other namespaces keep their own values.
        handle, overrides = tempfile.mkstemp(prefix=f"{spec.name}_", suffix=".yaml", dir=overrides_dir)
        content = {"/**": {"ros__parameters": {k: typed_value(v) for k, v in spec.params.items()}}}
        with os.fdopen(handle, "w") as stream:
            stream.write(yaml.safe_dump(content))
        command += ["--params-file", overrides]
    for source, target in spec.remaps:
        command += ["-r", f"{source}:={target}"]
    return command


def resolve_launch_file(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".xml":
        return path
    return Path(ament_package_share("rt_bringup")) / "launch" / f"{name}.launch.xml"


def parse_arguments(items: list[str]) -> dict[str, str]:
    arguments = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments are name:=value, got {item!r}")
        arguments[name] = value
    return arguments


def describe(plan: LaunchPlan) -> str:
    lines = ["Arguments:"]
    for name, (default, description) in plan.declared.items():
        shown = "(required)" if default is None else f"(default: {default!r})"
        lines.append(f"  {name} {shown}  {description}")
    lines.append("Nodes:")
    lines += [f"  {spec.name}: {spec.package}/{spec.executable}" for spec in plan.nodes]
    return "\n".join(lines)


class ProcessGroup:
    """The launched nodes: start, forward output with a prefix, stop them all together."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.selector = selectors.DefaultSelector()
        self.partial: dict[str, bytes] = {}

    def start(self, name: str, command: list[str]) -> None:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes[name] = process
        # Non-blocking reads of whatever is there: a node's half-written line never stalls the others.
        os.set_blocking(process.stdout.fileno(), False)
        self.selector.register(process.stdout, selectors.EVENT_READ, name)
        self.partial[name] = b""
        print(f"[rt-launch] started {name} (pid {process.pid})", flush=True)

    def forward_output(self, timeout: float) -> None:
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

    def first_failure(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            if process.poll() not in (None, 0):
                return name, process.returncode
        return None

    def all_exited(self) -> bool:
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
    """Runs the plan until Ctrl-C, SIGTERM, or a node's failure; returns the exit code."""
    stop_requested = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
    group = ProcessGroup()
    exit_code = 0
    with tempfile.TemporaryDirectory(prefix="rt-launch-") as overrides_dir:
        try:
            for spec in plan.nodes:
                executable = find_executable(spec)
                if executable is None:
                    print(
                        f"[rt-launch] skipping {spec.name}: {spec.package}/{spec.executable} is not installed here",
                        flush=True,
                    )
                    continue
                group.start(spec.name, node_command(spec, executable, Path(overrides_dir)))
            while not stop_requested and not group.all_exited():
                group.forward_output(0.1)
                if (failure := group.first_failure()) is not None:
                    name, code = failure
                    print(f"[rt-launch] {name} died with exit code {code}; shutting everything down", flush=True)
                    exit_code = 1
                    break
        finally:
            group.stop()
    print("[rt-launch] all nodes stopped", flush=True)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-launch", description=__doc__.splitlines()[0])
    parser.add_argument("launch", help="sim, robot, record, or a path to a .launch.xml file")
    parser.add_argument("arguments", nargs="*", help="launch arguments as name:=value")
    parser.add_argument("--show", action="store_true", help="print the arguments and nodes, start nothing")
    options = parser.parse_args(argv)
    try:
        plan = load_launch(resolve_launch_file(options.launch), parse_arguments(options.arguments))
    except (LaunchError, OSError, ET.ParseError, subprocess.CalledProcessError) as exc:
        print(f"rt-launch: {exc}", file=sys.stderr)
        return 2
    if options.show:
        print(describe(plan))
        return 0
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
