"""Checks of every bringup file that need neither Gazebo nor `ros2 launch`.

Launch files of rt_bringup and rt_gazebo: well-formed, every `$(var)` declared, interpretable by rt-launch's
launch_xml (includes of other packages' launch files are listed, not followed), every node an installed
executable of ours or an exec_depend of the package owning the launch file, every parameter file present
and naming only parameters its node declares. Declared names come from the nodes themselves: each of our
nodes is started as a real process with the command rt-launch would run and asked over
`~/list_parameters`, so a parameter that a node renames or stops declaring is caught (parsing the names
out of the source would miss names built at run time). Also checked: the ros_gz bridge config, the
controllers against the URDF's joints and ros2_control interfaces, the URDF in MuJoCo and pinocchio and
its Gazebo variant, the Gazebo world against the MuJoCo scene, and every robot profile.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import fields, is_dataclass
from pathlib import Path

import mujoco
import pinocchio as pin
import pytest
import yaml
from ament_index_python.packages import get_package_share_directory as ament_package_share
from harness import Probe, wait_for
from rcl_interfaces.srv import ListParameters

from rt_bringup import processes
from rt_bringup.launch_substitutions import LaunchError, ament_package_prefix
from rt_bringup.launch_xml import LaunchPlan, NodeSpec, load_launch
from rt_bringup.rt_launch import find_executable, node_command
from rt_gazebo.description import ANCHOR_JOINT, DescriptionError, gazebo_description, root_link
from rt_policy_node.policies.constant import ConstantPolicy, ConstantPolicyConfig
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.profile import RobotProfile, load_profile
from rt_sim import scene

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
OUR_PACKAGES = sorted(path.parent.name for path in SRC.glob("*/package.xml"))
LAUNCH_FILES = sorted(SRC.glob("*/launch/*.launch.xml"))
DESCRIPTION = SRC / "rt_description"
URDF = DESCRIPTION / "urdf" / "rt_mobile_manipulator.urdf"
CONTROLLERS = DESCRIPTION / "config" / "controllers.yaml"
PROFILES = sorted((DESCRIPTION / "profiles").glob("*.yaml"))
GENERIC_PROFILE = DESCRIPTION / "profiles" / "generic.yaml"
SIM_PROFILE = DESCRIPTION / "profiles" / "sim.yaml"
GAZEBO = SRC / "rt_gazebo"
BRIDGE = GAZEBO / "config" / "bridge.yaml"
BASE_RELAY = GAZEBO / "config" / "base_relay.yaml"
WORLD = GAZEBO / "worlds" / "rt_table.sdf"
GAZEBO_LAUNCH = GAZEBO / "launch" / "gazebo.launch.xml"

# The install prefix a package that is not installed here (Gazebo's, ros2_control's) claims.
NOT_INSTALLED = "/not-installed"
# Values for launch arguments that have no default, so that every launch file can be interpreted.
REQUIRED_ARGUMENT_VALUES = {"profile": str(GENERIC_PROFILE)}
NODE_START_TIMEOUT_S = 60.0

# ros_gz_bridge's YAML keys (bridge_config.cpp) and the type pairs of its mapping table (mappings.py) that
# a robot bringup uses.
BRIDGE_KEYS = {
    "topic_name",
    "ros_topic_name",
    "gz_topic_name",
    "ros_type_name",
    "gz_type_name",
    "direction",
    "publisher_queue",
    "subscriber_queue",
    "lazy",
    "qos_profile",
    "frame_id",
    "publish_optical_frame",
}
BRIDGE_DIRECTIONS = {"GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL"}
BRIDGE_PAIRS = {
    ("rosgraph_msgs/msg/Clock", "gz.msgs.Clock"),
    ("sensor_msgs/msg/Image", "gz.msgs.Image"),
    ("sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo"),
    ("sensor_msgs/msg/JointState", "gz.msgs.Model"),
    ("sensor_msgs/msg/Imu", "gz.msgs.IMU"),
    ("sensor_msgs/msg/LaserScan", "gz.msgs.LaserScan"),
    ("sensor_msgs/msg/PointCloud2", "gz.msgs.PointCloudPacked"),
    ("geometry_msgs/msg/Twist", "gz.msgs.Twist"),
    ("nav_msgs/msg/Odometry", "gz.msgs.Odometry"),
    ("tf2_msgs/msg/TFMessage", "gz.msgs.Pose_V"),
    ("trajectory_msgs/msg/JointTrajectory", "gz.msgs.JointTrajectory"),
    ("std_msgs/msg/Float64", "gz.msgs.Double"),
}
# Controller types whose command interface is implied by the type rather than listed.
IMPLIED_COMMAND_INTERFACE = {
    "position_controllers/": "position",
    "velocity_controllers/": "velocity",
    "effort_controllers/": "effort",
}


def package_prefix(package: str) -> str:
    try:
        return ament_package_prefix(package)
    except LaunchError:
        return NOT_INSTALLED


def package_share(package: str) -> str:
    return os.path.join(package_prefix(package), "share", package)


def ours(file: str) -> bool:
    """Launch files of our packages are followed; others' (e.g. ros_gz_sim's gz_sim.launch.py) are listed."""
    return any(Path(file).is_relative_to(package_share(package)) for package in OUR_PACKAGES)


def owner(file: str | Path) -> str:
    """The package a launch file belongs to: src/<pkg>/launch/x or share/<pkg>/launch/x."""
    return Path(file).parent.parent.name


def exec_depends(package: str) -> set[str]:
    return {e.text.strip() for e in ET.parse(SRC / package / "package.xml").getroot().iter("exec_depend")}


def read_yaml(path: str | Path) -> object:
    return yaml.safe_load(Path(path).read_text())


def argument_sets(path: Path) -> list[dict[str, str]]:
    """Defaults, then every boolean argument flipped, so that each if/unless on an argument runs both ways
    (a default `$(env NAME true)` counts as its fallback)."""
    declared = []
    for arg in ET.parse(path).getroot().findall("arg"):
        fallback = re.fullmatch(r"\$\(env \S+ (\w+)\)", arg.get("default") or "")
        declared.append((arg.get("name"), fallback.group(1) if fallback else arg.get("default")))
    required = {}
    for name, default in declared:
        if default is None:
            assert name in REQUIRED_ARGUMENT_VALUES, f"{path}: add a test value for required argument {name!r}"
            required[name] = REQUIRED_ARGUMENT_VALUES[name]
    flipped = {
        name: "false" if default.lower() == "true" else "true"
        for name, default in declared
        if default is not None and default.lower() in ("true", "false")
    }
    return [required, {**required, **flipped}] if flipped else [required]


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory) -> str:
    """A constant-policy checkpoint, so that rt_policy starts without a model."""
    path = tmp_path_factory.mktemp("policy")
    ConstantPolicy(ConstantPolicyConfig()).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def plans(policy_path) -> dict[Path, list[LaunchPlan] | Exception]:
    """Every launch file interpreted under each of its argument sets (or the error that stopped it)."""
    result: dict[Path, list[LaunchPlan] | Exception] = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RT_POLICY_PATH", policy_path)
        # Arguments defaulting to `$(env NAME fallback)` take the fallback, which argument_sets flips.
        env.delenv("RT_ROBOT_STATE_PUBLISHER", raising=False)
        for path in LAUNCH_FILES:
            try:
                result[path] = [load_launch(path, args, package_prefix, follow=ours) for args in argument_sets(path)]
            except (LaunchError, AssertionError, subprocess.CalledProcessError, OSError) as err:
                result[path] = err
    return result


def plans_of(plans: dict, path: Path) -> list[LaunchPlan]:
    if isinstance(plans[path], Exception):
        pytest.fail(f"{path} cannot be interpreted: {plans[path]}")
    return plans[path]


# -- launch files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_launch_file_is_well_formed_and_declares_every_var(path):
    root = ET.parse(path).getroot()
    assert root.tag == "launch"
    declared = {e.get("name") for e in root.iter("arg") if e.get("value") is None} | {
        e.get("name") for e in root.iter("let")
    }
    used = set()
    for element in root.iter():
        for text in [*element.attrib.values(), element.text or ""]:
            used |= set(re.findall(r"\$\(var\s+([^)\s]+)\s*\)", text))
    assert used <= declared, f"{path}: $(var) of undeclared arguments {sorted(used - declared)}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_launch_file_names_only_nodes_that_exist_or_are_dependencies(plans, path):
    problems = []
    for plan in plans_of(plans, path):
        for spec in plan.nodes:
            package = owner(spec.source)
            if spec.package in OUR_PACKAGES:
                try:
                    find_executable(spec)
                except LaunchError:
                    problems.append(f"{spec.package}/{spec.executable} is not an installed executable (make setup?)")
            elif spec.package not in exec_depends(package):
                problems.append(f"{spec.package} (node {spec.name}) is not an exec_depend of {package}")
        for include in plan.includes:
            depends = exec_depends(owner(include.source))
            if not any(include.file.startswith(package_share(p) + "/") for p in depends):
                problems.append(f"include {include.file} is of no exec_depend of {owner(include.source)}")
            for value in include.arguments.values():
                files = [t for t in value.split() if t.startswith("/") and Path(t).suffix in (".sdf", ".yaml", ".xml")]
                problems += [
                    f"include {include.file} is given {f}, which does not exist" for f in files if not Path(f).is_file()
                ]
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_launch_file_parameter_files_exist_and_parse(plans, path):
    for plan in plans_of(plans, path):
        for spec in plan.nodes:
            for param_file in spec.param_files:
                assert Path(param_file).is_file(), f"{spec.name}: parameter file {param_file} does not exist"
                content = read_yaml(param_file)
                assert isinstance(content, dict), f"{param_file}: expected a mapping of node names"
                for key, section in content.items():
                    assert isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict), (
                        f"{param_file}: {key!r} has no ros__parameters mapping"
                    )
            for name, value in spec.params.items():
                if (
                    isinstance(value, str)
                    and value.startswith("/")
                    and Path(value).suffix in (".yaml", ".sdf", ".urdf", ".xml")
                ):
                    assert Path(value).is_file(), f"{spec.name}: parameter {name} names {value}, which does not exist"


def fully_qualified(spec: NodeSpec) -> str:
    return f"{(spec.namespace or '').rstrip('/')}/{spec.name}"


def section_applies(key: str, node: str) -> bool:
    """rcl's matching of a parameter file's node key: `/**` and `*` wildcards, the leading `/` optional."""
    pattern = re.escape("/" + key.lstrip("/")).replace(r"/\*\*", "(/[^/]+)*").replace(r"\*", "[^/]+")
    return re.fullmatch(pattern, node) is not None


def flatten(parameters: dict, prefix: str = "") -> set[str]:
    names = set()
    for key, value in parameters.items():
        name = f"{prefix}{key}"
        names |= flatten(value, f"{name}.") if isinstance(value, dict) else {name}
    return names


def names_set_by(spec: NodeSpec) -> set[str]:
    """Every parameter the launch file gives the node: from its parameter files and its <param> elements."""
    names = set(spec.params)
    for param_file in spec.param_files:
        for key, section in read_yaml(param_file).items():
            if section_applies(key, fully_qualified(spec)):
                names |= flatten(section["ros__parameters"])
    return names


class Started:
    """Our nodes as real processes (rt_bringup.processes), run in `workdir` (relative output paths land there)
    and all stopped."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: list[tuple[NodeSpec, processes.Child]] = []

    def start(self, spec: NodeSpec) -> None:
        """Runs the command rt-launch would run for `spec`."""
        log = self.workdir / f"{len(self.nodes)}_{spec.name}.log"
        command = node_command(spec, find_executable(spec), self.workdir)
        self.nodes.append((spec, processes.start(spec.label, command, log=log, cwd=self.workdir)))

    def stop(self) -> None:
        processes.stop([child for _, child in self.nodes], ((signal.SIGINT, 15.0), (signal.SIGKILL, None)))


