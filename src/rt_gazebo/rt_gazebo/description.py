"""The Gazebo variant of the robot's one URDF, made at launch time: `python3 -m rt_gazebo.description`.

rt_description's URDF serves MuJoCo, pinocchio and robot_state_publisher as it is. Gazebo needs two more
things that a plain URDF file cannot hold, or that would change the robot for the others:

- an anchor: the root link (`odom`, the frame the planar base joints move in) welded to Gazebo's world
  and given a mass, because sdformat drops a massless root link together with everything below it;
- the gz_ros2_control plugin's `<parameters>`: the absolute path of the controllers YAML, which the
  plugin requires and which depends on where the workspace is installed.

The result is printed on one line without comments: `ros2 launch` reads parameter values as YAML, and a
comment holding ': ' would turn robot_description into a parse error.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

GZ_ROS2_CONTROL_PLUGIN = "gz_ros2_control::GazeboSimROS2ControlPlugin"
WORLD_LINK = "world"
ANCHOR_JOINT = "world_anchor_joint"
# The anchored root link is welded to the world: its inertia only has to be valid, not realistic.
ROOT_INERTIA = {"mass": 1.0, "inertia": 0.01}


class DescriptionError(ValueError):
    """A URDF that cannot be turned into the Gazebo description."""


def gazebo_description(urdf: Path, controllers: Path) -> str:
    """The URDF at `urdf`, anchored to the world, with gz_ros2_control reading `controllers`; one line."""
    if not controllers.is_file():
        raise DescriptionError(f"controllers file {controllers} does not exist")
    robot = ET.parse(urdf).getroot()
    if robot.tag != "robot":
        raise DescriptionError(f"{urdf}: the root element is <{robot.tag}>, expected <robot>")
    _anchor_root(robot, urdf)
    _point_plugin_at(robot, controllers.absolute(), urdf)
    for element in robot.iter():
        element.text = element.text if element.text and element.text.strip() else None
        element.tail = None
    text = ET.tostring(robot, encoding="unicode")
    if yaml.safe_load(text) != text:
        raise DescriptionError(f"{urdf}: the description would be read as YAML, not as a string (': ' or ' #'?)")
    return text


def root_link(robot: ET.Element, urdf: Path) -> str:
    """The one link that is no joint's child."""
    children = {joint.find("child").get("link") for joint in robot.findall("joint")}
    roots = [link.get("name") for link in robot.findall("link") if link.get("name") not in children]
    if len(roots) != 1:
        raise DescriptionError(f"{urdf}: expected one root link, found {roots}")
    return roots[0]


def _anchor_root(robot: ET.Element, urdf: Path) -> None:
    root = root_link(robot, urdf)
    if root == WORLD_LINK:
        return
    link = next(link for link in robot.findall("link") if link.get("name") == root)
    if link.find("inertial") is None:
        inertial = ET.SubElement(link, "inertial")
        ET.SubElement(inertial, "mass", value=str(ROOT_INERTIA["mass"]))
        i = str(ROOT_INERTIA["inertia"])
        ET.SubElement(inertial, "inertia", ixx=i, ixy="0", ixz="0", iyy=i, iyz="0", izz=i)
    joint = ET.Element("joint", name=ANCHOR_JOINT, type="fixed")
    ET.SubElement(joint, "parent", link=WORLD_LINK)
    ET.SubElement(joint, "child", link=root)
    robot.insert(0, ET.Element("link", name=WORLD_LINK))
    robot.insert(1, joint)


def _point_plugin_at(robot: ET.Element, controllers: Path, urdf: Path) -> None:
    """Sets the plugin's `<parameters>` to `controllers`, replacing any it had: the launch file decides."""
    plugins = [
        p for g in robot.findall("gazebo") for p in g.findall("plugin") if p.get("name") == GZ_ROS2_CONTROL_PLUGIN
    ]
    if len(plugins) != 1:
        raise DescriptionError(
            f"{urdf}: expected one <gazebo><plugin name={GZ_ROS2_CONTROL_PLUGIN!r}>, found {len(plugins)}"
        )
    (plugin,) = plugins
    for old in plugin.findall("parameters"):
        plugin.remove(old)
    ET.SubElement(plugin, "parameters").text = str(controllers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m rt_gazebo.description", description=__doc__.splitlines()[0])
    parser.add_argument("urdf", type=Path, help="the robot's URDF (rt_description/urdf/rt_mobile_manipulator.urdf)")
    parser.add_argument("--controllers", type=Path, required=True, help="ros2_control controllers YAML")
    options = parser.parse_args(argv)
    try:
        sys.stdout.write(gazebo_description(options.urdf, options.controllers))
    except (OSError, ET.ParseError, DescriptionError) as err:
        print(f"rt_gazebo.description: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
