"""Reads ROS 2 XML launch files into a plan of node processes, with the real launch's semantics, for rt-launch.

Where `ros2 launch` is missing, `rt-launch` runs this plan, so the wiring lives in one place: the launch
files. The subset understood is `arg` (with `choice`), `let`, `include` of XML files, `group` (`scoped`,
`forwarding`, `keep`), `push-ros-namespace`, `node` (`pkg`, `exec`, `name`, `namespace`, `args`,
`ros_args`, `exec_name`, `output`, `on_exit`; `param`, `remap`, `env` inside) and `if`/`unless`, with
the substitutions of `launch_substitutions`. It behaves as ROS 2 launch 3.7 with launch_ros 0.28 (Humble,
Jazzy and Kilted read these elements the same way):
- an `<include>` is not a scope: its `arg`s become launch configurations of the including file, the
  included file's `<arg>`s keep a value set before (on the command line, or by an earlier file), and
  what it sets stays set afterwards; only a `<group>` (scoped unless `scoped="false"`) is a scope;
- each `<param name>` element is one parameter file of its own and each `<param from>` names one, passed
  in the order written; a `value` is converted by YAML rules unless `type` says otherwise
  (`launch_types`), and a parameter file that does not exist is skipped with a warning;
- a node's package must be installed: the plan fails on it where the real launch would;
- conditions accept `true`, `false`, `1`, `0` (any case, surrounding blanks ignored).
Anything else the real frontend knows (`timer`, `executable`, `set_env`, `respawn`, ...) is refused with a
message saying rt-launch does not support it; anything it does not know, with the real launch's message.
Every file in the tree is read and every node resolved before anything starts. A caller that only
inspects launch files (the bringup checks) can have includes of other packages' launch files, e.g.
ros_gz_sim's gz_sim.launch.py, listed in the plan instead of followed.
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rt_bringup.launch_substitutions import (
    LaunchContext,
    LaunchError,
    PackagePrefix,
    Part,
    Parts,
    ament_package_prefix,
    parse_substitutions,
    text_or_parts,
    unescape,
)
from rt_bringup.launch_types import SCALARS, TYPE_NAMES, ValueType, coerce, is_instance, type_name

TRUE_STRINGS = ("true", "1")
FALSE_STRINGS = ("false", "0")
# Elements of the real XML frontend that rt-launch leaves to `ros2 launch`.
ELEMENTS_OUTSIDE_SUBSET = (
    "executable",
    "timer",
    "shutdown",
    "log",
    "reset",
    "set_env",
    "unset_env",
    "append_env",
    "reset_env",
    "set_parameter",
    "set_parameters_from_file",
    "set_remap",
    "set_use_sim_time",
    "set_ros_log_dir",
    "ros_timer",
    "node_container",
    "load_composable_node",
)
# Attributes the real frontend reads and rt-launch leaves to it, by element.
ATTRIBUTES_OUTSIDE_SUBSET = {
    "node": (
        "respawn",
        "respawn_delay",
        "respawn_max_retries",
        "launch-prefix",
        "cwd",
        "shell",
        "emulate_tty",
        "sigterm_timeout",
        "sigkill_timeout",
        "node-name",
    ),
    "param": ("allow_substs",),
}


@dataclass(frozen=True)
class Condition:
    """An `if` or (`unless`) attribute: its expression must evaluate to true (false)."""

    expression: Parts
    unless: bool


@dataclass
class Arg:
    """`<arg>`: declares a launch argument; sets it from `default` unless something set it before."""

    condition: Condition | None
    name: str
    default: Parts | None
    description: str
    choices: list[str] | None


@dataclass
class Let:
    """`<let>`: sets a launch configuration."""

    condition: Condition | None
    name: Parts
    value: Parts


@dataclass
class Include:
    """`<include>`: sets its `arg`s as launch configurations, then runs the file in the same scope."""

    condition: Condition | None
    file: Parts
    arguments: list[tuple[Parts, Parts]]
    source: str


@dataclass
class Group:
    """`<group>`: its actions, in a scope of launch configurations unless `scoped` is false."""

    condition: Condition | None
    actions: list[Action]
    scoped: bool
    forwarding: bool
    keep: list[tuple[Parts, Parts]]


@dataclass
class PushNamespace:
    """`<push-ros-namespace>`: prefixes the namespace of the nodes after it (until its scope ends)."""

    condition: Condition | None
    namespace: Parts


@dataclass(frozen=True)
class ParamValue:
    """A `<param value>` as read: a literal already typed, or substitutions (a tuple) typed once evaluated."""

    value: object
    kind: ValueType | None


@dataclass(frozen=True)
class ParamFrom:
    """A `<param from>`: a parameter file."""

    file: Parts


# A `<param name>` element: names to values or to nested `<param>`s (names joined with `.`).
ParamTree = dict[Parts, "ParamValue | ParamTree"]


@dataclass
class Node:
    """`<node>` as read from the file, substitutions not yet evaluated."""

    condition: Condition | None
    package: Parts | None
    executable: Parts
    name: Parts | None
    namespace: Parts | None
    exec_name: Parts | None
    args: list[Parts]
    ros_args: list[Parts] | None
    parameters: list[ParamFrom | ParamTree]
    remaps: list[tuple[Parts, Parts]]
    env: list[tuple[Parts, Parts]]
    shutdown_on_exit: bool
    source: str
    # `pkg/exec` as written, to name the node in errors.
    written: str


Action = Arg | Let | Include | Group | PushNamespace | Node


@dataclass
class LaunchFile:
    """A launch file read: its actions, every `<arg>` name anywhere in it, its `deprecated` reason."""

    actions: list[Action]
    argument_names: set[str]
    deprecated: str | None


@dataclass
class NodeSpec:
    """One `<node>` to start, substitutions resolved: what to run with which parameters and remappings."""

    package: str | None
    executable: str
    name: str | None = None
    namespace: str | None = None
    # Parameter files (paths) and the values of `<param name>` elements, in the order they are passed.
    parameters: list[str | dict[str, object]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    ros_args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    shutdown_on_exit: bool = False
    exec_name: str | None = None
    package_prefix: str | None = None
    source: str = ""

    @property
    def label(self) -> str:
        """The name its output is prefixed with."""
        return self.exec_name or self.name or self.executable

    @property
    def param_files(self) -> list[str]:
        """The parameter files it names, in order."""
        return [entry for entry in self.parameters if isinstance(entry, str)]

    @property
    def params(self) -> dict[str, object]:
        """The `<param name>` values merged, later ones winning as they do in the node."""
        merged: dict[str, object] = {}
        for entry in self.parameters:
            if isinstance(entry, dict):
                merged.update(entry)
        return merged

    @property
    def qualified_name(self) -> str | None:
        """`/namespace/name` when the launch file gives both (the key of its parameter files), else None."""
        if self.name is None or self.namespace is None:
            return None
        return prefix_namespace(self.namespace, self.name)


@dataclass
class IncludeSpec:
    """An `<include>` listed instead of followed: the file and the arguments given to it."""

    file: str
    arguments: dict[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass
class DeclaredArgument:
    """A launch argument as `ros2 launch --show-args` lists it."""

    name: str
    default: Parts | None
    description: str
    conditional: bool
    # The includes the real launch consults for it when checking required arguments (shared between them).
    includes: list[Include] | None = None


@dataclass
class LaunchPlan:
    """The nodes a launch file starts, its arguments (as `--show-args` lists them), includes not followed."""

    nodes: list[NodeSpec] = field(default_factory=list)
    arguments: list[DeclaredArgument] = field(default_factory=list)
    includes: list[IncludeSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


FollowInclude = Callable[[str], bool]


def follow_every_include(file: str) -> bool:
    """The default: every `<include>` is read and run."""
    return True


def prefix_namespace(base: str | None, namespace: str | None) -> str | None:
    """`namespace` under `base` unless it is absolute; trailing slashes dropped (launch_ros's rule)."""
    if namespace is None:
        combined = base
    elif not base or namespace.startswith("/"):
        combined = namespace
    else:
        combined = ("" if base == "/" else base) + "/" + namespace
    return combined if combined in (None, "/") else combined.rstrip("/")


def absolute_namespace(namespace: str | None) -> str | None:
    """A relative namespace made absolute (`a` is `/a`), as launch_ros does before passing it."""
    return namespace if namespace is None or namespace.startswith("/") else "/" + namespace


def command_line(parts: Parts) -> list[Parts]:
    """Splits an `args` attribute as the real launch does: text by shell rules, substitutions joined to it."""
    # A substitution stays part of the argument it touches, so a substituted value with spaces is one argument.
    result: list[Parts] = []
    current: list[Part] = []
    for part in parts:
        if not isinstance(part, str):
            current.append(part)
            continue
        tokens = shlex.split(part)
        if not tokens:
            result.append(tuple(current))
            current = []
            continue
        if part[0].isspace() and current:
            result.append(tuple(current))
            current = []
        current.append(tokens[0])
        if len(tokens) > 1:
            result.append(tuple(current))
            result.extend((token,) for token in tokens[1:-1])
            current = [tokens[-1]]
        if part[-1].isspace():
            result.append(tuple(current))
            current = []
    if current:
        result.append(tuple(current))
    return result


class _Entity:
    """An XML element read the way the real frontend reads it: every attribute and child must be used."""

    def __init__(self, element: ET.Element, file: str) -> None:
        self.element = element
        self.file = file
        self.read: set[str] = set()
        self.read_children: set[str] = set()

    @property
    def tag(self) -> str:
        """The element's name."""
        return self.element.tag

    def error(self, message: str) -> LaunchError:
        """An error naming the file and the element."""
        return LaunchError(f"{self.file}: <{self.tag}>: {message}")

    def attr(self, name: str, optional: bool = False) -> str | None:
        """An attribute's text, marked as read; None if `optional` and absent."""
        if f"{name}-sep" in self.element.attrib:
            raise self.error(f"`{name}-sep` is not supported by rt-launch; use ros2 launch")
        if name in self.element.attrib:
            self.read.add(name)
            return self.element.attrib[name]
        if optional:
            return None
        raise self.error(f"Attribute '{name}' of type '<class 'str'>' not found in Entity '{self.tag}'")

    def subs(self, name: str, optional: bool = False) -> Parts | None:
        """An attribute parsed into text and substitutions; None if `optional` and absent."""
        text = self.attr(name, optional)
        if text is None:
            return None
        try:
            return parse_substitutions(text)
        except LaunchError as exc:
            raise self.error(f"{name}={text!r}: {exc}") from exc

    def flag(self, name: str) -> bool | None:
        """A boolean attribute as the real frontend reads it: YAML booleans, `1`, `0`; other non-empty text is true."""
        text = self.attr(name, optional=True)
        if text is None:
            return None
        value = coerce(text, (bool, False), lenient=True)
        return value if isinstance(value, bool) else bool(value)

    def children(self, tag: str | None = None) -> list[_Entity]:
        """The child elements (those named `tag`), marked as read."""
        elements = [child for child in self.element if tag is None or child.tag == tag]
        self.read_children |= {child.tag for child in elements}
        return [_Entity(child, self.file) for child in elements]

    def condition(self) -> Condition | None:
        """The element's `if` or `unless` (both at once are refused, as in the real launch)."""
        if_text, unless_text = self.subs("if", optional=True), self.subs("unless", optional=True)
        if if_text is not None and unless_text is not None:
            raise self.error("if and unless conditions can't be used simultaneously")
        if if_text is None and unless_text is None:
            return None
        return Condition(if_text if unless_text is None else unless_text, unless=unless_text is not None)

    def finish(self) -> None:
        """Refuses attributes and children nothing read (rt-launch's message for ones outside its subset)."""
        tags = {child.tag for child in self.element} - self.read_children
        if tags:
            raise self.error(f"Unexpected nested tag(s) found in `{self.tag}`: {tags}")
        attributes = set(self.element.attrib) - self.read
        outside = attributes & set(ATTRIBUTES_OUTSIDE_SUBSET.get(self.tag, ()))
        if outside:
            raise self.error(f"attribute(s) {sorted(outside)} not supported by rt-launch; use ros2 launch")
        if attributes:
            raise self.error(f"Unexpected attribute(s) found in `{self.tag}`: {attributes}")


def read_launch_file(path: str) -> LaunchFile:
    """Parses an XML launch file into actions; LaunchError names the file and element that cannot be run."""
    if not path.endswith((".xml", ".launch")):
        raise LaunchError(f"{path}: only XML launch files can run without `ros2 launch`")
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise LaunchError(f"{path}: {exc.strerror}") from exc
    except ET.ParseError as exc:
        raise LaunchError(f"{path}: {exc}") from exc
    if root.tag != "launch":
        raise LaunchError(f"{path}: Expected 'launch' as root tag")
    names: set[str] = set()
    actions = [_action(entity, names) for entity in _Entity(root, path).children()]
    return LaunchFile(actions, names, root.get("deprecated"))


def _action(entity: _Entity, names: set[str]) -> Action:
    """One element of a launch file (or of a group) as an action."""
    tag = entity.tag
    if tag in ELEMENTS_OUTSIDE_SUBSET:
        raise entity.error("not supported by rt-launch; use ros2 launch")
    if tag not in _READERS:
        raise LaunchError(f"{entity.file}: Unrecognized entity of the type: {tag}")
    action = _READERS[tag](entity, entity.condition(), names)
    entity.finish()
    return action


def _arg(entity: _Entity, condition: Condition | None, names: set[str]) -> Arg:
    """`<arg>`: name and description with escapes resolved, the description extended by its choices."""
    name = unescape(entity.attr("name"))
    default = entity.subs("default", optional=True)
    description = entity.attr("description", optional=True)
    choices = [unescape(choice.attr("value")) for choice in entity.children("choice")] or None
    if description is None:
        description = "no description given" if choices is None else f"One of: {choices}"
    else:
        description = unescape(description)
        if choices is not None:
            description += ("" if description.endswith(".") else ".") + f" Valid choices are: {choices}"
    names.add(name)
    return Arg(condition, name, default, description, choices)


def _let(entity: _Entity, condition: Condition | None, names: set[str]) -> Let:
    """`<let name value>`."""
    return Let(condition, entity.subs("name"), entity.subs("value"))


def _pairs(entities: list[_Entity], first: str, second: str) -> list[tuple[Parts, Parts]]:
    """Children with two attributes each (`<arg name value>`, `<remap from to>`, ...), nothing else allowed."""
    pairs = []
    for entity in entities:
        pairs.append((entity.subs(first), entity.subs(second)))
        entity.finish()
    return pairs


def _include(entity: _Entity, condition: Condition | None, names: set[str]) -> Include:
    """`<include file>` with its `<arg name value>` children (which take no condition)."""
    file = entity.subs("file")
    return Include(condition, file, _pairs(entity.children("arg"), "name", "value"), entity.file)


def _group(entity: _Entity, condition: Condition | None, names: set[str]) -> Group:
    """`<group>`: its `<keep>` children and its actions."""
    scoped, forwarding = entity.flag("scoped"), entity.flag("forwarding")
    keep = _pairs(entity.children("keep"), "name", "value")
    actions = [_action(child, names) for child in entity.children() if child.tag != "keep"]
    return Group(condition, actions, scoped is not False, forwarding is not False, keep)


def _push_namespace(entity: _Entity, condition: Condition | None, names: set[str]) -> PushNamespace:
    """`<push-ros-namespace namespace>`."""
    return PushNamespace(condition, entity.subs("namespace"))


def _node(entity: _Entity, condition: Condition | None, names: set[str]) -> Node:
    """`<node>` with `param`, `remap` and `env` children; `output` is read, unused (rt-launch prints it all)."""
    on_exit = entity.attr("on_exit", optional=True)
    if on_exit not in (None, "shutdown"):
        raise entity.error(
            f"Attribute on_exit of Entity node expected to be shutdown but got `{on_exit}`"
            "Other on_exit actions not yet supported"
        )
    entity.subs("output", optional=True)
    args, ros_args = entity.subs("args", optional=True), entity.subs("ros_args", optional=True)
    try:
        arguments = [] if args is None else command_line(args)
        ros_arguments = None if ros_args is None else command_line(ros_args)
    except ValueError as exc:
        raise entity.error(f"args: {exc}") from exc
    return Node(
        condition=condition,
        package=entity.subs("pkg", optional=True),
        executable=entity.subs("exec"),
        name=entity.subs("name", optional=True),
        namespace=entity.subs("namespace", optional=True),
        exec_name=entity.subs("exec_name", optional=True),
        args=arguments,
        ros_args=ros_arguments,
        parameters=[_param(param) for param in entity.children("param")],
        remaps=_pairs(entity.children("remap"), "from", "to"),
        env=_pairs(entity.children("env"), "name", "value"),
        shutdown_on_exit=on_exit == "shutdown",
        source=entity.file,
        written="/".join(entity.element.get(name) for name in ("pkg", "exec") if entity.element.get(name)),
    )


_READERS: dict[str, Callable[[_Entity, Condition | None, set[str]], Action]] = {
    "arg": _arg,
    "let": _let,
    "include": _include,
    "group": _group,
    "push-ros-namespace": _push_namespace,
    "push_ros_namespace": _push_namespace,
    "node": _node,
}


def _param(entity: _Entity) -> ParamFrom | ParamTree:
    """A `<param>` child of a node: a parameter file, or one element's name(s) and value(s)."""
    file, name = entity.attr("from", optional=True), entity.attr("name", optional=True)
    if file is not None and name is not None:
        raise entity.error("name and from attributes are mutually exclusive")
    if file is not None:
        parts = entity.subs("from")
        entity.finish()
        return ParamFrom(parts)
    if name is None:
        raise entity.error("param Entity should have name or from attribute")
    return _param_tree([entity])


def _param_tree(entities: list[_Entity]) -> ParamTree:
    """`<param name>` elements: each a value or nested `<param>`s (never both, nor a type with nested ones)."""
    tree: ParamTree = {}
    for entity in entities:
        name = entity.subs("name")
        type_text = entity.attr("type", optional=True)
        value = entity.attr("value", optional=True)
        nested = entity.children("param")
        entity.finish()
        if value is not None and nested:
            raise entity.error("nested parameters and value attributes are mutually exclusive")
        if type_text is not None and nested:
            raise entity.error("nested parameters and type attributes are mutually exclusive")
        if value is not None:
            tree[name] = _param_value(entity, value, type_text)
        elif nested:
            tree[name] = _param_tree(nested)
        else:
            raise entity.error("either a value attribute or nested params are needed")
    return tree


def _param_value(entity: _Entity, text: str, type_text: str | None) -> ParamValue:
    """A `value` read like the real frontend: converted by its type (leniently) before substitutions."""
    if type_text is not None and type_text not in TYPE_NAMES:
        raise entity.error(f"Got invalid type identifier '{type_text}'")
    kind = None if type_text is None else TYPE_NAMES[type_text]
    try:
        literal = coerce(text, kind, lenient=True)
    except ValueError as exc:
        raise entity.error(
            f"Attribute 'value' of Entity 'param' expected to be of type '{type_name(kind)}'."
            f"'{text}' can not be converted to one of those types"
        ) from exc
    try:
        if isinstance(literal, str):
            return ParamValue(_normalized(text_or_parts(literal), kind), kind)
        if isinstance(literal, list):
            items = [text_or_parts(item) if isinstance(item, str) else item for item in literal]
            if len({type(item) for item in items if not isinstance(item, tuple)}) > 1:
                raise LaunchError("The result is a non-uniform list")
            return ParamValue(_normalized(items, kind), kind)
        return ParamValue(_normalized(literal, kind), kind)
    except LaunchError as exc:
        raise entity.error(str(exc)) from exc


def _normalized(value: object, kind: ValueType | None) -> object:
    """Checks a value against its type as the real launch does when a node is described."""
    if isinstance(value, SCALARS):
        if not is_instance(value, kind):
            raise LaunchError(f"value='{value}' is not an instance of {type_name(kind)}")
        return value
    if isinstance(value, tuple):
        return value
    if kind is not None and not kind[1]:
        raise LaunchError(
            "The provided value resolves to a list, though the required type is a scalar. "
            f"Got value='{value}', data_type='{kind[0]}'."
        )
    scalars = {type(item) for item in value if not isinstance(item, tuple)}
    if value and not scalars:
        return value
    expected = None if kind is None else kind[0]
    for group, members in ((str, {str}), (bool, {bool}), (int, {int}), (float, {int, float})):
        if scalars <= members:
            if expected not in (None, group):
                raise LaunchError(f"Got a list of '{group}', expected a list of '{expected}'. value='{value}'")
            return [float(item) if group is float and not isinstance(item, tuple) else item for item in value]
    raise LaunchError(f"Input value is not an acceptable 'SomeValueType'.Got value='{value}'")


def declared_arguments(
    actions: Sequence[Action], load: Callable[[Include], list[Action] | None]
) -> list[DeclaredArgument]:
    """The arguments `ros2 launch --show-args` lists: declared here, in groups and in included files."""
    # As in the real launch: the first declaration of a name counts; an argument is conditional when it has a
    # condition or sits right inside a group that has one; included files are read without any launch
    # configuration set (one whose path needs one is not seen); nothing after a group's reset of launch
    # configurations (`forwarding="false"`) is seen.
    found: list[DeclaredArgument] = []
    _walk_declared(actions, load, found, conditional=False, includes=None)
    return found


def _walk_declared(
    actions: Sequence[Action],
    load: Callable[[Include], list[Action] | None],
    found: list[DeclaredArgument],
    conditional: bool,
    includes: list[Include] | None,
) -> None:
    """declared_arguments' walk; `includes` is the list shared by the includes under one top include."""
    for action in actions:
        if isinstance(action, Arg):
            if all(argument.name != action.name for argument in found):
                is_conditional = conditional or action.condition is not None
                found.append(
                    DeclaredArgument(action.name, action.default, action.description, is_conditional, includes)
                )
        elif isinstance(action, Group) and (action.forwarding or not action.scoped):
            _walk_declared(action.actions, load, found, action.condition is not None, includes)
        elif isinstance(action, Include) and (included := load(action)) is not None:
            if includes is None:
                _walk_declared(included, load, found, False, [action])
            else:
                includes.append(action)
                _walk_declared(included, load, found, False, includes)


class _Launch:
    """One evaluation of a launch tree: the context substitutions read, and the plan being filled."""

    def __init__(self, package_prefix: PackagePrefix, follow: FollowInclude) -> None:
        self.package_prefix = package_prefix
        self.context = LaunchContext(package_prefix)
        self.follow = follow
        self.plan = LaunchPlan()
        self.files: dict[str, LaunchFile] = {}
        self.argument_names: set[str] = set()

    def read(self, location: str) -> LaunchFile:
        """The launch file at `location`, read once; its argument names join those seen."""
        if location not in self.files:
            self.files[location] = read_launch_file(location)
        self.argument_names |= self.files[location].argument_names
        return self.files[location]

    def load_without_context(self, include: Include) -> list[Action] | None:
        """The included file's actions as the real launch reads them for --show-args: None if unreadable."""
        try:
            location = LaunchContext(self.package_prefix).perform(include.file)
            return self.read(location).actions if self.follow(location) else None
        except LaunchError:
            return None

    def names_without_context(self, include: Include) -> list[str]:
        """An include's argument names evaluated without launch configurations ([] where that fails)."""
        try:
            return [LaunchContext(self.package_prefix).perform(name) for name, _ in include.arguments]
        except LaunchError:
            return []

    def include(self, location: str, arguments: Sequence[tuple[Parts, Parts]], source: str, top: bool = False) -> None:
        """An <include> once its file is known: configurations from its args, then the file in the same scope."""
        # The `top` file, which the command line includes, is read whatever `follow` says.
        launch_file = self.read(location) if top or self.follow(location) else None
        path = os.path.abspath(location)
        self.context.current_file = path
        self.context.current_dir = os.path.dirname(path) if os.path.exists(path) else location
        if launch_file is not None:
            self.check_required(launch_file, [self.context.perform(name) for name, _ in arguments])
        for name, value in arguments:
            self.context.configurations[self.context.perform(name)] = self.context.perform(value)
        if launch_file is None:
            given = {self.context.perform(name): self.context.perform(value) for name, value in arguments}
            self.plan.includes.append(IncludeSpec(location, given, source))
            return
        if launch_file.deprecated is not None:
            self.plan.warnings.append(f"launch file [{path}] is deprecated: {launch_file.deprecated}")
        self.run(launch_file.actions)

    def check_required(self, launch_file: LaunchFile, given: list[str]) -> None:
        """The real launch's check, at each include, that arguments without a default are given."""
        for argument in declared_arguments(launch_file.actions, self.load_without_context):
            if argument.conditional or argument.default is not None:
                continue
            for include in argument.includes or ():
                given.extend(self.names_without_context(include))
            if argument.name not in given:
                raise LaunchError(
                    f"Included launch description missing required argument '{argument.name}' "
                    f"(description: '{argument.description}'), given: [{', '.join(given)}]"
                )

    def enabled(self, condition: Condition | None) -> bool:
        """Whether an action runs: its condition must be true, false, 1 or 0 (any case, blanks ignored)."""
        if condition is None:
            return True
        text = self.context.perform(condition.expression).strip().lower()
        if text not in TRUE_STRINGS + FALSE_STRINGS:
            raise LaunchError(f"invalid condition expression, expected one of [true, 1, false, 0] but got '{text}'")
        return (text in TRUE_STRINGS) != condition.unless

    def run(self, actions: Sequence[Action]) -> None:
        """Runs actions in order, as the real launch visits them."""
        for action in actions:
            if not self.enabled(action.condition):
                continue
            if isinstance(action, Arg):
                self.declare(action)
            elif isinstance(action, Let):
                self.context.configurations[self.context.perform(action.name)] = self.context.perform(action.value)
            elif isinstance(action, Group):
                self.group(action)
            elif isinstance(action, PushNamespace):
                self.push_namespace(action)
            elif isinstance(action, Include):
                self.include(self.context.perform(action.file), action.arguments, action.source)
            else:
                self.plan.nodes.append(self.node(action))

    def declare(self, arg: Arg) -> None:
        """`<arg>`: the default unless set before (none and not set: an error); then its choices are checked."""
        configurations = self.context.configurations
        if arg.name not in configurations:
            if arg.default is None:
                raise LaunchError(f'Required launch argument "{arg.name}" was not provided.')
            configurations[arg.name] = self.context.perform(arg.default)
        if arg.choices is not None and configurations[arg.name] not in arg.choices:
            raise LaunchError(
                f'Argument "{arg.name}" provided value "{configurations[arg.name]}" is not valid. '
                f"Valid options are: {arg.choices}"
            )

    def group(self, group: Group) -> None:
        """`<group>`: a copy of the configurations (only the kept ones without forwarding) unless unscoped."""
        context = self.context
        saved = context.configurations
        if group.scoped and not group.forwarding:
            kept = {context.perform(name): context.perform(value) for name, value in group.keep}
            context.configurations = kept
        else:
            if group.scoped:
                context.configurations = dict(saved)
            for name, value in group.keep:
                context.configurations[context.perform(name)] = context.perform(value)
        try:
            self.run(group.actions)
        finally:
            if group.scoped:
                context.configurations = saved

    def push_namespace(self, push: PushNamespace) -> None:
        """`<push-ros-namespace>`: the `ros_namespace` launch configuration, prefixed by the one before."""
        from rclpy.validate_namespace import validate_namespace

        pushed = self.context.perform(push.namespace)
        previous = self.context.configurations.get("ros_namespace")
        namespace = absolute_namespace(prefix_namespace(previous, pushed))
        try:
            validate_namespace(namespace)
        except Exception as exc:
            raise LaunchError(
                f"The resulting namespace is invalid: [previous_namespace='{previous}', pushed_namespace='{pushed}']"
            ) from exc
        self.context.configurations["ros_namespace"] = namespace

    def node(self, node: Node) -> NodeSpec:
        """Evaluates a `<node>` in the order the real launch does, naming the node in any error."""
        try:
            return self._node(node)
        except LaunchError as exc:
            raise LaunchError(f"{node.source}: <node {node.written}>: {exc}") from exc

    def _node(self, node: Node) -> NodeSpec:
        """Name, namespace, parameters, remaps, package, arguments: each evaluated in that order."""
        from rclpy.exceptions import InvalidNamespaceException, InvalidNodeNameException
        from rclpy.validate_namespace import validate_namespace
        from rclpy.validate_node_name import validate_node_name

        perform = self.context.perform
        spec = NodeSpec(package=None, executable="", shutdown_on_exit=node.shutdown_on_exit, source=node.source)
        try:
            if node.name is not None:
                spec.name = perform(node.name)
                validate_node_name(spec.name)
            namespace = None if node.namespace is None else perform(node.namespace)
            spec.namespace = absolute_namespace(
                prefix_namespace(self.context.configurations.get("ros_namespace"), namespace)
            )
            if spec.namespace is not None:
                validate_namespace(spec.namespace)
        except (InvalidNodeNameException, InvalidNamespaceException) as exc:
            raise LaunchError(str(exc)) from exc
        for entry in node.parameters:
            if isinstance(entry, ParamFrom):
                path = str(Path(perform(entry.file)))
                if os.path.isfile(path):
                    spec.parameters.append(path)
                else:
                    self.plan.warnings.append(f"Parameter file path is not a file: {path}")
            else:
                spec.parameters.append(self.param_values(entry))
        spec.remaps = [(perform(source), perform(target)) for source, target in node.remaps]
        spec.executable = perform(node.executable)
        if node.package is not None:
            spec.package = perform(node.package)
            spec.package_prefix = self.package_prefix(spec.package)
        spec.args = [perform(arg) for arg in node.args]
        spec.ros_args = None if node.ros_args is None else [perform(arg) for arg in node.ros_args]
        spec.exec_name = None if node.exec_name is None else perform(node.exec_name)
        spec.env = {perform(name): perform(value) for name, value in node.env}
        return spec

    def param_values(self, tree: ParamTree, prefix: str = "") -> dict[str, object]:
        """One `<param name>` element's values, nested names joined with `.`."""
        values: dict[str, object] = {}
        for name_parts, entry in tree.items():
            name = prefix + self.context.perform(name_parts)
            if isinstance(entry, dict):
                values.update(self.param_values(entry, name + "."))
            else:
                try:
                    values[name] = self.typed(entry)
                except ValueError as exc:
                    raise LaunchError(f"parameter {name}: {exc}") from exc
        return values

    def typed(self, param: ParamValue) -> object:
        """A parameter's value once its substitutions are evaluated, converted to its type."""
        value, kind = param.value, param.kind
        if isinstance(value, SCALARS):
            if kind is not None and not is_instance(value, kind):
                raise LaunchError(f"value=`{value}` is a scalar and not an instance of `{type_name(kind)}`")
            return value
        if isinstance(value, tuple):
            return coerce(self.context.perform(value), kind, lenient=False)
        if kind is not None and not kind[1]:
            raise LaunchError(
                "The input value is a list, cannot convert it to a scalar. "
                f"Got value='{value}', expected type {kind[0]}."
            )
        item_kind = None if kind is None else (kind[0], False)
        items = [
            coerce(self.context.perform(item), item_kind, lenient=False) if isinstance(item, tuple) else item
            for item in value
        ]
        if not is_instance(items, kind):
            raise LaunchError(
                "The output list is not uniform"
                if kind is None
                else f"The output list does not match the expected type Got value='{value}', expected type {kind[0]}."
            )
        return items


def launch_arguments(
    path: str | Path, package_prefix: PackagePrefix = ament_package_prefix, follow: FollowInclude = follow_every_include
) -> list[DeclaredArgument]:
    """The arguments of a launch file and the files it includes, as `ros2 launch --show-args` lists them."""
    launch = _Launch(package_prefix, follow)
    return declared_arguments(launch.read(str(path)).actions, launch.load_without_context)


def load_launch(
    path: str | Path,
    arguments: dict[str, str] | None = None,
    package_prefix: PackagePrefix = ament_package_prefix,
    follow: FollowInclude = follow_every_include,
) -> LaunchPlan:
    """The node plan of the launch file at `path` with `arguments`, as `ros2 launch` would run it."""
    # An <include> of a file that `follow` rejects is listed in `plan.includes`, not read. Stricter than
    # `ros2 launch`, which ignores them: an argument declared nowhere in the tree of included files is an error
    # (a typo would otherwise silently run with the default).
    arguments = dict(arguments or {})
    launch = _Launch(package_prefix, follow)
    location = str(path)
    launch.plan.arguments = declared_arguments(launch.read(location).actions, launch.load_without_context)
    given = [((name,), (value,)) for name, value in arguments.items()]
    failure: LaunchError | None = None
    try:
        launch.include(location, given, "the command line", top=True)
    except LaunchError as exc:
        failure = exc
    known = launch.argument_names | {argument.name for argument in launch.plan.arguments}
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise LaunchError(
            f"{location}: no such launch argument(s): {', '.join(unknown)} (declared nowhere in it or the files "
            "it includes; rt-launch refuses what ros2 launch would ignore)"
        ) from failure
    if failure is not None:
        raise failure
    return launch.plan
