"""The two layers: a ROS-free library and a thin ROS shell. The shell is every module under a `ros/` subpackage,
plus the ROS-only packages rt_bringup (launch) and rt_gazebo; nothing else may import rclpy, a ROS interface
package or a shell module, so the library runs (and is tested) without ROS."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROS_ONLY_PACKAGES = ("rt_bringup", "rt_gazebo")
ROS_MODULES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_srvs", "rosidl_runtime_py", "launch", "launch_ros"}
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")


def python_modules() -> list[Path]:
    return sorted(p for p in SRC.glob("*/*/**/*.py") if "test" not in p.relative_to(SRC).parts[1:2])


def in_shell(path: Path) -> bool:
    parts = path.relative_to(SRC).parts
    return parts[0] in ROS_ONLY_PACKAGES or "ros" in parts[2:-1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def is_ros(module: str) -> bool:
    top = module.split(".")[0]
    return top in ROS_MODULES or top.endswith(ROS_SUFFIXES) or ".ros." in f".{module}."


def test_the_shell_and_the_library_are_both_there():
    modules = python_modules()
    assert any(in_shell(p) for p in modules) and sum(not in_shell(p) for p in modules) > 50


@pytest.mark.parametrize(
    "path", [p for p in python_modules() if not in_shell(p)], ids=lambda p: str(p.relative_to(SRC))
)
def test_library_modules_import_nothing_of_ros(path):
    assert not sorted(m for m in imported_modules(path) if is_ros(m))


def test_the_rule_recognises_what_it_forbids():
    assert is_ros("rclpy.node") and is_ros("sensor_msgs.msg") and is_ros("rt_msgs.msg") and is_ros("std_srvs.srv")
    assert is_ros("rt_policy_node.ros.qos") and is_ros("rt_sim.ros.expert_node")
    assert (
        not is_ros("rt_policy_node.robot.motion") and not is_ros("rosbags.typesys") and not is_ros("ament_index_python")
    )
