"""Reads ROS 2 XML launch files into a plan of node processes, without the ROS `launch` package.

Where `ros2 launch` is missing, `rt-launch` runs this plan, so the wiring lives in one place: the
launch files. The subset understood here is the one the project's launch files use: `arg`, `let`,
`include` (of XML launch files), `group` with `push_ros_namespace`, `node` with `param` (value or
`from` a YAML file) and `remap`, `if`/`unless` conditions, and the substitutions `var`,
`find-pkg-share`, `env`, `optenv`, `command`, `not`, `and`, `or`, `equals`, `dirname`. Anything else
is an error naming the file and the element, never silently skipped. A caller that only inspects launch
files (the bringup checks) can have includes of other packages' launch files, e.g. ros_gz_sim's
gz_sim.launch.py, listed in the plan instead of followed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TRUE_STRINGS = ("true", "1")
FALSE_STRINGS = ("false", "0")


class LaunchError(Exception):
    """A launch file this runner cannot interpret, or arguments it cannot satisfy."""


@dataclass
class NodeSpec:
    """One `<node>`: what to run and with which parameters and remappings, substitutions resolved."""

    package: str
    executable: str
    name: str
    namespace: str = "/"
    param_files: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    source: str = ""


@dataclass
class IncludeSpec:
    """An `<include>` listed instead of followed: the file and the arguments given to it."""

    file: str
    arguments: dict[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass
class LaunchPlan:
    """Everything a launch file starts, plus the arguments it declares (name -> (default, description))."""

    nodes: list[NodeSpec] = field(default_factory=list)
    declared: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    includes: list[IncludeSpec] = field(default_factory=list)


PackageShare = Callable[[str], str]
FollowInclude = Callable[[str], bool]


def follow_every_include(file: str) -> bool:
    return True


def ament_package_share(package: str) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return get_package_share_directory(package)
    except PackageNotFoundError as exc:
        raise LaunchError(f"package {package!r} is not installed (not on AMENT_PREFIX_PATH)") from exc


def as_bool(text: str, where: str) -> bool:
    if text.strip().lower() in TRUE_STRINGS:
        return True
    if text.strip().lower() in FALSE_STRINGS:
        return False
    raise LaunchError(f"{where}: {text!r} is not a boolean (true/false/1/0)")


class _Context:
    def __init__(
        self, file: Path, variables: dict[str, str], package_share: PackageShare, follow: FollowInclude
    ) -> None:
        self.file = file
        self.variables = variables
        self.package_share = package_share
        self.follow = follow

    def where(self, element: ET.Element) -> str:
        return f"{self.file}: <{element.tag}>"

    def substitute(self, text: str, where: str) -> str:
        """Resolves every `$(...)` in `text`, innermost first."""
        pattern = re.compile(r"\$\(([^()$]*)\)")
        while (match := pattern.search(text)) is not None:
            text = text[: match.start()] + self._evaluate(match.group(1), where) + text[match.end() :]
        return text

    def _evaluate(self, expression: str, where: str) -> str:
        parts = shlex.split(expression)
        if not parts:
            raise LaunchError(f"{where}: empty substitution $()")
        kind, operands = parts[0], parts[1:]
        if kind == "var":
            if operands[0] not in self.variables:
                raise LaunchError(f"{where}: $(var {operands[0]}) is not declared")
            return self.variables[operands[0]]
        if kind == "find-pkg-share":
            return self.package_share(operands[0])
        if kind in ("env", "optenv"):
            default = operands[1] if len(operands) > 1 else ("" if kind == "optenv" else None)
            value = os.environ.get(operands[0], default)
            if value is None:
                raise LaunchError(f"{where}: environment variable {operands[0]} is not set")
            return value
        if kind == "command":
            return subprocess.run(operands[0], shell=True, check=True, capture_output=True, text=True).stdout
        if kind == "not":
            return str(not as_bool(operands[0], where)).lower()
        if kind in ("and", "or"):
            values = [as_bool(v, where) for v in operands]
            return str(all(values) if kind == "and" else any(values)).lower()
        if kind == "equals":
            return str(operands[0] == operands[1]).lower()
        if kind == "dirname":
            return str(self.file.parent)
        raise LaunchError(f"{where}: unsupported substitution $({kind} ...)")

    def attr(self, element: ET.Element, name: str, default: str | None = None) -> str | None:
        value = element.get(name)
        return default if value is None else self.substitute(value, self.where(element))

    def enabled(self, element: ET.Element) -> bool:
        where = self.where(element)
        if_text, unless_text = element.get("if"), element.get("unless")
        if if_text is not None and not as_bool(self.substitute(if_text, where), where):
            return False
        return unless_text is None or not as_bool(self.substitute(unless_text, where), where)


def load_launch(
    path: str | Path,
    arguments: dict[str, str] | None = None,
    package_share: PackageShare = ament_package_share,
    follow: FollowInclude = follow_every_include,
) -> LaunchPlan:
    """Interprets the launch file at `path` with `name:=value` `arguments`; returns the node plan.

    An `<include>` of a file that `follow` rejects is listed in `plan.includes` and not read.
    """
    plan = LaunchPlan()
    _load(Path(path), dict(arguments or {}), package_share, follow, plan, namespace="/", top=True)
    return plan


def _load(
    path: Path,
    arguments: dict[str, str],
    package_share: PackageShare,
    follow: FollowInclude,
    plan: LaunchPlan,
    namespace: str,
    top: bool,
) -> None:
    if path.suffix != ".xml":
        raise LaunchError(f"{path}: only XML launch files can run without `ros2 launch`")
    root = ET.parse(path).getroot()
    if root.tag != "launch":
        raise LaunchError(f"{path}: the root element is <{root.tag}>, expected <launch>")
    context = _Context(path, {}, package_share, follow)
    unknown = set(arguments) - {element.get("name") for element in root.iter("arg")}
    if unknown and top:
        raise LaunchError(f"{path}: no such launch argument(s): {', '.join(sorted(unknown))}")
    _run_children(root, context, arguments, plan, namespace, top)


def _run_children(
    parent: ET.Element, context: _Context, arguments: dict[str, str], plan: LaunchPlan, namespace: str, top: bool
) -> None:
    for element in parent:
        if element.tag is ET.Comment or not context.enabled(element):
            continue
        where = context.where(element)
        if element.tag == "arg":
            name = element.get("name")
            default = element.get("default")
            if top:
                plan.declared[name] = (default, element.get("description", ""))
            if name in arguments:
                context.variables[name] = arguments[name]
            elif default is not None:
                context.variables[name] = context.substitute(default, where)
            else:
                raise LaunchError(f"{context.file}: launch argument {name!r} is required (pass {name}:=VALUE)")
        elif element.tag == "let":
            context.variables[element.get("name")] = context.attr(element, "value")
        elif element.tag == "group":
            scoped = _Context(context.file, dict(context.variables), context.package_share, context.follow)
            _run_children(element, scoped, arguments, plan, namespace, top)
        elif element.tag in ("push_ros_namespace", "push-ros-namespace"):
            namespace = _join_namespace(namespace, context.attr(element, "namespace"))
        elif element.tag == "include":
            included = {
                arg.get("name"): context.attr(arg, "value") for arg in element.findall("arg") if context.enabled(arg)
            }
            file = context.attr(element, "file")
            if context.follow(file):
                _load(Path(file), included, context.package_share, context.follow, plan, namespace, top=False)
            else:
                plan.includes.append(IncludeSpec(file, included, str(context.file)))
        elif element.tag == "node":
            plan.nodes.append(_node(element, context, namespace))
        else:
            raise LaunchError(f"{where}: element not supported by rt-launch")


def _node(element: ET.Element, context: _Context, namespace: str) -> NodeSpec:
    executable = context.attr(element, "exec")
    spec = NodeSpec(
        package=context.attr(element, "pkg"),
        executable=executable,
        name=context.attr(element, "name", executable),
        namespace=_join_namespace(namespace, context.attr(element, "namespace", "")),
        args=shlex.split(context.attr(element, "args", "")),
        source=str(context.file),
    )
    for child in element:
        if child.tag is ET.Comment or not context.enabled(child):
            continue
        if child.tag == "param":
            if child.get("from") is not None:
                spec.param_files.append(context.attr(child, "from"))
            else:
                spec.params[context.attr(child, "name")] = context.attr(child, "value")
        elif child.tag == "remap":
            spec.remaps.append((context.attr(child, "from"), context.attr(child, "to")))
        else:
            raise LaunchError(f"{context.where(child)}: element not supported inside <node> by rt-launch")
    return spec


def _join_namespace(base: str, extra: str | None) -> str:
    if not extra:
        return base
    if extra.startswith("/"):
        return extra
    return "/" + "/".join(p for p in (base.strip("/"), extra.strip("/")) if p)
