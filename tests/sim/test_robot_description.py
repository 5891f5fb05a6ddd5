"""The URDF is the one robot description: its names are a contract, and MuJoCo, pinocchio and Gazebo read it alike."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin
import pytest
import yaml

from rt_sim.robot_model import (
    ARM_JOINTS,
    BASE_JOINTS,
    CAMERA_NAME,
    GRIPPER_JOINT,
    GRIPPER_MIMIC_JOINT,
    HOME_ARM_JOINTS,
    load_robot_spec,
)

DESCRIPTION = Path(__file__).resolve().parents[2] / "src" / "rt_description"
URDF = DESCRIPTION / "urdf" / "rt_mobile_manipulator.urdf"
CONTROLLERS = DESCRIPTION / "config" / "controllers.yaml"


@pytest.fixture(scope="module")
def urdf() -> ET.Element:
    return ET.parse(URDF).getroot()


@pytest.fixture(scope="module")
def pin_model() -> pin.Model:
    return pin.buildModelFromUrdf(str(URDF))


def joints(urdf: ET.Element) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in urdf.findall("joint")}


def test_contract_names_and_joint_types(urdf):
    found = joints(urdf)
    assert {name: found[name].get("type") for name in BASE_JOINTS} == {
        "base_x_joint": "prismatic",
        "base_y_joint": "prismatic",
        "base_yaw_joint": "continuous",
    }
    assert all(found[name].get("type") == "revolute" for name in ARM_JOINTS)
    for name in (GRIPPER_JOINT, GRIPPER_MIMIC_JOINT):
        limit = found[name].find("limit")
        assert found[name].get("type") == "prismatic"
        assert (float(limit.get("lower")), float(limit.get("upper"))) == (0.0, 0.04)
    assert found[GRIPPER_MIMIC_JOINT].find("mimic").get("joint") == GRIPPER_JOINT
    links = {link.get("name") for link in urdf.findall("link")}
    assert {"odom", "base_link", "ee_link", "head_camera_link", "head_camera_optical_frame"} <= links
    assert found["base_yaw_joint"].find("child").get("link") == "base_link"


def test_arm_hangs_off_base_link(pin_model):
    """arm_joint_1's parent chain reaches base_link through fixed joints only (a torso/shoulder mount)."""
    frame = pin_model.frames[pin_model.getFrameId("shoulder_link")]
    assert pin_model.names[frame.parentJoint] == "base_yaw_joint"
    assert pin_model.names[pin_model.parents[pin_model.getJointId("arm_joint_1")]] == "base_yaw_joint"


def test_every_moving_link_has_realistic_mass_and_inertia(urdf):
    children = {j.find("child").get("link"): j.get("type") for j in urdf.findall("joint")}
    for link in urdf.findall("link"):
        inertial = link.find("inertial")
        if children.get(link.get("name"), "fixed") == "fixed" and inertial is None:
            continue
        mass = float(inertial.find("mass").get("value"))
        moments = [float(inertial.find("inertia").get(k)) for k in ("ixx", "iyy", "izz")]
        assert 0.0 < mass < 100.0, link.get("name")
        assert all(m > 0 for m in moments), link.get("name")
        # Triangle inequality of principal moments: a physically possible body.
        assert max(moments) <= sum(moments) - max(moments) + 1e-9, link.get("name")


def test_camera_optical_frame_follows_ros_convention(pin_model):
    data = pin_model.createData()
    pin.framesForwardKinematics(pin_model, data, pin.neutral(pin_model))
    body = data.oMf[pin_model.getFrameId("head_camera_link")].rotation
    optical = data.oMf[pin_model.getFrameId("head_camera_optical_frame")].rotation
    np.testing.assert_allclose(optical[:, 2], body[:, 0], atol=1e-9)  # z forward
    np.testing.assert_allclose(optical[:, 0], -body[:, 1], atol=1e-9)  # x right
    np.testing.assert_allclose(optical[:, 1], -body[:, 2], atol=1e-9)  # y down
    assert optical[2, 2] < -0.5, "the head camera looks down at the workspace"


def test_mujoco_and_pinocchio_agree_on_kinematics(pin_model):
    """Same URDF, same forward kinematics: ee_link and the camera in MuJoCo match pinocchio."""
    model = load_robot_spec(URDF).compile()
    data = mujoco.MjData(model)
    pin_data = pin_model.createData()
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = pin.neutral(pin_model)
        for name in (*BASE_JOINTS, *ARM_JOINTS):
            joint = pin_model.joints[pin_model.getJointId(name)]
            low, high = model.joint(name).range if name != "base_yaw_joint" else (-math.pi, math.pi)
            value = rng.uniform(max(low, -2.0), min(high, 2.0))
            if name == "base_yaw_joint":
                q[joint.idx_q : joint.idx_q + 2] = (math.cos(value), math.sin(value))
            else:
                q[joint.idx_q] = value
            data.qpos[model.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        pin.framesForwardKinematics(pin_model, pin_data, q)
        ee = pin_data.oMf[pin_model.getFrameId("ee_link")]
        np.testing.assert_allclose(data.body("ee_link").xpos, ee.translation, atol=1e-9)
        np.testing.assert_allclose(data.body("ee_link").xmat.reshape(3, 3), ee.rotation, atol=1e-9)
        optical = pin_data.oMf[pin_model.getFrameId("head_camera_optical_frame")]
        # A MuJoCo camera looks down its -z axis: that must be the optical frame's +z.
        np.testing.assert_allclose(-data.cam(CAMERA_NAME).xmat.reshape(3, 3)[:, 2], optical.rotation[:, 2], atol=1e-9)


def test_home_pose_points_the_gripper_down_within_limits():
    model = load_robot_spec(URDF).compile()
    data = mujoco.MjData(model)
    for name, value in zip(ARM_JOINTS, HOME_ARM_JOINTS, strict=True):
        low, high = model.joint(name).range
        assert low < value < high
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    assert data.body("ee_link").xmat.reshape(3, 3)[2, 2] < -0.99


def test_gazebo_control_matches_controllers_yaml(urdf):
    """gz_ros2_control tags and controllers.yaml name the URDF's joints with the right interfaces."""
    assert urdf.find("ros2_control/hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    plugins = [p.get("filename") for p in urdf.findall("gazebo/plugin")]
    assert "gz_ros2_control-system" in plugins
    interfaces = {
        j.get("name"): {c.get("name") for c in j.findall("command_interface")}
        for j in urdf.findall("ros2_control/joint")
    }
    config = yaml.safe_load(CONTROLLERS.read_text())
    urdf_joints = joints(urdf)
    expected = {"arm_controller": "position", "gripper_controller": "position", "base_controller": "velocity"}
    for controller, interface in expected.items():
        names = config[controller]["ros__parameters"]["joints"]
        assert all(name in urdf_joints for name in names)
        assert all(interfaces[name] == {interface} for name in names), controller
    assert config["arm_controller"]["ros__parameters"]["joints"] == list(ARM_JOINTS)
    assert config["gripper_controller"]["ros__parameters"]["joints"] == [GRIPPER_JOINT]
    assert config["base_controller"]["ros__parameters"]["joints"] == list(BASE_JOINTS)