def declared_parameters(probe: Probe, spec: NodeSpec, process: subprocess.Popen, log: Path) -> set[str]:
    """The node's parameter names, over its ~/list_parameters service; AssertionError if it never answers."""
    client = probe.node.create_client(ListParameters, f"{fully_qualified(spec)}/list_parameters")
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while not client.service_is_ready():
        if process.poll() is not None:
            raise AssertionError(
                f"{spec.package}/{spec.executable} exited with {process.returncode}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{fully_qualified(spec)} offers no list_parameters after {NODE_START_TIMEOUT_S} s")
        time.sleep(0.05)
    future = client.call_async(ListParameters.Request())
    wait_for(future.done, 10.0, f"{fully_qualified(spec)}/list_parameters")
    return set(future.result().result.names)


def test_our_nodes_declare_every_parameter_their_launch_files_set(plans, tmp_path):
    """Each distinct (node, parameter files, parameter names) of ours, started once: no unknown parameter."""
    specs: dict[tuple, NodeSpec] = {}
    for path in LAUNCH_FILES:
        for plan in plans_of(plans, path):
            for spec in plan.nodes:
                if spec.package in OUR_PACKAGES:
                    specs.setdefault((fully_qualified(spec), tuple(spec.param_files), tuple(sorted(spec.params))), spec)
    assert specs, "no node of ours in any launch file"
    # Two nodes with one name would answer each other's service calls: start them in separate rounds.
    rounds: list[list[NodeSpec]] = []
    for spec in specs.values():
        free = next((r for r in rounds if fully_qualified(spec) not in map(fully_qualified, r)), None)
        if free is None:
            free = []
            rounds.append(free)
        free.append(spec)
    problems = []
    probe = Probe("bringup_checks")
    try:
        for number, specs_of_round in enumerate(rounds):
            workdir = tmp_path / f"round{number}"
            workdir.mkdir()
            started = Started(workdir)
            try:
                for spec in specs_of_round:
                    started.start(spec)
                for spec, child in started.nodes:
                    try:
                        unknown = names_set_by(spec) - declared_parameters(probe, spec, child.process, child.log)
                    except AssertionError as err:
                        problems.append(str(err))
                        continue
                    if unknown:
                        problems.append(f"{fully_qualified(spec)} does not declare {sorted(unknown)} ({spec.source})")
            finally:
                started.stop()
    finally:
        probe.close()
    assert not problems, "\n".join(problems)


