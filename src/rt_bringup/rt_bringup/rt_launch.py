"""`rt-launch`: runs a launch file's nodes as separate processes where `ros2 launch` is missing.

    rt-launch sim|robot|record|PATH.launch.xml [name:=value ...] [--show]

The launch files are read as `ros2 launch` reads them (`launch_xml`); every node is resolved, its
package and executable found, before anything starts. Each node gets the command `ros2 launch` would
run, in a process group of its own (rt_bringup.processes, which starts rt-collect's, rt-eval's and the
tests' nodes too); its output is forwarded line by line with a `[node]` prefix. A node with `on_exit="shutdown"` stops
everything when it exits; any other node may exit while the rest keeps running. Ctrl-C or SIGTERM stops
everything (SIGINT, then SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import yaml

from rt_bringup.launch_substitutions import (
    LaunchError,
    ament_package_prefix,
    describe,
    executable_in_package,
)
from rt_bringup.launch_xml import DeclaredArgument, LaunchPlan, NodeSpec, launch_arguments, load_launch
from rt_bringup.processes import ProcessGroup

# Ctrl-C in ros2 launch: SIGINT to every node, then SIGTERM and SIGKILL to what is left.
LAUNCH_STOP = ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))


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


def node_commands(nodes: list[NodeSpec], parameters_dir: Path) -> list[list[str]]:
    """Each node's command line (`node_command`); every executable is found first, so a missing one raises
    LaunchError before any parameter file is written or anything starts."""
    executables = [find_executable(spec) for spec in nodes]
    return [node_command(spec, path, parameters_dir) for spec, path in zip(nodes, executables, strict=True)]


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


def run(plan: LaunchPlan) -> int:
    """Runs the plan until Ctrl-C, SIGTERM, an `on_exit="shutdown"` node's exit, or every node's exit."""
    # Returns 0 like `ros2 launch`, whose exit status does not reflect its nodes'; 1 when a node's executable
    # cannot be found (then nothing is started).
    with tempfile.TemporaryDirectory(prefix="rt-launch-") as parameters_dir:
        try:
            commands = node_commands(plan.nodes, Path(parameters_dir))
        except LaunchError as exc:
            print(f"rt-launch: {exc}", file=sys.stderr, flush=True)
            return 1
        for warning in plan.warnings:
            print(f"[rt-launch] WARNING: {warning}", flush=True)
        stop_requested = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
        group = ProcessGroup(new_session=True)
        try:
            shutdown_on_exit = {}
            for spec, command in zip(plan.nodes, commands, strict=True):
                child = group.start(spec.label, command, spec.env)
                print(f"[rt-launch] started {child.label} (pid {child.pid})", flush=True)
                shutdown_on_exit[child.label] = spec.shutdown_on_exit
            while not stop_requested and not _report_exits(group, shutdown_on_exit):
                group.forward_output(0.1)
        finally:
            group.stop(LAUNCH_STOP)
    print("[rt-launch] all nodes stopped", flush=True)
    return 0


def _report_exits(group: ProcessGroup, shutdown_on_exit: dict[str, bool]) -> bool:
    """Names each node that has exited since the last call; True when it is time to stop everything."""
    for child in group.exited():
        print(f"[rt-launch] {child.label} (pid {child.pid}) {child.exit_description()}", flush=True)
        if shutdown_on_exit[child.label]:
            print(f'[rt-launch] {child.label} has on_exit="shutdown": shutting everything down', flush=True)
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
