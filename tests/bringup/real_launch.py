"""Upstream ROS 2 launch (launch_xml + launch_ros) run the way `ros2 launch` runs a file, for the tests.

Run as a subprocess with PYTHONPATH pointing at a scratch install of the launch wheels (see conftest.py):

    real_launch.py resolve OUT.json < REQUEST.json
        REQUEST is `{"cases": [{"file": PATH, "argv": ["name:=value", ...], "env": {...}}],
        "show_args": [PATH], "perform": {"configurations": {...}, "texts": [TEXT, ...]}}`. Writes to OUT
        (launch itself may print): per case, what the real launch would start, without starting it (each
        node's package, executable, full command line with every generated parameter file replaced by its
        content, on_exit, extra environment) or the error it stops with; per show_args file, what
        `ros2 launch --show-args` prints and the arguments; per text, its substitutions performed.
    real_launch.py run PATH [name:=value ...]
        Runs the launch file with ros2launch's launch_a_launch_file, as `ros2 launch` does.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import types
from pathlib import Path

import yaml


def stub_composition_interfaces() -> None:
    """launch_ros imports composition_interfaces (for composable nodes only), which has no wheel."""

    class Unavailable:
        def __getattr__(self, name: str) -> Unavailable:
            return self

        def __call__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("composition_interfaces is a stand-in here")

    package = types.ModuleType("composition_interfaces")
    services = types.ModuleType("composition_interfaces.srv")
    services.__getattr__ = lambda name: Unavailable()
    package.srv = services
    sys.modules.update({"composition_interfaces": package, "composition_interfaces.srv": services})


stub_composition_interfaces()

import launch  # noqa: E402
from launch.frontend.parse_substitution import parse_substitution  # noqa: E402
from launch.launch_description_sources import (  # noqa: E402
    AnyLaunchDescriptionSource,
    get_launch_description_from_any_launch_file,
)
from launch.utilities import perform_substitutions  # noqa: E402
from launch_ros.actions import Node  # noqa: E402
from ros2launch.api import launch_a_launch_file, print_arguments_of_launch_file  # noqa: E402
from ros2launch.api.api import parse_launch_arguments  # noqa: E402


def parameter_argument(path: str) -> dict:
    """A `--params-file` argument: a file the launch file names, or the content of one launch generated."""
    file = Path(path)
    if file.name.startswith("launch_params_") and str(file.parent) == tempfile.gettempdir():
        content = yaml.safe_load(file.read_text())
        file.unlink()
        return {"values": content}
    return {"file": path}


def describe_node(node: Node, context: launch.LaunchContext) -> dict:
    """The node's command line as Node.execute builds it, without starting it."""
    node._perform_substitutions(context)
    specific = {}
    if node._Node__node_name is not None:
        specific["name"] = f"__node:={node._Node__expanded_node_name}"
    if node.expanded_node_namespace != "":
        specific["ns"] = f"__ns:={node.expanded_node_namespace}"
    context.extend_locals({"ros_specific_arguments": specific})
    command: list = [perform_substitutions(context, part) for part in node.cmd]
    for index in range(1, len(command)):
        if command[index - 1] == "--params-file":
            command[index] = parameter_argument(command[index])
    on_exit = node._ExecuteLocal__on_exit
    return {
        "package": perform_substitutions(context, node.node_package) if node.node_package else None,
        "executable": perform_substitutions(context, node.node_executable),
        "command": command,
        "shutdown_on_exit": bool(on_exit) and all(type(action).__name__ == "Shutdown" for action in on_exit),
        "env": {
            perform_substitutions(context, name): perform_substitutions(context, value)
            for name, value in (node.additional_env or [])
        },
    }


def walk(entity: launch.LaunchDescriptionEntity, context: launch.LaunchContext, nodes: list) -> None:
    """Visits entities as the launch service does, depth first, describing nodes instead of starting them."""
    if isinstance(entity, Node):
        if entity.condition is None or entity.condition.evaluate(context):
            nodes.append(describe_node(entity, context))
        return
    if isinstance(entity, launch.actions.ExecuteProcess):
        raise RuntimeError(f"unexpected process action {entity}")
    for sub_entity in entity.visit(context) or ():
        walk(sub_entity, context, nodes)


def resolve(file: str, argv: list[str], env: dict[str, str]) -> dict:
    """The nodes of one launch, with `env` (e.g. AMENT_PREFIX_PATH) set in the environment meanwhile."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        include = launch.actions.IncludeLaunchDescription(
            AnyLaunchDescriptionSource(file), launch_arguments=parse_launch_arguments(argv)
        )
        nodes: list = []
        walk(launch.LaunchDescription([include]), launch.LaunchContext(argv=argv), nodes)
        return {"nodes": nodes}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def show_args(file: str) -> dict:
    """What `ros2 launch FILE --show-args` prints, and the arguments it lists."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        print_arguments_of_launch_file(launch_file_path=file)
    arguments = [
        {
            "name": argument.name,
            "default": None
            if argument.default_value is None
            else " + ".join(token.describe() for token in argument.default_value),
            "description": argument.description,
            "conditional": argument._conditionally_included,
        }
        for argument in get_launch_description_from_any_launch_file(file).get_launch_arguments()
    ]
    return {"printed": output.getvalue(), "arguments": arguments}


def perform(configurations: dict[str, str], text: str) -> dict:
    """One attribute value parsed by the frontend grammar and performed with `configurations` set."""
    context = launch.LaunchContext()
    context.launch_configurations.update(configurations)
    try:
        return {"value": perform_substitutions(context, parse_substitution(text))}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> int:
    if sys.argv[1] == "run":
        # A process started in the background begins with SIGINT ignored; launch hooks the existing handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return launch_a_launch_file(launch_file_path=sys.argv[2], launch_file_arguments=sys.argv[3:])
    request = json.load(sys.stdin)
    launch.frontend.Parser.load_launch_extensions()
    performing = request.get("perform", {"texts": []})
    result = {
        "cases": [resolve(case["file"], case["argv"], case.get("env", {})) for case in request.get("cases", [])],
        "show_args": {file: show_args(file) for file in request.get("show_args", [])},
        "perform": [perform(performing.get("configurations", {}), text) for text in performing["texts"]],
    }
    Path(sys.argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