# -- Gazebo: bridge, controllers, robot description, world ----------------------------------------


def test_bridge_config_has_valid_entries():
    entries = read_yaml(BRIDGE)
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert set(entry) <= BRIDGE_KEYS, f"unknown bridge keys {sorted(set(entry) - BRIDGE_KEYS)}"
        assert {"ros_type_name", "gz_type_name", "direction"} <= set(entry)
        assert "topic_name" in entry or {"ros_topic_name", "gz_topic_name"} & set(entry)
        assert entry["direction"] in BRIDGE_DIRECTIONS
        package, kind, name = entry["ros_type_name"].split("/")
        assert kind == "msg" and hasattr(importlib.import_module(f"{package}.msg"), name), entry["ros_type_name"]
        assert re.fullmatch(r"gz\.msgs\.\w+", entry["gz_type_name"]), entry["gz_type_name"]
        assert (entry["ros_type_name"], entry["gz_type_name"]) in BRIDGE_PAIRS, "ros_gz_bridge has no such mapping"
    camera_topics = [sensor.findtext("topic") for sensor in ET.parse(URDF).getroot().iter("sensor")]
    images = [e for e in entries if e["ros_type_name"] == "sensor_msgs/msg/Image"]
    assert [e["gz_topic_name"] for e in images] == camera_topics, "the bridge must carry the URDF camera's topic"
    assert {"/clock"} <= {e.get("ros_topic_name") for e in entries}


def ros2_control_interfaces(robot: ET.Element) -> dict[str, tuple[set[str], set[str]]]:
    """joint -> (command interfaces, state interfaces) of the URDF's <ros2_control> blocks."""
    interfaces = {}
    for block in robot.iter("ros2_control"):
        for joint in block.iter("joint"):
            commands = {c.get("name") for c in joint.iter("command_interface")}
            states = {s.get("name") for s in joint.iter("state_interface")}
            interfaces[joint.get("name")] = (commands, states)
    return interfaces


def test_controllers_match_the_urdf_and_the_profiles():
    robot = ET.parse(URDF).getroot()
    joints = {j.get("name") for j in robot.findall("joint")}
    interfaces = ros2_control_interfaces(robot)
    controllers = {
        name: section["ros__parameters"]
        for name, section in read_yaml(CONTROLLERS).items()
        if name != "controller_manager"
    }
    assert {"joint_state_broadcaster", "arm_controller", "gripper_controller", "base_controller"} <= set(controllers)
    for name, params in controllers.items():
        assert "type" in params, f"{name} has no type"
        implied = [i for prefix, i in IMPLIED_COMMAND_INTERFACE.items() if params["type"].startswith(prefix)]
        for joint in params.get("joints", []):
            assert joint in joints, f"{name}: joint {joint} is not in the URDF"
            assert joint in interfaces, f"{name}: joint {joint} has no <ros2_control> interfaces"
            commands, states = interfaces[joint]
            missing = set(params.get("command_interfaces", implied)) - commands
            assert not missing, f"{name}: {joint} has no command interface {sorted(missing)} in <ros2_control>"
            missing = set(params.get("state_interfaces", [])) - states
            assert not missing, f"{name}: {joint} has no state interface {sorted(missing)} in <ros2_control>"
    profile = load_profile(SIM_PROFILE, ament_package_share)
    assert set(profile.arm_joints) == set(controllers["arm_controller"]["joints"])
    assert set(profile.gripper_joints) == set(controllers["gripper_controller"]["joints"])
    relay = read_yaml(BASE_RELAY)["rt_gz_base_relay"]["ros__parameters"]
    assert relay["base_joints"] == controllers["base_controller"]["joints"], "[vx, vy, wz] follow base_joints' order"


def test_urdf_loads_in_mujoco_and_pinocchio():
    moving = [j.get("name") for j in ET.parse(URDF).getroot().findall("joint") if j.get("type") != "fixed"]
    model = mujoco.MjModel.from_xml_path(str(URDF))
    assert [model.joint(i).name for i in range(model.njnt)] == moving
    assert list(pin.buildModelFromUrdf(str(URDF)).names[1:]) == moving


def test_gazebo_description_is_anchored_and_points_at_the_controllers(plans):
    text = gazebo_description(URDF, CONTROLLERS)
    assert "\n" not in text and yaml.safe_load(text) == text, "ros2 launch must read it as one plain string"
    robot = ET.fromstring(text)
    assert root_link(robot, URDF) == "world"
    anchor = next(j for j in robot.findall("joint") if j.get("name") == ANCHOR_JOINT)
    odom = root_link(ET.parse(URDF).getroot(), URDF)
    assert (anchor.get("type"), anchor.find("child").get("link")) == ("fixed", odom)
    assert next(link for link in robot.findall("link") if link.get("name") == odom).find("inertial") is not None
    assert [p.text for p in robot.iter("parameters")] == [str(CONTROLLERS)]
    assert pin.buildModelFromXML(text).nq == pin.buildModelFromUrdf(str(URDF)).nq
    # The launch file makes robot_description with the same tool, from the installed files.
    publisher = next(n for p in plans_of(plans, GAZEBO_LAUNCH) for n in p.nodes if n.name == "robot_state_publisher")
    installed = Path(package_share("rt_description"))
    expected = gazebo_description(installed / "urdf" / URDF.name, installed / "config" / CONTROLLERS.name)
    assert publisher.params["robot_description"] == expected


def test_gazebo_description_rejects_a_urdf_without_the_plugin(tmp_path):
    robot = ET.parse(URDF).getroot()
    for gazebo in robot.findall("gazebo"):
        robot.remove(gazebo)
    bare = tmp_path / "bare.urdf"
    ET.ElementTree(robot).write(bare)
    with pytest.raises(DescriptionError, match="gz_ros2_control"):
        gazebo_description(bare, CONTROLLERS)
    result = subprocess.run(
        ["python3", "-m", "rt_gazebo.description", str(bare), "--controllers", str(CONTROLLERS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "gz_ros2_control" in result.stderr and not result.stdout


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def test_gazebo_world_matches_the_mujoco_scene(plans):
    models = {m.get("name"): m for m in ET.parse(WORLD).getroot().iter("model")}
    table = models["table"]
    assert floats(table.findtext("pose"))[:2] == pytest.approx(scene.TABLE_CENTRE)
    top = next(v for v in table.iter("visual") if v.get("name") == "table_top")
    assert floats(top.findtext("geometry/box/size")) == pytest.approx([*scene.TABLE_SIZE, scene.TABLE_TOP_THICKNESS])
    assert floats(top.findtext("pose"))[2] == pytest.approx(scene.TABLE_HEIGHT - scene.TABLE_TOP_THICKNESS / 2)
    top_collision = next(c for c in table.iter("collision") if c.get("name") == "table_top")
    assert float(top_collision.findtext("surface/friction/ode/mu")) == pytest.approx(scene.TABLE_FRICTION[0])
    for colour, rgba in scene.COLOURS.items():
        cube = models[scene.cube_name(colour)]
        x, y, z = floats(cube.findtext("pose"))[:3]
        assert (
            scene.CUBE_REGION_X[0] <= x <= scene.CUBE_REGION_X[1]
            and scene.CUBE_REGION_Y[0] <= y <= scene.CUBE_REGION_Y[1]
        )
        assert z == pytest.approx(scene.TABLE_HEIGHT + scene.CUBE_SIZE / 2)
        assert floats(cube.findtext("link/visual/geometry/box/size")) == pytest.approx([scene.CUBE_SIZE] * 3)
        assert floats(cube.findtext("link/collision/geometry/box/size")) == pytest.approx([scene.CUBE_SIZE] * 3)
        assert float(cube.findtext("link/inertial/mass")) == pytest.approx(scene.CUBE_MASS)
        assert float(cube.findtext("link/collision/surface/friction/ode/mu")) == pytest.approx(scene.CUBE_FRICTION[0])
        assert floats(cube.findtext("link/visual/material/diffuse")) == pytest.approx(rgba)
        marker = models[scene.marker_name(colour)]
        assert float(marker.findtext("link/visual/geometry/cylinder/radius")) == pytest.approx(scene.MARKER_RADIUS)
        assert floats(marker.findtext("link/visual/material/diffuse")) == pytest.approx(rgba)
    x = next(argument for argument in plans_of(plans, GAZEBO_LAUNCH)[0].arguments if argument.name == "x")
    assert float(x.default[0]) == pytest.approx(scene.WORK_BASE_X), "spawn where the MuJoCo tasks work"


# -- robot profiles -------------------------------------------------------------------------------


def profile_keys(cls: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in fields(cls):
        nested = f.default_factory if is_dataclass(f.default_factory) else None
        keys |= profile_keys(nested, f"{prefix}{f.name}.") if nested else {f"{prefix}{f.name}"}
    return keys


def commented_keys(path: Path) -> set[str]:
    """YAML keys with a comment on their line, or in a paragraph (no blank line) that a comment opens."""
    keys, in_commented_paragraph = set(), False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            in_commented_paragraph = bool(stripped)
            continue
        key = re.match(r"(\w+):", stripped)
        if key and (in_commented_paragraph or "#" in line):
            keys.add(key.group(1))
    return keys


def test_generic_profile_documents_every_field():
    fields_of_format = profile_keys(RobotProfile)
    assert flatten(read_yaml(GENERIC_PROFILE)) == fields_of_format
    undocumented = {key.split(".")[-1] for key in fields_of_format} - commented_keys(GENERIC_PROFILE)
    assert not undocumented, f"fields without a comment in generic.yaml: {sorted(undocumented)}"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profile_loads_and_names_joints_of_its_urdf(path, tmp_path):
    urdf = str(read_yaml(path)["urdf"])
    if urdf.startswith("package://"):
        package, _, rest = urdf.removeprefix("package://").partition("/")
        available = (Path(ament_package_share(package)) / rest).is_file()
    else:
        available = (path.parent / urdf).is_file()
    if not available:
        # A real robot's URDF is exported on the robot (see the profile's comments): check everything else.
        shutil.copy(path, tmp_path / path.name)
        (tmp_path / urdf).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / urdf).write_text("")
        profile = load_profile(tmp_path / path.name, ament_package_share)
        assert profile.arm_joints and profile.gripper_joints
        return
    profile = load_profile(path, ament_package_share)
    model = pin.buildModelFromUrdf(str(profile.urdf))
    missing = [j for j in (*profile.arm_joints, *profile.gripper_joints) if not model.existJointName(j)]
    assert not missing, f"{path.name}: joints not in {profile.urdf}: {missing}"
    kinematics = ArmKinematics(profile.urdf, profile.arm_joints, profile.base_frame, profile.ee_frame)
    assert len(kinematics.arm_joints) == len(profile.arm_joints)
    lower, upper = kinematics.lower, kinematics.upper
    assert (lower < upper).all()
    limits = [model.upperPositionLimit[model.joints[model.getJointId(j)].idx_q] for j in profile.gripper_joints]
    assert max(profile.gripper_open, profile.gripper_closed) <= min(limits) + 1e-9, "gripper beyond its joint limit"
